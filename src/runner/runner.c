/* The runner: its job queues, webhook dispatch, and start and stop. The threads it starts live
 * in worker.c (journaling), claimer.c (due tasks, NOTIFY) and keepalive.c (liveness). */
#include "runner/runner.h"

#include "runner/internal.h"

#include "log.h"
#include "metrics.h"
#include "store/pool.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/ids.h"
#include "util/jsontext.h"
#include "util/timeutil.h"
#include "webhook/dispatcher.h"
#include "webhook/sign.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void job_free(struct job *j)
{
    if (j->input)
        j->input->ops->free(j->input);
    free(j->execution_id);
    free(j->step_id);
    json_decref(j->output);
    json_decref(j->error);
    free(j->task_kind);
    json_decref(j->payload);
    free(j->token);
    free(j->workflow);
    free(j);
}

static size_t queue_of(const struct runner *r, const char *execution_id)
{
    uint32_t h = 2166136261u;
    for (const char *p = execution_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return (size_t)(h % (uint32_t)r->cfg.workers);
}

void push_job(struct runner *r, struct job *j)
{
    pthread_mutex_lock(&r->lock);
    /* An input that names no execution yet goes by its route to the worker that resolves it. */
    const char *key = j->execution_id ? j->execution_id : j->input->route;
    struct worker_queue *q = &r->queues[queue_of(r, key)];
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&r->lock);
}

void wake_claimer(struct runner *r)
{
    pthread_mutex_lock(&r->lock);
    r->claim_requested = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

struct attempt_ctx {
    struct runner *runner;
    char *execution_id;
    char *step_id;
    int attempt;
    bool compensation;
    char *token;
    int metrics_workflow; /* label slots (metrics.h) */
    int metrics_host;
    bool waiting; /* held back by its host's limit (dispatcher thread only) */
};

static void on_webhook_done(struct wh_result *res, void *user)
{
    struct attempt_ctx *a = user;
    struct runner *r = a->runner;
    if (!a->waiting)
        atomic_fetch_sub(&r->in_flight, 1);
    enum metrics_webhook outcome = res->outcome == WH_OK       ? METRICS_WEBHOOK_OK
                                   : res->outcome == WH_ASYNC  ? METRICS_WEBHOOK_ASYNC
                                   : res->outcome == WH_FAILED ? METRICS_WEBHOOK_FAILED
                                                               : METRICS_WEBHOOK_ABORTED;
    int64_t us = res->duration_ms * 1000;
    metrics_webhook(outcome, us);
    metrics_webhook_host(
        a->metrics_host,
        metrics_webhook_result_of(outcome, res->http_status, wh_result_error_type(res)), us);
    if (outcome != METRICS_WEBHOOK_ABORTED)
        metrics_activity_attempt(a->metrics_workflow, us);
    if (res->outcome == WH_ABORTED) {
        /* keeld is stopping: the lease expires and a later holder sends the attempt again. */
        free(a->execution_id);
        free(a->step_id);
        free(a->token);
        free(a);
        return;
    }
    struct job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_RESULT;
    j->execution_id = a->execution_id;
    j->step_id = a->step_id;
    j->attempt = a->attempt;
    j->compensation = a->compensation;
    j->token = a->token;
    j->outcome = res->outcome;
    j->output = res->output;
    res->output = NULL;
    j->error = res->error;
    res->error = NULL;
    j->retryable = res->retryable;
    j->retry_after_ms = res->retry_after_ms;
    free(a);
    push_job(r, j);
    /* Waking the claimer after every result would cost a claim query per step; it only needs
     * to know when it stopped for lack of room. */
    if (atomic_exchange(&r->starved, false))
        wake_claimer(r);
}

/* An attempt waits for the capacity of its host, or was sent after waiting (on the dispatcher
 * thread): the execution's worker journals it, off the path of attempts that go at once. */
static void on_webhook_capacity(const struct wh_capacity *c, void *user)
{
    struct attempt_ctx *a = user;
    /* An attempt held back by its host's limit leaves the claimer room (KEEL_MAX_IN_FLIGHT
     * bounds what is on the wire): a backlog for one slow host must not stop the claiming of
     * retries to other hosts, timers and the rest. */
    a->waiting = c->phase == WH_CAPACITY_WAITING;
    if (a->waiting) {
        atomic_fetch_sub(&a->runner->in_flight, 1);
        if (atomic_exchange(&a->runner->starved, false))
            wake_claimer(a->runner);
    } else {
        atomic_fetch_add(&a->runner->in_flight, 1);
    }
    struct job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_CAPACITY;
    j->execution_id = xstrdup(a->execution_id);
    j->step_id = xstrdup(a->step_id);
    j->attempt = a->attempt;
    j->compensation = a->compensation;
    if (c->phase == WH_CAPACITY_WAITING && c->limit) {
        const struct wh_host_limit *l = c->limit;
        char rate[32];
        snprintf(rate, sizeof rate, "%ld/%s", l->rate,
                 l->rate_period_ms == 1000    ? "s"
                 : l->rate_period_ms == 60000 ? "m"
                                              : "h");
        char *limit = xasprintf("%s=%s", l->name, l->limit_text);
        j->payload =
            json_pack("{s:s, s:s, s:o, s:o}", "host", c->host, "limit", limit, "concurrency",
                      l->concurrency ? json_integer(l->concurrency) : json_null(), "rate",
                      l->rate ? json_string(rate) : json_null());
        free(limit);
    }
    push_job(a->runner, j);
}

void send_attempt(struct runner *r, const char *execution_id, const char *workflow, int version,
                  const char *step_id, int attempt, bool compensation, const json_t *payload,
                  const char *token)
{
    /* step_id is the step's path: the key follows it (contract, "Flow steps"); the body names
     * the step by its id and, inside a parallel or for_each, by its path as well. */
    char *key = xasprintf("%s/%s%s", execution_id, step_id, compensation ? "/compensate" : "");
    const char *slash = strrchr(step_id, '/');
    const char *url = json_string_value(json_object_get(payload, "url"));
    json_t *body = json_pack("{s:s, s:s, s:i, s:s, s:i, s:O, s:s}", "execution_id", execution_id,
                             "workflow", workflow, "version", version, "step",
                             slash ? slash + 1 : step_id, "attempt", attempt, "input",
                             json_object_get(payload, "input"), "task_token", token ? token : "");
    if (slash)
        json_object_set_new(body, "path", json_string(step_id));
    if (version == 0) {
        /* A code execution's step call (no definition, so no version): its name and key. */
        json_object_set_new(body, "workflow", json_null());
        json_object_set_new(body, "version", json_null());
        json_object_set_new(body, "name", json_string(workflow));
        json_object_set_new(body, "key", json_string(step_id));
    }
    struct wh_request *req = wh_request_new(url ? url : "", key, attempt);
    if (compensation)
        json_object_set_new(body, "compensation", json_true());
    /* Its input was encoded when the attempt was journaled, so this cannot fail; if it did,
     * the request goes without a body rather than take keeld down. */
    req->body = json_text(body);
    req->body_len = req->body ? strlen(req->body) : 0;
    json_decref(body);
    char tp[56];
    /* A compensation is its own span, apart from the step's attempt of the same number. */
    ids_traceparent(execution_id, key + strlen(execution_id) + 1, attempt, tp);
    req->traceparent = xstrdup(tp);
    free(key);
    req->timeout_ms = (long)json_integer_value(json_object_get(payload, "timeout_ms"));
    req->secrets = r->secrets;
    struct attempt_ctx *a = xcalloc(1, sizeof *a);
    a->runner = r;
    a->execution_id = xstrdup(execution_id);
    a->step_id = xstrdup(step_id);
    a->attempt = attempt;
    a->compensation = compensation;
    a->token = token ? xstrdup(token) : NULL;
    a->metrics_workflow = metrics_workflow_label(workflow, version == 0);
    a->metrics_host = metrics_host_label(url);
    req->done = on_webhook_done;
    req->capacity = on_webhook_capacity;
    req->user = a;
    atomic_fetch_add(&r->in_flight, 1);
    wh_dispatcher_submit(r->wh, req);
}

void runner_dispatch(struct runner *r, struct attempt_dispatch *list)
{
    while (list) {
        struct attempt_dispatch *next = list->next;
        send_attempt(r, list->execution_id, list->workflow, list->version, list->step_id,
                     list->attempt, list->compensation, list->payload, list->token);
        attempt_dispatch_free(list);
        list = next;
    }
}

/* A task of this keeld due at due_ms was committed: the claimer looks for it by then. */
static void task_due(struct runner *r, int64_t due_ms)
{
    pthread_mutex_lock(&r->lock);
    if (r->claimer_wakes_at_ms == INT64_MAX) {
        /* Awake: it goes to sleep no later than this is due (a loop at once for every task
         * committed meanwhile would claim in vain while starts pour in). */
        if (due_ms < r->due_while_awake)
            r->due_while_awake = due_ms;
    } else if (due_ms < r->claimer_wakes_at_ms) {
        r->claim_requested = true;
        pthread_cond_signal(&r->wake);
    }
    pthread_mutex_unlock(&r->lock);
}

void runner_committed(struct runner *r, struct transition_out *out, const char *execution_id)
{
    runner_dispatch(r, out->dispatches);
    out->dispatches = NULL;
    if (out->first_task_due_ms > 0)
        task_due(r, out->first_task_due_ms);
    if (out->started)
        metrics_execution_started(out->metrics_workflow);
    if (out->ended) {
        metrics_execution_ended(out->metrics_workflow, engine_exec_status_name(out->status),
                                (time_now_ms() - out->created_ms) * 1000);
        runner_ended(r, execution_id);
    }
}

void runner_webhook_stats(struct runner *r, long *in_flight, long *queued)
{
    struct wh_dispatcher_stats st;
    wh_dispatcher_get_stats(r->wh, &st);
    *in_flight = st.in_flight;
    *queued = st.queued;
}

void runner_set_host_limits(struct runner *r, struct wh_host_limits *limits)
{
    atomic_store(&r->has_host_limits, limits && limits->n > 0);
    wh_dispatcher_set_limits(r->wh, limits);
}

size_t runner_host_limit_stats(struct runner *r, struct wh_limit_stats **out)
{
    return wh_dispatcher_limit_stats(r->wh, out);
}

void runner_ended(struct runner *r, const char *execution_id)
{
    if (r->cfg.on_execution_ended)
        r->cfg.on_execution_ended(r->cfg.hook_arg, execution_id);
}

const struct transition_env *runner_env(struct runner *r)
{
    return &r->env;
}

void runner_submit(struct runner *r, struct runner_input *in)
{
    struct job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_INPUT;
    j->input = in;
    j->execution_id = in->req.execution_id ? xstrdup(in->req.execution_id) : NULL;
    push_job(r, j);
}

/* ---- start and stop ------------------------------------------------------------------------ */

struct runner *runner_start(const struct runner_config *cfg, char **why)
{
    struct runner *r = xcalloc(1, sizeof *r);
    /* The host limits are the runner's from here on, whatever happens. */
    struct wh_host_limits *host_limits = cfg->host_limits;
    r->cfg = *cfg;
    char rnd[9];
    ids_random_hex(4, rnd);
    char host[32] = "keeld";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(r->owner, sizeof r->owner, "%s:%d:%s", host, (int)getpid(), rnd);
    r->cfg.host_limits = NULL;
    if (cfg->webhook_secret && wh_secrets_parse(cfg->webhook_secret, &r->secrets, why) < 0) {
        wh_host_limits_free(host_limits);
        free(r);
        return NULL;
    }
    r->defs = defcache_new(cfg->for_each_max_items);
    r->env.defs = r->defs;
    r->env.owner = r->owner;
    r->env.max_child_depth = cfg->max_child_depth > 0 ? cfg->max_child_depth : 32;
    r->env.step_awaited = cfg->step_awaited;
    r->env.hook_arg = cfg->hook_arg;
    r->pool = store_pool_new(cfg->database_url, (int)cfg->workers + 1);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    pthread_cond_init(&r->keepalive_wake, NULL);
    r->queues = xcalloc((size_t)cfg->workers, sizeof *r->queues);
    r->worker_args = xcalloc((size_t)cfg->workers, sizeof *r->worker_args);
    for (long i = 0; i < cfg->workers; i++) {
        pthread_cond_init(&r->queues[i].work, NULL);
        r->worker_args[i] = (struct worker_arg){r, i};
    }
    atomic_init(&r->in_flight, 0);
    atomic_init(&r->starved, false);
    atomic_init(&r->live, false);
    r->claimer_wakes_at_ms = INT64_MAX;
    r->due_while_awake = INT64_MAX;
    atomic_init(&r->stopping_workers, false);
    struct wh_dispatcher_config wcfg = {
        .max_in_flight = (int)cfg->max_in_flight,
        .max_per_host = (int)cfg->max_in_flight_per_host,
        .user_agent = "keel/" KEEL_VERSION,
    };
    r->wh = wh_dispatcher_start(&wcfg);
    if (!r->wh) {
        *why = xstrdup("cannot start the webhook dispatcher");
        goto fail;
    }
    /* Before anything can be sent. */
    atomic_init(&r->has_host_limits, host_limits && host_limits->n > 0);
    r->shared_by = 1;
    wh_dispatcher_set_limits(r->wh, host_limits);
    host_limits = NULL;
    /* Take the liveness lock before anything is leased. Another live session holding the same
     * lock means two owner ids hash alike: pick another id. A database that cannot be reached
     * now is left to the claimer, which claims nothing until it holds the lock. */
    r->liveness = liveness_new(cfg->database_url, r->owner);
    for (int tries = 0; tries < 8; tries++) {
        char *lwhy = NULL;
        if (liveness_hold(r->liveness, &lwhy))
            break;
        bool collision = strstr(lwhy, "another live session") != NULL;
        free(lwhy);
        if (!collision)
            break;
        ids_random_hex(4, rnd);
        snprintf(r->owner, sizeof r->owner, "%s:%d:%s", host, (int)getpid(), rnd);
        liveness_free(r->liveness);
        r->liveness = liveness_new(cfg->database_url, r->owner);
    }
    /* Registered before anything can be started with this keeld as its owner. */
    char *hwhy = NULL;
    if (liveness_heartbeat(r->liveness, cfg->lease_grace_ms, &hwhy) == 0) {
        atomic_store(&r->live, true);
        /* Its share of the host limits before it sends anything. */
        share_host_limits(r);
    }
    free(hwhy);
    r->workers = xcalloc((size_t)cfg->workers, sizeof *r->workers);
    for (long i = 0; i < cfg->workers; i++)
        xthread_create(&r->workers[i], worker_main, &r->worker_args[i], "runner worker");
    xthread_create(&r->claimer, claimer_main, r, "runner claimer");
    xthread_create(&r->listener, listener_main, r, "runner listener");
    xthread_create(&r->keepalive, keepalive_main, r, "runner keepalive");
    log_info("runner started", "owner", r->owner);
    return r;
fail:
    wh_host_limits_free(host_limits);
    liveness_free(r->liveness);
    defcache_free(r->defs);
    store_pool_free(r->pool);
    wh_secrets_free(r->secrets);
    free(r);
    return NULL;
}

void runner_stop(struct runner *r, long grace_ms)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping_claims = true;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->claimer, NULL);
    pthread_join(r->listener, NULL);
    /* Results of attempts that finish within the grace period are journaled by the workers. */
    wh_dispatcher_stop(r->wh, grace_ms);
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->stopping_workers, true);
    for (long i = 0; i < r->cfg.workers; i++)
        pthread_cond_broadcast(&r->queues[i].work);
    pthread_mutex_unlock(&r->lock);
    for (long i = 0; i < r->cfg.workers; i++)
        pthread_join(r->workers[i], NULL);
    for (long i = 0; i < r->cfg.workers; i++) {
        while (r->queues[i].head) {
            struct job *j = r->queues[i].head;
            r->queues[i].head = j->next;
            job_free(j);
        }
        pthread_cond_destroy(&r->queues[i].work);
    }
    free(r->queues);
    free(r->worker_args);
    free(r->workers);
    /* Only now, with every result of ours journaled or given up, may the others take over: the
     * lock goes with the liveness connection. */
    pthread_mutex_lock(&r->lock);
    r->stopping_keepalive = true;
    pthread_cond_broadcast(&r->keepalive_wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->keepalive, NULL);
    liveness_free(r->liveness);
    defcache_free(r->defs);
    store_pool_free(r->pool);
    wh_secrets_free(r->secrets);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    pthread_cond_destroy(&r->keepalive_wake);
    free(r);
}
