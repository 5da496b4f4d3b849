/* Process metrics, exposed at GET /metrics in the Prometheus text format. Every recording
 * function is thread-safe and cheap (relaxed atomic adds), so it can sit on hot paths. Labels
 * that come from users' data (workflow names, webhook hosts) are bounded: each kind has a
 * table of at most METRICS_MAX_WORKFLOWS or METRICS_MAX_HOSTS values, filled as values are
 * first seen, after which every new value shares the label METRICS_LABEL_OTHER. A lookup of a
 * value already seen takes no lock. */
#ifndef KEEL_METRICS_H
#define KEEL_METRICS_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most distinct workflow and host label values; then METRICS_LABEL_OTHER. */
#define METRICS_MAX_WORKFLOWS 100
#define METRICS_MAX_HOSTS     50
/* The label value shared by the values seen after a table filled up (a workflow named
 * "_other" shares it too). */
#define METRICS_LABEL_OTHER "_other"
/* The workflow label of code executions (driven by step calls, with no workflow). */
#define METRICS_LABEL_CODE "_code"
/* The host label of a URL whose host cannot be read. */
#define METRICS_LABEL_NO_HOST "_invalid"

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

enum metrics_purge {
    METRICS_PURGE_RETENTION, /* KEEL_RETENTION's purge */
    METRICS_PURGE_API,       /* DELETE /v1/executions/{id} */
    METRICS_PURGE__COUNT
};

/* What one webhook request to a host came to (label result of keel_webhook_results_total). */
enum metrics_webhook_result {
    METRICS_RESULT_2XX,              /* a 2xx other than 202 with a usable body */
    METRICS_RESULT_202,              /* 202: an asynchronous activity accepted */
    METRICS_RESULT_3XX,              /* a redirect (never followed: a failure) */
    METRICS_RESULT_4XX,              /* 4xx */
    METRICS_RESULT_5XX,              /* 5xx */
    METRICS_RESULT_INVALID_RESPONSE, /* a 2xx whose body is not JSON (or too large, too deep),
                                        or a status outside 200-599 */
    METRICS_RESULT_TIMEOUT,          /* no answer within the attempt's timeout */
    METRICS_RESULT_CONNECT_ERROR,    /* connection refused, name not resolved, TLS, reset */
    METRICS_RESULT_REFUSED,          /* refused by the destination policy, or an invalid URL:
                                        never sent */
    METRICS_RESULT_OTHER,            /* anything else decided without an answer */
    METRICS_RESULT_ABORTED,          /* cut off because keeld was stopping */
    METRICS_RESULT__COUNT
};

/* Records the process start; call once before threads start. */
void metrics_init(int64_t now_ms);
void metrics_http_request(int status);

/* The label slot of a workflow for the calls below: code true gives METRICS_LABEL_CODE
 * whatever workflow says. Never fails: a value seen when the table is full (or NULL) gives the
 * slot of METRICS_LABEL_OTHER. Lock-free once the value has been seen. */
int metrics_workflow_label(const char *workflow, bool code);
/* The label slot of the host of url ("host" or "host:port", lowercased, as written in the
 * URL; METRICS_LABEL_NO_HOST when there is none), bounded the same way. */
int metrics_host_label(const char *url);
/* Writes the host label of url into out (at most out_size - 1 bytes, NUL-terminated):
 * "host[:port]" from scheme://[userinfo@]host[:port]/..., lowercased, with characters other
 * than letters, digits and ".-_:[]" replaced by '_'. False (and out empty) when url has no
 * host. */
bool metrics_host_of_url(const char *url, char *out, size_t out_size);

/* An execution of that workflow (a label slot) started: its first transition committed. */
void metrics_execution_started(int workflow);
/* An execution ended with status ("completed", "failed", "cancelled" or "terminated"),
 * duration_us after it was created. */
void metrics_execution_ended(int workflow, const char *status, int64_t duration_us);
void metrics_transition(enum metrics_transition outcome, int64_t duration_us);
void metrics_webhook(enum metrics_webhook outcome, int64_t duration_us);
/* One activity or compensation attempt of an execution of workflow got its answer (or its
 * failure) after duration_us; aborted attempts are not recorded. */
void metrics_activity_attempt(int workflow, int64_t duration_us);
/* The result class of a webhook request: outcome, the HTTP status (0 when none came) and the
 * failure's error type (NULL when none), as webhook/classify.h reports them. */
enum metrics_webhook_result metrics_webhook_result_of(enum metrics_webhook outcome,
                                                      long http_status, const char *error_type);
/* One webhook request (an activity or compensation attempt, or a code execution's handler
 * call) to host (a label slot) ended with result after duration_us (not timed when aborted). */
void metrics_webhook_host(int host, enum metrics_webhook_result result, int64_t duration_us);
void metrics_tasks_claimed(int n);
/* Ended executions removed, and the rows of theirs removed with them (events, steps, ...). */
void metrics_purged(enum metrics_purge why, long executions, long rows);
/* A worker committed n transitions (n >= 2) in one transaction. */
void metrics_batch(size_t n);
/* Appends the whole exposition of this process's metrics; gauges that live elsewhere are
 * passed in. */
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
