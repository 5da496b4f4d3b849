/* libmicrohttpd glue: one struct http_request per request, from the first call of the access
 * handler to the completion callback. */
#include "http/server.h"

#include "log.h"
#include "metrics.h"
#include "util/alloc.h"
#include "util/buf.h"
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
    const char *path;
    struct router_match match;
    struct buf body;
    bool body_too_large;
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
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (!text) {
        log_error("cannot encode a JSON reply", "path", req->path);
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
    return req->have_reply;
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
    json_t *doc = json_loadb(req->body.data, req->body.len,
                             JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
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
    req->suspend = SUSPEND_RESUMED;
    /* When the handler has not returned yet, the access handler sees RESUMED and queues the
     * reply itself; only a connection that MHD really suspended needs resuming. */
    if (was == SUSPEND_ACTIVE)
        MHD_resume_connection(req->conn);
    pthread_mutex_unlock(&req->lock);
}

/* ---- the access handler ---------------------------------------------------------------- */

static enum MHD_Result queue_reply(struct http_request *req)
{
    if (!req->have_reply) {
        log_error("handler set no reply", "method", req->method, "path", req->path);
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

static bool authorized(struct http_request *req)
{
    struct http_server *s = req->server;
    if (!s->tokens || strncmp(req->path, "/v1/", 4) != 0)
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

static void dispatch(struct http_request *req)
{
    if (!authorized(req)) {
        http_add_header(req, "WWW-Authenticate", "Bearer realm=\"keel\"");
        http_reply_problem(req, 401, "unauthorized", "Unauthorized",
                           "send a valid token as Authorization: Bearer <token>");
        return;
    }
    struct http_server *s = req->server;
    switch (router_find(s->routes, s->n_routes, req->method, req->path, &req->match)) {
    case ROUTER_FOUND:
        req->match.route->handler(req);
        return;
    case ROUTER_WRONG_METHOD:
        http_add_header(req, "Allow", req->match.allow);
        http_reply_problem(req, 405, "method-not-allowed", "Method not allowed",
                           "%s is not allowed on %s; allowed: %s", req->method, req->path,
                           req->match.allow);
        return;
    case ROUTER_BAD_PATH:
        http_reply_problem(req, 400, "bad-path", "Malformed path",
                           "the path has an invalid percent-encoding");
        return;
    case ROUTER_NOT_FOUND:
        http_reply_problem(req, 404, "not-found", "Not found", "no route for %s %s", req->method,
                           req->path);
        return;
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct http_server *s = cls;
    struct http_request *req = *con_cls;
    if (!req) {
        req = xcalloc(1, sizeof *req);
        req->server = s;
        req->conn = conn;
        req->method = method;
        req->path = url;
        req->start_ms = time_mono_ms();
        pthread_mutex_init(&req->lock, NULL);
        *con_cls = req;
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
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)s->max_body_bytes) {
            http_reply_problem(req, 413, "payload-too-large", "Payload too large",
                               "the body is larger than the limit of %ld bytes", s->max_body_bytes);
            return queue_reply(req);
        }
        return MHD_YES;
    }
    if (req->reply_queued)
        return MHD_YES; /* an early 413: MHD discards the rest of the upload */
    if (*upload_data_size > 0) {
        if (!req->body_too_large) {
            if (req->body.len + *upload_data_size > (size_t)s->max_body_bytes) {
                req->body_too_large = true;
                buf_free(&req->body);
            } else {
                buf_append(&req->body, upload_data, *upload_data_size);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!req->dispatched) {
        req->dispatched = true;
        if (req->body_too_large)
            http_reply_problem(req, 413, "payload-too-large", "Payload too large",
                               "the body is larger than the limit of %ld bytes", s->max_body_bytes);
        else
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
    metrics_http_request(req->status);
    if (log_enabled(LOG_DEBUG)) {
        char status[16], ms[32];
        snprintf(status, sizeof status, "%d", req->status);
        snprintf(ms, sizeof ms, "%lld", (long long)(time_mono_ms() - req->start_ms));
        log_debug("request", "method", req->method, "path", req->path, "status", status,
                  "duration_ms", ms, "completed",
                  toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "true" : "false");
    }
    router_match_free(&req->match);
    buf_free(&req->body);
    free(req->reply_body);
    free(req->reply_type);
    while (req->headers) {
        struct resp_header *h = req->headers;
        req->headers = h->next;
        free(h->name);
        free(h->value);
        free(h);
    }
    pthread_mutex_destroy(&req->lock);
    free(req);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    struct buf b = BUF_INIT;
    buf_vprintf(&b, fmt, ap);
    while (b.len && b.data[b.len - 1] == '\n')
        b.data[--b.len] = '\0';
    log_warn("http server", "detail", b.data);
    buf_free(&b);
}

/* ---- start and stop -------------------------------------------------------------------- */

/* Opens a listening socket for "host:port" or "[v6]:port". */
static int listen_on(const char *addr, uint16_t *port_out, char **why)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr) {
        *why = xasprintf("addr address \"%s\" is not host:port", addr);
        return -1;
    }
    size_t hlen = (size_t)(colon - addr);
    if (addr[0] == '[' && hlen >= 2 && addr[hlen - 1] == ']') {
        addr++;
        hlen -= 2;
    }
    if (hlen >= sizeof host) {
        *why = xasprintf("addr host is too long");
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
        *why = xasprintf("cannot resolve addr address \"%s\": %s", addr, gai_strerror(gai));
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
        *why = xasprintf("cannot addr on %s: %s", addr, strerror(saved));
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
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->closing, false);
    s->listen_fd = listen_on(cfg->listen, &s->port, why);
    if (s->listen_fd < 0)
        goto fail;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, s->listen_fd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096, MHD_OPTION_END);
    if (!s->daemon) {
        *why = xasprintf("cannot start the HTTP server on %s", cfg->listen);
        goto fail;
    }
    return s;
fail:
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free_tokens(s->tokens);
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
    free(s);
    return (int)cut;
}
