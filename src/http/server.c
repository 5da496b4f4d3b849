/* libmicrohttpd glue: one struct http_request per request, from the first call of the access
 * handler to the completion callback. */
#include "http/server.h"

#include "log.h"
#include "metrics.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/jsontext.h"
#include "util/timeutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROBLEM_TYPE_PREFIX "urn:keel:problem:"

/* An oversized body sent without "Expect: 100-continue" is read and thrown away, up to this
 * much and this long, before the 413 is sent: a client still writing when the server closes
 * gets a reset and never reads the answer (nginx's lingering close does the same). */
#define DRAIN_MAX_BYTES (8L * 1024 * 1024)
#define DRAIN_MAX_MS    5000

/* Each distinct libmicrohttpd message is logged at most once per this many milliseconds; the
 * next line says how many were suppressed (a probe with thousands of connections must not
 * write thousands of lines). */
#define MHD_LOG_INTERVAL_MS 10000
#define MHD_LOG_KINDS       16

struct http_server {
    struct MHD_Daemon *daemon;
    int listen_fd;
    uint16_t port;
    long max_body_bytes;
    char **tokens; /* NULL-terminated, or NULL when authentication is off */
    const struct http_route *routes;
    size_t n_routes;
    void *app;
    atomic_long in_flight;
    atomic_bool closing; /* stopping: new requests on open connections are refused */
    bool metrics_public;

    pthread_mutex_t log_lock; /* guards the rate limit of libmicrohttpd's messages */
    struct {
        const char *fmt; /* MHD's format string: a constant, so its address names the message */
        int64_t last_ms;
        long suppressed;
    } log_kinds[MHD_LOG_KINDS];
};

struct resp_header {
    char *name;
    char *value;
    struct resp_header *next;
};

enum suspend_state {
    SUSPEND_NONE,      /* an ordinary request */
    SUSPEND_REQUESTED, /* the handler asked to suspend and has not returned yet */
    SUSPEND_ACTIVE,    /* MHD_suspend_connection was called; waiting for http_resume */
    SUSPEND_RESUMED,   /* http_resume was called; the reply is ready to queue */
};

struct http_request {
    struct http_server *server;
    struct MHD_Connection *conn;
    const char *method; /* owned by MHD, valid for the request */
    char *path;         /* the path as sent, not decoded (owned); the router decodes params */
    struct router_match match;
    struct buf body;
    bool started;        /* the access handler has seen the request */
    bool body_too_large; /* the body is over the cap: its bytes are thrown away */
    long drained;        /* bytes thrown away */
    bool dispatched;
    int64_t start_ms;

    pthread_mutex_t lock; /* guards the reply and suspend state across threads */
    enum suspend_state suspend;
    bool have_reply;
    bool reply_queued;
    int status;
    char *reply_body;
    size_t reply_len;
    char *reply_type;
    struct resp_header *headers;
};

/* A copy of s for the log: bytes outside printable ASCII (control bytes, and any byte of a
 * non-ASCII or invalid UTF-8 sequence) become \xHH, so a request can never put raw bytes in
 * the log. Caller frees. */
static char *printable(const char *s)
{
    struct buf b = BUF_INIT;
    s = s ? s : "";
    /* A task token in the path is a credential: it never reaches the log. */
    static const char tasks[] = "/v1/tasks/";
    if (!strncmp(s, tasks, sizeof tasks - 1)) {
        buf_puts(&b, tasks);
        buf_puts(&b, "{token}");
        s += sizeof tasks - 1;
        s += strcspn(s, "/");
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p >= 0x7F || *p == '\\')
            buf_printf(&b, "\\x%02x", *p);
        else
            buf_putc(&b, (char)*p);
    }
    if (!b.data)
        buf_puts(&b, "");
    return buf_steal(&b);
}

/* ---- replies --------------------------------------------------------------------------- */

static void set_reply(struct http_request *req, int status, const char *type, char *body,
                      size_t len)
{
    pthread_mutex_lock(&req->lock);
    free(req->reply_body);
    free(req->reply_type);
    req->status = status;
    req->reply_type = xstrdup(type);
    req->reply_body = body;
    req->reply_len = len;
    req->have_reply = true;
    pthread_mutex_unlock(&req->lock);
}

void http_reply_bytes(struct http_request *req, int status, const char *content_type,
                      const void *data, size_t len)
{
    char *copy = xmalloc(len + 1);
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    set_reply(req, status, content_type, copy, len);
}

static void reply_json_typed(struct http_request *req, int status, const char *type, json_t *body)
{
    char *text = json_text(body);
    json_decref(body);
    if (!text) {
        char *path = printable(req->path);
        log_error("cannot encode a JSON reply", "path", path);
        free(path);
        text = xstrdup("{\"type\":\"" PROBLEM_TYPE_PREFIX "internal\",\"title\":\"Internal "
                       "error\",\"status\":500}");
        status = 500;
        type = "application/problem+json";
    }
    set_reply(req, status, type, text, strlen(text));
}

void http_reply_json(struct http_request *req, int status, json_t *body)
{
    reply_json_typed(req, status, "application/json", body);
}

void http_reply_problem_ext(struct http_request *req, int status, const char *slug,
                            const char *title, const char *detail, json_t *errors, json_t *extra)
{
    char type[128];
    snprintf(type, sizeof type, PROBLEM_TYPE_PREFIX "%s", slug);
    json_t *p = json_object();
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "title", json_string(title));
    json_object_set_new(p, "status", json_integer(status));
    if (detail)
        json_object_set_new(p, "detail", json_string(detail));
    if (errors)
        json_object_set_new(p, "errors", errors);
    if (extra) {
        json_object_update_missing(p, extra);
        json_decref(extra);
    }
    reply_json_typed(req, status, "application/problem+json", p);
}

void http_reply_problem(struct http_request *req, int status, const char *slug, const char *title,
                        const char *detail_fmt, ...)
{
    char *detail = NULL;
    if (detail_fmt) {
        va_list ap;
        va_start(ap, detail_fmt);
        struct buf b = BUF_INIT;
        buf_vprintf(&b, detail_fmt, ap);
        va_end(ap);
        detail = buf_steal(&b);
    }
    http_reply_problem_ext(req, status, slug, title, detail, NULL, NULL);
    free(detail);
}

void http_add_header(struct http_request *req, const char *name, const char *value)
{
    struct resp_header *h = xmalloc(sizeof *h);
    h->name = xstrdup(name);
    h->value = xstrdup(value);
    pthread_mutex_lock(&req->lock);
    h->next = req->headers;
    req->headers = h;
    pthread_mutex_unlock(&req->lock);
}

bool http_replied(const struct http_request *req)
{
    /* Another thread (a long poll's) may be setting the reply meanwhile. */
    struct http_request *r = (struct http_request *)req;
    pthread_mutex_lock(&r->lock);
    bool replied = r->have_reply;
    pthread_mutex_unlock(&r->lock);
    return replied;
}

/* ---- accessors ------------------------------------------------------------------------- */

const char *http_method(const struct http_request *req)
{
    return req->method;
}

const char *http_path(const struct http_request *req)
{
    return req->path;
}

const char *http_param(const struct http_request *req, const char *name)
{
    return router_param(&req->match, name);
}

const char *http_query(const struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_each {
    const char *name;
    bool (*fn)(void *user, const char *value);
    void *user;
};

static enum MHD_Result each_named_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    struct query_each *each = cls;
    if (strcmp(key, each->name) != 0)
        return MHD_YES;
    return each->fn(each->user, value) ? MHD_YES : MHD_NO;
}

void http_query_each(const struct http_request *req, const char *name,
                     bool (*fn)(void *user, const char *value), void *user)
{
    struct query_each each = {.name = name, .fn = fn, .user = user};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, each_named_arg, &each);
}

struct query_scan {
    const char *const *allowed;
    const char *unknown;
};

static enum MHD_Result find_unknown_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                        const char *value)
{
    (void)kind;
    (void)value;
    struct query_scan *scan = cls;
    for (const char *const *a = scan->allowed; a && *a; a++) {
        if (!strcmp(*a, key))
            return MHD_YES;
    }
    scan->unknown = key;
    return MHD_NO;
}

const char *http_query_unknown(const struct http_request *req, const char *const *allowed)
{
    struct query_scan scan = {.allowed = allowed, .unknown = NULL};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, find_unknown_arg, &scan);
    return scan.unknown;
}

const char *http_header(const struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_body(const struct http_request *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

void *http_app(const struct http_request *req)
{
    return req->server->app;
}

static bool is_json_content_type(const char *ct)
{
    if (!ct)
        return false;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == 16 && !strncasecmp(ct, "application/json", 16))
        return true;
    /* application/<anything>+json, e.g. application/problem+json */
    return n > 17 && !strncasecmp(ct, "application/", 12) && !strncasecmp(ct + n - 5, "+json", 5);
}

json_t *http_body_json(struct http_request *req, bool allow_empty)
{
    if (req->body.len == 0) {
        if (!allow_empty)
            http_reply_problem(req, 400, "empty-body", "Request body is required",
                               "this endpoint needs a JSON body");
        return NULL;
    }
    const char *ct = http_header(req, "Content-Type");
    if (!is_json_content_type(ct)) {
        http_reply_problem(req, 415, "unsupported-media-type", "Unsupported media type",
                           "the body must be JSON with Content-Type: application/json (got %s)",
                           ct ? ct : "no Content-Type");
        return NULL;
    }
    json_error_t err;
    json_t *doc =
        json_loadb(req->body.data, req->body.len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (!doc && json_error_code(&err) == json_error_null_character) {
        /* Strings become C strings (ids are cut at a NUL) and PostgreSQL's jsonb refuses
         * \u0000, so a NUL anywhere is refused here, where the position is still known. */
        json_t *extra = json_pack("{s:i, s:i, s:i}", "line", err.line, "column", err.column,
                                  "position", err.position);
        char *detail = xasprintf("\\u0000 is not allowed in strings (line %d, column %d, byte %d)",
                                 err.line, err.column, err.position);
        http_reply_problem_ext(req, 400, "malformed-json", "Malformed JSON", detail, NULL, extra);
        free(detail);
        return NULL;
    }
    if (!doc) {
        json_t *extra = json_pack("{s:i, s:i, s:i}", "line", err.line, "column", err.column,
                                  "position", err.position);
        char *detail = xasprintf("malformed JSON at line %d, column %d (byte %d): %s", err.line,
                                 err.column, err.position, err.text);
        http_reply_problem_ext(req, 400, "malformed-json", "Malformed JSON", detail, NULL, extra);
        free(detail);
        return NULL;
    }
    return doc;
}

/* ---- suspend / resume ------------------------------------------------------------------ */

void http_suspend(struct http_request *req)
{
    pthread_mutex_lock(&req->lock);
    if (req->suspend == SUSPEND_NONE)
        req->suspend = SUSPEND_REQUESTED;
    pthread_mutex_unlock(&req->lock);
}

void http_resume(struct http_request *req)
{
    pthread_mutex_lock(&req->lock);
    enum suspend_state was = req->suspend;
    struct MHD_Connection *conn = req->conn;
    req->suspend = SUSPEND_RESUMED;
    pthread_mutex_unlock(&req->lock);
    /* From here on req may be freed at any moment: when the handler has not returned yet, the
     * access handler sees RESUMED as soon as the lock is released and queues the reply itself,
     * and once MHD_resume_connection runs, a server thread may queue the reply, complete the
     * request and free req (mutex included) before this call even returns. So the decision is
     * taken under the lock, and neither req nor its lock is touched after the unlock; only a
     * connection that MHD really suspended needs resuming, and it stays valid until then. */
    if (was == SUSPEND_ACTIVE)
        MHD_resume_connection(conn);
}

/* ---- the access handler ---------------------------------------------------------------- */

static enum MHD_Result queue_reply(struct http_request *req)
{
    if (!req->have_reply) {
        char *path = printable(req->path);
        log_error("handler set no reply", "method", req->method, "path", path);
        free(path);
        http_reply_problem(req, 500, "internal", "Internal error", NULL);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(req->reply_len, req->reply_body, MHD_RESPMEM_MUST_FREE);
    req->reply_body = NULL; /* MHD frees it now */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->reply_type);
    bool has_cache_control = false;
    for (struct resp_header *h = req->headers; h; h = h->next) {
        MHD_add_response_header(resp, h->name, h->value);
        if (!strcasecmp(h->name, "Cache-Control"))
            has_cache_control = true;
    }
    if (!has_cache_control)
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result r = MHD_queue_response(req->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    req->reply_queued = true;
    return r;
}

/* Routes anyone may call when tokens are set: health checks, the UI's files, and the task
 * routes, whose {token} is itself the credential (their handlers verify it). Decided on the
 * matched route's pattern, not on a path prefix, so no spelling of a path can reach another
 * route through it; a path no route matches needs a token like any other. */
static bool route_is_public(const struct http_server *s, const struct http_route *route)
{
    if (!route)
        return false;
    const char *p = route->pattern;
    if (!strcmp(p, "/healthz") || !strcmp(p, "/readyz") || !strcmp(p, "/") || !strcmp(p, "/ui") ||
        !strncmp(p, "/ui/", 4) || !strncmp(p, "/v1/tasks/{", 11))
        return true;
    return s->metrics_public && !strcmp(p, "/metrics");
}

static bool authorized(struct http_request *req, const struct http_route *route)
{
    struct http_server *s = req->server;
    if (!s->tokens || route_is_public(s, route))
        return true;
    const char *auth = http_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    const char *given = auth + 7;
    size_t given_len = strlen(given);
    bool ok = false;
    for (char **t = s->tokens; *t; t++) {
        size_t len = strlen(*t);
        /* Compare every byte whatever the outcome, so timing does not reveal a prefix. */
        unsigned diff = (unsigned)(len ^ given_len);
        for (size_t i = 0; i < len; i++)
            diff |= (unsigned)((*t)[i] ^ (i < given_len ? given[i] : 0));
        ok |= diff == 0;
    }
    return ok;
}

/* The first query argument or header that is not clean text, as a 400 reply; false when all
 * are fine. Query values arrive decoded by libmicrohttpd: a %00 shows as a value longer than
 * its C string, and invalid UTF-8 or control bytes would reach handlers, the database (which
 * refuses them) and the log. Header values may hold a tab, nothing else below 0x20. */
struct value_scan {
    struct http_request *req;
    bool bad;
};

static enum MHD_Result check_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct value_scan *scan = cls;
    bool query = kind == MHD_GET_ARGUMENT_KIND;
    size_t at = 0;
    const char *why = router_check_text(key, key_size, false, &at);
    if (why) {
        http_reply_problem(scan->req, 400, query ? "bad-query" : "bad-header",
                           query ? "Malformed query string" : "Malformed header",
                           "a %s name is not clean text: %s (at byte %zu of the name)",
                           query ? "query parameter" : "header", why, at);
        scan->bad = true;
        return MHD_NO;
    }
    why = value ? router_check_text(value, value_size, !query, &at) : NULL;
    if (why) {
        if (query)
            http_reply_problem(scan->req, 400, "bad-query", "Malformed query string",
                               "query parameter \"%s\": %s (at byte %zu of the decoded value)", key,
                               why, at);
        else
            http_reply_problem(scan->req, 400, "bad-header", "Malformed header",
                               "header %s: %s (at byte %zu of the value)", key, why, at);
        scan->bad = true;
        return MHD_NO;
    }
    return MHD_YES;
}

static void dispatch(struct http_request *req)
{
    struct http_server *s = req->server;
    enum router_result found =
        router_find(s->routes, s->n_routes, req->method, req->path, &req->match);
    if (found == ROUTER_BAD_PATH) {
        http_reply_problem(req, 400, "bad-path", "Malformed path",
                           "the path is refused: %s (at byte %zu)", req->match.bad_reason,
                           req->match.bad_at);
        return;
    }
    struct value_scan scan = {.req = req, .bad = false};
    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, check_value, &scan);
    if (!scan.bad)
        MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, check_value, &scan);
    if (scan.bad)
        return;
    if (!authorized(req, found == ROUTER_FOUND ? req->match.route : NULL)) {
        http_add_header(req, "WWW-Authenticate", "Bearer realm=\"keel\"");
        http_reply_problem(req, 401, "unauthorized", "Unauthorized",
                           "send a valid token as Authorization: Bearer <token>");
        return;
    }
    switch (found) {
    case ROUTER_FOUND:
        req->match.route->handler(req);
        return;
    case ROUTER_WRONG_METHOD:
        http_add_header(req, "Allow", req->match.allow);
        http_reply_problem(req, 405, "method-not-allowed", "Method not allowed",
                           "%s is not allowed on %s; allowed: %s", req->method, req->path,
                           req->match.allow);
        return;
    case ROUTER_NOT_FOUND:
        http_reply_problem(req, 404, "not-found", "Not found", "no route for %s %s", req->method,
                           req->path);
        return;
    case ROUTER_BAD_PATH:
        return; /* answered above */
    }
}

static struct http_request *request_new(struct http_server *s, struct MHD_Connection *conn,
                                        const char *uri)
{
    struct http_request *req = xcalloc(1, sizeof *req);
    req->server = s;
    req->conn = conn;
    req->path = xstrndup(uri, strcspn(uri, "?"));
    req->start_ms = time_mono_ms();
    pthread_mutex_init(&req->lock, NULL);
    return req;
}

/* Called by libmicrohttpd with the request target exactly as sent, before it decodes it: the
 * request starts here so that the router sees the raw path and decodes it once (MHD's own
 * decoding would turn "%252F" into "/" after the router's, and cut the path at a "%00"). MHD
 * then calls on_completed for it in every case. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    return request_new(cls, conn, uri ? uri : "");
}

static void reply_too_large(struct http_request *req)
{
    http_reply_problem(req, 413, "payload-too-large", "Payload too large",
                       "the body is larger than the limit of %ld bytes",
                       req->server->max_body_bytes);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct http_server *s = cls;
    struct http_request *req = *con_cls;
    if (!req) /* not seen by on_uri: cannot happen with MHD as configured, but be safe */
        *con_cls = req = request_new(s, conn, url);
    if (!req->started) {
        req->started = true;
        req->method = method;
        atomic_fetch_add(&s->in_flight, 1);
        if (atomic_load(&s->closing)) {
            /* A keep-alive connection may still send requests while we drain; none of them
             * may start work (or suspend: MHD must not stop with suspended connections). */
            http_add_header(req, "Connection", "close");
            http_add_header(req, "Retry-After", "1");
            http_reply_problem(req, 503, "shutting-down", "Shutting down",
                               "this keeld is stopping; retry, another instance may answer");
            return queue_reply(req);
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
        if (declared > (unsigned long long)s->max_body_bytes) {
            reply_too_large(req);
            req->body_too_large = true;
            /* A client that waits for "100 Continue" is answered now and sends nothing; any
             * other is already sending, so the body is drained first (when it is not huge) so
             * that the client reads the 413 instead of a reset. */
            const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
            if ((expect && !strcasecmp(expect, "100-continue")) ||
                declared > (unsigned long long)(s->max_body_bytes + DRAIN_MAX_BYTES)) {
                http_add_header(req, "Connection", "close");
                return queue_reply(req);
            }
        }
        return MHD_YES;
    }
    if (req->reply_queued) {
        *upload_data_size = 0;
        return MHD_YES; /* an early reply: MHD discards the rest of the upload */
    }
    if (*upload_data_size > 0) {
        if (!req->body_too_large && req->body.len + *upload_data_size > (size_t)s->max_body_bytes) {
            req->body_too_large = true; /* a chunked body (no Content-Length) over the cap */
            buf_free(&req->body);
            reply_too_large(req);
        }
        if (req->body_too_large) {
            req->drained += (long)*upload_data_size;
            *upload_data_size = 0;
            if (req->drained > DRAIN_MAX_BYTES || time_mono_ms() - req->start_ms > DRAIN_MAX_MS) {
                http_add_header(req, "Connection", "close");
                return queue_reply(req); /* enough: answer and close */
            }
            return MHD_YES;
        }
        buf_append(&req->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!req->dispatched) {
        req->dispatched = true;
        if (req->body_too_large)
            return queue_reply(req); /* the 413 is set; the whole body has been drained */
        dispatch(req);
        pthread_mutex_lock(&req->lock);
        if (req->suspend == SUSPEND_REQUESTED) {
            req->suspend = SUSPEND_ACTIVE;
            MHD_suspend_connection(conn);
            pthread_mutex_unlock(&req->lock);
            return MHD_YES;
        }
        pthread_mutex_unlock(&req->lock);
        return queue_reply(req);
    }
    /* Called again after http_resume. */
    return queue_reply(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    struct http_server *s = cls;
    struct http_request *req = *con_cls;
    if (!req)
        return;
    if (req->started) {
        metrics_http_request(req->status);
        if (log_enabled(LOG_DEBUG)) {
            char status[16], ms[32];
            snprintf(status, sizeof status, "%d", req->status);
            snprintf(ms, sizeof ms, "%lld", (long long)(time_mono_ms() - req->start_ms));
            char *path = printable(req->path);
            log_debug("request", "method", req->method, "path", path, "status", status,
                      "duration_ms", ms, "completed",
                      toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "true" : "false");
            free(path);
        }
    }
    router_match_free(&req->match);
    buf_free(&req->body);
    free(req->path);
    free(req->reply_body);
    free(req->reply_type);
    while (req->headers) {
        struct resp_header *h = req->headers;
        req->headers = h->next;
        free(h->name);
        free(h->value);
        free(h);
    }
    bool started = req->started;
    pthread_mutex_destroy(&req->lock);
    free(req);
    *con_cls = NULL;
    if (started)
        atomic_fetch_sub(&s->in_flight, 1);
}

/* libmicrohttpd's messages (connection limits hit, timeouts, resets) as warnings, each kind at
 * most once per MHD_LOG_INTERVAL_MS with a count of the ones suppressed meanwhile. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *s = cls;
    int64_t now = time_mono_ms();
    long suppressed = 0;
    pthread_mutex_lock(&s->log_lock);
    size_t k = 0;
    while (k < MHD_LOG_KINDS && s->log_kinds[k].fmt && s->log_kinds[k].fmt != fmt)
        k++;
    if (k == MHD_LOG_KINDS)
        k = MHD_LOG_KINDS - 1; /* more kinds than slots: the last slot is shared */
    bool emit = !s->log_kinds[k].fmt || now - s->log_kinds[k].last_ms >= MHD_LOG_INTERVAL_MS;
    if (emit) {
        suppressed = s->log_kinds[k].suppressed;
        s->log_kinds[k].fmt = fmt;
        s->log_kinds[k].last_ms = now;
        s->log_kinds[k].suppressed = 0;
    } else {
        s->log_kinds[k].suppressed++;
    }
    pthread_mutex_unlock(&s->log_lock);
    if (!emit)
        return;
    struct buf b = BUF_INIT;
    buf_vprintf(&b, fmt, ap);
    while (b.len && b.data[b.len - 1] == '\n')
        b.data[--b.len] = '\0';
    char *detail = printable(b.data);
    buf_free(&b);
    char count[32];
    snprintf(count, sizeof count, "%ld", suppressed);
    log_warn("http server", "detail", detail, "suppressed_since_last", count);
    free(detail);
}

/* ---- start and stop -------------------------------------------------------------------- */

/* Opens a listening socket for "host:port" or "[v6]:port". */
static int listen_on(const char *spec, uint16_t *port_out, char **why)
{
    char host[256];
    const char *addr = spec; /* stepped past a '[' below; messages show spec */
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr) {
        *why = xasprintf("listen address \"%s\" is not host:port (set KEEL_LISTEN or --listen, "
                         "e.g. 127.0.0.1:8080 or [::1]:8080)",
                         spec);
        return -1;
    }
    size_t hlen = (size_t)(colon - addr);
    if (addr[0] == '[' && hlen >= 2 && addr[hlen - 1] == ']') {
        addr++;
        hlen -= 2;
    }
    if (hlen >= sizeof host) {
        *why = xasprintf("listen address \"%s\": the host is too long", spec);
        return -1;
    }
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    const char *port = colon + 1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(hlen ? host : NULL, port, &hints, &res);
    if (gai != 0) {
        *why = xasprintf("cannot resolve listen address \"%s\": %s (set KEEL_LISTEN or --listen to "
                         "another address)",
                         spec, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    int saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        *why = xasprintf("cannot listen on %s: %s (set KEEL_LISTEN or --listen to another address)",
                         spec, strerror(saved));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static char **parse_tokens(const char *list)
{
    if (!list || !*list)
        return NULL;
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    char **tokens = xcalloc(n + 1, sizeof *tokens);
    size_t k = 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        size_t a = 0, b = len;
        while (a < b && (p[a] == ' ' || p[a] == '\t'))
            a++;
        while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
            b--;
        if (b > a)
            tokens[k++] = xstrndup(p + a, b - a);
        p += len;
        if (*p == ',')
            p++;
    }
    if (k == 0) {
        free(tokens);
        return NULL;
    }
    return tokens;
}

static void free_tokens(char **tokens)
{
    if (!tokens)
        return;
    for (char **t = tokens; *t; t++)
        free(*t);
    free(tokens);
}

struct http_server *http_server_start(const struct http_server_config *cfg, char **why)
{
    struct http_server *s = xcalloc(1, sizeof *s);
    s->max_body_bytes = cfg->max_body_bytes;
    s->routes = cfg->routes;
    s->n_routes = cfg->n_routes;
    s->app = cfg->app;
    s->tokens = parse_tokens(cfg->api_tokens);
    s->metrics_public = cfg->metrics_public;
    pthread_mutex_init(&s->log_lock, NULL);
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->closing, false);
    s->listen_fd = listen_on(cfg->listen, &s->port, why);
    if (s->listen_fd < 0)
        goto fail;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    /* The timeout is of silence: a request that stalls mid-way and an idle keep-alive
     * connection are closed after it; suspended long polls are not subject to it. The
     * per-address cap keeps one client from taking every connection. */
    unsigned timeout_s = cfg->request_timeout_s > 0 ? (unsigned)cfg->request_timeout_s : 15;
    unsigned max_conns = cfg->max_connections > 0 ? (unsigned)cfg->max_connections : 1024;
    unsigned per_ip = cfg->max_connections_per_ip > 0 ? (unsigned)cfg->max_connections_per_ip : 0;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_END);
    if (!s->daemon) {
        *why = xasprintf("cannot start the HTTP server on %s", cfg->listen);
        goto fail;
    }
    return s;
fail:
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free_tokens(s->tokens);
    pthread_mutex_destroy(&s->log_lock);
    free(s);
    return NULL;
}

uint16_t http_server_port(const struct http_server *s)
{
    return s->port;
}

long http_server_in_flight(const struct http_server *s)
{
    return atomic_load(&((struct http_server *)s)->in_flight);
}

void http_server_close(struct http_server *s)
{
    atomic_store(&s->closing, true);
}

int http_server_stop(struct http_server *s, long grace_ms)
{
    atomic_store(&s->closing, true);
    /* The listening socket is closed only after MHD has stopped: its threads may still be
     * taking it out of their epoll sets. */
    int fd = MHD_quiesce_daemon(s->daemon);
    int64_t deadline = time_mono_ms() + grace_ms;
    while (atomic_load(&s->in_flight) > 0 && time_mono_ms() < deadline)
        usleep(5000);
    long cut = atomic_load(&s->in_flight);
    if (cut > 0) {
        /* MHD aborts the process when stopped with a suspended connection: rather than that,
         * leave the remaining requests to die with the process. */
        log_error("requests still in flight after the grace period; exiting without closing "
                  "them");
        return (int)cut; /* s stays allocated: MHD's threads still point at it */
    }
    MHD_stop_daemon(s->daemon);
    if (fd >= 0)
        close(fd);
    free_tokens(s->tokens);
    pthread_mutex_destroy(&s->log_lock);
    free(s);
    return (int)cut;
}
