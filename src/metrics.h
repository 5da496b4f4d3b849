/* Process metrics, exposed at GET /metrics in the Prometheus text format. Every function is
 * thread-safe and cheap (relaxed atomic adds), so it can sit on hot paths. */
#ifndef KEEL_METRICS_H
#define KEEL_METRICS_H

#include "util/buf.h"

#include <stddef.h>
#include <stdint.h>

enum metrics_transition {
    METRICS_TRANSITION_APPLIED,
    METRICS_TRANSITION_STALE,
    METRICS_TRANSITION_LEASE_LOST,
    METRICS_TRANSITION_ERROR,
    METRICS_TRANSITION__COUNT
};

enum metrics_webhook {
    METRICS_WEBHOOK_OK,      /* 2xx with a result */
    METRICS_WEBHOOK_ASYNC,   /* 202 */
    METRICS_WEBHOOK_FAILED,  /* a failed attempt of any kind */
    METRICS_WEBHOOK_ABORTED, /* cut off by a shutdown */
    METRICS_WEBHOOK__COUNT
};

/* Records the process start; call once before threads start. */
void metrics_init(int64_t now_ms);
void metrics_http_request(int status);
void metrics_execution_started(void);
/* status: "completed", "failed", "cancelled" or "terminated". */
void metrics_execution_ended(const char *status);
void metrics_transition(enum metrics_transition outcome, int64_t duration_us);
void metrics_webhook(enum metrics_webhook outcome, int64_t duration_us);
void metrics_tasks_claimed(int n);
/* A worker committed n transitions (n >= 2) in one transaction. */
void metrics_batch(size_t n);
/* Appends the whole exposition; gauges that live elsewhere are passed in. */
void metrics_render(struct buf *out, long webhooks_in_flight, long webhooks_queued,
                    long http_in_flight);

/* One host limit (KEEL_HOST_LIMITS) as the dispatcher holds it, labelled by its entry's host, so
 * that the series are bounded by the configured entries. */
struct metrics_host_limit {
    const char *host;                /* "payments.internal", "*.example.com", "[::1]:8443" */
    int in_flight;                   /* requests under it on the wire now */
    int waiting;                     /* requests waiting for it now */
    unsigned long long waited_total; /* requests that waited for it (since it was configured) */
    int concurrency;                 /* this keeld's share of its concurrency; 0: none */
    double rate_per_second;          /* this keeld's share of its rate; 0: none */
};

/* Appends the host limits' families (nothing when n is 0). */
void metrics_render_host_limits(struct buf *out, const struct metrics_host_limit *v, size_t n);

#endif
