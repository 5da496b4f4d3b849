/* Counters and fixed-bucket histograms in one struct of atomics, and the bounded label tables
 * of the per-workflow and per-host metrics. */
#include "metrics.h"

#include "util/alloc.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

/* ---- histograms ---------------------------------------------------------------------------- */

#define MAX_BUCKETS 16

/* Upper bounds in microseconds, ascending; +Inf is implied. */
struct bucket_set {
    int n;
    int64_t le_us[MAX_BUCKETS];
};

/* Transitions and webhooks as a whole: 250us .. 10s. */
static const struct bucket_set fast_buckets = {
    12, {250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 10000000}};
/* One webhook request (an attempt, per workflow or per host): 5ms .. 60s. */
static const struct bucket_set request_buckets = {13,
                                                  {5000, 10000, 25000, 50000, 100000, 250000,
                                                   500000, 1000000, 2500000, 5000000, 10000000,
                                                   30000000, 60000000}};
/* A whole execution, from its creation to its end: 50ms .. 1 day (sleeps and waits make some
 * last days; those fall in +Inf). */
static const struct bucket_set execution_buckets = {
    15,
    {50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
     300000000, 900000000, 3600000000, 21600000000, 86400000000}};

struct histogram {
    atomic_ullong buckets[MAX_BUCKETS + 1]; /* not cumulative; the one after the last is +Inf */
    atomic_ullong sum_us;
    atomic_ullong count;
};

static void observe(struct histogram *h, const struct bucket_set *set, int64_t us)
{
    if (us < 0)
        us = 0;
    int b = 0;
    while (b < set->n && us > set->le_us[b])
        b++;
    atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)us, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

/* ---- bounded label tables ------------------------------------------------------------------ */

#define LABEL_MAX      100 /* the largest table (METRICS_MAX_WORKFLOWS) */
#define LABEL_HASH     256 /* open addressing, a power of two over twice LABEL_MAX: never full */
#define LABEL_MAX_TEXT 128 /* longer values are cut (workflow names are at most 128) */

/* Slots 0 .. cap-1 are the values in the order first seen; slot cap is METRICS_LABEL_OTHER.
 * A value is written once, before the release store that publishes it in the hash, so readers
 * that found it through an acquire load see it whole; nothing is ever removed. */
struct label_table {
    const char *name; /* the label's name, for keel_metrics_label_values */
    size_t cap;
    pthread_mutex_t lock; /* held only to add a value */
    atomic_size_t n;      /* values[0 .. n) are set */
    atomic_bool full;     /* n == cap: a value not found is _other, without taking the lock */
    char *values[LABEL_MAX];
    atomic_int hash[LABEL_HASH]; /* 0: empty; i + 1: values[i] */
};

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot of value, or -1 with *free_at the hash position where it would go. */
static int label_find(struct label_table *t, const char *value, size_t *free_at)
{
    uint32_t h = fnv1a(value);
    for (size_t i = 0; i < LABEL_HASH; i++) {
        size_t pos = (h + i) & (LABEL_HASH - 1);
        int s = atomic_load_explicit(&t->hash[pos], memory_order_acquire);
        if (s == 0) {
            *free_at = pos;
            return -1;
        }
        if (!strcmp(t->values[s - 1], value))
            return s - 1;
    }
    *free_at = LABEL_HASH; /* cannot happen: the hash has more room than the table */
    return -1;
}

static int label_of(struct label_table *t, const char *value)
{
    char cut[LABEL_MAX_TEXT + 1];
    if (strlen(value) > LABEL_MAX_TEXT) {
        memcpy(cut, value, LABEL_MAX_TEXT);
        cut[LABEL_MAX_TEXT] = '\0';
        value = cut;
    }
    size_t pos = LABEL_HASH;
    int slot = label_find(t, value, &pos);
    if (slot >= 0)
        return slot;
    if (atomic_load_explicit(&t->full, memory_order_acquire))
        return (int)t->cap;
    pthread_mutex_lock(&t->lock);
    /* Another thread may have added it meanwhile. */
    slot = label_find(t, value, &pos);
    if (slot < 0) {
        size_t n = atomic_load_explicit(&t->n, memory_order_relaxed);
        if (n >= t->cap || pos >= LABEL_HASH) {
            slot = (int)t->cap;
        } else {
            t->values[n] = xstrdup(value);
            atomic_store_explicit(&t->hash[pos], (int)n + 1, memory_order_release);
            atomic_store_explicit(&t->n, n + 1, memory_order_release);
            slot = (int)n;
        }
        if (atomic_load_explicit(&t->n, memory_order_relaxed) >= t->cap)
            atomic_store_explicit(&t->full, true, memory_order_release);
    }
    pthread_mutex_unlock(&t->lock);
    return slot;
}

/* ---- the registry ------------------------------------------------------------------------- */

static const char *const status_classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const end_statuses[] = {"completed", "failed", "cancelled", "terminated"};
static const char *const transition_names[] = {"applied", "stale", "lease_lost", "error"};
static const char *const webhook_names[] = {"ok", "async", "failed", "aborted"};
static const char *const result_names[METRICS_RESULT__COUNT] = {
    "2xx",     "202",           "3xx",     "4xx",   "5xx",    "invalid_response",
    "timeout", "connect_error", "refused", "other", "aborted"};

/* Workflow slots: the table's, then _other (cap), then _code (cap + 1). */
#define WORKFLOW_SLOTS (METRICS_MAX_WORKFLOWS + 2)
#define SLOT_CODE      (METRICS_MAX_WORKFLOWS + 1)
/* Host slots: the table's, then _other. */
#define HOST_SLOTS (METRICS_MAX_HOSTS + 1)

struct workflow_metrics {
    atomic_ullong started;
    atomic_ullong ended[4];
    struct histogram duration;
    struct histogram attempts;
};

struct host_metrics {
    atomic_ullong results[METRICS_RESULT__COUNT];
    struct histogram duration;
};

/* The process's only metrics state. */
static struct {
    int64_t start_ms;
    atomic_ullong http_requests[5];
    atomic_ullong transitions[METRICS_TRANSITION__COUNT];
    struct histogram transition_seconds;
    atomic_ullong webhooks[METRICS_WEBHOOK__COUNT];
    struct histogram webhook_seconds;
    atomic_ullong tasks_claimed;
    atomic_ullong batches, batched;
    atomic_ullong purged_executions[METRICS_PURGE__COUNT];
    atomic_ullong purged_rows[METRICS_PURGE__COUNT];
    struct label_table workflow_labels, host_labels;
    struct workflow_metrics workflows[WORKFLOW_SLOTS];
    struct host_metrics hosts[HOST_SLOTS];
} registry = {
    .workflow_labels = {.name = "workflow",
                        .cap = METRICS_MAX_WORKFLOWS,
                        .lock = PTHREAD_MUTEX_INITIALIZER},
    .host_labels = {.name = "host", .cap = METRICS_MAX_HOSTS, .lock = PTHREAD_MUTEX_INITIALIZER},
};

_Static_assert(METRICS_MAX_WORKFLOWS <= LABEL_MAX && METRICS_MAX_HOSTS <= LABEL_MAX,
               "a label table is larger than its storage");

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

int metrics_workflow_label(const char *workflow, bool code)
{
    if (code)
        return SLOT_CODE;
    if (!workflow)
        return METRICS_MAX_WORKFLOWS;
    return label_of(&registry.workflow_labels, workflow);
}

bool metrics_host_of_url(const char *url, char *out, size_t out_size)
{
    if (out_size == 0)
        return false;
    out[0] = '\0';
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return false;
    p += 3;
    size_t len = strcspn(p, "/?#");
    /* userinfo@ is never part of the label (it may hold a password). */
    for (size_t i = len; i > 0; i--) {
        if (p[i - 1] == '@') {
            p += i;
            len -= i;
            break;
        }
    }
    if (len == 0)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < out_size; i++) {
        unsigned char c = (unsigned char)p[i];
        out[n++] = isalnum(c) || strchr(".-_:[]", c) ? (char)tolower(c) : '_';
    }
    out[n] = '\0';
    return true;
}

int metrics_host_label(const char *url)
{
    char host[LABEL_MAX_TEXT + 1];
    if (!metrics_host_of_url(url, host, sizeof host))
        return label_of(&registry.host_labels, METRICS_LABEL_NO_HOST);
    return label_of(&registry.host_labels, host);
}

static bool workflow_slot_ok(int w)
{
    return w >= 0 && w < WORKFLOW_SLOTS;
}

void metrics_execution_started(int workflow)
{
    if (workflow_slot_ok(workflow))
        atomic_fetch_add_explicit(&registry.workflows[workflow].started, 1, memory_order_relaxed);
}

void metrics_execution_ended(int workflow, const char *status, int64_t duration_us)
{
    if (!workflow_slot_ok(workflow))
        return;
    struct workflow_metrics *m = &registry.workflows[workflow];
    for (int i = 0; i < 4; i++)
        if (!strcmp(status, end_statuses[i]))
            atomic_fetch_add_explicit(&m->ended[i], 1, memory_order_relaxed);
    observe(&m->duration, &execution_buckets, duration_us);
}

void metrics_transition(enum metrics_transition outcome, int64_t duration_us)
{
    atomic_fetch_add_explicit(&registry.transitions[outcome], 1, memory_order_relaxed);
    observe(&registry.transition_seconds, &fast_buckets, duration_us);
}

void metrics_webhook(enum metrics_webhook outcome, int64_t duration_us)
{
    atomic_fetch_add_explicit(&registry.webhooks[outcome], 1, memory_order_relaxed);
    if (outcome != METRICS_WEBHOOK_ABORTED)
        observe(&registry.webhook_seconds, &fast_buckets, duration_us);
}

void metrics_activity_attempt(int workflow, int64_t duration_us)
{
    if (workflow_slot_ok(workflow))
        observe(&registry.workflows[workflow].attempts, &request_buckets, duration_us);
}

enum metrics_webhook_result metrics_webhook_result_of(enum metrics_webhook outcome,
                                                      long http_status, const char *error_type)
{
    switch (outcome) {
    case METRICS_WEBHOOK_OK:
        return METRICS_RESULT_2XX;
    case METRICS_WEBHOOK_ASYNC:
        return METRICS_RESULT_202;
    case METRICS_WEBHOOK_ABORTED:
        return METRICS_RESULT_ABORTED;
    case METRICS_WEBHOOK_FAILED:
    case METRICS_WEBHOOK__COUNT:
        break;
    }
    /* An answer's status decides, whatever error type the receiver's problem named. */
    if (http_status >= 300 && http_status < 400)
        return METRICS_RESULT_3XX;
    if (http_status >= 400 && http_status < 500)
        return METRICS_RESULT_4XX;
    if (http_status >= 500 && http_status < 600)
        return METRICS_RESULT_5XX;
    if (http_status > 0)
        return METRICS_RESULT_INVALID_RESPONSE;
    if (!error_type)
        return METRICS_RESULT_OTHER;
    if (!strcmp(error_type, "timeout"))
        return METRICS_RESULT_TIMEOUT;
    if (!strcmp(error_type, "connection_refused") || !strcmp(error_type, "connection_failed"))
        return METRICS_RESULT_CONNECT_ERROR;
    if (!strcmp(error_type, "destination_refused") || !strcmp(error_type, "invalid_url"))
        return METRICS_RESULT_REFUSED;
    if (!strcmp(error_type, "invalid_response"))
        return METRICS_RESULT_INVALID_RESPONSE;
    return METRICS_RESULT_OTHER;
}

void metrics_webhook_host(int host, enum metrics_webhook_result result, int64_t duration_us)
{
    if (host < 0 || host >= HOST_SLOTS || result < 0 || result >= METRICS_RESULT__COUNT)
        return;
    struct host_metrics *m = &registry.hosts[host];
    atomic_fetch_add_explicit(&m->results[result], 1, memory_order_relaxed);
    if (result != METRICS_RESULT_ABORTED)
        observe(&m->duration, &request_buckets, duration_us);
}

void metrics_batch(size_t n)
{
    atomic_fetch_add_explicit(&registry.batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&registry.batched, (unsigned long long)n, memory_order_relaxed);
}

void metrics_purged(enum metrics_purge why, long executions, long rows)
{
    atomic_fetch_add_explicit(&registry.purged_executions[why], (unsigned long long)executions,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&registry.purged_rows[why], (unsigned long long)rows,
                              memory_order_relaxed);
}

void metrics_tasks_claimed(int n)
{
    atomic_fetch_add_explicit(&registry.tasks_claimed, (unsigned long long)n, memory_order_relaxed);
}

/* ---- rendering ----------------------------------------------------------------------------- */

static unsigned long long load(atomic_ullong *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* Appends a label value with the escapes of the text format (\\, \" and \n). */
static void put_label_value(struct buf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            buf_putc(out, '\\');
        if (*v == '\n') {
            buf_puts(out, "\\n");
            continue;
        }
        buf_putc(out, *v);
    }
}

/* The samples of one histogram: labels is "" or `name="value",` (with the trailing comma), put
 * before le in the buckets and alone (without the comma) in _sum and _count. */
static void render_histogram_series(struct buf *out, const char *name, const char *labels,
                                    const struct bucket_set *set, struct histogram *h)
{
    unsigned long long cumulative = 0;
    for (int b = 0; b < set->n; b++) {
        cumulative += load(&h->buckets[b]);
        buf_printf(out, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, (double)set->le_us[b] / 1e6,
                   cumulative);
    }
    cumulative += load(&h->buckets[set->n]);
    buf_printf(out, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, cumulative);
    size_t n = strlen(labels);
    if (n > 0)
        buf_printf(out, "%s_sum{%.*s} %.6f\n%s_count{%.*s} %llu\n", name, (int)n - 1, labels,
                   (double)load(&h->sum_us) / 1e6, name, (int)n - 1, labels, load(&h->count));
    else
        buf_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, (double)load(&h->sum_us) / 1e6, name,
                   load(&h->count));
}

static void render_histogram(struct buf *out, const char *name, const char *help,
                             const struct bucket_set *set, struct histogram *h)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    render_histogram_series(out, name, "", set, h);
}

/* The label value of workflow slot w (n values in the table), or NULL for an unused slot of the
 * table. */
static const char *workflow_value(int w, size_t n)
{
    if (w < (int)n)
        return registry.workflow_labels.values[w];
    if (w == METRICS_MAX_WORKFLOWS)
        return METRICS_LABEL_OTHER;
    if (w == SLOT_CODE)
        return METRICS_LABEL_CODE;
    return NULL;
}

static bool workflow_used(int w)
{
    struct workflow_metrics *m = &registry.workflows[w];
    unsigned long long any =
        load(&m->started) + load(&m->duration.count) + load(&m->attempts.count);
    for (int i = 0; i < 4; i++)
        any += load(&m->ended[i]);
    return any > 0;
}

/* One per-workflow histogram (the one at offset in struct workflow_metrics) of each workflow
 * shown. */
static void render_workflow_histograms(struct buf *out, const bool *shown, size_t n,
                                       const char *name, const char *help,
                                       const struct bucket_set *buckets, size_t offset)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    struct buf label = BUF_INIT;
    for (int w = 0; w < WORKFLOW_SLOTS; w++) {
        if (!shown[w])
            continue;
        buf_reset(&label);
        buf_puts(&label, "workflow=\"");
        put_label_value(&label, workflow_value(w, n));
        buf_puts(&label, "\",");
        struct histogram *h = (struct histogram *)((char *)&registry.workflows[w] + offset);
        render_histogram_series(out, name, label.data, buckets, h);
    }
    buf_free(&label);
}

static void render_workflows(struct buf *out)
{
    size_t n = atomic_load_explicit(&registry.workflow_labels.n, memory_order_acquire);
    /* The table's values, and _other and _code once something was recorded for them. */
    bool shown[WORKFLOW_SLOTS];
    for (int w = 0; w < WORKFLOW_SLOTS; w++)
        shown[w] = workflow_value(w, n) && (w < (int)n || workflow_used(w));
    buf_puts(out, "# HELP keel_executions_started_total Executions started (their first "
                  "transition committed) by this keeld, by workflow.\n"
                  "# TYPE keel_executions_started_total counter\n");
    for (int w = 0; w < WORKFLOW_SLOTS; w++) {
        if (!shown[w])
            continue;
        buf_puts(out, "keel_executions_started_total{workflow=\"");
        put_label_value(out, workflow_value(w, n));
        buf_printf(out, "\"} %llu\n", load(&registry.workflows[w].started));
    }
    buf_puts(out, "# HELP keel_executions_ended_total Executions that ended in a transition of "
                  "this keeld, by workflow and final status.\n"
                  "# TYPE keel_executions_ended_total counter\n");
    for (int w = 0; w < WORKFLOW_SLOTS; w++) {
        if (!shown[w])
            continue;
        for (int i = 0; i < 4; i++) {
            buf_puts(out, "keel_executions_ended_total{workflow=\"");
            put_label_value(out, workflow_value(w, n));
            buf_printf(out, "\",status=\"%s\"} %llu\n", end_statuses[i],
                       load(&registry.workflows[w].ended[i]));
        }
    }
    render_workflow_histograms(out, shown, n, "keel_execution_duration_seconds",
                               "Time from an execution's creation to its end, by workflow.",
                               &execution_buckets, offsetof(struct workflow_metrics, duration));
    render_workflow_histograms(out, shown, n, "keel_activity_attempt_duration_seconds",
                               "Time from sending an activity or compensation attempt to its "
                               "answer, by workflow.",
                               &request_buckets, offsetof(struct workflow_metrics, attempts));
}

static bool host_used(int h)
{
    unsigned long long any = 0;
    for (int i = 0; i < METRICS_RESULT__COUNT; i++)
        any += load(&registry.hosts[h].results[i]);
    return any > 0;
}

static void render_hosts(struct buf *out)
{
    size_t n = atomic_load_explicit(&registry.host_labels.n, memory_order_acquire);
    struct buf label = BUF_INIT;
    buf_puts(out, "# HELP keel_webhook_results_total Webhook requests (activity and "
                  "compensation attempts, handler calls) by host and result.\n"
                  "# TYPE keel_webhook_results_total counter\n");
    for (int h = 0; h < HOST_SLOTS; h++) {
        if (h >= (int)n && !(h == METRICS_MAX_HOSTS && host_used(h)))
            continue;
        const char *v = h < (int)n ? registry.host_labels.values[h] : METRICS_LABEL_OTHER;
        for (int i = 0; i < METRICS_RESULT__COUNT; i++) {
            buf_puts(out, "keel_webhook_results_total{host=\"");
            put_label_value(out, v);
            buf_printf(out, "\",result=\"%s\"} %llu\n", result_names[i],
                       load(&registry.hosts[h].results[i]));
        }
    }
    buf_puts(out, "# HELP keel_webhook_host_duration_seconds Time from sending a webhook request "
                  "to its answer or failure, by host.\n"
                  "# TYPE keel_webhook_host_duration_seconds histogram\n");
    for (int h = 0; h < HOST_SLOTS; h++) {
        if (h >= (int)n && !(h == METRICS_MAX_HOSTS && host_used(h)))
            continue;
        buf_reset(&label);
        buf_puts(&label, "host=\"");
        put_label_value(&label, h < (int)n ? registry.host_labels.values[h] : METRICS_LABEL_OTHER);
        buf_puts(&label, "\",");
        render_histogram_series(out, "keel_webhook_host_duration_seconds", label.data,
                                &request_buckets, &registry.hosts[h].duration);
    }
    buf_free(&label);
    buf_printf(out,
               "# HELP keel_metrics_label_values Distinct values a bounded label holds (at most "
               "the bound, then \"" METRICS_LABEL_OTHER "\").\n"
               "# TYPE keel_metrics_label_values gauge\n"
               "keel_metrics_label_values{label=\"workflow\"} %zu\n"
               "keel_metrics_label_values{label=\"host\"} %zu\n",
               atomic_load_explicit(&registry.workflow_labels.n, memory_order_acquire), n);
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
    render_workflows(out);
    buf_puts(out, "# HELP keel_transitions_total State changes run by the engine's workers, "
                  "by outcome.\n# TYPE keel_transitions_total counter\n");
    for (int i = 0; i < METRICS_TRANSITION__COUNT; i++)
        buf_printf(out, "keel_transitions_total{outcome=\"%s\"} %llu\n", transition_names[i],
                   load(&registry.transitions[i]));
    render_histogram(out, "keel_transition_duration_seconds",
                     "Time of one transition's transaction, from BEGIN to COMMIT.", &fast_buckets,
                     &registry.transition_seconds);
    buf_puts(out, "# HELP keel_webhook_attempts_total Activity and compensation requests, by "
                  "outcome.\n# TYPE keel_webhook_attempts_total counter\n");
    for (int i = 0; i < METRICS_WEBHOOK__COUNT; i++)
        buf_printf(out, "keel_webhook_attempts_total{outcome=\"%s\"} %llu\n", webhook_names[i],
                   load(&registry.webhooks[i]));
    render_histogram(out, "keel_webhook_duration_seconds",
                     "Time from sending a webhook to its answer.", &fast_buckets,
                     &registry.webhook_seconds);
    render_hosts(out);
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
    static const char *const purge_names[] = {"retention", "api"};
    buf_puts(out, "# HELP keel_executions_purged_total Ended executions removed by this keeld, "
                  "by the retention purge or DELETE.\n"
                  "# TYPE keel_executions_purged_total counter\n");
    for (int i = 0; i < METRICS_PURGE__COUNT; i++)
        buf_printf(out, "keel_executions_purged_total{reason=\"%s\"} %llu\n", purge_names[i],
                   load(&registry.purged_executions[i]));
    buf_puts(out, "# HELP keel_rows_purged_total Rows of those executions removed with them "
                  "(events, steps, signals, tasks, task tokens, tags).\n"
                  "# TYPE keel_rows_purged_total counter\n");
    for (int i = 0; i < METRICS_PURGE__COUNT; i++)
        buf_printf(out, "keel_rows_purged_total{reason=\"%s\"} %llu\n", purge_names[i],
                   load(&registry.purged_rows[i]));
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
