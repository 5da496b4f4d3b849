/* The webhook dispatcher thread: a libcurl multi loop with per-host queues, and the queues of
 * the host limits (KEEL_HOST_LIMITS). */
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

/* A request waiting for its host's limit. */
struct waiter {
    struct wh_request *req;
    struct host *host;
    uint64_t seq; /* its place in the order of arrival, kept when a reload moves it */
    bool told;    /* its capacity callback heard WH_CAPACITY_WAITING */
};

/* A FIFO of waiters in a ring buffer. */
struct waitq {
    struct waiter *v;
    size_t head, len, cap;
};

static void waitq_push(struct waitq *q, struct waiter w)
{
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8;
        struct waiter *v = xmalloc(cap * sizeof(*v));
        for (size_t i = 0; i < q->len; i++)
            v[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = v;
        q->head = 0;
        q->cap = cap;
    }
    q->v[(q->head + q->len) % q->cap] = w;
    q->len++;
}

/* The i-th waiter from the head (i < len). */
static struct waiter *waitq_at(struct waitq *q, size_t i)
{
    return &q->v[(q->head + i) % q->cap];
}

static struct waiter waitq_pop(struct waitq *q)
{
    struct waiter w = q->v[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    return w;
}

/* One host limit, over every host its entry matches: its requests on the wire, the start of the
 * latest (for the rate), and the queue of those waiting. */
struct limiter {
    const struct wh_host_limit *entry; /* in the dispatcher's limits; NULL once retired */
    char name[WH_LIMIT_NAME_MAX];
    char limit_text[48];
    int share;             /* this keeld's concurrency; 0: not capped */
    int64_t interval_us;   /* this keeld's spacing between starts; 0: no rate */
    bool started;          /* last_start_us is set */
    int64_t last_start_us; /* monotonic */
    int in_flight;         /* transfers on the wire under this limit */
    struct waitq waiting;  /* in order of arrival */
    size_t untold;         /* the last this many waiters came in since the last pump */
    uint64_t waited_total; /* requests that were not sent at once */
    struct limiter *next;  /* in the retired list */
};

/* A destination (scheme://authority of the URL as written). */
struct host {
    struct host *hash_next;
    struct host *ready_next; /* in the ready list: has queued requests and a free slot */
    bool in_ready;
    int in_flight;
    struct reqq pending;
    struct limiter *limiter; /* its host limit, or NULL; its requests then wait there, never
                              * in pending */
    bool parsed;             /* url_host and url_port are set (once limits exist) */
    char *url_host;          /* the host as libcurl reads the URL, or NULL when it cannot */
    int url_port;            /* its port, or the scheme's default */
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
    struct limiter *limiter; /* the host limit it counts for, or NULL */
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
    struct wh_host_limits *new_limits; /* set_limits: for the thread to apply */
    bool limits_pending;
    int new_keelds, new_rank; /* set_share: for the thread to apply */
    bool share_pending;

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
    struct wh_host_limits *limits; /* NULL: none */
    struct limiter **limiters;     /* one per entry of limits, in its order */
    size_t n_limiters;
    struct limiter *retired; /* removed by a reload with transfers still on the wire */
    int keelds, rank;
    uint64_t wait_seq;
    int64_t next_rate_us; /* monotonic: when a rate lets a waiting request go; INT64_MAX */
    bool limit_stats_dirty;

    /* The host limits as wh_dispatcher_limit_stats reads them, under stats_mu. */
    pthread_mutex_t stats_mu;
    struct wh_limit_stats *limit_stats;
    size_t n_limit_stats;

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

/* The host and port of h's URL, as libcurl reads them (the scheme's default port when it names
 * none). Left NULL when it cannot: the request then fails when it is sent. */
static void host_parse(struct host *h)
{
    h->parsed = true;
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, h->key, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        h->url_host = xstrdup(host);
        h->url_port = atoi(port);
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

/* Finds h's host limit: the limiter of the entry its host and port match, or NULL. */
static void host_resolve_limit(struct wh_dispatcher *d, struct host *h)
{
    h->limiter = NULL;
    if (!d->limits || d->limits->n == 0)
        return;
    if (!h->parsed)
        host_parse(h);
    if (!h->url_host)
        return;
    const struct wh_host_limit *e = wh_host_limits_match(d->limits, h->url_host, h->url_port);
    if (e)
        h->limiter = d->limiters[e - d->limits->v];
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
    host_resolve_limit(d, host);
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
    tr->limiter = NULL;
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

static void limiter_free(struct limiter *l)
{
    free(l->waiting.v);
    free(l);
}

/* A transfer under limiter l ended. A retired limiter goes with its last transfer. */
static void limiter_release(struct wh_dispatcher *d, struct limiter *l)
{
    l->in_flight--;
    d->limit_stats_dirty = true;
    if (l->entry || l->in_flight > 0)
        return;
    for (struct limiter **it = &d->retired; *it; it = &(*it)->next) {
        if (*it == l) {
            *it = l->next;
            limiter_free(l);
            return;
        }
    }
}

/* Ends a transfer with res: frees its slot, runs the callback, recycles the transfer. */
static void transfer_finish(struct wh_dispatcher *d, struct transfer *tr, struct wh_result *res)
{
    if (tr->added)
        curl_multi_remove_handle(d->multi, tr->easy);
    active_unlink(d, tr);
    if (tr->limiter)
        limiter_release(d, tr->limiter);
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

/* Puts req on the wire, counting it for its host and its host limit l (or NULL). Any failure
 * completes it at once. */
static void transfer_start(struct wh_dispatcher *d, struct host *h, struct limiter *l,
                           struct wh_request *req)
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
    tr->limiter = l;
    if (l) {
        l->in_flight++;
        d->limit_stats_dirty = true;
    }
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

/* ---- host limits ------------------------------------------------------------------------- */

static void tell(struct wh_request *req, enum wh_capacity_phase phase, const struct host *h,
                 const struct limiter *l)
{
    if (!req->capacity)
        return;
    struct wh_capacity c = {phase, h->url_host ? h->url_host : "", l ? l->entry : NULL};
    req->capacity(&c, req->user);
}

/* This keeld's share of each limit, from the number of keelds and its rank. A rate keeps its
 * last start, so a shorter spacing lets the next request go sooner. */
static void apply_share(struct wh_dispatcher *d)
{
    for (size_t i = 0; i < d->n_limiters; i++) {
        struct limiter *l = d->limiters[i];
        l->share = wh_host_limit_concurrency_share(l->entry, d->keelds, d->rank);
        l->interval_us = wh_host_limit_interval_us(l->entry, d->keelds);
    }
    d->limit_stats_dirty = true;
}

static int by_seq(const void *x, const void *y)
{
    const struct waiter *a = x, *b = y;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Replaces the limits with nl (taken; NULL: none), on the dispatcher thread. An entry that stays
 * (same host and port) keeps its limiter: its transfers on the wire and its last start. */
static void apply_limits(struct wh_dispatcher *d, struct wh_host_limits *nl)
{
    size_t nn = nl ? nl->n : 0;
    struct limiter **fresh = xcalloc(nn ? nn : 1, sizeof(*fresh));
    /* Every waiting request, to be queued again in order of arrival. */
    size_t n_all = 0;
    for (size_t i = 0; i < d->n_limiters; i++)
        n_all += d->limiters[i]->waiting.len;
    struct waiter *all = xcalloc(n_all ? n_all : 1, sizeof(*all));
    n_all = 0;
    for (size_t i = 0; i < d->n_limiters; i++) {
        struct limiter *l = d->limiters[i];
        while (l->waiting.len)
            all[n_all++] = waitq_pop(&l->waiting);
        l->untold = 0;
    }
    for (size_t k = 0; k < nn; k++) {
        struct limiter *l = NULL;
        for (size_t i = 0; i < d->n_limiters && !l; i++) {
            if (d->limiters[i] && !strcmp(d->limiters[i]->name, nl->v[k].name)) {
                l = d->limiters[i];
                d->limiters[i] = NULL;
            }
        }
        if (!l) {
            l = xcalloc(1, sizeof(*l));
            snprintf(l->name, sizeof l->name, "%s", nl->v[k].name);
        }
        l->entry = &nl->v[k];
        snprintf(l->limit_text, sizeof l->limit_text, "%s", nl->v[k].limit_text);
        fresh[k] = l;
    }
    for (size_t i = 0; i < d->n_limiters; i++) {
        struct limiter *l = d->limiters[i];
        if (!l)
            continue;
        l->entry = NULL;
        if (l->in_flight == 0) {
            limiter_free(l);
        } else {
            l->next = d->retired;
            d->retired = l;
        }
    }
    free(d->limiters);
    wh_host_limits_free(d->limits);
    d->limits = nl;
    d->limiters = fresh;
    d->n_limiters = nn;
    apply_share(d);
    for (size_t b = 0; b < HOST_BUCKETS; b++)
        for (struct host *h = d->buckets[b]; h; h = h->hash_next)
            host_resolve_limit(d, h);
    qsort(all, n_all, sizeof(*all), by_seq);
    for (size_t i = 0; i < n_all; i++) {
        struct waiter w = all[i];
        if (w.host->limiter) {
            waitq_push(&w.host->limiter->waiting, w);
            continue;
        }
        /* No limit any more: it goes out like any request. */
        if (w.told)
            tell(w.req, WH_CAPACITY_SENT, w.host, NULL);
        reqq_push(&w.host->pending, w.req);
        host_maybe_ready(d, w.host);
    }
    free(all);
}

/* Starts the waiting requests that their limits let go now, in order, and tells the ones that
 * came in since the last pump and must wait. Sets next_rate_us to when a rate lets the next
 * waiting request go (INT64_MAX: none waits for a rate alone). */
static void pump_limited(struct wh_dispatcher *d)
{
    d->next_rate_us = INT64_MAX;
    if (d->n_limiters == 0)
        return;
    int64_t now = time_mono_us();
    for (size_t i = 0; i < d->n_limiters; i++) {
        struct limiter *l = d->limiters[i];
        while (l->waiting.len > 0 && d->in_flight < d->max_in_flight) {
            if (l->share > 0 && l->in_flight >= l->share)
                break;
            if (l->interval_us > 0 && l->started && now < l->last_start_us + l->interval_us) {
                if (l->last_start_us + l->interval_us < d->next_rate_us)
                    d->next_rate_us = l->last_start_us + l->interval_us;
                break;
            }
            if (waitq_at(&l->waiting, 0)->host->in_flight >= d->max_per_host)
                break;
            struct waiter w = waitq_pop(&l->waiting);
            if (l->untold > l->waiting.len)
                l->untold = l->waiting.len;
            d->queued--;
            l->started = true;
            l->last_start_us = now;
            if (w.told)
                tell(w.req, WH_CAPACITY_SENT, w.host, l);
            transfer_start(d, w.host, l, w.req);
        }
        /* The newcomers are the last untold waiters of the queue. */
        for (size_t k = l->waiting.len - l->untold; k < l->waiting.len; k++) {
            struct waiter *w = waitq_at(&l->waiting, k);
            if (w->told)
                continue;
            w->told = true;
            l->waited_total++;
            d->limit_stats_dirty = true;
            tell(w->req, WH_CAPACITY_WAITING, w->host, l);
        }
        l->untold = 0;
    }
}

/* Publishes the limits' counters for wh_dispatcher_limit_stats. */
static void publish_limit_stats(struct wh_dispatcher *d)
{
    if (!d->limit_stats_dirty)
        return;
    d->limit_stats_dirty = false;
    struct wh_limit_stats *v = d->n_limiters ? xcalloc(d->n_limiters, sizeof(*v)) : NULL;
    for (size_t i = 0; i < d->n_limiters; i++) {
        const struct limiter *l = d->limiters[i];
        snprintf(v[i].name, sizeof v[i].name, "%s", l->name);
        snprintf(v[i].limit_text, sizeof v[i].limit_text, "%s", l->limit_text);
        v[i].concurrency_share = l->share;
        v[i].interval_us = l->interval_us;
        v[i].in_flight = l->in_flight;
        v[i].waiting = (int)l->waiting.len;
        v[i].waited_total = l->waited_total;
    }
    pthread_mutex_lock(&d->stats_mu);
    free(d->limit_stats);
    d->limit_stats = v;
    d->n_limit_stats = d->n_limiters;
    pthread_mutex_unlock(&d->stats_mu);
}

/* ---- the loop ---------------------------------------------------------------------------- */

/* Moves submitted requests into their hosts' (or host limits') queues, after the limits and the
 * share set meanwhile; aborts them once stopping. */
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
    bool limits_pending = d->limits_pending, share_pending = d->share_pending;
    struct wh_host_limits *new_limits = d->new_limits;
    d->new_limits = NULL;
    d->limits_pending = d->share_pending = false;
    if (share_pending) {
        d->keelds = d->new_keelds;
        d->rank = d->new_rank;
    }
    pthread_mutex_unlock(&d->mu);

    if (limits_pending)
        apply_limits(d, new_limits);
    else if (share_pending)
        apply_share(d);
    for (size_t i = 0; i < n; i++) {
        if (stopping) {
            complete_aborted(d, batch[i], "the dispatcher stopped before the request was sent");
            continue;
        }
        struct host *h = host_get(d, batch[i]->url);
        d->queued++;
        if (h->limiter) {
            struct waiter w = {batch[i], h, ++d->wait_seq, false};
            waitq_push(&h->limiter->waiting, w);
            h->limiter->untold++;
            d->limit_stats_dirty = true;
            continue;
        }
        reqq_push(&h->pending, batch[i]);
        host_maybe_ready(d, h);
    }
    d->spare = batch;
    d->spare_cap = batch_cap;
    return stopping;
}

/* Starts queued requests while there are free slots: the host limits' first (their requests
 * are already held back), then the other hosts in turn. */
static void pump(struct wh_dispatcher *d)
{
    pump_limited(d);
    while (d->in_flight < d->max_in_flight) {
        struct host *h = ready_pop(d);
        if (!h)
            break;
        struct wh_request *req = reqq_pop(&h->pending);
        d->queued--;
        transfer_start(d, h, NULL, req);
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
    /* Requests waiting for a host limit end the same way: their executions' next owner sends
     * them again. */
    for (size_t i = 0; i < d->n_limiters; i++) {
        struct limiter *l = d->limiters[i];
        while (l->waiting.len) {
            struct waiter w = waitq_pop(&l->waiting);
            d->queued--;
            complete_aborted(d, w.req, "the dispatcher stopped before the request was sent");
        }
        l->untold = 0;
    }
    d->limit_stats_dirty = true;
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
        publish_limit_stats(d);
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
        } else if (d->next_rate_us != INT64_MAX) {
            /* Rounded up: woken early, the rate would still say no. */
            int64_t left = (d->next_rate_us - time_mono_us() + 999) / 1000;
            timeout = left < 0 ? 0 : left < timeout ? (int)left : timeout;
        }
        curl_multi_poll(d->multi, NULL, 0, timeout, NULL);
    }

    /* From here on submitters complete their own requests, so nothing is left behind. */
    pthread_mutex_lock(&d->mu);
    d->closed = true;
    pthread_mutex_unlock(&d->mu);
    intake(d);
    publish_limit_stats(d);
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
            free(h->url_host);
            free(h);
            h = next;
        }
    }
    for (size_t i = 0; i < d->n_limiters; i++)
        limiter_free(d->limiters[i]);
    free(d->limiters);
    while (d->retired) {
        struct limiter *next = d->retired->next;
        limiter_free(d->retired);
        d->retired = next;
    }
    wh_host_limits_free(d->limits);
    wh_host_limits_free(d->new_limits);
    free(d->limit_stats);
    pthread_mutex_destroy(&d->stats_mu);
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
    pthread_mutex_init(&d->stats_mu, NULL);
    d->keelds = d->new_keelds = 1;
    d->next_rate_us = INT64_MAX;
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

void wh_dispatcher_set_limits(struct wh_dispatcher *d, struct wh_host_limits *limits)
{
    if (!d) {
        wh_host_limits_free(limits);
        return;
    }
    pthread_mutex_lock(&d->mu);
    if (d->closed) {
        pthread_mutex_unlock(&d->mu);
        wh_host_limits_free(limits);
        return;
    }
    wh_host_limits_free(d->new_limits);
    d->new_limits = limits;
    d->limits_pending = true;
    curl_multi_wakeup(d->multi);
    pthread_mutex_unlock(&d->mu);
}

void wh_dispatcher_set_share(struct wh_dispatcher *d, int keelds, int rank)
{
    if (!d)
        return;
    if (keelds < 1)
        keelds = 1;
    pthread_mutex_lock(&d->mu);
    /* new_keelds and new_rank hold the latest share asked for. */
    if (!d->closed && (keelds != d->new_keelds || rank != d->new_rank)) {
        d->new_keelds = keelds;
        d->new_rank = rank;
        d->share_pending = true;
        curl_multi_wakeup(d->multi);
    }
    pthread_mutex_unlock(&d->mu);
}

size_t wh_dispatcher_limit_stats(struct wh_dispatcher *d, struct wh_limit_stats **out)
{
    *out = NULL;
    if (!d)
        return 0;
    pthread_mutex_lock(&d->stats_mu);
    size_t n = d->n_limit_stats;
    if (n) {
        *out = xmalloc(n * sizeof(**out));
        memcpy(*out, d->limit_stats, n * sizeof(**out));
    }
    pthread_mutex_unlock(&d->stats_mu);
    return n;
}
