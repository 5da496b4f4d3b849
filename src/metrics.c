/* Counters and fixed-bucket histograms in one struct of atomics. */
#include "metrics.h"

#include <stdatomic.h>
#include <string.h>

#define N_BUCKETS 12

/* Upper bounds in microseconds: 250us .. 10s. */
static const int64_t bucket_us[N_BUCKETS] = {250,   500,   1000,   2500,   5000,    10000,
                                             25000, 50000, 100000, 250000, 1000000, 10000000};

struct histogram {
    atomic_ullong buckets[N_BUCKETS + 1]; /* the last one is +Inf */
    atomic_ullong sum_us;
    atomic_ullong count;
};

static const char *const status_classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const end_statuses[] = {"completed", "failed", "cancelled", "terminated"};
static const char *const transition_names[] = {"applied", "stale", "lease_lost", "error"};
static const char *const webhook_names[] = {"ok", "async", "failed", "aborted"};

/* The registry: the process's only metrics state. */
static struct {
    int64_t start_ms;
    atomic_ullong http_requests[5];
    atomic_ullong executions_started;
    atomic_ullong executions_ended[4];
    atomic_ullong transitions[METRICS_TRANSITION__COUNT];
    struct histogram transition_seconds;
    atomic_ullong webhooks[METRICS_WEBHOOK__COUNT];
    struct histogram webhook_seconds;
    atomic_ullong tasks_claimed;
    atomic_ullong batches, batched;
} registry;

static void observe(struct histogram *h, int64_t us)
{
    if (us < 0)
        us = 0;
    int b = 0;
    while (b < N_BUCKETS && us > bucket_us[b])
        b++;
    atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)us, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void metrics_init(int64_t now_ms)
{
    registry.start_ms = now_ms;
}

void metrics_http_request(int status)
{
    int c = status / 100 - 1;
    if (c >= 0 && c < 5)
        atomic_fetch_add_explicit(&registry.http_requests[c], 1, memory_order_relaxed);
}

void metrics_execution_started(void)
{
    atomic_fetch_add_explicit(&registry.executions_started, 1, memory_order_relaxed);
}

void metrics_execution_ended(const char *status)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(status, end_statuses[i]))
            atomic_fetch_add_explicit(&registry.executions_ended[i], 1, memory_order_relaxed);
}

void metrics_transition(enum metrics_transition outcome, int64_t duration_us)
{
    atomic_fetch_add_explicit(&registry.transitions[outcome], 1, memory_order_relaxed);
    observe(&registry.transition_seconds, duration_us);
}

void metrics_webhook(enum metrics_webhook outcome, int64_t duration_us)
{
    atomic_fetch_add_explicit(&registry.webhooks[outcome], 1, memory_order_relaxed);
    if (outcome != METRICS_WEBHOOK_ABORTED)
        observe(&registry.webhook_seconds, duration_us);
}

void metrics_batch(size_t n)
{
    atomic_fetch_add_explicit(&registry.batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&registry.batched, (unsigned long long)n, memory_order_relaxed);
}

void metrics_tasks_claimed(int n)
{
    atomic_fetch_add_explicit(&registry.tasks_claimed, (unsigned long long)n, memory_order_relaxed);
}

static unsigned long long load(atomic_ullong *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void render_histogram(struct buf *out, const char *name, const char *help,
                             struct histogram *h)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long cumulative = 0;
    for (int b = 0; b < N_BUCKETS; b++) {
        cumulative += load(&h->buckets[b]);
        buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bucket_us[b] / 1e6,
                   cumulative);
    }
    cumulative += load(&h->buckets[N_BUCKETS]);
    buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, cumulative);
    buf_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, (double)load(&h->sum_us) / 1e6, name,
               load(&h->count));
}

void metrics_render(struct buf *out, long webhooks_in_flight, long webhooks_queued,
                    long http_in_flight)
{
    buf_printf(out,
               "# HELP keel_build_info The running keeld.\n# TYPE keel_build_info gauge\n"
               "keel_build_info{version=\"%s\"} 1\n",
               KEEL_VERSION);
    buf_printf(out,
               "# HELP keel_process_start_time_seconds When this keeld started (Unix time).\n"
               "# TYPE keel_process_start_time_seconds gauge\n"
               "keel_process_start_time_seconds %.3f\n",
               (double)registry.start_ms / 1000.0);
    buf_puts(out, "# HELP keel_http_requests_total HTTP requests answered, by status class.\n"
                  "# TYPE keel_http_requests_total counter\n");
    for (int i = 0; i < 5; i++)
        buf_printf(out, "keel_http_requests_total{code=\"%s\"} %llu\n", status_classes[i],
                   load(&registry.http_requests[i]));
    buf_printf(out,
               "# HELP keel_http_requests_in_flight Requests being handled now.\n"
               "# TYPE keel_http_requests_in_flight gauge\n"
               "keel_http_requests_in_flight %ld\n",
               http_in_flight);
    buf_printf(out,
               "# HELP keel_executions_started_total Executions started by this keeld.\n"
               "# TYPE keel_executions_started_total counter\n"
               "keel_executions_started_total %llu\n",
               load(&registry.executions_started));
    buf_puts(out, "# HELP keel_executions_ended_total Executions that ended in a transition of "
                  "this keeld, by final status.\n# TYPE keel_executions_ended_total counter\n");
    for (int i = 0; i < 4; i++)
        buf_printf(out, "keel_executions_ended_total{status=\"%s\"} %llu\n", end_statuses[i],
                   load(&registry.executions_ended[i]));
    buf_puts(out, "# HELP keel_transitions_total State changes run by the engine's workers, "
                  "by outcome.\n# TYPE keel_transitions_total counter\n");
    for (int i = 0; i < METRICS_TRANSITION__COUNT; i++)
        buf_printf(out, "keel_transitions_total{outcome=\"%s\"} %llu\n", transition_names[i],
                   load(&registry.transitions[i]));
    render_histogram(out, "keel_transition_duration_seconds",
                     "Time of one transition's transaction, from BEGIN to COMMIT.",
                     &registry.transition_seconds);
    buf_puts(out, "# HELP keel_webhook_attempts_total Activity and compensation requests, by "
                  "outcome.\n# TYPE keel_webhook_attempts_total counter\n");
    for (int i = 0; i < METRICS_WEBHOOK__COUNT; i++)
        buf_printf(out, "keel_webhook_attempts_total{outcome=\"%s\"} %llu\n", webhook_names[i],
                   load(&registry.webhooks[i]));
    render_histogram(out, "keel_webhook_duration_seconds",
                     "Time from sending a webhook to its answer.", &registry.webhook_seconds);
    buf_printf(out,
               "# HELP keel_webhooks_in_flight Webhooks on the wire now.\n"
               "# TYPE keel_webhooks_in_flight gauge\nkeel_webhooks_in_flight %ld\n"
               "# HELP keel_webhooks_queued Webhooks waiting for a connection slot.\n"
               "# TYPE keel_webhooks_queued gauge\nkeel_webhooks_queued %ld\n",
               webhooks_in_flight, webhooks_queued);
    buf_printf(out,
               "# HELP keel_tasks_claimed_total Due tasks (retries, timers, timeouts, "
               "attempts of a keeld that died) leased by this keeld.\n"
               "# TYPE keel_tasks_claimed_total counter\nkeel_tasks_claimed_total %llu\n",
               load(&registry.tasks_claimed));
    buf_printf(out,
               "# HELP keel_transition_batches_total Transactions in which a runner worker "
               "committed several transitions at once.\n"
               "# TYPE keel_transition_batches_total counter\nkeel_transition_batches_total "
               "%llu\n"
               "# HELP keel_transition_batched_total Transitions committed in those batches.\n"
               "# TYPE keel_transition_batched_total counter\nkeel_transition_batched_total "
               "%llu\n",
               load(&registry.batches), load(&registry.batched));
}

/* A label value as the text format wants it: backslash, quote and line feed escaped. */
static void label_value(struct buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            buf_printf(out, "\\%c", *s);
        else if (*s == '\n')
            buf_puts(out, "\\n");
        else
            buf_putc(out, *s);
    }
}

void metrics_render_host_limits(struct buf *out, const struct metrics_host_limit *v, size_t n)
{
    if (n == 0)
        return;
    static const struct {
        const char *name, *type, *help;
    } families[] = {
        {"keel_host_limit_in_flight", "gauge",
         "Activity requests on the wire now to the hosts of a KEEL_HOST_LIMITS entry."},
        {"keel_host_limit_waiting", "gauge",
         "Activity requests waiting now for the capacity of a KEEL_HOST_LIMITS entry."},
        {"keel_host_limit_waited_total", "counter",
         "Activity requests that had to wait for the capacity of a KEEL_HOST_LIMITS entry."},
        {"keel_host_limit_concurrency", "gauge",
         "This keeld's share of the entry's concurrency (0: none; the limits are divided among "
         "the live keelds)."},
        {"keel_host_limit_rate_per_second", "gauge",
         "This keeld's share of the entry's rate, in requests per second (0: none)."},
    };
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
                   families[f].name, families[f].type);
        for (size_t i = 0; i < n; i++) {
            buf_printf(out, "%s{host=\"", families[f].name);
            label_value(out, v[i].host);
            buf_puts(out, "\"} ");
            switch (f) {
            case 0:
                buf_printf(out, "%d\n", v[i].in_flight);
                break;
            case 1:
                buf_printf(out, "%d\n", v[i].waiting);
                break;
            case 2:
                buf_printf(out, "%llu\n", v[i].waited_total);
                break;
            case 3:
                buf_printf(out, "%d\n", v[i].concurrency);
                break;
            default:
                buf_printf(out, "%g\n", v[i].rate_per_second);
                break;
            }
        }
    }
}
