/* Runner workers: each applies the jobs queued for it, many executions in one transaction. */
#include "runner/internal.h"

#include "log.h"
#include "metrics.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DB_RETRY_DELAY_MS 500
#define RESULT_GIVE_UP_MS 60000
/* The most jobs one worker applies in one transaction. A batch is whatever queued while the
 * worker's last one committed, so a lone job goes at once; under load, many inputs share one
 * commit (one WAL flush). */
#define BATCH_MAX 64

/* ---- workers ------------------------------------------------------------------------------- */

/* Builds the engine input for a job; false for a task of a kind this keeld does not know. */
static bool job_input(const struct job *j, struct engine_input *in)
{
    memset(in, 0, sizeof *in);
    in->now_ms = time_now_ms();
    in->attempt = j->attempt;
    in->retry_after_ms = -1;
    in->compensation = j->compensation;
    if (j->kind == JOB_TAKEOVER || j->kind == JOB_HANDLER_RESULT || j->kind == JOB_CAPACITY)
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
    /* A handler's inactivity check journals no input of the interpreter. */
    if (!strcmp(j->task_kind, TASK_HANDLER_INACTIVITY))
        return true;
    /* The tasks of child workflows (transition.h). */
    if (!strcmp(j->task_kind, TASK_CHILD_START)) {
        in->kind = ENGINE_IN_START; /* or RETRY: the transition decides from the row */
        return true;
    }
    if (!strcmp(j->task_kind, TASK_CHILD_ENDED)) {
        in->kind = ENGINE_IN_CHILD_ENDED;
        in->child_status = json_string_value(json_object_get(j->payload, "status"));
        in->child_id = json_string_value(json_object_get(j->payload, "child"));
        in->output = json_object_get(j->payload, "output");
        if (!in->output)
            in->output = json_null();
        in->error = json_object_get(j->payload, "error");
        return in->child_status != NULL;
    }
    if (!strcmp(j->task_kind, TASK_PARENT_CANCEL) || !strcmp(j->task_kind, TASK_PARENT_TERMINATE)) {
        in->kind =
            !strcmp(j->task_kind, TASK_PARENT_CANCEL) ? ENGINE_IN_CANCEL : ENGINE_IN_TERMINATE;
        in->reason = json_string_value(json_object_get(j->payload, "reason"));
        return true;
    }
    enum engine_task_kind kind;
    return engine_task_kind_from_name(j->task_kind, &kind) == 0 &&
           engine_input_for_task(kind, in) == 0;
}

/* True for the tasks of child workflows that name no step and may be applied by whichever
 * keeld claimed them (the row lock orders them; no attempt of this keeld is involved). */
static bool child_task(const struct job *j, bool *names_step)
{
    if (j->kind != JOB_CLAIMED)
        return false;
    *names_step = !strcmp(j->task_kind, TASK_CHILD_ENDED);
    return *names_step || !strcmp(j->task_kind, TASK_CHILD_START) ||
           !strcmp(j->task_kind, TASK_PARENT_CANCEL) ||
           !strcmp(j->task_kind, TASK_PARENT_TERMINATE);
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
    bool names_step = true;
    if (child_task(j, &names_step)) {
        req->fenced = false;
        req->child_start = !strcmp(j->task_kind, TASK_CHILD_START);
        if (!names_step)
            req->step_id = NULL;
    }
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
    if (j->kind == JOB_HANDLER_RESULT) {
        /* The handler call's task goes with the journal of its result. */
        req->journal_only = true;
        req->step_id = NULL;
        req->consume_task_id = j->task_id;
        req->extra_events = json_object_get(j->payload, "events");
        req->extra_tasks = json_object_get(j->payload, "tasks");
    } else if (j->kind == JOB_CAPACITY) {
        /* Journaled for the step, without an input for the interpreter. */
        req->journal_only = true;
        req->capacity = true;
        req->capacity_wait = j->payload;
    } else if (j->kind == JOB_CLAIMED && !strcmp(j->task_kind, TASK_HANDLER_INACTIVITY)) {
        req->journal_only = true;
        req->inactivity_check = true;
        req->step_id = NULL;
    }
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

/* A job that could not be applied: queued again (after a pause, unless a job of the same
 * batch paused already). After RESULT_GIVE_UP_MS a
 * claimed task is given up (its lease runs out and it is claimed again); an attempt's result,
 * whose attempt no task holds, becomes a takeover of its execution, which sends the attempts in
 * flight again once the database is back (the same key: the receiver answers again). Nothing is
 * kept when keeld stops: the keeld that takes its executions over sends them again. */
static void retry_later(struct runner *r, struct job *j, bool pause)
{
    if (atomic_load(&r->stopping_workers)) {
        job_free(j);
        return;
    }
    if (time_mono_ms() - j->first_try_ms > RESULT_GIVE_UP_MS && j->kind == JOB_CAPACITY) {
        /* What the step shows while it waits; the attempt itself goes on regardless. */
        log_warn("giving up on journaling that an attempt waits for capacity", "execution",
                 j->execution_id, "step", j->step_id);
        job_free(j);
        return;
    }
    if (time_mono_ms() - j->first_try_ms > RESULT_GIVE_UP_MS && j->kind != JOB_TAKEOVER) {
        if (j->kind == JOB_CLAIMED || j->kind == JOB_HANDLER_RESULT) {
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
    if (pause)
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
    } else if (n == 1 || !conn) {
        /* Alone, or with no connection to be had (each job alone would wait for one again, n
         * times over): an input is answered with the error at once, the runner's own jobs are
         * queued again after one pause. */
        bool paused = false;
        for (size_t k = 0; k < n; k++) {
            if (e[k].req && e[k].rc != TRANSITION_ERROR && !e[k].job->input)
                attempt_dispatch_free_list(e[k].out->dispatches);
            if (e[k].job->input) {
                input_failed(e[k].job, conn, why);
            } else {
                log_warn("transition failed; will retry", "execution", e[k].job->execution_id,
                         "error", why);
                retry_later(r, e[k].job, !paused);
                paused = true;
            }
        }
    }
    for (size_t i = 0; i < n_calls; i++)
        PQclear(res[i]);
    free(calls);
    free(res);
    bool had_conn = conn != NULL;
    if (conn)
        store_release(r->pool, conn);
    if (!ok && n > 1 && had_conn) {
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
void *worker_main(void *arg)
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
        /* A handler call goes out at once; only its result is journaled (a later job). */
        size_t kept = 0;
        for (size_t k = 0; k < n; k++) {
            if (batch[k]->kind == JOB_CLAIMED && !strcmp(batch[k]->task_kind, TASK_HANDLER_CALL))
                handler_send(r, batch[k]);
            else
                batch[kept++] = batch[k];
        }
        if (n > 0 && kept == 0 && n_unresolved == 0)
            continue;
        n = kept;
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
