/* The webhook dispatcher: one thread that runs every activity request through one libcurl multi
 * handle, so thousands of requests are in flight without a thread each, connections are kept
 * alive per host, and no host gets more than its share of requests at once. */
#ifndef KEEL_WEBHOOK_DISPATCHER_H
#define KEEL_WEBHOOK_DISPATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "webhook/classify.h"
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
    void *user;                       /* passed to done as is */
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

#endif
