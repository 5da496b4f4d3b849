/* One state change of one execution: lock its row, run the interpreter on one input, and write
 * the events, step rows, tasks and execution row it produces — all inside one transaction. */
#ifndef KEEL_RUNNER_TRANSITION_H
#define KEEL_RUNNER_TRANSITION_H

#include "engine/engine.h"
#include "runner/batch_writes.h"
#include "runner/defcache.h"
#include "store/stmt.h"
#include "util/buf.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/* An activity attempt that the transition journaled as started, for this process to send after
 * COMMIT (it owns the execution: no task row holds the attempt). */
struct attempt_dispatch {
    char *execution_id;
    char *workflow;
    int version;
    char *step_id;
    int attempt;
    json_t *payload;   /* {"url", "input", "timeout_ms"} */
    char *token;       /* the task token for asynchronous completion (its hash is stored) */
    bool compensation; /* a compensation attempt (key <execution>/<step>/compensate) */
    struct attempt_dispatch *next;
};

void attempt_dispatch_free(struct attempt_dispatch *d);
/* Frees a whole list. */
void attempt_dispatch_free_list(struct attempt_dispatch *list);

struct transition_env {
    struct defcache *defs;
    const char *owner;    /* this keeld's owner id (executions.owner, tasks.lease_owner) */
    long max_child_depth; /* how deep child workflows may nest */
    /* Whether a step call of this keeld is held waiting for topic ("<execution>/<key>"): its
     * step's end then needs no handler call. NULL: none is. */
    bool (*step_awaited)(void *arg, const char *topic);
    void *hook_arg;
};

/* How long one call of a code execution's handler may take. */
#define HANDLER_CALL_TIMEOUT_MS 10000

/* Task kinds of child workflows, beside the engine's (engine_task_kind_name). */
#define TASK_CHILD_START      "child_start"      /* the child: start, or run again / report */
#define TASK_CHILD_ENDED      "child_ended"      /* the parent: payload {child, status, output, error} */
#define TASK_PARENT_CANCEL    "parent_cancel"    /* the child: cancel; payload {reason} */
#define TASK_PARENT_TERMINATE "parent_terminate" /* the child: terminate; payload {reason} */
/* Task kinds of a code execution's handler. */
#define TASK_HANDLER_CALL       "handler_call"       /* call it; payload {url, run, reason, key?} */
#define TASK_HANDLER_INACTIVITY "handler_inactivity" /* its program may have gone idle */

enum transition_outcome {
    TRANSITION_APPLIED,    /* written */
    TRANSITION_STALE,      /* the engine ignored the input; only the consumed task was dropped */
    TRANSITION_NOT_FOUND,  /* no such execution */
    TRANSITION_LEASE_LOST, /* a fenced input of an execution another keeld owns now, or a
                              consumed task no longer ours; nothing written */
    TRANSITION_ERROR,      /* database error; nothing written */
};

struct transition_out {
    struct attempt_dispatch *dispatches; /* owned by the caller after the call */
    bool ended;
    enum engine_exec_status status;
    bool cancel_requested;     /* the execution is being cancelled (for heartbeat answers) */
    int64_t first_task_due_ms; /* > 0: tasks for this keeld were inserted, the first due then
                                  (its claimer is woken in-process: no NOTIFY) */
    bool started;              /* the execution's first transition: it had never run */
    int metrics_workflow;      /* when started or ended: its metrics label slot
                                  (metrics_workflow_label) */
    int64_t created_ms;        /* when started or ended: when the execution was created */
};

struct transition_request;

/* The lock-and-read of one transition as two pipeline calls, for a caller that sends those of a
 * whole batch at once (in execution id order) and hands each result to its transition
 * (transition_request.locked_read). Valid until transition_lock_free; req must outlive it. */
struct transition_lock {
    char task_id[24];
    struct buf paths;
    const char *params[3];
    struct store_call calls[2]; /* STMT_EXEC_LOCK, STMT_EXEC_LOCKED_READ */
};
void transition_lock_prepare(const struct transition_request *req, struct transition_lock *lk);
void transition_lock_free(struct transition_lock *lk);

/* One input for one execution. */
struct transition_request {
    const char *execution_id;
    const char *step_id;        /* when not NULL, sets in.step from the step's id */
    int64_t consume_task_id;    /* > 0: delete this task, which must still be leased to us */
    int64_t signal_id;          /* > 0 with ENGINE_IN_SIGNAL: the stored signal being delivered */
    const json_t *extra_events; /* events the runner itself journals before the engine's, as
                                   [{type, step?, attempt?, data?}]; written even when the
                                   engine ignores the input (signal_received, ...) */
    const char *started_token;  /* with ENGINE_IN_ATTEMPT_STARTED: the new task token the
                                   attempt is about to be sent with; its hash is recorded in
                                   attempt_tokens when the start applies */
    bool fenced;           /* the input comes from this keeld's own work (an attempt's result, a
                              claimed task, a takeover): it applies only while this keeld owns
                              the execution (LEASE_LOST otherwise; a result for an execution
                              that ended is still journaled as result_ignored) */
    bool resend_in_flight; /* a takeover: instead of in (only its now_ms is used), send again
                              every attempt in flight that is not accepted */
    bool child_start;      /* a child_start task: the execution (a child) starts when it never
                              ran (in is taken as START), runs again when it failed (RETRY),
                              and otherwise has its end reported to its parent again */
    bool journal_only;          /* no input for the interpreter: only extra_events, extra_tasks and
                                   the consumed task are written (a handler call's result) */
    bool inactivity_check;      /* a code execution's handler_inactivity task is due: call its
                                   handler when its program has been idle too long with steps
                                   pending, and arm the next check */
    const json_t *extra_tasks;  /* tasks the runner itself queues, as [{kind, step, attempt,
                                   due_at, payload}], while the execution runs */
    bool capacity;              /* with journal_only: the attempt (step_id, in.attempt,
                                   in.compensation) waits for the capacity of its host, or was
                                   sent after waiting; nothing when it is no longer in flight */
    const json_t *capacity_wait; /* waiting: {host, limit, concurrency, rate}, journaled as
                                    waiting_for_capacity and shown on the step's row while it
                                    waits; NULL: it was sent, the row no longer says it waits */
    PGresult *locked_read; /* not NULL: the result of this transition's lock-and-read, sent by
                              the caller (transition_lock_prepare); the transition takes it */
    struct batch_writes *writes; /* where the writes go: sent, with those of the other
                                    transitions of the transaction, by batch_writes_flush */
    struct engine_input in;
};

/* Applies req to its execution inside the caller's open transaction. Activity attempts due at
 * once are journaled as started in the same transaction and returned in out->dispatches when
 * this keeld owns the execution (an execution that was not running, a redrive, becomes its
 * own); for an execution another keeld owns they become tasks due now, which its owner claims. A
 * wait that starts consumes the oldest stored signal of its name at once. A result (success or
 * failure) that does not apply, because the execution has ended or its attempt is no longer in
 * flight, is journaled as result_ignored. The writes are only added to req->writes; nothing is
 * written before batch_writes_flush. */
enum transition_outcome transition_step(const struct transition_env *env, PGconn *conn,
                                        struct transition_request *req, struct transition_out *out,
                                        char **why);

#endif
