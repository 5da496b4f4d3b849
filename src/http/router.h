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
    char allow[128]; /* on ROUTER_WRONG_METHOD: the methods the path accepts, "GET, POST" */
};

enum router_result {
    ROUTER_FOUND,        /* m->route is the handler to call */
    ROUTER_NOT_FOUND,    /* no pattern matches the path */
    ROUTER_WRONG_METHOD, /* a pattern matches but not for this method; m->allow lists them */
    ROUTER_BAD_PATH,     /* the path has an invalid percent-encoding */
};

/* Finds the route for method and path (without query string) in routes[0..n). HEAD is
 * accepted wherever GET is. Call router_match_free after ROUTER_FOUND. */
enum router_result router_find(const struct http_route *routes, size_t n, const char *method,
                               const char *path, struct router_match *m);
/* The value of parameter name, or NULL. */
const char *router_param(const struct router_match *m, const char *name);
void router_match_free(struct router_match *m);

#endif
