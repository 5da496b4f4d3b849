/* The webhook dispatcher thread: a libcurl multi loop with per-host queues. */
#include "webhook/dispatcher.h"

#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/timeutil.h"
#include "webhook/destination.h"

#define HOST_BUCKETS 256
/* How long the loop sleeps when nothing is due; submissions and sockets wake it earlier. */
#define IDLE_POLL_MS 1000
/* A pooled transfer keeps its response buffer only when it is no bigger than this. */
#define KEEP_BUFFER_BYTES (64 * 1024)

/* ---- queues ------------------------------------------------------------------------------ */

/* A FIFO of requests in a ring buffer. */
struct reqq {
    struct wh_request **v;
    size_t head, len, cap;
};

static void reqq_push(struct reqq *q, struct wh_request *r)
{
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8;
        struct wh_request **v = xmalloc(cap * sizeof(*v));
        for (size_t i = 0; i < q->len; i++)
            v[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = v;
        q->head = 0;
        q->cap = cap;
    }
    q->v[(q->head + q->len) % q->cap] = r;
    q->len++;
}

static struct wh_request *reqq_pop(struct reqq *q)
{
    if (q->len == 0)
        return NULL;
    struct wh_request *r = q->v[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    return r;
}

/* A destination (scheme://authority of the URL as written). */
struct host {
    struct host *hash_next;
    struct host *ready_next; /* in the ready list: has queued requests and a free slot */
    bool in_ready;
    int in_flight;
    struct reqq pending;
    uint64_t hash;
    size_t key_len;
    char key[];
};

/* One request on the wire, with its pooled easy handle. */
struct transfer {
    struct transfer *prev, *next; /* the active list, or next in the free list */
    CURL *easy;
    struct curl_slist *headers;
    struct wh_request *req;
    struct host *host;
    struct buf body;
    bool truncated;
    bool added;                   /* the easy handle is in the multi handle */
    struct wh_dest_target target; /* what the URL check found, for the address check */
    char *refused;                /* why a connection was refused (destination policy) */
    int64_t sent_mono;
    char errbuf[CURL_ERROR_SIZE];
};

struct wh_dispatcher {
    /* Configuration, read-only after start. */
    int max_in_flight;
    int max_per_host;
    char *user_agent;
    long connect_timeout_ms;

    CURLM *multi;
    pthread_t thread;

    /* Shared with submitters, under mu. */
    pthread_mutex_t mu;
    struct wh_request **incoming;
    size_t incoming_len, incoming_cap;
    bool stopping;
    int64_t grace_ms;
    bool closed; /* the thread has finished: submissions complete on the caller's thread */

    /* Dispatcher thread only. */
    struct wh_request **spare; /* swapped with incoming to drain it without holding mu */
    size_t spare_cap;
    struct host *buckets[HOST_BUCKETS];
    struct host *ready_head, *ready_tail;
    struct transfer *active; /* doubly linked list of transfers on the wire */
    struct transfer *free_list;
    int in_flight;
    int queued;
    struct buf scratch;

    /* Counters for wh_dispatcher_get_stats. */
    atomic_uint_fast64_t stat_submitted;
    atomic_uint_fast64_t stat_completed;
    atomic_int stat_in_flight;
    atomic_int stat_queued;
};

/* ---- requests ---------------------------------------------------------------------------- */

struct wh_request *wh_request_new(const char *url, const char *idempotency_key, int attempt)
{
    struct wh_request *req = xcalloc(1, sizeof(*req));
    req->url = url ? xstrdup(url) : NULL;
    req->idempotency_key = idempotency_key ? xstrdup(idempotency_key) : NULL;
    req->attempt = attempt;
    return req;
}

void wh_request_free(struct wh_request *req)
{
    if (!req)
        return;
    free(req->url);
    free(req->body);
    free(req->idempotency_key);
    free(req->traceparent);
    free(req);
}

/* Runs the callback with res, then frees both. */
static void complete_request(struct wh_dispatcher *d, struct wh_request *req, struct wh_result *res)
{
    req->done(res, req->user);
    wh_result_clear(res);
    wh_request_free(req);
    if (d)
        atomic_fetch_add(&d->stat_completed, 1);
}

static void complete_aborted(struct wh_dispatcher *d, struct wh_request *req, const char *message)
{
    struct wh_result res;
    memset(&res, 0, sizeof(res));
    res.retry_after_ms = -1;
    wh_result_set_error(&res, WH_ABORTED, "aborted", message, true);
    complete_request(d, req, &res);
}

/* ---- hosts ------------------------------------------------------------------------------- */

/* The scheme and authority of a URL, which is what connections are shared by. */
static size_t host_key_len(const char *url)
{
    const char *sep = strstr(url, "://");
    if (!sep)
        return strlen(url);
    const char *auth = sep + 3;
    return (size_t)(auth - url) + strcspn(auth, "/?#");
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static struct host *host_get(struct wh_dispatcher *d, const char *url)
{
    size_t n = host_key_len(url);
    uint64_t h = fnv1a(url, n);
    struct host **slot = &d->buckets[h % HOST_BUCKETS];
    for (struct host *it = *slot; it; it = it->hash_next)
        if (it->hash == h && it->key_len == n && memcmp(it->key, url, n) == 0)
            return it;
    struct host *host = xcalloc(1, sizeof(*host) + n + 1);
    memcpy(host->key, url, n);
    host->key_len = n;
    host->hash = h;
    host->hash_next = *slot;
    *slot = host;
    return host;
}

/* Puts host at the end of the ready list when it has work and a free slot. */
static void host_maybe_ready(struct wh_dispatcher *d, struct host *h)
{
    if (h->in_ready || h->pending.len == 0 || h->in_flight >= d->max_per_host)
        return;
    h->in_ready = true;
    h->ready_next = NULL;
    if (d->ready_tail)
        d->ready_tail->ready_next = h;
    else
        d->ready_head = h;
    d->ready_tail = h;
}

static struct host *ready_pop(struct wh_dispatcher *d)
{
    struct host *h = d->ready_head;
    if (!h)
        return NULL;
    d->ready_head = h->ready_next;
    if (!d->ready_head)
        d->ready_tail = NULL;
    h->ready_next = NULL;
    h->in_ready = false;
    return h;
}

/* ---- transfers --------------------------------------------------------------------------- */

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *tr = userdata;
    size_t n = size * nmemb;
    if (tr->body.len + n > WH_MAX_RESPONSE_BYTES) {
        tr->truncated = true;
        return 0; /* ends the transfer with CURLE_WRITE_ERROR */
    }
    buf_append(&tr->body, ptr, n);
    return n;
}

/* Every connection curl opens goes through here, after name resolution: the address it is
 * about to connect to is checked against the destination policy (DNS rebinding, names that
 * resolve to metadata addresses). A refused one is not opened. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct transfer *tr = clientp;
    (void)purpose;
    char *why = NULL;
    if (wh_dest_check_addr(wh_dest_global(), &addr->addr, &tr->target, &why) != WH_DEST_OK) {
        free(tr->refused);
        tr->refused = why;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

/* A pooled transfer, its easy handle set up with the options every request shares. */
static struct transfer *transfer_get(struct wh_dispatcher *d)
{
    struct transfer *tr = d->free_list;
    if (tr) {
        d->free_list = tr->next;
        tr->next = NULL;
        return tr;
    }
    tr = xcalloc(1, sizeof(*tr));
    tr->easy = curl_easy_init();
    if (!tr->easy) {
        free(tr);
        return NULL;
    }
    CURL *e = tr->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, d->user_agent);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, tr);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, tr->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, tr);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, tr);
    if (d->connect_timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, d->connect_timeout_ms);
    return tr;
}

static void transfer_put(struct wh_dispatcher *d, struct transfer *tr)
{
    curl_slist_free_all(tr->headers);
    tr->headers = NULL;
    tr->req = NULL;
    tr->host = NULL;
    tr->truncated = false;
    tr->added = false;
    free(tr->refused);
    tr->refused = NULL;
    tr->errbuf[0] = '\0';
    if (tr->body.cap > KEEP_BUFFER_BYTES)
        buf_free(&tr->body);
    else
        buf_reset(&tr->body);
    tr->prev = NULL;
    tr->next = d->free_list;
    d->free_list = tr;
}

static void transfer_destroy(struct transfer *tr)
{
    free(tr->refused);
    curl_slist_free_all(tr->headers);
    curl_easy_cleanup(tr->easy);
    buf_free(&tr->body);
    free(tr);
}

static void active_unlink(struct wh_dispatcher *d, struct transfer *tr)
{
    if (tr->prev)
        tr->prev->next = tr->next;
    else
        d->active = tr->next;
    if (tr->next)
        tr->next->prev = tr->prev;
    tr->prev = tr->next = NULL;
}

/* Ends a transfer with res: frees its slot, runs the callback, recycles the transfer. */
static void transfer_finish(struct wh_dispatcher *d, struct transfer *tr, struct wh_result *res)
{
    if (tr->added)
        curl_multi_remove_handle(d->multi, tr->easy);
    active_unlink(d, tr);
    tr->host->in_flight--;
    d->in_flight--;
    atomic_store(&d->stat_in_flight, d->in_flight);
    host_maybe_ready(d, tr->host);
    struct wh_request *req = tr->req;
    transfer_put(d, tr);
    complete_request(d, req, res);
}

/* Header values come from execution and step ids, which the API validates; a line break in
 * one would still let a value forge headers, so it is refused here too. */
static bool header_value_ok(const char *s)
{
    return !s || strpbrk(s, "\r\n") == NULL;
}

static void add_header(struct wh_dispatcher *d, struct transfer *tr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_header(struct wh_dispatcher *d, struct transfer *tr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_reset(&d->scratch);
    buf_vprintf(&d->scratch, fmt, ap);
    va_end(ap);
    struct curl_slist *l = curl_slist_append(tr->headers, d->scratch.data);
    if (!l) {
        fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory\"}\n");
        abort();
    }
    tr->headers = l;
}

/* Puts req on the wire. Any failure completes it at once. */
static void transfer_start(struct wh_dispatcher *d, struct host *h, struct wh_request *req)
{
    struct wh_result res;
    memset(&res, 0, sizeof(res));
    res.retry_after_ms = -1;

    struct transfer *tr = transfer_get(d);
    if (!tr) {
        wh_result_set_error(&res, WH_FAILED, "connection_failed",
                            "could not create a libcurl handle", true);
        complete_request(d, req, &res);
        return;
    }
    tr->req = req;
    tr->host = h;
    tr->next = d->active;
    if (d->active)
        d->active->prev = tr;
    d->active = tr;
    h->in_flight++;
    d->in_flight++;
    atomic_store(&d->stat_in_flight, d->in_flight);

    if (!header_value_ok(req->idempotency_key) || !header_value_ok(req->traceparent) ||
        !header_value_ok(req->url)) {
        wh_result_set_error(&res, WH_FAILED, "invalid_request",
                            "the URL, idempotency key or traceparent contains a line break", false);
        transfer_finish(d, tr, &res);
        return;
    }

    /* The URL may come from an expression: it is checked here, on every attempt, against the
     * policy in force now. Either failure is for good: retrying cannot change the answer. */
    char *why = NULL;
    enum wh_dest_verdict verdict = wh_dest_check_url(wh_dest_global(), req->url, &tr->target, &why);
    if (verdict != WH_DEST_OK) {
        char *msg = verdict == WH_DEST_INVALID
                        ? xasprintf("activity URL \"%s\" %s", req->url, why)
                        : xasprintf("activity URL \"%s\" refused: %s", req->url, why);
        wh_result_set_error(&res, WH_FAILED,
                            verdict == WH_DEST_INVALID ? "invalid_url" : "destination_refused", msg,
                            false);
        free(msg);
        free(why);
        transfer_finish(d, tr, &res);
        return;
    }

    int64_t now_s = time_now_ms() / 1000;
    const char *body = req->body ? req->body : "";
    size_t body_len = req->body ? req->body_len : 0;
    add_header(d, tr, "Content-Type: application/json");
    add_header(d, tr, "Idempotency-Key: %s", req->idempotency_key);
    add_header(d, tr, "webhook-id: %s", req->idempotency_key);
    add_header(d, tr, "webhook-timestamp: %" PRId64, now_s);
    if (req->secrets) {
        char *sig = wh_sign(req->secrets, req->idempotency_key, now_s, body, body_len);
        if (!sig) {
            wh_result_set_error(&res, WH_FAILED, "signing_failed",
                                "could not compute the webhook signature", true);
            transfer_finish(d, tr, &res);
            return;
        }
        add_header(d, tr, "webhook-signature: %s", sig);
        free(sig);
    }
    add_header(d, tr, "Keel-Attempt: %d", req->attempt);
    if (req->traceparent)
        add_header(d, tr, "traceparent: %s", req->traceparent);
    /* No "Expect: 100-continue": it costs a round trip on bodies over 1 KiB. */
    add_header(d, tr, "Expect:");

    CURL *e = tr->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, tr->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     req->timeout_ms > 0 ? req->timeout_ms : (long)WH_DEFAULT_TIMEOUT_MS);
    tr->sent_mono = time_mono_ms();
    CURLMcode mc = curl_multi_add_handle(d->multi, e);
    if (mc != CURLM_OK) {
        wh_result_set_error(&res, WH_FAILED, "connection_failed", curl_multi_strerror(mc), true);
        transfer_finish(d, tr, &res);
        return;
    }
    tr->added = true;
}

/* Classifies a transfer curl has finished and completes it. */
static void transfer_done(struct wh_dispatcher *d, struct transfer *tr, CURLcode code)
{
    CURL *e = tr->easy;
    struct wh_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.curl_code = (int)code;
    resp.curl_detail = tr->errbuf;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp.http_status);
    curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &resp.os_errno);
    char *ct = NULL;
    if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK)
        resp.content_type = ct;
    struct curl_header *ra = NULL;
    if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &ra) == CURLHE_OK)
        resp.retry_after = ra->value;
    resp.body = tr->body.data;
    resp.body_len = tr->body.len;
    resp.body_truncated = tr->truncated;
    resp.now_ms = time_now_ms();

    struct wh_result res;
    wh_classify(&resp, &res);
    if (tr->refused && code == CURLE_COULDNT_CONNECT) {
        /* No address it resolved to was allowed. */
        wh_result_clear(&res);
        memset(&res, 0, sizeof(res));
        res.retry_after_ms = -1;
        char *msg =
            xasprintf("activity URL \"%s\" refused when connecting: %s", tr->req->url, tr->refused);
        wh_result_set_error(&res, WH_FAILED, "destination_refused", msg, false);
        free(msg);
    }
    res.duration_ms = time_mono_ms() - tr->sent_mono;
    transfer_finish(d, tr, &res);
}

/* ---- the loop ---------------------------------------------------------------------------- */

/* Moves submitted requests into their hosts' queues; aborts them once stopping. */
static bool intake(struct wh_dispatcher *d)
{
    pthread_mutex_lock(&d->mu);
    struct wh_request **batch = d->incoming;
    size_t n = d->incoming_len;
    size_t batch_cap = d->incoming_cap;
    d->incoming = d->spare;
    d->incoming_cap = d->spare_cap;
    d->incoming_len = 0;
    bool stopping = d->stopping;
    pthread_mutex_unlock(&d->mu);

    for (size_t i = 0; i < n; i++) {
        if (stopping) {
            complete_aborted(d, batch[i], "the dispatcher stopped before the request was sent");
            continue;
        }
        struct host *h = host_get(d, batch[i]->url);
        reqq_push(&h->pending, batch[i]);
        d->queued++;
        host_maybe_ready(d, h);
    }
    d->spare = batch;
    d->spare_cap = batch_cap;
    return stopping;
}

/* Starts queued requests while there are free slots, taking hosts in turn. */
static void pump(struct wh_dispatcher *d)
{
    while (d->in_flight < d->max_in_flight) {
        struct host *h = ready_pop(d);
        if (!h)
            break;
        struct wh_request *req = reqq_pop(&h->pending);
        d->queued--;
        transfer_start(d, h, req);
        host_maybe_ready(d, h);
    }
    atomic_store(&d->stat_queued, d->queued);
}

static void reap(struct wh_dispatcher *d)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(d->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURLcode code = msg->data.result;
        void *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        transfer_done(d, priv, code);
    }
}

static void abort_queued(struct wh_dispatcher *d)
{
    struct host *h;
    while ((h = ready_pop(d)))
        ;
    for (size_t b = 0; b < HOST_BUCKETS; b++) {
        for (h = d->buckets[b]; h; h = h->hash_next) {
            struct wh_request *req;
            while ((req = reqq_pop(&h->pending))) {
                d->queued--;
                complete_aborted(d, req, "the dispatcher stopped before the request was sent");
            }
        }
    }
    atomic_store(&d->stat_queued, d->queued);
}

static void abort_in_flight(struct wh_dispatcher *d)
{
    while (d->active) {
        struct wh_result res;
        memset(&res, 0, sizeof(res));
        res.retry_after_ms = -1;
        wh_result_set_error(&res, WH_ABORTED, "aborted",
                            "the dispatcher stopped before the receiver answered", true);
        res.duration_ms = time_mono_ms() - d->active->sent_mono;
        transfer_finish(d, d->active, &res);
    }
}

static void *dispatcher_main(void *arg)
{
    struct wh_dispatcher *d = arg;
    bool stopping = false;
    int64_t deadline = 0;

    for (;;) {
        if (intake(d) && !stopping) {
            stopping = true;
            deadline = time_mono_ms() + d->grace_ms;
            abort_queued(d);
        }
        pump(d);
        int running = 0;
        curl_multi_perform(d->multi, &running);
        reap(d);
        pump(d);
        if (stopping) {
            if (d->in_flight == 0)
                break;
            if (time_mono_ms() >= deadline) {
                abort_in_flight(d);
                break;
            }
        }
        int timeout = IDLE_POLL_MS;
        if (stopping) {
            int64_t left = deadline - time_mono_ms();
            timeout = left < 0 ? 0 : left < timeout ? (int)left : timeout;
        }
        curl_multi_poll(d->multi, NULL, 0, timeout, NULL);
    }

    /* From here on submitters complete their own requests, so nothing is left behind. */
    pthread_mutex_lock(&d->mu);
    d->closed = true;
    pthread_mutex_unlock(&d->mu);
    intake(d);
    return NULL;
}

/* ---- public ------------------------------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_code;

static void curl_init(void)
{
    curl_init_code = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void dispatcher_free(struct wh_dispatcher *d)
{
    struct transfer *tr;
    while ((tr = d->free_list)) {
        d->free_list = tr->next;
        transfer_destroy(tr);
    }
    for (size_t b = 0; b < HOST_BUCKETS; b++) {
        struct host *h = d->buckets[b];
        while (h) {
            struct host *next = h->hash_next;
            free(h->pending.v);
            free(h);
            h = next;
        }
    }
    if (d->multi)
        curl_multi_cleanup(d->multi);
    pthread_mutex_destroy(&d->mu);
    free(d->incoming);
    free(d->spare);
    buf_free(&d->scratch);
    free(d->user_agent);
    free(d);
}

struct wh_dispatcher *wh_dispatcher_start(const struct wh_dispatcher_config *config)
{
    struct wh_dispatcher_config defaults;
    memset(&defaults, 0, sizeof(defaults));
    if (!config)
        config = &defaults;

    pthread_once(&curl_once, curl_init);
    if (curl_init_code != CURLE_OK) {
        log_error("curl_global_init failed", "error", curl_easy_strerror(curl_init_code));
        return NULL;
    }

    struct wh_dispatcher *d = xcalloc(1, sizeof(*d));
    d->max_in_flight = config->max_in_flight > 0 ? config->max_in_flight : WH_DEFAULT_MAX_IN_FLIGHT;
    d->max_per_host = config->max_per_host > 0 ? config->max_per_host : WH_DEFAULT_MAX_PER_HOST;
    d->user_agent = xstrdup(config->user_agent ? config->user_agent : WH_DEFAULT_USER_AGENT);
    d->connect_timeout_ms = config->connect_timeout_ms;
    pthread_mutex_init(&d->mu, NULL);
    atomic_init(&d->stat_submitted, 0);
    atomic_init(&d->stat_completed, 0);
    atomic_init(&d->stat_in_flight, 0);
    atomic_init(&d->stat_queued, 0);

    d->multi = curl_multi_init();
    if (!d->multi) {
        log_error("curl_multi_init failed");
        dispatcher_free(d);
        return NULL;
    }
    /* Keep as many idle connections as could be busy at once, so keep-alive survives bursts.
     * The per-host limit is enforced by the queues here rather than by
     * CURLMOPT_MAX_HOST_CONNECTIONS, so that a request's timeout only starts once it is sent
     * and a waiting request never holds a curl handle. */
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)d->max_in_flight);

    int rc = pthread_create(&d->thread, NULL, dispatcher_main, d);
    if (rc != 0) {
        log_error("could not start the webhook dispatcher thread", "error", strerror(rc));
        dispatcher_free(d);
        return NULL;
    }
    return d;
}

void wh_dispatcher_submit(struct wh_dispatcher *d, struct wh_request *req)
{
    if (!req)
        return;
    if (!req->done || !req->url || !req->idempotency_key) {
        log_error("webhook request without done, url or idempotency_key dropped");
        wh_request_free(req);
        return;
    }
    if (!d) {
        complete_aborted(NULL, req, "no dispatcher");
        return;
    }
    atomic_fetch_add(&d->stat_submitted, 1);

    pthread_mutex_lock(&d->mu);
    if (d->closed) {
        pthread_mutex_unlock(&d->mu);
        complete_aborted(d, req, "the dispatcher stopped before the request was sent");
        return;
    }
    if (d->incoming_len == d->incoming_cap) {
        d->incoming_cap = d->incoming_cap ? d->incoming_cap * 2 : 64;
        d->incoming = xrealloc(d->incoming, d->incoming_cap * sizeof(*d->incoming));
    }
    d->incoming[d->incoming_len++] = req;
    /* One wakeup per batch: the thread takes the whole batch when it wakes. The wakeup is
     * sent under the lock so that it cannot race with the thread finishing and the multi
     * handle being cleaned up. */
    if (d->incoming_len == 1)
        curl_multi_wakeup(d->multi);
    pthread_mutex_unlock(&d->mu);
}

void wh_dispatcher_stop(struct wh_dispatcher *d, int64_t grace_ms)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = true;
    d->grace_ms = grace_ms > 0 ? grace_ms : 0;
    curl_multi_wakeup(d->multi);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    dispatcher_free(d);
}

void wh_dispatcher_get_stats(struct wh_dispatcher *d, struct wh_dispatcher_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!d)
        return;
    out->submitted = atomic_load(&d->stat_submitted);
    out->completed = atomic_load(&d->stat_completed);
    out->in_flight = atomic_load(&d->stat_in_flight);
    out->queued = atomic_load(&d->stat_queued);
}
