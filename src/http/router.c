/* Router: segment-by-segment matching of a path against each route pattern. */
#include "http/router.h"

#include "util/alloc.h"

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
