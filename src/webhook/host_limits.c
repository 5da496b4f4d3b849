/* KEEL_HOST_LIMITS: parsing, matching a host to its entry, and a keeld's share of a limit. */
#include "webhook/host_limits.h"

#include "util/alloc.h"
#include "util/buf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOST_MAX  253
#define LABEL_MAX 63
/* The longest entry shown whole in an error message. */
#define SHOWN_MAX 80
/* Longer entries cannot be valid: a host of 253, a port, and two limits. */
#define ENTRY_MAX 320

/* ---- parsing ------------------------------------------------------------------------------ */

/* The entry (s, n bytes) as a message shows it: quoted, cut at SHOWN_MAX, with bytes that are
 * not printable ASCII as \xNN. Caller frees. */
static char *shown(const char *s, size_t n)
{
    struct buf b = BUF_INIT;
    buf_putc(&b, '"');
    for (size_t i = 0; i < n && i < SHOWN_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            buf_printf(&b, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            buf_printf(&b, "\\x%02x", c);
        else
            buf_putc(&b, (char)c);
    }
    buf_puts(&b, n > SHOWN_MAX ? "...\"" : "\"");
    return buf_steal(&b);
}

struct parse {
    const char *source;
    const char *entry; /* the entry being parsed (not NUL-terminated) */
    size_t entry_len;
    int line; /* its line, when the text has several; 0 otherwise */
    char **why;
};

static int fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parse *p, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    char *entry = shown(p->entry, p->entry_len);
    buf_printf(&b, "%s: entry %s", p->source, entry);
    free(entry);
    if (p->line > 0)
        buf_printf(&b, " on line %d", p->line);
    buf_puts(&b, ": ");
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    *p->why = buf_steal(&b);
    return -1;
}

/* A whole number of decimal digits only (no sign, no space) from s[0..n), at most max; -1 when
 * it is not one, -2 when it is too large. */
static long whole_number(const char *s, size_t n, long max)
{
    if (n == 0)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        if (v > max)
            continue; /* keep reading: a later non-digit still makes it "not a number" */
        v = v * 10 + (s[i] - '0');
    }
    return v > max ? -2 : v;
}

/* A host name: labels of letters, digits, '-' and '_' separated by dots, 1-63 bytes each, 253 in
 * all. Lowercased in place. */
static bool name_ok(char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HOST_MAX)
        return false;
    size_t label = 0;
    for (char *c = s; *c; c++) {
        if (*c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_')
            return false;
        if (++label > LABEL_MAX)
            return false;
        *c = (char)tolower((unsigned char)*c);
    }
    return label > 0;
}

static bool all_digits_and_dots(const char *s)
{
    for (; *s; s++)
        if (!isdigit((unsigned char)*s) && *s != '.')
            return false;
    return true;
}

/* The host part of an entry (NUL-terminated, modifiable) into lim's host, port and wildcard. */
static int parse_host(struct parse *p, char *s, struct wh_host_limit *lim)
{
    char *port = NULL;
    if (s[0] == '[') {
        char *close = strchr(s, ']');
        if (!close)
            return fail(p, "\"[\" without \"]\" (an IPv6 address is written [2001:db8::1])");
        *close = '\0';
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0')
            return fail(p,
                        "unexpected \"%s\" after the IPv6 address (a port is written "
                        "[2001:db8::1]:8443)",
                        close + 1);
        unsigned char addr[16];
        char text[INET6_ADDRSTRLEN];
        if (inet_pton(AF_INET6, s + 1, addr) != 1 || !inet_ntop(AF_INET6, addr, text, sizeof text))
            return fail(p, "\"%s\" is not an IPv6 address", s + 1);
        lim->host = xasprintf("[%s]", text);
    } else {
        char *colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':'))
            return fail(p, "an IPv6 address goes in brackets: [%s]", s);
        if (colon) {
            *colon = '\0';
            port = colon + 1;
        }
        size_t n = strlen(s);
        if (n > 1 && s[n - 1] == '.' && s[n - 2] != '.')
            s[--n] = '\0'; /* "payments.internal." is the same host */
        if (s[0] == '*') {
            if (s[1] != '.' || !name_ok(s + 2) || all_digits_and_dots(s + 2))
                return fail(p, "a wildcard is \"*.\" followed by a domain name, as in "
                               "*.example.com");
            lim->wildcard = true;
            lim->host = xstrdup(s + 2);
        } else if (all_digits_and_dots(s) && n > 0) {
            unsigned char addr[4];
            if (inet_pton(AF_INET, s, addr) != 1)
                return fail(p,
                            "\"%s\" is not an IPv4 address (four numbers 0-255, as in "
                            "10.0.0.7)",
                            s);
            lim->host = xstrdup(s);
        } else if (n == 0) {
            return fail(p, "no host before \"=\"");
        } else if (!name_ok(s)) {
            return fail(p,
                        "\"%s\" is not a host name (letters, digits, \"-\" and \"_\" in "
                        "dot-separated labels of at most 63, 253 in all)",
                        s);
        } else {
            lim->host = xstrdup(s);
        }
    }
    if (port) {
        long v = whole_number(port, strlen(port), 65535);
        if (v < 1)
            return fail(p, "\"%s\" is not a port (1-65535)", port);
        lim->port = (int)v;
    }
    if (lim->port)
        lim->name = xasprintf("%s%s:%d", lim->wildcard ? "*." : "", lim->host, lim->port);
    else
        lim->name = xasprintf("%s%s", lim->wildcard ? "*." : "", lim->host);
    return 0;
}

/* One part of a limit: "20" or "50/s". */
static int parse_part(struct parse *p, const char *s, size_t n, struct wh_host_limit *lim)
{
    const char *slash = memchr(s, '/', n);
    if (n == 0)
        return fail(p, "an empty part in the limit (write CONCURRENCY, RATE/s or "
                       "CONCURRENCY,RATE/s, as in 20,50/s)");
    size_t count_len = slash ? (size_t)(slash - s) : n;
    long max = slash ? WH_HOST_LIMIT_MAX_RATE : WH_HOST_LIMIT_MAX_CONCURRENCY;
    long v = whole_number(s, count_len, max);
    if (v == -2)
        return fail(p, "%.*s is more than %ld", (int)count_len, s, max);
    if (v < 0) {
        if (memchr(s, '.', count_len) && slash)
            return fail(p,
                        "\"%.*s\" is not a whole number (for less than one a second, write "
                        "N/m or N/h)",
                        (int)count_len, s);
        return fail(p, "\"%.*s\" is not a %s", (int)n, s,
                    slash ? "rate (a whole number per s, m or h, as in 50/s)"
                          : "concurrency (a whole number, as in 20) or a rate (as in 50/s)");
    }
    if (v == 0)
        return fail(p, "%s of 0 would never let a request go (leave the host out for no limit)",
                    slash ? "a rate" : "a concurrency");
    if (!slash) {
        if (lim->concurrency)
            return fail(p, "two concurrencies (%d and %ld)", lim->concurrency, v);
        lim->concurrency = (int)v;
        return 0;
    }
    size_t unit_len = n - count_len - 1;
    long period = 0;
    if (unit_len == 1 && slash[1] == 's')
        period = 1000;
    else if (unit_len == 1 && slash[1] == 'm')
        period = 60000;
    else if (unit_len == 1 && slash[1] == 'h')
        period = 3600000;
    if (!period)
        return fail(p, "\"%.*s\" is not a unit of a rate (s, m or h, as in 50/s)", (int)unit_len,
                    slash + 1);
    if (lim->rate)
        return fail(p, "two rates");
    lim->rate = v;
    lim->rate_period_ms = period;
    return 0;
}

static int parse_limit(struct parse *p, const char *s, size_t n, struct wh_host_limit *lim)
{
    if (n == 0)
        return fail(p, "no limit after \"=\" (write CONCURRENCY, RATE/s or CONCURRENCY,RATE/s, "
                       "as in 20,50/s)");
    const char *comma = memchr(s, ',', n);
    if (!comma)
        return parse_part(p, s, n, lim);
    size_t first = (size_t)(comma - s);
    if (memchr(comma + 1, ',', n - first - 1))
        return fail(p, "more than two parts in the limit (at most a concurrency and a rate, as "
                       "in 20,50/s)");
    if (parse_part(p, s, first, lim) < 0 || parse_part(p, comma + 1, n - first - 1, lim) < 0)
        return -1;
    return 0;
}

static void limit_text(struct wh_host_limit *lim)
{
    char rate[32] = "";
    if (lim->rate)
        snprintf(rate, sizeof rate, "%ld/%c", lim->rate,
                 lim->rate_period_ms == 1000    ? 's'
                 : lim->rate_period_ms == 60000 ? 'm'
                                                : 'h');
    if (lim->concurrency && lim->rate)
        snprintf(lim->limit_text, sizeof lim->limit_text, "%d,%s", lim->concurrency, rate);
    else if (lim->concurrency)
        snprintf(lim->limit_text, sizeof lim->limit_text, "%d", lim->concurrency);
    else
        snprintf(lim->limit_text, sizeof lim->limit_text, "%s", rate);
}

static void limit_clear(struct wh_host_limit *lim)
{
    free(lim->name);
    free(lim->host);
    memset(lim, 0, sizeof *lim);
}

static int parse_entry(struct parse *p, struct wh_host_limits *l)
{
    const char *s = p->entry;
    size_t n = p->entry_len;
    if (n > ENTRY_MAX)
        return fail(p, "too long to be HOST=LIMIT");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] >= 0x7f)
            return fail(p, "a byte that is not printable ASCII (0x%02x)", (unsigned char)s[i]);
    const char *eq = memchr(s, '=', n);
    if (!eq)
        return fail(p, "no \"=\" (entries are HOST=LIMIT separated by spaces, as in "
                       "payments.internal=20,50/s)");
    struct wh_host_limit lim;
    memset(&lim, 0, sizeof lim);
    char *host = xstrndup(s, (size_t)(eq - s));
    int rc = parse_host(p, host, &lim);
    free(host);
    if (rc == 0)
        rc = parse_limit(p, eq + 1, n - (size_t)(eq - s) - 1, &lim);
    if (rc == 0) {
        for (size_t i = 0; i < l->n; i++) {
            if (!strcmp(l->v[i].name, lim.name)) {
                rc = fail(p, "%s is limited twice (also by %s=%s)", lim.name, l->v[i].name,
                          l->v[i].limit_text);
                break;
            }
        }
    }
    if (rc < 0) {
        limit_clear(&lim);
        return -1;
    }
    limit_text(&lim);
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = lim;
    return 0;
}

static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int wh_host_limits_parse(const char *text, const char *source, struct wh_host_limits **out,
                         char **why)
{
    *out = NULL;
    *why = NULL;
    struct wh_host_limits *l = xcalloc(1, sizeof *l);
    struct parse p = {.source = source ? source : "KEEL_HOST_LIMITS", .why = why};
    bool lines = text && strchr(text, '\n') != NULL;
    int line = 1;
    const char *c = text ? text : "";
    while (*c) {
        if (space(*c)) {
            if (*c == '\n')
                line++;
            c++;
            continue;
        }
        if (*c == '#') {
            while (*c && *c != '\n')
                c++;
            continue;
        }
        const char *start = c;
        while (*c && !space(*c))
            c++;
        p.entry = start;
        p.entry_len = (size_t)(c - start);
        p.line = lines ? line : 0;
        if (parse_entry(&p, l) < 0) {
            wh_host_limits_free(l);
            return -1;
        }
    }
    *out = l;
    return 0;
}

bool wh_host_limits_is_file(const char *spec)
{
    return spec && spec[0] == '@';
}

int wh_host_limits_load(const char *spec, struct wh_host_limits **out, char **why)
{
    *out = NULL;
    *why = NULL;
    if (!wh_host_limits_is_file(spec))
        return wh_host_limits_parse(spec, "KEEL_HOST_LIMITS", out, why);
    const char *path = spec + 1;
    if (!*path) {
        *why = xstrdup("KEEL_HOST_LIMITS: \"@\" without a file name (write @/path/to/file)");
        return -1;
    }
    int rc = -1;
    char *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *why = xasprintf("KEEL_HOST_LIMITS: cannot read %s: %s", path, strerror(errno));
        goto Exit;
    }
    text = xmalloc(WH_HOST_LIMITS_MAX_FILE_BYTES + 1);
    size_t n = fread(text, 1, WH_HOST_LIMITS_MAX_FILE_BYTES + 1, f);
    if (ferror(f)) {
        *why = xasprintf("KEEL_HOST_LIMITS: cannot read %s: %s", path, strerror(errno));
        goto Exit;
    }
    if (n > WH_HOST_LIMITS_MAX_FILE_BYTES) {
        *why = xasprintf("KEEL_HOST_LIMITS: %s is larger than %d bytes", path,
                         WH_HOST_LIMITS_MAX_FILE_BYTES);
        goto Exit;
    }
    if (memchr(text, '\0', n)) {
        *why = xasprintf("KEEL_HOST_LIMITS: %s holds a NUL byte (it should be text)", path);
        goto Exit;
    }
    text[n] = '\0';
    rc = wh_host_limits_parse(text, path, out, why);
Exit:
    if (f)
        fclose(f);
    free(text);
    return rc;
}

void wh_host_limits_free(struct wh_host_limits *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        limit_clear(&l->v[i]);
    free(l->v);
    free(l);
}

/* ---- matching ----------------------------------------------------------------------------- */

/* host as entries spell it: lowercased, without a trailing dot, an IPv6 address in its
 * canonical form in brackets. False when it cannot be one. */
static bool normal_host(const char *host, char *out, size_t size)
{
    size_t n = strlen(host);
    if (n == 0 || n >= size)
        return false;
    if (host[0] == '[') {
        char tmp[INET6_ADDRSTRLEN + 8];
        const char *close = strchr(host, ']');
        size_t len = close ? (size_t)(close - host - 1) : 0;
        if (!close || len >= sizeof tmp)
            return false;
        memcpy(tmp, host + 1, len);
        tmp[len] = '\0';
        tmp[strcspn(tmp, "%")] = '\0'; /* a zone id */
        unsigned char addr[16];
        char text[INET6_ADDRSTRLEN];
        if (inet_pton(AF_INET6, tmp, addr) != 1 || !inet_ntop(AF_INET6, addr, text, sizeof text))
            return false;
        return snprintf(out, size, "[%s]", text) < (int)size;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)host[i]);
    if (n > 1 && out[n - 1] == '.')
        n--;
    out[n] = '\0';
    return true;
}

const struct wh_host_limit *wh_host_limits_match(const struct wh_host_limits *l, const char *host,
                                                 int port)
{
    char h[HOST_MAX + 64];
    if (!l || !host || !normal_host(host, h, sizeof h))
        return NULL;
    size_t hn = strlen(h);
    const struct wh_host_limit *best = NULL;
    /* Most specific first: exact beats wildcard, a port beats none, a longer suffix a shorter. */
    long best_score = -1;
    for (size_t i = 0; i < l->n; i++) {
        const struct wh_host_limit *e = &l->v[i];
        if (e->port && e->port != port)
            continue;
        size_t en = strlen(e->host);
        long score;
        if (!e->wildcard) {
            if (strcmp(e->host, h) != 0)
                continue;
            score = 4L << 20;
        } else {
            if (hn <= en + 1 || h[hn - en - 1] != '.' || strcmp(h + hn - en, e->host) != 0)
                continue;
            score = (long)en;
        }
        if (e->port)
            score += 2L << 20;
        if (score > best_score) {
            best_score = score;
            best = e;
        }
    }
    return best;
}

const struct wh_host_limit *wh_host_limits_match_url(const struct wh_host_limits *l,
                                                     const char *url)
{
    if (!l || l->n == 0 || !url)
        return NULL;
    const struct wh_host_limit *found = NULL;
    char *scheme = NULL, *host = NULL, *port = NULL;
    CURLU *u = curl_url();
    if (!u)
        return NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto Exit;
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
        goto Exit;
    found = wh_host_limits_match(l, host, atoi(port));
Exit:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return found;
}

/* ---- shares ------------------------------------------------------------------------------- */

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int wh_host_limit_concurrency_share(const struct wh_host_limit *lim, int keelds, int rank)
{
    if (!lim || lim->concurrency <= 0)
        return 0;
    if (keelds < 1)
        keelds = 1;
    rank %= keelds;
    if (rank < 0)
        rank += keelds;
    int base = lim->concurrency / keelds, extra = lim->concurrency % keelds;
    int pos = (int)(((uint32_t)rank + name_hash(lim->name) % (uint32_t)keelds) % (uint32_t)keelds);
    int share = base + (pos < extra ? 1 : 0);
    return share < 1 ? 1 : share;
}

int64_t wh_host_limit_interval_us(const struct wh_host_limit *lim, int keelds)
{
    if (!lim || lim->rate <= 0)
        return 0;
    if (keelds < 1)
        keelds = 1;
    /* Rounded up: a spacing a microsecond short would let RATE + 1 requests into one unit. */
    int64_t total = (int64_t)lim->rate_period_ms * 1000 * keelds;
    return (total + lim->rate - 1) / lim->rate;
}
