/* The HTTP server on libmicrohttpd: request bodies with a cap, routing, JSON and RFC 9457
 * problem replies, bearer-token authentication, suspend/resume for long polls, and a drain on
 * shutdown. Handlers run on the server's threads and must not block for long. */
#ifndef KEEL_HTTP_SERVER_H
#define KEEL_HTTP_SERVER_H

#include "http/router.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_server;

struct http_server_config {
    const char *listen;  /* "host:port"; port 0 picks a free one (see http_server_port) */
    long threads;        /* worker threads */
    long max_body_bytes; /* larger bodies get 413 */
    /* Comma-separated bearer tokens; NULL = no authentication. When set, every route needs
     * one except /healthz, /readyz, /, /ui and /ui/..., /v1/tasks/{token}/... (the task token
     * is the credential) and, when metrics_public, /metrics. */
    const char *api_tokens;
    bool metrics_public;
    long max_connections;        /* open connections at once; 0 = 1024 */
    long max_connections_per_ip; /* from one client address; 0 = no limit */
    long request_timeout_s;      /* silence before a connection is closed; 0 = 15 */
    const struct http_route *routes;
    size_t n_routes;
    void *app; /* handed to handlers through http_app() */
};

/* Starts listening. Returns NULL and a message in *why (caller frees) on failure. */
struct http_server *http_server_start(const struct http_server_config *cfg, char **why);
/* The port actually bound. */
uint16_t http_server_port(const struct http_server *s);
/* From now on, new requests (also on open keep-alive connections) get 503 at once; requests
 * already started go on. http_server_stop does this too. */
void http_server_close(struct http_server *s);
/* Stops accepting connections, waits up to grace_ms for requests in flight to finish, then
 * stops the server and frees it. Returns the number of requests cut off by the deadline. */
int http_server_stop(struct http_server *s, long grace_ms);
/* Requests being handled now (including suspended ones). */
long http_server_in_flight(const struct http_server *s);

/* ---- request accessors (valid while the handler runs, or until a suspended request is
 * resumed) ---- */
const char *http_method(const struct http_request *req);
const char *http_path(const struct http_request *req);
/* A {param} of the matched route, percent-decoded; NULL if the route has none by that name. */
const char *http_param(const struct http_request *req, const char *name);
/* A query-string argument, decoded; NULL when absent. */
const char *http_query(const struct http_request *req, const char *name);
/* Calls fn(user, value) for each query-string argument called name, in request order (a
 * repeated argument such as ?tag=a:1&tag=b:2 once per occurrence; value NULL for "?tag"), until
 * fn returns false. */
void http_query_each(const struct http_request *req, const char *name,
                     bool (*fn)(void *user, const char *value), void *user);
/* The name of the first query-string argument (in request order) that is not in allowed, a
 * NULL-terminated list of names (case-sensitive); NULL when every argument is allowed. The
 * string is owned by the request. Handlers use it to answer 400 for a misspelt parameter. */
const char *http_query_unknown(const struct http_request *req, const char *const *allowed);
/* A request header (case-insensitive name); NULL when absent. */
const char *http_header(const struct http_request *req, const char *name);
/* The raw request body (NUL-terminated) and its length. */
const char *http_body(const struct http_request *req, size_t *len);
void *http_app(const struct http_request *req);

/* Parses the body as JSON. When the Content-Type is not JSON it replies 415; when the body is
 * malformed it replies 400 with the line, column and byte of the error; both return NULL and
 * the handler should just return. An empty body gives NULL with no reply when allow_empty is
 * true, and a 400 otherwise (check http_replied). Returns a new reference; caller decrefs. */
json_t *http_body_json(struct http_request *req, bool allow_empty);
/* True once a reply has been set. */
bool http_replied(const struct http_request *req);

/* ---- replies: each sets the response; the last one set wins ---- */
/* Replies with body as application/json. Steals the reference to body. */
void http_reply_json(struct http_request *req, int status, json_t *body);
/* Replies with an RFC 9457 problem: type "urn:keel:problem:<slug>", the title, status and
 * detail (printf-style, may be NULL). */
void http_reply_problem(struct http_request *req, int status, const char *slug, const char *title,
                        const char *detail_fmt, ...) __attribute__((format(printf, 5, 6)));
/* As http_reply_problem with an "errors" array [{pointer, message}] (stolen, may be NULL) and
 * any extra members of extra (stolen, may be NULL). */
void http_reply_problem_ext(struct http_request *req, int status, const char *slug,
                            const char *title, const char *detail, json_t *errors, json_t *extra);
/* Replies with bytes of the given content type. The data is copied. */
void http_reply_bytes(struct http_request *req, int status, const char *content_type,
                      const void *data, size_t len);
/* Adds a response header (copied). Call after the reply is set or before; both work. */
void http_add_header(struct http_request *req, const char *name, const char *value);

/* ---- long polls ----
 * A handler that cannot answer yet calls http_suspend and returns; the connection then holds
 * no thread. Later any thread sets a reply and calls http_resume exactly once. A reply set
 * before the handler has returned is still delivered. */
void http_suspend(struct http_request *req);
void http_resume(struct http_request *req);

#endif
