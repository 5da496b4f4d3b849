/* Fuzzes KEEL_HOST_LIMITS (src/webhook/host_limits.c): wh_host_limits_parse on any bytes (up to
 * the first NUL, as getenv or the file check hands them over), and wh_host_limits_match_url on
 * the same bytes as a URL against a fixed list. Checks host_limits.h: a refused text says which
 * entry and leaves *out NULL; an accepted one has entries with a limit each, names unique, that
 * print back ("name=limit" joined by spaces) to the same list; each exact entry is what its own
 * host and port match, and a host below a wildcard's domain matches it or a more specific entry;
 * the concurrency shares of k keelds add up to the limit (or to k). */
#include "fuzz.h"

#include "webhook/host_limits.h"

#include <string.h>

static void check_shares(const struct wh_host_limit *e)
{
    for (int k = 1; k <= 5; k++) {
        int sum = 0;
        for (int r = 0; r < k; r++) {
            int s = wh_host_limit_concurrency_share(e, k, r);
            FUZZ_CHECK(e->concurrency ? s >= 1 : s == 0);
            sum += s;
        }
        if (e->concurrency)
            FUZZ_CHECK(sum == (e->concurrency >= k ? e->concurrency : k));
        int64_t iv = wh_host_limit_interval_us(e, k);
        FUZZ_CHECK(e->rate ? iv >= 1 : iv == 0);
    }
}

/* A port that no entry of host names, so that its entry without a port is the one matched. */
static int free_port(const struct wh_host_limits *l, const char *host)
{
    for (int port = 1;; port++) {
        bool used = false;
        for (size_t i = 0; i < l->n && !used; i++)
            used = !l->v[i].wildcard && l->v[i].port == port && !strcmp(l->v[i].host, host);
        if (!used)
            return port;
    }
}

static void check_accepted(const struct wh_host_limits *l)
{
    size_t cap = 64;
    for (size_t i = 0; i < l->n; i++)
        cap += strlen(l->v[i].name) + sizeof l->v[i].limit_text + 2;
    char *text = malloc(cap);
    FUZZ_CHECK(text != NULL);
    text[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < l->n; i++) {
        const struct wh_host_limit *e = &l->v[i];
        FUZZ_CHECK(e->concurrency > 0 || e->rate > 0);
        FUZZ_CHECK(e->concurrency <= WH_HOST_LIMIT_MAX_CONCURRENCY);
        FUZZ_CHECK(e->rate <= WH_HOST_LIMIT_MAX_RATE);
        FUZZ_CHECK(!e->rate || e->rate_period_ms == 1000 || e->rate_period_ms == 60000 ||
                   e->rate_period_ms == 3600000);
        FUZZ_CHECK(e->port >= 0 && e->port <= 65535);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(l->v[j].name, e->name) != 0);
        check_shares(e);
        if (!e->wildcard) {
            int port = e->port ? e->port : free_port(l, e->host);
            FUZZ_CHECK(wh_host_limits_match(l, e->host, port) == e);
        } else {
            /* A host below the wildcard's domain takes it or something more specific. */
            char below[300];
            snprintf(below, sizeof below, "zz9.%s", e->host);
            const struct wh_host_limit *m = wh_host_limits_match(l, below, e->port ? e->port : 1);
            FUZZ_CHECK(m != NULL);
            FUZZ_CHECK(!m->wildcard || (m->port && !e->port) ||
                       (!m->port == !e->port && strlen(m->host) >= strlen(e->host)));
        }
        len += (size_t)snprintf(text + len, cap - len, "%s%s=%s", i ? " " : "", e->name,
                                e->limit_text);
    }
    struct wh_host_limits *back = NULL;
    char *why = NULL;
    if (wh_host_limits_parse(text, "again", &back, &why) != 0)
        fprintf(stderr, "\"%s\" does not parse again: %s\n", text, why);
    FUZZ_CHECK(back != NULL && back->n == l->n);
    for (size_t i = 0; i < l->n; i++) {
        FUZZ_CHECK(!strcmp(back->v[i].name, l->v[i].name));
        FUZZ_CHECK(!strcmp(back->v[i].limit_text, l->v[i].limit_text));
        FUZZ_CHECK(back->v[i].concurrency == l->v[i].concurrency);
        FUZZ_CHECK(back->v[i].rate == l->v[i].rate);
    }
    wh_host_limits_free(back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    struct wh_host_limits *l = (struct wh_host_limits *)1;
    char *why = NULL;
    if (wh_host_limits_parse(text, "KEEL_HOST_LIMITS", &l, &why) == 0) {
        FUZZ_CHECK(l != NULL && why == NULL);
        check_accepted(l);
        wh_host_limits_free(l);
    } else {
        FUZZ_CHECK(l == NULL && why != NULL);
        FUZZ_CHECK(!strncmp(why, "KEEL_HOST_LIMITS: entry \"", 25));
        FUZZ_CHECK(strlen(why) < 1024);
        free(why);
    }

    static struct wh_host_limits *fixed;
    if (!fixed && wh_host_limits_parse("pay.example.com=1 *.example.com:8443=2,3/s 127.0.0.1=4 "
                                       "[::1]:9000=5/m",
                                       NULL, &fixed, &why) != 0)
        abort();
    const struct wh_host_limit *e = wh_host_limits_match_url(fixed, text);
    FUZZ_CHECK(e == NULL || (e >= fixed->v && e < fixed->v + fixed->n));
    free(text);
    return 0;
}
