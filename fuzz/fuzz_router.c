/* Fuzzes the router and its percent-decoder over the real route table (src/api/routes.c). The
 * input is "METHOD PATH" (no space: the whole input is a GET path); the path is a C string, as
 * libmicrohttpd hands it over, so it ends at the first NUL byte. Checks router.h against
 * independent references: router_check_text against jansson's UTF-8 validation,
 * router_check_path against a decode-then-check, router_find's ROUTER_BAD_PATH against
 * router_check_path, and each {param} of a found route against its path segment decoded once.
 * A found route has the method asked for (or GET for HEAD), and nothing is left allocated on
 * any other result. The raw input also goes through router_check_text as a query or header
 * value would. */
#include "fuzz.h"

#include "api/routes.h"
#include "http/router.h"

#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The reference decoder: s[0..n) with every %XX replaced, into out (n + 1 bytes; *out_len gets
 * the decoded length, which counts NULs from %00). False on a malformed escape. */
static bool ref_decode(const char *s, size_t n, char *out, size_t *out_len)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[j++] = s[i];
            continue;
        }
        if (i + 2 >= n)
            return false;
        int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
        if (hi < 0 || lo < 0)
            return false;
        out[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[j] = '\0';
    *out_len = j;
    return true;
}

/* Text Keel accepts: valid UTF-8 (as jansson reads it), no control characters (a tab only
 * when allowed). */
static bool ref_text_ok(const char *s, size_t n, bool allow_tab)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(c == '\t' && allow_tab)) || c == 0x7F)
            return false;
    }
    json_t *v = json_stringn(s, n);
    bool ok = v != NULL;
    json_decref(v);
    return ok;
}

static void check_text(const char *s, size_t n, bool allow_tab)
{
    size_t at = (size_t)-1;
    const char *why = router_check_text(s, n, allow_tab, &at);
    bool ok = ref_text_ok(s, n, allow_tab);
    if ((why == NULL) != ok)
        fprintf(stderr, "router_check_text says %s, the reference says %s\n", why ? why : "fine",
                ok ? "fine" : "bad");
    FUZZ_CHECK((why == NULL) == ok);
    if (why)
        FUZZ_CHECK(at < n);
}

/* router_check_path accepts exactly the paths that decode and then are text. */
static void check_path(const char *path)
{
    size_t n = strlen(path);
    char *decoded = malloc(n + 1);
    FUZZ_CHECK(decoded != NULL);
    size_t dlen = 0;
    bool ok = ref_decode(path, n, decoded, &dlen) && ref_text_ok(decoded, dlen, false);
    free(decoded);
    size_t at = (size_t)-1;
    const char *why = router_check_path(path, n, &at);
    if ((why == NULL) != ok)
        fprintf(stderr, "router_check_path says %s, the reference says %s\n", why ? why : "fine",
                ok ? "fine" : "bad");
    FUZZ_CHECK((why == NULL) == ok);
    if (why)
        FUZZ_CHECK(at < n);
}

/* Walks route->pattern against path segment by segment and checks each parameter's value. */
static void check_params(const struct router_match *m, const char *path)
{
    const char *p = m->route->pattern, *s = path;
    size_t seen = 0;
    while (*p) {
        FUZZ_CHECK(*p == '/' && *s == '/');
        p++;
        s++;
        size_t plen = strcspn(p, "/");
        size_t slen = strcspn(s, "/");
        if (p[0] == '{') {
            bool rest = plen >= 3 && p[plen - 2] == '*';
            if (rest)
                slen = strlen(s);
            char name[64];
            size_t nlen = plen - 2 - (rest ? 1 : 0);
            FUZZ_CHECK(nlen < sizeof name);
            memcpy(name, p + 1, nlen);
            name[nlen] = '\0';
            char *want = malloc(slen + 1);
            FUZZ_CHECK(want != NULL);
            size_t wlen = 0;
            FUZZ_CHECK(ref_decode(s, slen, want, &wlen));
            FUZZ_CHECK(strlen(want) == wlen); /* no NUL got through */
            const char *got = router_param(m, name);
            FUZZ_CHECK(got != NULL);
            if (strcmp(got, want) != 0)
                fprintf(stderr, "{%s}: router gave \"%s\", expected \"%s\"\n", name, got, want);
            FUZZ_CHECK(strcmp(got, want) == 0);
            size_t at;
            FUZZ_CHECK(router_check_text(got, strlen(got), false, &at) == NULL);
            free(want);
            seen++;
        } else {
            FUZZ_CHECK(plen == slen && strncmp(p, s, plen) == 0);
        }
        p += plen;
        s += slen;
    }
    FUZZ_CHECK(*s == '\0');
    FUZZ_CHECK(seen == m->n_params);
}

/* On ROUTER_WRONG_METHOD, allow is "A, B": methods of the table, never the one asked for. */
static void check_allow(const char *allow, const char *method)
{
    const char *a = allow;
    for (;;) {
        size_t n = strcspn(a, ",");
        bool known = false;
        for (size_t i = 0; i < api_n_routes; i++)
            known |= strlen(api_routes[i].method) == n && !strncmp(api_routes[i].method, a, n);
        FUZZ_CHECK(known);
        FUZZ_CHECK(strlen(method) != n || strncmp(method, a, n) != 0);
        FUZZ_CHECK(strcmp(method, "HEAD") != 0 || n != 3 || strncmp(a, "GET", 3) != 0);
        if (a[n] == '\0')
            break;
        FUZZ_CHECK(a[n + 1] == ' ');
        a += n + 2;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_text((const char *)data, size, false);
    check_text((const char *)data, size, true);

    char *text = fuzz_strndup(data, size);
    char *path = strchr(text, ' ');
    const char *method = "GET";
    if (path) {
        *path++ = '\0';
        method = text;
    } else {
        path = text;
    }
    check_path(path);

    struct router_match m;
    memset(&m, 0x55, sizeof m); /* router_find must initialise it */
    enum router_result r = router_find(api_routes, api_n_routes, method, path, &m);
    switch (r) {
    case ROUTER_FOUND:
        FUZZ_CHECK(m.bad_reason == NULL);
        FUZZ_CHECK(m.route >= api_routes && m.route < api_routes + api_n_routes);
        FUZZ_CHECK(strcmp(m.route->method, method) == 0 ||
                   (strcmp(method, "HEAD") == 0 && strcmp(m.route->method, "GET") == 0));
        FUZZ_CHECK(m.n_params <= ROUTER_MAX_PARAMS);
        check_params(&m, path);
        FUZZ_CHECK(router_param(&m, "no-such-parameter") == NULL);
        break;
    case ROUTER_WRONG_METHOD:
        FUZZ_CHECK(m.n_params == 0);
        FUZZ_CHECK(memchr(m.allow, '\0', sizeof m.allow) != NULL && m.allow[0] != '\0');
        check_allow(m.allow, method);
        break;
    case ROUTER_NOT_FOUND:
        FUZZ_CHECK(m.n_params == 0);
        break;
    case ROUTER_BAD_PATH: {
        FUZZ_CHECK(m.n_params == 0);
        size_t at = (size_t)-1;
        const char *why = router_check_path(path, strlen(path), &at);
        FUZZ_CHECK(why != NULL && m.bad_reason == why && m.bad_at == at);
        break;
    }
    default:
        FUZZ_CHECK(!"a result of enum router_result");
    }
    router_match_free(&m);
    FUZZ_CHECK(m.n_params == 0);
    free(text);
    return 0;
}
