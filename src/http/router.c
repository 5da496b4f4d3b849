/* Router: segment-by-segment matching of a path against each route pattern. */
#include "http/router.h"

#include "util/alloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A UTF-8 checker fed one byte at a time. need: continuation bytes still expected; lo..hi:
 * the allowed range of the next one (narrowed after E0, ED, F0 and F4 to refuse overlong
 * forms, surrogates and values above U+10FFFF); start: where the current character began. */
struct text_check {
    unsigned need;
    unsigned char lo, hi;
    size_t start;
    bool allow_tab;
};

static const char *text_feed(struct text_check *t, unsigned char c, size_t here, size_t *at)
{
    if (t->need) {
        if (c < t->lo || c > t->hi) {
            *at = t->start;
            return "not valid UTF-8";
        }
        t->need--;
        t->lo = 0x80;
        t->hi = 0xBF;
        return NULL;
    }
    t->start = here;
    if (c == 0) {
        *at = here;
        return "NUL (%00) is not allowed";
    }
    if ((c < 0x20 && !(c == '\t' && t->allow_tab)) || c == 0x7F) {
        *at = here;
        return "control characters are not allowed";
    }
    if (c < 0x80)
        return NULL;
    t->lo = 0x80;
    t->hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        t->need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        t->need = 2;
        if (c == 0xE0)
            t->lo = 0xA0;
        else if (c == 0xED)
            t->hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        t->need = 3;
        if (c == 0xF0)
            t->lo = 0x90;
        else if (c == 0xF4)
            t->hi = 0x8F;
    } else {
        *at = here;
        return "not valid UTF-8";
    }
    return NULL;
}

static const char *text_end(const struct text_check *t, size_t *at)
{
    if (t->need) {
        *at = t->start;
        return "not valid UTF-8";
    }
    return NULL;
}

const char *router_check_text(const char *s, size_t len, bool allow_tab, size_t *at)
{
    struct text_check t = {.lo = 0x80, .hi = 0xBF, .allow_tab = allow_tab};
    for (size_t i = 0; i < len; i++) {
        const char *why = text_feed(&t, (unsigned char)s[i], i, at);
        if (why)
            return why;
    }
    return text_end(&t, at);
}

const char *router_check_path(const char *path, size_t len, size_t *at)
{
    struct text_check t = {.lo = 0x80, .hi = 0xBF};
    for (size_t i = 0; i < len; i++) {
        size_t here = i;
        unsigned char c = (unsigned char)path[i];
        if (c == '%') {
            int a = i + 2 < len ? hexval(path[i + 1]) : -1;
            int b = i + 2 < len ? hexval(path[i + 2]) : -1;
            if (a < 0 || b < 0) {
                *at = i;
                return "a '%' is not followed by two hex digits";
            }
            c = (unsigned char)(a * 16 + b);
            i += 2;
        }
        const char *why = text_feed(&t, c, here, at);
        if (why)
            return why;
    }
    return text_end(&t, at);
}

/* Percent-decodes s[0..len) into a new string; NULL on a malformed escape or an encoded NUL. */
static char *percent_decode(const char *s, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

static void clear_params(struct router_match *m)
{
    for (size_t i = 0; i < m->n_params; i++) {
        free(m->param_values[i]);
        m->param_values[i] = NULL;
    }
    m->n_params = 0;
}

/* 1 = match, 0 = no match, -1 = bad percent-encoding in path. */
static int match_pattern(const char *pattern, const char *path, struct router_match *m)
{
    const char *p = pattern, *s = path;
    clear_params(m);
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return 0;
        p++;
        s++;
        const char *pend = strchr(p, '/');
        size_t plen = pend ? (size_t)(pend - p) : strlen(p);
        const char *send = strchr(s, '/');
        size_t slen = send ? (size_t)(send - s) : strlen(s);
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            bool rest = plen >= 3 && p[plen - 2] == '*';
            if (rest)
                slen = strlen(s);
            if (slen == 0 && !rest)
                return 0;
            if (m->n_params == ROUTER_MAX_PARAMS)
                return 0;
            char *v = percent_decode(s, slen);
            if (!v)
                return -1;
            m->param_names[m->n_params] = p + 1;
            m->param_name_lens[m->n_params] = plen - 2 - (rest ? 1 : 0);
            m->param_values[m->n_params++] = v;
        } else if (plen != slen || strncmp(p, s, plen) != 0) {
            return 0;
        }
        p += plen;
        s += slen;
    }
    return *p == '\0' && *s == '\0';
}

enum router_result router_find(const struct http_route *routes, size_t n, const char *method,
                               const char *path, struct router_match *m)
{
    memset(m, 0, sizeof *m);
    m->bad_reason = router_check_path(path, strlen(path), &m->bad_at);
    if (m->bad_reason)
        return ROUTER_BAD_PATH;
    bool path_matched = false;
    bool bad_path = false;
    for (size_t i = 0; i < n; i++) {
        int r = match_pattern(routes[i].pattern, path, m);
        if (r < 0)
            bad_path = true;
        if (r <= 0)
            continue;
        bool method_ok = !strcmp(routes[i].method, method) ||
                         (!strcmp(method, "HEAD") && !strcmp(routes[i].method, "GET"));
        if (method_ok) {
            m->route = &routes[i];
            return ROUTER_FOUND;
        }
        path_matched = true;
        if (!strstr(m->allow, routes[i].method)) {
            size_t used = strlen(m->allow);
            snprintf(m->allow + used, sizeof m->allow - used, "%s%s", used ? ", " : "",
                     routes[i].method);
        }
    }
    clear_params(m);
    if (path_matched)
        return ROUTER_WRONG_METHOD;
    return bad_path ? ROUTER_BAD_PATH : ROUTER_NOT_FOUND;
}

const char *router_param(const struct router_match *m, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < m->n_params; i++) {
        if (m->param_name_lens[i] == len && !strncmp(m->param_names[i], name, len))
            return m->param_values[i];
    }
    return NULL;
}

void router_match_free(struct router_match *m)
{
    clear_params(m);
}
