/* Runner threads and the job queue between them. */
#include "runner/runner.h"

#include "runner/input.h"
#include "runner/liveness.h"

#include "log.h"
#include "metrics.h"
#include "store/pool.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/ids.h"
#include "util/timeutil.h"
#include "webhook/dispatcher.h"
#include "webhook/sign.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLAIM_BATCH       64
#define MAX_IDLE_SLEEP_MS 30000
#define DB_RETRY_DELAY_MS 500
#define RESULT_GIVE_UP_MS 60000
/* How often the liveness thread looks for keelds that died or stopped, and for owners with no
 * keelds row. */
#define LIVENESS_SWEEP_MS   1000
#define ORPHANS_SWEEP_MS    30000
#define MAX_HEARTBEAT_EVERY 1000
/* The most jobs one worker applies in one transaction. A batch is whatever queued while the
 * worker's last one committed, so a lone job goes at once; under load, many inputs share one
 * commit (one WAL flush). */
#define BATCH_MAX 64

enum job_kind {
    JOB_RESULT,   /* an attempt's webhook finished */
    JOB_CLAIMED,  /* a task leased by the claimer */
    JOB_TAKEOVER, /* an execution taken over from a dead keeld: send its attempts again */
    JOB_INPUT,    /* an input from the API (runner/input.h); execution_id NULL until resolved */
};

struct job {
    enum job_kind kind;
    int64_t task_id;
    char *execution_id;
    char *step_id;
    int attempt;
    bool compensation;    /* a compensation attempt or its timeout */
    int64_t first_try_ms; /* when the job was first tried, to give up on a database that stays
                             down: the task's lease then expires and the attempt is redone */
    /* JOB_RESULT */
    enum wh_outcome outcome;
    json_t *output;
    json_t *error;
    bool retryable;
    int64_t retry_after_ms;
    /* JOB_CLAIMED */
    char *task_kind;
    json_t *payload;
    char *token;
    char *workflow;
    int version;
    /* JOB_INPUT */
    struct runner_input *input;
    struct job *next;
};

struct runner {
    struct runner_config cfg;
    char owner[64];
    struct transition_env env;
    struct defcache *defs;
    struct store_pool *pool;
    struct wh_dispatcher *wh;
    struct wh_secrets *secrets;

    pthread_mutex_t lock; /* guards the queues, the flags and the claimer's wake-up */
    pthread_cond_t wake;  /* the claimer should look for due tasks */
    /* One queue per worker; an execution's jobs always go to the same one (by a hash of its
     * id), so one worker at a time works on an execution, in the order its inputs came, and
     * workers never wait on each other's row locks. */
    struct worker_queue *queues;
    bool stopping_claims;
    atomic_bool stopping_workers; /* also read outside the lock by workers giving up a job */
    bool claim_requested;
    int64_t claimer_wakes_at_ms; /* wall clock: when the sleeping claimer looks again;
                                    INT64_MAX while it is awake */
    int64_t due_while_awake;     /* the earliest task of this keeld committed while the claimer
                                    was awake (its queries may have missed it); INT64_MAX: none */
    atomic_long in_flight;
    atomic_bool starved; /* the claimer stopped claiming because in_flight was at its cap */

    pthread_t *workers;
    struct worker_arg *worker_args;
    pthread_t claimer;
    pthread_t listener;
    pthread_t keepalive;
    bool stopping_keepalive;
    pthread_cond_t keepalive_wake;
    atomic_bool live;          /* this keeld holds its liveness lock (nothing is claimed without) */
    struct liveness *liveness; /* used by the keepalive thread only (after runner_start) */
};

static void job_free(struct job *j)
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

struct worker_queue {
    pthread_cond_t work; /* a job was queued here */
    struct job *head, *tail;
};

struct worker_arg {
    struct runner *r;
    long index;
};

static size_t queue_of(const struct runner *r, const char *execution_id)
{
    uint32_t h = 2166136261u;
    for (const char *p = execution_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return (size_t)(h % (uint32_t)r->cfg.workers);
}

static void push_job(struct runner *r, struct job *j)
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

static void wake_claimer(struct runner *r)
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
};

static void on_webhook_done(struct wh_result *res, void *user)
{
    struct attempt_ctx *a = user;
    struct runner *r = a->runner;
    atomic_fetch_sub(&r->in_flight, 1);
    metrics_webhook(res->outcome == WH_OK       ? METRICS_WEBHOOK_OK
                    : res->outcome == WH_ASYNC  ? METRICS_WEBHOOK_ASYNC
                    : res->outcome == WH_FAILED ? METRICS_WEBHOOK_FAILED
                                                : METRICS_WEBHOOK_ABORTED,
                    res->duration_ms * 1000);
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

static void send_attempt(struct runner *r, const char *execution_id, const char *workflow,
                         int version, const char *step_id, int attempt, bool compensation,
                         const json_t *payload, const char *token)
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
    struct wh_request *req = wh_request_new(url ? url : "", key, attempt);
    if (compensation)
        json_object_set_new(body, "compensation", json_true());
    req->body = json_dumps(body, JSON_COMPACT);
    req->body_len = strlen(req->body);
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
    req->done = on_webhook_done;
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
    if (out->ended) {
        metrics_execution_ended(engine_exec_status_name(out->status));
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

void runner_ended(struct runner *r, const char *execution_id)
{
    if (r->cfg.on_execution_ended)
        r->cfg.on_execution_ended(r->cfg.hook_arg, execution_id);
}

const struct transition_env *runner_env(struct runner *r)
{
    return &r->env;
}

/* ---- workers ------------------------------------------------------------------------------- */

/* Builds the engine input for a job; false for a task of a kind this keeld does not know. */
static bool job_input(const struct job *j, struct engine_input *in)
{
    memset(in, 0, sizeof *in);
    in->now_ms = time_now_ms();
    in->attempt = j->attempt;
    in->retry_after_ms = -1;
    in->compensation = j->compensation;
    if (j->kind == JOB_TAKEOVER)
        return true;
    if (j->kind == JOB_RESULT) {
        if (j->outcome == WH_OK) {
            in->kind = ENGINE_IN_ATTEMPT_SUCCEEDED;
            in->output = j->output ? j->output : json_null();
        } else if (j->outcome == WH_ASYNC) {
            in->kind = ENGINE_IN_ATTEMPT_ACCEPTED;
        } else {
            in->kind = ENGINE_IN_ATTEMPT_FAILED;
            in->error = j->error;
            in->non_retryable = !j->retryable;
            in->retry_after_ms = j->retry_after_ms;
        }
        return true;
    }
    enum engine_task_kind kind;
    return engine_task_kind_from_name(j->task_kind, &kind) == 0 &&
           engine_input_for_task(kind, in) == 0;
}

/* Sets req up for job j; false for a task of a kind this keeld does not know (left in place).
 * A claimed attempt gets a new token (a resend after a takeover too): the transition records
 * its hash with attempt_started, and tokens of earlier sends stay valid while the attempt is in
 * flight. */
static bool job_request(struct job *j, struct transition_request *req, bool *is_attempt_start)
{
    memset(req, 0, sizeof *req);
    req->execution_id = j->execution_id;
    req->step_id = j->step_id;
    /* Every job is this keeld's own work: it applies only while this keeld owns the
     * execution. */
    req->fenced = true;
    req->resend_in_flight = j->kind == JOB_TAKEOVER;
    if (!job_input(j, &req->in)) {
        log_error("task of an unknown kind left in place", "execution", j->execution_id, "kind",
                  j->task_kind);
        return false;
    }
    *is_attempt_start = j->kind == JOB_CLAIMED && req->in.kind == ENGINE_IN_ATTEMPT_STARTED;
    if (*is_attempt_start) {
        char token[WH_TASK_TOKEN_LEN + 1], hash[WH_TASK_TOKEN_HASH_LEN + 1];
        wh_task_token_new(token, hash);
        free(j->token);
        j->token = xstrdup(token);
        req->started_token = j->token;
    }
    /* A claimed task goes with the transition that applies it (an attempt's too: once started,
     * the attempt is held by the execution's owner, not by a task). */
    req->consume_task_id = j->kind == JOB_CLAIMED ? j->task_id : 0;
    return true;
}

static void count_transition(enum transition_outcome rc, int64_t us)
{
    metrics_transition(rc == TRANSITION_APPLIED      ? METRICS_TRANSITION_APPLIED
                       : rc == TRANSITION_STALE      ? METRICS_TRANSITION_STALE
                       : rc == TRANSITION_LEASE_LOST ? METRICS_TRANSITION_LEASE_LOST
                       : rc == TRANSITION_NOT_FOUND  ? METRICS_TRANSITION_STALE
                                                     : METRICS_TRANSITION_ERROR,
                       us);
}

/* A claimed task of an execution that another keeld owns now (it took this one over while it
 * was paused) is given back at once: its new owner claims it without waiting for the lease to
 * run out. Best effort: the lease runs out anyway. */
static void release_task(struct runner *r, PGconn *conn, const struct job *j)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)j->task_id);
    const char *params[] = {id, r->owner};
    PQclear(store_run(conn, STMT_TASK_RELEASE, 2, params));
}

/* What follows a committed transition of job j (rc not TRANSITION_ERROR): the attempt it
 * journaled as started is sent, the attempts it leased are dispatched, the rest is logged. */
static void job_committed(struct runner *r, struct job *j, enum transition_outcome rc,
                          const struct transition_request *req, struct transition_out *out,
                          bool is_attempt_start)
{
    switch (rc) {
    case TRANSITION_APPLIED:
        if (is_attempt_start)
            send_attempt(r, j->execution_id, j->workflow, j->version, j->step_id, j->attempt,
                         req->in.compensation, j->payload, j->token);
        runner_committed(r, out, j->execution_id);
        break;
    case TRANSITION_STALE:
        attempt_dispatch_free_list(out->dispatches);
        log_debug("input did not apply", "execution", j->execution_id, "step", j->step_id);
        break;
    case TRANSITION_NOT_FOUND:
        log_warn("task for an unknown execution dropped", "execution", j->execution_id);
        break;
    case TRANSITION_LEASE_LOST:
        /* Another keeld took the execution over (this one was paused or cut off past its
         * heartbeat): it sent the attempts in flight again and journals their results. */
        log_warn("result dropped: the execution is no longer owned here", "execution",
                 j->execution_id, "step", j->step_id ? j->step_id : "");
        break;
    case TRANSITION_ERROR:
        break;
    }
}

/* A job that could not be applied: queued again after a pause. After RESULT_GIVE_UP_MS a
 * claimed task is given up (its lease runs out and it is claimed again); an attempt's result,
 * whose attempt no task holds, becomes a takeover of its execution, which sends the attempts in
 * flight again once the database is back (the same key: the receiver answers again). Nothing is
 * kept when keeld stops: the keeld that takes its executions over sends them again. */
static void retry_later(struct runner *r, struct job *j)
{
    if (atomic_load(&r->stopping_workers)) {
        job_free(j);
        return;
    }
    if (time_mono_ms() - j->first_try_ms > RESULT_GIVE_UP_MS && j->kind != JOB_TAKEOVER) {
        if (j->kind == JOB_CLAIMED) {
            log_warn("giving up on a claimed task; it is claimed again after its lease",
                     "execution", j->execution_id, "step", j->step_id);
            job_free(j);
            return;
        }
        log_warn("giving up on a result; its execution's attempts in flight will be sent again",
                 "execution", j->execution_id, "step", j->step_id);
        struct job *t = xcalloc(1, sizeof *t);
        t->kind = JOB_TAKEOVER;
        t->execution_id = xstrdup(j->execution_id);
        job_free(j);
        j = t;
    }
    usleep(DB_RETRY_DELAY_MS * 1000);
    push_job(r, j);
}

/* An input from the API that failed for good (a database error, its own or its batch's when it
 * ran alone): its request is answered with the error at once, not retried. */
static void input_failed(struct job *j, PGconn *conn, const char *why)
{
    struct runner_input *in = j->input;
    attempt_dispatch_free_list(in->out.dispatches);
    in->out.dispatches = NULL;
    in->rc = TRANSITION_ERROR;
    in->ops->finish(in, conn, NULL, why ? why : "the database did not answer");
    job_free(j);
}

/* Finds the execution of an input that names none yet (a task token's), outside any
 * transaction, and queues it again for the worker of that execution. */
static void resolve_input(struct runner *r, struct job *j)
{
    char *why = NULL;
    PGconn *conn = store_acquire(r->pool, 5000, &why);
    int rc = conn ? j->input->ops->resolve(j->input, conn, &why) : -1;
    if (rc < 0) {
        input_failed(j, conn, why);
    } else if (rc == 0) {
        j->input->skipped = true;
        j->input->ops->finish(j->input, conn, NULL, NULL);
        job_free(j);
    } else {
        j->execution_id = xstrdup(j->input->req.execution_id);
        push_job(r, j);
    }
    free(why);
    if (conn)
        store_release(r->pool, conn);
}

struct batch_entry {
    struct job *job;
    size_t order; /* its place in the queue, so that one execution's jobs keep their order */
    struct transition_request own_req;
    struct transition_request *req; /* own_req, or an input's */
    struct transition_out own_out;
    struct transition_out *out; /* own_out, or an input's */
    enum transition_outcome rc;
    bool is_attempt_start;
    bool skip;    /* a task of an unknown kind (left in place), or an input answered already */
    int64_t us;   /* how long its transition took, counted once the batch commits (a batch
                     rolled back runs each job again, counted then) */
    size_t reads; /* an input's reads after the commit: where they start in the results */
    int n_reads;
};

static int by_execution(const void *x, const void *y)
{
    const struct batch_entry *a = x, *b = y;
    int c = strcmp(a->job->execution_id, b->job->execution_id);
    return c ? c : (a->order > b->order) - (a->order < b->order);
}

/* Sets up entry e: its request, and for an input the statements it sends before its lock. */
static bool entry_request(struct batch_entry *e)
{
    struct runner_input *in = e->job->input;
    if (!in) {
        e->req = &e->own_req;
        e->out = &e->own_out;
        return job_request(e->job, e->req, &e->is_attempt_start);
    }
    e->req = &in->req;
    e->out = &in->out;
    in->skipped = false;
    memset(&in->out, 0, sizeof in->out);
    return true;
}

/* Runs entry e's transition in the open transaction. False on a database error (*why set): the
 * transaction is lost. */
static bool entry_apply(struct runner *r, PGconn *conn, struct batch_entry *e, PGresult **before,
                        struct batch_writes *writes, char **why)
{
    struct runner_input *in = e->job->input;
    if (in && in->ops->prepare) {
        enum runner_input_step step = in->ops->prepare(in, conn, before, why);
        if (step == INPUT_ERROR)
            return false;
        if (step == INPUT_SKIP) {
            in->skipped = true;
            e->skip = true;
            return PQtransactionStatus(conn) == PQTRANS_INTRANS;
        }
    }
    e->req->writes = writes;
    int64_t t0 = time_mono_us();
    e->rc = transition_step(&r->env, conn, e->req, e->out, why);
    e->us = time_mono_us() - t0;
    if (e->rc == TRANSITION_ERROR || PQtransactionStatus(conn) != PQTRANS_INTRANS)
        return false;
    if (in && in->only_applied && e->rc != TRANSITION_APPLIED) {
        *why = xstrdup("the start did not apply");
        return false;
    }
    if (in && in->ops->after && (e->rc == TRANSITION_APPLIED || e->rc == TRANSITION_STALE) &&
        in->ops->after(in, conn, e->rc, why) < 0)
        return false;
    if (e->rc == TRANSITION_LEASE_LOST && e->job->kind == JOB_CLAIMED)
        release_task(r, conn, e->job);
    return true;
}

/* What follows the commit of entry e; an input is answered (reads: the results of its reads
 * after the commit). */
static void entry_committed(struct runner *r, PGconn *conn, struct batch_entry *e,
                            PGresult *const *reads)
{
    struct runner_input *in = e->job->input;
    if (!in) {
        if (!e->skip) {
            count_transition(e->rc, e->us);
            job_committed(r, e->job, e->rc, e->req, e->out, e->is_attempt_start);
        }
        return;
    }
    if (!e->skip) {
        count_transition(e->rc, e->us);
        in->rc = e->rc;
        if (e->rc == TRANSITION_APPLIED) {
            struct transition_out dispatch = in->out;
            runner_committed(r, &dispatch, in->req.execution_id);
            in->out.dispatches = NULL;
        } else {
            attempt_dispatch_free_list(in->out.dispatches);
            in->out.dispatches = NULL;
        }
    }
    in->ops->finish(in, conn, reads, NULL);
}

/* Applies n jobs in one transaction with one commit, executions locked in id order, in three
 * round trips whatever n: BEGIN and every execution's lock-and-read in one pipeline; the
 * transitions (plus the reads the interpreter asks for on the way); every transition's writes
 * with COMMIT, and the reads inputs answer with, in another. If any meets a database error,
 * nothing of the batch is kept and each job runs again on its own; a job alone that fails is
 * retried later, or, an input, answered with the error. */
static void run_batch(struct runner *r, struct job **jobs, size_t n)
{
    struct batch_entry *e = xcalloc(n, sizeof *e);
    for (size_t k = 0; k < n; k++) {
        e[k].job = jobs[k];
        e[k].order = k;
    }
    qsort(e, n, sizeof *e, by_execution);
    char *why = NULL;
    bool ok = false;
    PGconn *conn = store_acquire(r->pool, 5000, &why);
    size_t per = 2 + RUNNER_INPUT_MAX_CALLS;
    struct store_call *calls = xcalloc(per * n + 1, sizeof *calls);
    PGresult **res = xcalloc(per * n + 1, sizeof *res);
    size_t n_calls = 0;
    if (conn) {
        ok = true;
        bool began = false;
        struct batch_writes writes;
        batch_writes_init(&writes);
        struct transition_lock *locks = xcalloc(n, sizeof *locks);
        size_t *read_at = xcalloc(n, sizeof *read_at), *before_at = xcalloc(n, sizeof *before_at);
        calls[n_calls++] = (struct store_call){.command = "BEGIN"};
        for (size_t k = 0; k < n; k++) {
            if (!entry_request(&e[k])) {
                e[k].skip = true;
                continue;
            }
            struct runner_input *in = e[k].job->input;
            before_at[k] = n_calls;
            if (in && in->ops->before_lock)
                n_calls += (size_t)in->ops->before_lock(in, calls + n_calls);
            transition_lock_prepare(e[k].req, &locks[k]);
            calls[n_calls++] = locks[k].calls[0];
            read_at[k] = n_calls;
            calls[n_calls++] = locks[k].calls[1];
        }
        if (n_calls > 1) {
            began = true;
            ok = store_pipeline(conn, calls, (int)n_calls, res, &why) == 0;
        }
        for (size_t k = 0; k < n && ok; k++) {
            if (e[k].skip)
                continue;
            e[k].req->locked_read = res[read_at[k]];
            res[read_at[k]] = NULL;
            ok = entry_apply(r, conn, &e[k], res + before_at[k], &writes, &why);
        }
        for (size_t i = 0; i < n_calls; i++) {
            PQclear(res[i]);
            res[i] = NULL;
        }
        for (size_t k = 0; k < n; k++) {
            if (e[k].req && (!e[k].skip || e[k].job->input))
                transition_lock_free(&locks[k]);
            if (e[k].req) {
                PQclear(e[k].req->locked_read); /* not taken when the batch stopped before it */
                e[k].req->locked_read = NULL;
                e[k].req->writes = NULL;
            }
        }
        free(locks);
        free(read_at);
        free(before_at);
        /* The inputs' reads go right after COMMIT, in its round trip. */
        n_calls = 0;
        for (size_t k = 0; k < n && ok && began; k++) {
            struct runner_input *in = e[k].job->input;
            if (!in || !in->ops->reply_reads)
                continue;
            in->rc = e[k].skip ? TRANSITION_STALE : e[k].rc;
            e[k].reads = n_calls;
            e[k].n_reads = in->ops->reply_reads(in, calls + n_calls);
            n_calls += (size_t)e[k].n_reads;
        }
        if (ok && began)
            ok = batch_writes_flush(conn, &writes, r->owner, calls, (int)n_calls, res, &why) == 0;
        ok = ok && PQtransactionStatus(conn) == PQTRANS_IDLE;
        if (!ok && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
            store_command(conn, "ROLLBACK");
        batch_writes_free(&writes);
    }
    if (ok) {
        if (n > 1)
            metrics_batch(n);
        for (size_t k = 0; k < n; k++) {
            entry_committed(r, conn, &e[k], e[k].n_reads ? res + e[k].reads : NULL);
            job_free(e[k].job);
        }
    } else if (n == 1) {
        if (e[0].req && e[0].rc != TRANSITION_ERROR && !e[0].job->input)
            attempt_dispatch_free_list(e[0].out->dispatches);
        if (e[0].job->input) {
            input_failed(e[0].job, conn, why);
        } else {
            log_warn("transition failed; will retry", "execution", e[0].job->execution_id, "error",
                     why);
            retry_later(r, e[0].job);
        }
    }
    for (size_t i = 0; i < n_calls; i++)
        PQclear(res[i]);
    free(calls);
    free(res);
    if (conn)
        store_release(r->pool, conn);
    if (!ok && n > 1) {
        log_debug("batch rolled back; its jobs run one by one", "error", why);
        for (size_t k = 0; k < n; k++) {
            if (e[k].req && e[k].rc != TRANSITION_ERROR) {
                attempt_dispatch_free_list(e[k].out->dispatches);
                e[k].out->dispatches = NULL;
            }
            run_batch(r, &e[k].job, 1);
        }
    }
    free(why);
    free(e);
}
static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    struct runner *r = wa->r;
    struct worker_queue *q = &r->queues[wa->index];
    struct job *batch[BATCH_MAX], *unresolved[BATCH_MAX];
    for (;;) {
        pthread_mutex_lock(&r->lock);
        while (!q->head && !atomic_load(&r->stopping_workers))
            pthread_cond_wait(&q->work, &r->lock);
        size_t n = 0, n_unresolved = 0;
        /* At most one job per execution in a batch: the next ones wait for the next batch, in
         * order. Several updates of one row in one transaction cannot be HOT (the page keeps
         * every version until the commit), and an execution updated dozens of times per batch
         * fills its index entries with versions every later read walks through. */
        struct job **link = &q->head, *last = NULL;
        while (*link && n < BATCH_MAX && n_unresolved < BATCH_MAX) {
            struct job *j = *link;
            if (!j->execution_id) {
                *link = j->next;
                unresolved[n_unresolved++] = j;
                continue;
            }
            bool seen = false;
            for (size_t k = 0; k < n && !seen; k++)
                seen = strcmp(batch[k]->execution_id, j->execution_id) == 0;
            if (seen) {
                last = j;
                link = &j->next;
                continue;
            }
            *link = j->next;
            batch[n++] = j;
        }
        /* Scanned to the end: the tail is the last job left behind (or none). Stopped early:
         * the tail was not reached and stays. */
        if (!*link)
            q->tail = last;
        pthread_mutex_unlock(&r->lock);
        if (n == 0 && n_unresolved == 0)
            return NULL;
        for (size_t k = 0; k < n_unresolved; k++)
            resolve_input(r, unresolved[k]);
        for (size_t k = 0; k < n; k++)
            if (!batch[k]->first_try_ms)
                batch[k]->first_try_ms = time_mono_ms();
        if (n > 0)
            run_batch(r, batch, n);
    }
}

/* ---- claimer ------------------------------------------------------------------------------- */

static int claim_batch(struct runner *r, PGconn *conn, int limit, char **why)
{
    char grace[24], lim[16];
    snprintf(grace, sizeof grace, "%ld", r->cfg.lease_grace_ms);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *params[] = {r->owner, grace, lim};
    PGresult *res = store_run(conn, STMT_TASKS_CLAIM, 3, params);
    if (!store_ok(res)) {
        *why = store_error(res, conn);
        PQclear(res);
        return -1;
    }
    int n = PQntuples(res);
    metrics_tasks_claimed(n);
    for (int i = 0; i < n; i++) {
        struct job *j = xcalloc(1, sizeof *j);
        j->kind = JOB_CLAIMED;
        j->task_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        j->execution_id = xstrdup(PQgetvalue(res, i, 1));
        j->task_kind = xstrdup(PQgetvalue(res, i, 2));
        j->step_id = xstrdup(PQgetvalue(res, i, 3));
        j->attempt = PQgetisnull(res, i, 4) ? 0 : atoi(PQgetvalue(res, i, 4));
        j->payload = PQgetisnull(res, i, 5) ? NULL : json_loads(PQgetvalue(res, i, 5), 0, NULL);
        j->workflow = xstrdup(PQgetvalue(res, i, 6));
        j->version = atoi(PQgetvalue(res, i, 7));
        push_job(r, j);
    }
    PQclear(res);
    return n;
}

/* Milliseconds until the next task is due or a lease expires; MAX_IDLE_SLEEP_MS when none. */
static long next_wake_ms(struct runner *r, PGconn *conn)
{
    const char *params[] = {r->owner};
    PGresult *res = store_run(conn, STMT_TASKS_NEXT_WAKE, 1, params);
    long ms = MAX_IDLE_SLEEP_MS;
    if (store_ok(res) && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        long v = atol(PQgetvalue(res, 0, 0));
        ms = v < 0 ? 0 : v < MAX_IDLE_SLEEP_MS ? v : MAX_IDLE_SLEEP_MS;
    } else if (!store_ok(res)) {
        ms = 1000;
    }
    PQclear(res);
    return ms;
}

static void timed_wait(pthread_cond_t *cond, pthread_mutex_t *lock, long ms)
{
    struct timespec ts = time_deadline_in(ms);
    pthread_cond_timedwait(cond, lock, &ts);
}

static void *claimer_main(void *arg)
{
    struct runner *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stopping_claims;
        r->claim_requested = false;
        r->claimer_wakes_at_ms = INT64_MAX;
        r->due_while_awake = INT64_MAX;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            return NULL;

        long sleep_ms = MAX_IDLE_SLEEP_MS;
        /* Nothing is claimed without the liveness lock: the others would take it over at once. */
        if (!atomic_load(&r->live)) {
            pthread_mutex_lock(&r->lock);
            if (!r->stopping_claims && !r->claim_requested)
                timed_wait(&r->wake, &r->lock, 1000);
            pthread_mutex_unlock(&r->lock);
            continue;
        }
        long room = r->cfg.max_in_flight - atomic_load(&r->in_flight);
        atomic_store(&r->starved, room <= 0);
        char *why = NULL;
        PGconn *conn = room > 0 ? store_acquire(r->pool, 5000, &why) : NULL;
        if (room > 0 && !conn) {
            log_warn("claimer: database unavailable", "error", why);
            free(why);
            sleep_ms = 1000;
        } else if (conn) {
            int limit = room < CLAIM_BATCH ? (int)room : CLAIM_BATCH;
            int n = claim_batch(r, conn, limit, &why);
            if (n < 0) {
                log_warn("claimer: claim failed", "error", why);
                free(why);
                sleep_ms = 1000;
            } else if (n == limit) {
                sleep_ms = 0; /* more may be due */
            } else {
                /* Tasks of executions this keeld took over, and leases that ran out, are not
                 * announced: look again within LIVENESS_SWEEP_MS. */
                sleep_ms = next_wake_ms(r, conn);
                if (sleep_ms > LIVENESS_SWEEP_MS)
                    sleep_ms = LIVENESS_SWEEP_MS;
            }
            store_release(r->pool, conn);
        }
        if (sleep_ms == 0)
            continue;
        pthread_mutex_lock(&r->lock);
        int64_t now = time_now_ms();
        if (r->due_while_awake != INT64_MAX && r->due_while_awake - now < sleep_ms)
            sleep_ms = r->due_while_awake > now ? (long)(r->due_while_awake - now) : 0;
        if (!r->claim_requested && !r->stopping_claims && sleep_ms > 0) {
            r->claimer_wakes_at_ms = now + sleep_ms;
            timed_wait(&r->wake, &r->lock, sleep_ms);
        }
        pthread_mutex_unlock(&r->lock);
    }
}

/* ---- keepalive ----------------------------------------------------------------------------- */

static void taken_over(void *arg, const char *execution_id)
{
    struct runner *r = arg;
    struct job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_TAKEOVER;
    j->execution_id = xstrdup(execution_id);
    push_job(r, j);
}

/* Holds the liveness lock, pushes this keeld's heartbeat forward and takes over the executions
 * of dead keelds, on a connection of its own: a claimer or workers waiting for the pool must
 * not make this keeld look dead. */
static void *keepalive_main(void *arg)
{
    struct runner *r = arg;
    long every = r->cfg.lease_grace_ms / 4;
    if (every > MAX_HEARTBEAT_EVERY)
        every = MAX_HEARTBEAT_EVERY;
    if (every < 50)
        every = 50;
    int64_t last_sweep_ms = INT64_MIN / 2, last_orphans_ms = INT64_MIN / 2;
    bool was_live = atomic_load(&r->live);
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stopping_keepalive;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            return NULL;
        char *why = NULL;
        bool live = liveness_hold(r->liveness, &why) &&
                    liveness_heartbeat(r->liveness, r->cfg.lease_grace_ms, &why) == 0;
        int64_t now = time_mono_ms();
        if (live && now - last_sweep_ms >= LIVENESS_SWEEP_MS) {
            bool orphans = now - last_orphans_ms >= ORPHANS_SWEEP_MS;
            long n = liveness_take_over_dead(r->liveness, orphans, taken_over, r, &why);
            live = n >= 0;
            last_sweep_ms = now;
            if (orphans && live)
                last_orphans_ms = now;
            if (n > 0)
                wake_claimer(r);
        }
        atomic_store(&r->live, live);
        if (!live) {
            log_warn("cannot hold the liveness lock or heartbeat; not claiming", "error", why);
            free(why);
        } else if (!was_live) {
            wake_claimer(r);
        }
        was_live = live;
        pthread_mutex_lock(&r->lock);
        if (!r->stopping_keepalive)
            timed_wait(&r->keepalive_wake, &r->lock, live ? every : 1000);
        pthread_mutex_unlock(&r->lock);
    }
}

/* ---- listener ------------------------------------------------------------------------------ */

static PGconn *listen_connect(struct runner *r)
{
    char *why = NULL;
    PGconn *c = store_connect(r->cfg.database_url, &why);
    if (!c) {
        free(why);
        return NULL;
    }
    if (store_command(c, "LISTEN keel_tasks") < 0 || store_command(c, "LISTEN keel_done") < 0) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

static void *listener_main(void *arg)
{
    struct runner *r = arg;
    PGconn *c = NULL;
    bool was_down = false;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stopping_claims;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            break;
        if (!c) {
            c = listen_connect(r);
            if (!c) {
                was_down = true;
                usleep(500 * 1000);
                continue;
            }
            if (was_down) {
                log_info("listener reconnected to the database");
                wake_claimer(r);
                if (r->cfg.on_missed_notifications)
                    r->cfg.on_missed_notifications(r->cfg.hook_arg);
            }
            was_down = false;
        }
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        int pr = poll(&pfd, 1, 250);
        if (pr < 0 && errno != EINTR)
            continue;
        if (pr > 0 && !PQconsumeInput(c)) {
            log_warn("listener lost its database connection");
            PQfinish(c);
            c = NULL;
            was_down = true;
            continue;
        }
        PGnotify *n;
        while ((n = PQnotifies(c))) {
            if (!strcmp(n->relname, "keel_tasks"))
                wake_claimer(r);
            else if (!strcmp(n->relname, "keel_done"))
                runner_ended(r, n->extra);
            PQfreemem(n);
        }
        if (PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = NULL;
            was_down = true;
        }
    }
    if (c)
        PQfinish(c);
    return NULL;
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
    r->cfg = *cfg;
    char rnd[9];
    ids_random_hex(4, rnd);
    char host[32] = "keeld";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(r->owner, sizeof r->owner, "%s:%d:%s", host, (int)getpid(), rnd);
    if (cfg->webhook_secret && wh_secrets_parse(cfg->webhook_secret, &r->secrets, why) < 0) {
        free(r);
        return NULL;
    }
    r->defs = defcache_new(cfg->for_each_max_items);
    r->env.defs = r->defs;
    r->env.owner = r->owner;
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
    if (liveness_heartbeat(r->liveness, cfg->lease_grace_ms, &hwhy) == 0)
        atomic_store(&r->live, true);
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
