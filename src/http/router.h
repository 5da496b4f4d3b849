/* Method + path-pattern routing with {params}; pure, no I/O. */
#ifndef KEEL_HTTP_ROUTER_H
#define KEEL_HTTP_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#define ROUTER_MAX_PARAMS 8

struct http_request;
typedef void (*http_handler_fn)(struct http_request *req);

/* A pattern is a path whose segments are literals or "{name}", e.g.
 * "/v1/workflows/{name}/versions/{version}". A final segment "{path*}" matches the rest of the
 * path, slashes included (used for static files). */
struct http_route {
    const char *method;
    const char *pattern;
    http_handler_fn handler;
};

struct router_match {
    const struct http_route *route;
    size_t n_params;
    const char *param_names[ROUTER_MAX_PARAMS]; /* point into the pattern (not NUL-ended at '}') */
    size_t param_name_lens[ROUTER_MAX_PARAMS];
    char *param_values[ROUTER_MAX_PARAMS]; /* percent-decoded copies; router_match_free frees */
    char allow[128];        /* on ROUTER_WRONG_METHOD: the methods the path accepts, "GET, POST" */
    const char *bad_reason; /* on ROUTER_BAD_PATH: what is wrong (static text) */
    size_t bad_at;          /* on ROUTER_BAD_PATH: the byte of the raw path where it starts */
};

enum router_result {
    ROUTER_FOUND,        /* m->route is the handler to call */
    ROUTER_NOT_FOUND,    /* no pattern matches the path */
    ROUTER_WRONG_METHOD, /* a pattern matches but not for this method; m->allow lists them */
    ROUTER_BAD_PATH,     /* the path is not well-formed text; m->bad_reason and m->bad_at say why */
};

/* Checks a raw (not yet decoded) path: every '%' starts a %XX escape, none is %00, and the
 * decoded bytes are valid UTF-8 without control characters (U+0000-U+001F, U+007F). Returns
 * NULL when it is fine, or a static reason and the byte offset of the fault in *at. */
const char *router_check_path(const char *path, size_t len, size_t *at);
/* The same for bytes already decoded (a query value, a header value): valid UTF-8, no NUL,
 * no control characters except a tab when allow_tab. NULL when fine, else a static reason
 * and the offset in *at. */
const char *router_check_text(const char *s, size_t len, bool allow_tab, size_t *at);

/* Finds the route for method and the raw path as sent (without query string) in
 * routes[0..n). The path is checked with router_check_path first, and each {param} is
 * percent-decoded exactly once (so "%252F" is the text "%2F", never "/"). Literal segments
 * match byte for byte. HEAD is accepted wherever GET is. Pure and allocation-safe for any
 * input (a fuzzer calls it directly). Call router_match_free after ROUTER_FOUND. */
enum router_result router_find(const struct http_route *routes, size_t n, const char *method,
                               const char *path, struct router_match *m);
/* The value of parameter name, or NULL. */
const char *router_param(const struct router_match *m, const char *name);
void router_match_free(struct router_match *m);

#endif
