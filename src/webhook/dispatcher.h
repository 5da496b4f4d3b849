/* The webhook dispatcher: one thread that runs every activity request through one libcurl multi
 * handle, so thousands of requests are in flight without a thread each, connections are kept
 * alive per host, and no host gets more than its share of requests at once. Hosts with a limit
 * of their own (KEEL_HOST_LIMITS, webhook/host_limits.h) get at most that many requests at once
 * and at most that rate; requests over it wait in the limit's queue, in the order they came,
 * never failed or dropped. */
#ifndef KEEL_WEBHOOK_DISPATCHER_H
#define KEEL_WEBHOOK_DISPATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "webhook/classify.h"
#include "webhook/host_limits.h"
#include "webhook/sign.h"

#define WH_DEFAULT_MAX_IN_FLIGHT 256
#define WH_DEFAULT_MAX_PER_HOST  32
#define WH_DEFAULT_TIMEOUT_MS    30000
#define WH_DEFAULT_USER_AGENT    "keel/0.1"

struct wh_dispatcher_config {
    int max_in_flight;       /* requests on the wire at once, all hosts; <= 0: 256 */
    int max_per_host;        /* requests on the wire at once per scheme://host:port; <= 0: 32.
                              * Further requests wait in a queue of that host while requests
                              * to other hosts proceed; their timeout starts when they are sent. */
    const char *user_agent;  /* copied; NULL: WH_DEFAULT_USER_AGENT */
    long connect_timeout_ms; /* <= 0: bounded only by each request's timeout_ms */
};

struct wh_request;

/* Called once per submitted request, on the dispatcher thread (see wh_dispatcher_submit for
 * the one exception). res is owned by the dispatcher and valid only during the call: keep
 * res->output or res->error by taking a reference (json_incref) or by setting the field to
 * NULL, which hands it to the callee. The request is freed after the callback returns. The
 * callback must be quick (it delays every other request) and may call wh_dispatcher_submit(),
 * but not wh_dispatcher_stop(). */
typedef void (*wh_done_fn)(struct wh_result *res, void *user);

enum wh_capacity_phase {
    WH_CAPACITY_WAITING, /* the request waits for its host's limit rather than going out at once
                          * (told once, after the dispatcher took it in and could not send it) */
    WH_CAPACITY_SENT,    /* a request that was told WH_CAPACITY_WAITING is being sent now, or no
                          * longer has a limit after a reload (and goes out with the others) */
};

/* What a request waits for. Pointers are valid during the call only. */
struct wh_capacity {
    enum wh_capacity_phase phase;
    const char *host; /* the URL's host as libcurl reads it ("payments.internal") */
    const struct wh_host_limit *limit; /* the entry that holds it back (WH_CAPACITY_WAITING), or
                                        * that held it (WH_CAPACITY_SENT; NULL after a reload
                                        * removed it) */
};

/* Called on the dispatcher thread; must be quick and must neither submit nor stop. */
typedef void (*wh_capacity_fn)(const struct wh_capacity *c, void *user);

/* One attempt of one webhook. Every pointer field below is owned by the request and freed with
 * free() by wh_request_free(), except secrets and user. */
struct wh_request {
    char *url;  /* http:// or https:// only; redirects are never followed */
    char *body; /* the JSON bytes to POST (e.g. from json_text), or NULL for none */
    size_t body_len;
    char *idempotency_key;            /* sent as Idempotency-Key and webhook-id */
    int attempt;                      /* sent as Keel-Attempt; 1 for the first attempt */
    char *traceparent;                /* W3C trace context, or NULL to leave the header out */
    long timeout_ms;                  /* bound on the whole attempt once sent; <= 0: 30 s */
    const struct wh_secrets *secrets; /* borrowed (must outlive the request); NULL: unsigned */
    wh_done_fn done;                  /* required */
    wh_capacity_fn capacity;          /* optional: told when the request waits for its host's
                                       * limit, and when it is sent after waiting */
    void *user;                       /* passed to done and capacity as is */
};

/* A zeroed request with url and idempotency_key copied and attempt set; the caller fills in
 * the other fields. Free with wh_request_free() unless it is handed to wh_dispatcher_submit. */
struct wh_request *wh_request_new(const char *url, const char *idempotency_key, int attempt);
/* Frees the request and the strings it owns; NULL is ignored. */
void wh_request_free(struct wh_request *req);

struct wh_dispatcher;

/* Starts the dispatcher thread. config is copied (NULL: all defaults). Returns NULL when the
 * thread or libcurl could not be set up. Calls curl_global_init() the first time. */
struct wh_dispatcher *wh_dispatcher_start(const struct wh_dispatcher_config *config)
    __attribute__((warn_unused_result));

/* Queues req and wakes the dispatcher thread; thread-safe and never blocks on the network.
 * Takes ownership of req whatever happens: req->done is called exactly once. The webhook
 * headers (Content-Type, Idempotency-Key, webhook-id, webhook-timestamp, webhook-signature,
 * Keel-Attempt, traceparent) are built when the request is sent, so the timestamp and the
 * signature are fresh. A request without done, url or idempotency_key is freed unsent
 * (a programming error, logged). Once wh_dispatcher_stop() has begun, requests are not sent:
 * done is called with WH_ABORTED, on the calling thread if the dispatcher thread has already
 * finished. */
void wh_dispatcher_submit(struct wh_dispatcher *d, struct wh_request *req);

/* Stops taking requests, gives the ones on the wire up to grace_ms to finish, then aborts the
 * rest; queued requests that were never sent and aborted ones complete with WH_ABORTED. Joins
 * the thread and frees the dispatcher. Must not be called from a done callback. NULL is
 * ignored. */
void wh_dispatcher_stop(struct wh_dispatcher *d, int64_t grace_ms);

struct wh_dispatcher_stats {
    uint64_t submitted; /* requests handed to wh_dispatcher_submit */
    uint64_t completed; /* done callbacks returned */
    int in_flight;      /* on the wire now */
    int queued;         /* waiting for a slot (total or per host) */
};

/* A snapshot of the counters, for metrics; thread-safe. */
void wh_dispatcher_get_stats(struct wh_dispatcher *d, struct wh_dispatcher_stats *out);

/* Replaces the host limits with limits (taken; NULL: none); thread-safe and never blocks on the
 * network. The dispatcher thread applies them at once: a limit whose entry (host and port) is
 * still there keeps its requests in flight and its place in the rate and takes the new numbers,
 * so a higher limit lets waiting requests go at once; every waiting request moves, in the order
 * it came, to the queue of the entry its host matches now, or goes out like any request when it
 * has none. Requests in flight under a removed entry still count until they end, for nobody. */
void wh_dispatcher_set_limits(struct wh_dispatcher *d, struct wh_host_limits *limits);

/* How many keelds share the host limits (>= 1) and which of them this one is (0-based, in owner
 * id order): each limit is divided among them (wh_host_limit_concurrency_share,
 * wh_host_limit_interval_us). Thread-safe; applied at once. Until called: one keeld. */
void wh_dispatcher_set_share(struct wh_dispatcher *d, int keelds, int rank);

#define WH_LIMIT_NAME_MAX 280

/* One host limit as the dispatcher holds it now. */
struct wh_limit_stats {
    char name[WH_LIMIT_NAME_MAX]; /* the entry's host: "payments.internal", "*.example.com" */
    char limit_text[48];          /* its limit as configured: "20,50/s" */
    int concurrency_share;        /* this keeld's part of the concurrency; 0: not capped */
    int64_t interval_us;          /* this keeld's spacing between starts; 0: no rate */
    int in_flight;                /* requests to its hosts on the wire now */
    int waiting;                  /* requests waiting for it now */
    uint64_t waited_total;        /* requests that had to wait for it (not sent at once) */
};

/* A snapshot of every configured limit, in the order of the configuration: returns how many and
 * sets *out to a new array (caller frees; NULL when there are none). Thread-safe; it may lag the
 * dispatcher thread by one turn of its loop. */
size_t wh_dispatcher_limit_stats(struct wh_dispatcher *d, struct wh_limit_stats **out);

#endif
