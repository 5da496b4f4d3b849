/* The interpreter: a pure function from (definition, state, one input) to (new state, events to
 * append, tasks to schedule). No I/O, no clock, no database: time and results arrive as
 * inputs, so replaying a history is calling engine_advance over it, and every guarantee of the
 * journal is a property of this one module. The runner wraps each call in one transaction.
 *
 * The life of an execution, as far as the interpreter decides it:
 *
 *   running --(every step completed)--------------------------------------> completed
 *   running --(a step failed for good)--> saga --------------------------> failed
 *   running --(CANCEL)--> [the attempt in flight ends] --> saga ----------> cancelled
 *   running or saga --(TERMINATE)-----------------------------------------> terminated
 *   failed --(RETRY, when no compensation ran)----------------------------> running
 *
 * The saga runs the `compensate` activities of the completed steps, one at a time, in reverse
 * order of completion; the execution stays "running" while it does (state.compensating).
 * Compensation details (see also engine.c and activity.h):
 *   - Steps without compensate are passed over. Each compensation runs exactly once to its end:
 *     it completes (the step becomes "compensated") or fails for good after its own retries
 *     (the step stays "completed", its row's error becomes the compensation's error with
 *     "compensation": true), and the saga goes on with the next one either way.
 *   - A compensation whose url or input does not evaluate fails for good at once (an
 *     "expression" or "invalid_url" error, attempts 0), without an attempt.
 *   - After a failure the execution ends "failed" with the failed step's error (its "type",
 *     "message", "step", ...) plus "compensation_errors": [the final errors of the compensations
 *     that failed, in the order they ran] when any did.
 *   - After a cancel it ends "cancelled" with error null, or, when compensations failed, with
 *     {"type": "compensation_failed", "message", "step": the first one that failed,
 *      "compensation_errors": [...]}: the status says what the user asked for, the error says
 *     that the undo is incomplete.
 *   - A failure of the definition's output template (after every step completed) is not a
 *     step's failure: no saga runs, and RETRY does not apply to it (it would fail the same way).
 *
 * Cancel (graceful) stops at the next safe point:
 *   - an activity attempt in flight (sent, or accepted with 202) finishes first. A success
 *     completes the step, which is then compensated like the others; a failure or timeout is
 *     journaled as attempt_failed with next_attempt_at null (no retry) and the step fails
 *     ("failed", step_failed, its error in its row), but the execution still ends "cancelled";
 *   - a step that is not in flight (a retry waiting for its backoff, a first attempt not yet
 *     sent, a sleep, a wait) is interrupted at once: its tasks are cancelled and it becomes
 *     "skipped" (keeping its attempt count and times; completed_at stays null). A signal sent
 *     for an interrupted wait stays stored and unconsumed.
 *   Steps not reached become "skipped" when the saga starts. Cancel is stale when a cancel was
 *   already requested, and during the saga of a failure (the execution is already unwinding and
 *   will end "failed").
 *
 * Terminate is a hard stop: execution_terminated at once, every task cancelled, no saga. Steps
 * pending, scheduled, running or waiting become "skipped"; a compensation under way is recorded
 * as "interrupted" in the state (its step stays "completed"). Every later input is stale.
 *
 * Retry (redrive) applies to a "failed" execution whose failed step is known and when no
 * compensation ran (no step is "compensated" and no compensation was ever scheduled: once the
 * saga undid anything, resuming would redo work on top of an undo; the API answers 409). The
 * failed step is entered again as if for the first time (attempt 1, scheduled_at = now, so
 * schedule_to_close counts afresh), steps skipped by the failure become pending again, and
 * every completed step keeps its output.
 *
 * Activity calls: the attempts of a step's activity and of its compensation (retries and
 * backoff, Retry-After, timeouts, schedule_to_close, 202 + heartbeats) follow the rules of
 * activity.h, the module that runs one call. In the terms of this interface: a receiver that
 * answers 202 is reported as ATTEMPT_ACCEPTED; the attempt stays "running" and gets an
 * ATTEMPT_TIMEOUT task and, when heartbeat_timeout > 0, a HEARTBEAT_TIMEOUT task moved by every
 * HEARTBEAT; completion and failure arrive as ATTEMPT_SUCCEEDED / ATTEMPT_FAILED as for a
 * synchronous attempt, and the timeouts arrive as ATTEMPT_TIMED_OUT / HEARTBEAT_TIMED_OUT. A
 * compensation's inputs have .compensation set, and its tasks are the COMPENSATION_* kinds. */
#ifndef KEEL_ENGINE_ENGINE_H
#define KEEL_ENGINE_ENGINE_H

#include "defn/defn.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum engine_exec_status {
    ENGINE_EXEC_RUNNING,
    ENGINE_EXEC_COMPLETED,
    ENGINE_EXEC_FAILED,
    ENGINE_EXEC_CANCELLED,
    ENGINE_EXEC_TERMINATED,
};

enum engine_step_status {
    ENGINE_STEP_PENDING,     /* not reached yet */
    ENGINE_STEP_SCHEDULED,   /* an attempt or timer is due (now or later) */
    ENGINE_STEP_RUNNING,     /* an attempt is in flight */
    ENGINE_STEP_WAITING,     /* a wait step waits for its signal */
    ENGINE_STEP_COMPLETED,   /* has its output */
    ENGINE_STEP_FAILED,      /* failed for good */
    ENGINE_STEP_SKIPPED,     /* never ran because the execution ended before it */
    ENGINE_STEP_COMPENSATED, /* completed, then undone by its compensation */
};

/* Where a completed step's compensation stands (saga). A compensation that completes leaves
 * NONE behind: the step's own status, "compensated", says it. */
enum engine_comp_status {
    ENGINE_COMP_NONE,        /* not started (or completed: see the step status) */
    ENGINE_COMP_SCHEDULED,   /* an attempt is due (now or after a backoff) */
    ENGINE_COMP_RUNNING,     /* an attempt is in flight */
    ENGINE_COMP_FAILED,      /* failed for good; the step stays "completed" */
    ENGINE_COMP_INTERRUPTED, /* was scheduled or in flight when the execution was terminated */
};

/* Names as in the contract ("running", "completed", ...). */
const char *engine_exec_status_name(enum engine_exec_status s);
const char *engine_step_status_name(enum engine_step_status s);

/* The largest evaluated template, as compact JSON text: a step's url and input, a sleep_until
 * time, the definition's output. The budget is counted while evaluating (see
 * expr_template_eval), so a template that would expand to gigabytes fails the step with
 * an "expression" error naming the limit after building at most this much. It equals the
 * default request body cap and the webhook response cap. */
#define ENGINE_MAX_PAYLOAD_BYTES ((size_t)1024 * 1024)
/* "none", "scheduled", "running", "failed", "interrupted" (used in the state's JSON). */
const char *engine_comp_status_name(enum engine_comp_status s);

/* A step's compensation (saga): one activity call with its own attempts. */
struct engine_compensation {
    enum engine_comp_status status;
    int attempt;                   /* the current or last attempt; 0 = none yet */
    int64_t attempt_started_at_ms; /* while RUNNING: when the attempt was sent; else 0 */
    bool accepted;                 /* while RUNNING: the receiver answered 202 */
};

/* What the interpreter remembers of one step instance between inputs. Outputs and errors are
 * not here: they live in the expression context (see engine_advance) and in the step rows.
 *
 * Instances: the state holds one per top-level step from the start (instance i is
 * defn->steps[i], so "step i" means the same thing as in a flat definition), and one per
 * nested node once it has been entered: a parallel's branches, a for_each's iterations (both
 * sequences, with no step of their own) and the steps inside them. Nested instances are
 * appended in the order they are first entered and never removed; an instance entered again
 * (a redrive) is reset in place. Each has a path (plan.h) that names it in events, step rows,
 * tasks and idempotency keys. */
struct engine_step {
    enum engine_step_status status;
    int attempt;             /* number of the current or last attempt; 0 = none yet */
    int64_t scheduled_at_ms; /* first scheduling: schedule_to_close counts from here; 0 = never */
    int64_t started_at_ms;   /* first attempt start (or timer/wait start); 0 = never */
    int64_t completed_at_ms; /* 0 = not ended */
    int completion_order;    /* 1, 2, ... in order of completion (sagas undo in reverse); 0 */
    /* Added for asynchronous activities and sagas; all zero in a state that does not use them. */
    int64_t attempt_started_at_ms;   /* while RUNNING: when the attempt in flight was sent (the
                                        last send when it was redelivered); else 0 */
    bool accepted;                   /* while RUNNING: the receiver answered 202 */
    struct engine_compensation comp; /* ENGINE_COMP_NONE unless the saga reached this step */

    /* Added for the tree. A container (parallel, for_each, and the sequences of branches and
     * iterations) is RUNNING while it runs, then COMPLETED, FAILED or SKIPPED (stopped by a
     * cancel or a failure elsewhere). */
    char *path;                          /* owned; the instance's path ("notify/email/send") */
    const struct engine_plan_node *node; /* its plan node (borrowed from the plan the state is
                                            advanced with; NULL until engine_advance_plan binds
                                            it) */
    size_t parent;    /* index of the instance holding it; ENGINE_NO_PARENT at the top level */
    size_t position;  /* its index among its parent's children: a step's index in its list, a
                         branch's index, an iteration's item index */
    size_t cursor;    /* a sequence: the index of its child that runs or ran last */
    int running;      /* parallel, for_each: children under way */
    int failed;       /* parallel, for_each: children that failed since it (re)started */
    int cancelled;    /* parallel, for_each: children stopped by a cancel or a failure */
    bool stopping;    /* parallel, for_each: a child failed; the others stop at their safe point
                         and no new one starts */
    size_t next_item; /* for_each: the next item index never started */
    size_t n_items;   /* for_each: how many items it iterates over */
    size_t redo;      /* for_each: iterations to run again after a redrive, not yet restarted */
    json_t *items;    /* owned; for_each: the evaluated array; NULL before it is entered, and
                         when the state was loaded without it (a loader gives elements) */
    json_t *item;     /* owned; an iteration: its element of the for_each's items */
    bool filling;     /* for_each, during one call only: starting iterations (not serialized) */
    bool fresh;       /* entered (or reset) during this call: it has no child in storage that
                         is not in the state (not serialized) */
    bool items_set;   /* for_each: items evaluated during this call, to be stored (not
                         serialized) */
    /* Added for step calls. */
    struct engine_call *call; /* owned; a step call's instance (a code execution's key): the
                                 request it was created with; NULL for every other instance */
};

/* What a step call's instance runs: the body of the call that created it, and the step and
 * plan node parsed from it (defn_parse_step_call), which belong to the instance rather than to
 * a plan (the plan of a code execution has no node for its keys). Its position among the
 * root's children is the order of the first calls of the keys. */
struct engine_call {
    json_t *request;               /* owned; the body as the first call sent it */
    struct defn_step *step;        /* owned; parsed from request, with the key as id */
    struct engine_plan_node *node; /* owned; a leaf under the code root (bound to a plan's root
                                     by engine_state_bind) */
    bool differs;                  /* a later call of the key came with another request: the
                                      history says so once */
};

/* The call of key made with request (a valid step call's body: the API checked it with
 * defn_parse_step_call), or NULL when it does not parse. Free with engine_call_free. */
struct engine_call *engine_call_new(const char *key, const json_t *request)
    __attribute__((warn_unused_result));
void engine_call_free(struct engine_call *c);

#define ENGINE_NO_PARENT ((size_t)-1)

struct engine_plan;
struct engine_state;

/* Where a partial state gets the instances it does not hold (the runner reads step rows only as
 * the interpreter needs them, so that a transition's cost does not grow with the number of
 * step instances of its execution). Every function returns 0, or -1 when storage failed: the
 * engine call then returns -1 and its effects must be discarded. */
struct engine_loader {
    void *arg;
    /* Adds to st (engine_state_put) the instances at these paths that exist and are not in st
     * yet, each after its ancestors (loaded too when missing), and their results to ctx
     * (ctx.steps.<path>.output / .error). */
    int (*load)(void *arg, struct engine_state *st, json_t *ctx, const char *const *paths,
                size_t n);
    /* Adds every instance not in st yet, with its results. */
    int (*load_all)(void *arg, struct engine_state *st, json_t *ctx);
    /* Sets *out to a new reference to element index of the items of the for_each at path. */
    int (*item)(void *arg, const char *path, size_t index, json_t **out);
    /* Sets *out to a new reference to the execution's input (read only when a template may
     * use it: ctx.input is then absent until this is called). NULL: ctx always holds it. */
    int (*input)(void *arg, json_t **out);
};

struct engine_state {
    enum engine_exec_status status;
    size_t n_steps;            /* instances: the top-level steps first, then nested ones */
    struct engine_step *steps; /* owned */
    size_t cap_steps;          /* allocated length of steps */
    size_t n_top;              /* how many top-level steps (defn->n_steps) */
    size_t current;            /* index of the top-level step being run; n_top when none is left */
    int completions;           /* how many steps have completed so far */
    bool cancel_requested;     /* a graceful cancel was asked for: no new attempt or step starts;
                                  the saga runs once the attempts in flight (if any) end. The API
                                  can report it in a heartbeat's answer. */
    bool compensating;         /* the saga runs (status still running); exactly one step's
                                  compensation is scheduled or running */
    json_t *by_path;           /* owned; path -> instance index */
    const struct engine_loader *loader; /* borrowed; NULL: every instance is in steps */
    bool all_loaded;                    /* with a loader: load_all has run */
    /* Added for step calls. */
    bool code;            /* a code execution's (defn_code()): its keys are the root's children */
    size_t next_position; /* code: the position the next new key gets (first-call order) */
};

/* The index of the instance with this path, or -1 when there is none (not entered yet, or no
 * such step). */
long engine_state_find(const struct engine_state *st, const char *path);

/* A partial state, for a caller that stores instances one per row: the execution's header
 * (engine_state_header_to_json: status, current top-level step, completion count, cancel and
 * saga flags; JSON version 2), then each instance's own JSON (engine_step_to_json). */
json_t *engine_state_header_to_json(const struct engine_state *st);
/* Starts st from a header written by engine_state_header_to_json, with no instance yet: the
 * caller then adds the top-level steps' rows in definition order, then nested ones, each after
 * its parent, with engine_state_put. Returns 0, or -1 when the header does not read. */
int engine_state_begin(struct engine_state *st, const json_t *header, const struct defn *d)
    __attribute__((warn_unused_result));
/* Adds the instance at path with its own JSON (engine_step_to_json); its parent (path minus
 * the last segment; for a code execution's key, a path without '/', the root "") must be in st
 * already. A key's JSON also holds "request", the body of the call that created it (stored
 * apart, as a for_each's items are). Returns its index, or -1 when the JSON does not read (a
 * key without a request that parses included), the path is already there or its parent is
 * missing. */
long engine_state_put(struct engine_state *st, const char *path, const json_t *step)
    __attribute__((warn_unused_result));
/* Checks a state built with engine_state_begin/put: every top-level step is there. */
int engine_state_ready(struct engine_state *st) __attribute__((warn_unused_result));
/* Instance i's own JSON, as engine_state_to_json writes it inside "steps" but without "path"
 * and without a for_each's "items" (stored apart, written once). New reference. */
json_t *engine_step_to_json(const struct engine_state *st, size_t i);

/* Points every instance of st at its node in plan p (engine_advance_plan does it on every
 * call; a reader that needs instances' kinds before advancing calls it). Returns false when an
 * instance's path does not fit the plan. */
bool engine_state_bind(const struct engine_plan *p, struct engine_state *st)
    __attribute__((warn_unused_result));

/* Appends a nested instance with this path (copied) under instance parent, with no progress;
 * returns its index. For the interpreter: pointers into st->steps do not survive it. */
size_t engine_state_add(struct engine_state *st, const char *path, size_t parent);

/* The status readers see for instance i (the steps table and the API): the interpreter's
 * status, except that "scheduled" is told apart: "retrying" for an activity whose attempt
 * after a failed one waits for its backoff (or Retry-After), "sleeping" for a sleep or
 * sleep_until timer, and "scheduled" only for a first attempt due now. Returns a static
 * string. */
const char *engine_step_public_status(const struct defn *d, const struct engine_state *st,
                                      size_t i);

/* A fresh state for d: running, every top-level step pending (paths = ids), current = 0. Free
 * with engine_state_free. */
void engine_state_init(struct engine_state *st, const struct defn *d);
void engine_state_free(struct engine_state *st);
/* Compact JSON for executions.state (new reference, caller decrefs) and back. from_json
 * returns -1 when the JSON does not fit d (wrong step count, bad status names). The JSON is
 * still version 1: the members added for sagas and asynchronous activities are left out when
 * unused, so a state that does not use them is written exactly as before and an older keeld
 * can still read it; one that does is refused by an older keeld rather than misread. */
json_t *engine_state_to_json(const struct engine_state *st);
int engine_state_from_json(const json_t *j, const struct defn *d, struct engine_state *st)
    __attribute__((warn_unused_result));

enum engine_input_kind {
    ENGINE_IN_START,             /* the execution was just created */
    ENGINE_IN_ATTEMPT_STARTED,   /* the runner is about to send (step, attempt) */
    ENGINE_IN_ATTEMPT_SUCCEEDED, /* (step, attempt) returned output */
    ENGINE_IN_ATTEMPT_FAILED,    /* (step, attempt) failed with error */
    ENGINE_IN_TIMER_FIRED,       /* the timer of a sleep / sleep_until step is due */
    ENGINE_IN_SIGNAL,            /* a signal for the waiting step (name, payload) */
    ENGINE_IN_WAIT_TIMED_OUT,    /* the timeout of the waiting step is due */
    /* Added for "time, signals and sagas". CANCEL, TERMINATE and RETRY name no step. */
    ENGINE_IN_CANCEL,              /* graceful cancel (POST .../cancel); optional reason */
    ENGINE_IN_TERMINATE,           /* hard stop (POST .../terminate); optional reason */
    ENGINE_IN_RETRY,               /* redrive a failed execution (POST .../retry) */
    ENGINE_IN_ATTEMPT_ACCEPTED,    /* (step, attempt) was answered 202: it completes later */
    ENGINE_IN_HEARTBEAT,           /* (step, attempt) sent a heartbeat; optional details. Applies
                                      while the attempt is in flight, even before its accept is
                                      journaled; stale once it is over (the API can then tell
                                      the worker to stop) */
    ENGINE_IN_HEARTBEAT_TIMED_OUT, /* the HEARTBEAT_TIMEOUT task of (step, attempt) is due */
    ENGINE_IN_ATTEMPT_TIMED_OUT,   /* the ATTEMPT_TIMEOUT task of (step, attempt) is due */
    /* Added for takeover. */
    ENGINE_IN_RESEND, /* (step, attempt) is in flight but its sender is gone: emit its ACTIVITY
                         (COMPENSATION, with .compensation) task again, due now, with the same
                         url and input; the runner then feeds ATTEMPT_STARTED as a redelivery.
                         Stale for an accepted attempt (the receiver has it) */
    /* Added for child workflows. */
    ENGINE_IN_CHILD_ENDED, /* the child of workflow step `step` ended (child_status, output or
                              error), or could not start (child_status "not_started", error the
                              reason: child_not_found, child_depth_exceeded, child_id_taken) */
    /* Added for code executions (step calls). They name no step: a code execution's root is
     * its one top-level instance. Stale for an execution with a definition. */
    ENGINE_IN_COMPLETE,        /* its program completes it with .output (POST .../complete) */
    ENGINE_IN_FAIL,            /* its program fails it with .error (POST .../fail): the saga
                                  runs, then it ends failed with that error */
    ENGINE_IN_CANCEL_DEADLINE, /* its CANCEL_DEADLINE task is due: a cancel its program never
                                  answered with complete or fail ends it cancelled */
    ENGINE_IN_STEP_CALL,       /* its program calls .key with .request (a valid step call's
                                  body): a new key gets its instance under the root, at the
                                  next position, and is entered; a key that exists is stale
                                  (the caller answers from its row), except one a retry made new
                                  again, which runs again. Stale after a cancel request */
    ENGINE_IN_REQUEST_DIFFERS, /* a call of the journaled .key came with another .request: its
                                  instance is marked and request_differs journaled, once (stale
                                  after that, and when the execution is not running) */
};

/* How long a code execution's program has, after a cancel, to come back with complete or fail
 * (which then end it cancelled) before Keel ends it cancelled by itself. */
#define ENGINE_CODE_CANCEL_DEADLINE_MS (5 * 60 * 1000)

struct engine_input {
    enum engine_input_kind kind;
    int64_t now_ms;         /* the time of the input, from the runner's clock */
    size_t step;            /* all but START, CANCEL, TERMINATE, RETRY: index of the step the input
                               is about */
    int attempt;            /* ATTEMPT_*, HEARTBEAT*: the attempt number it is about */
    bool redelivery;        /* ATTEMPT_STARTED: the same attempt sent again after its lease expired
                               (stale for an accepted attempt: the receiver already has it) */
    const json_t *output;   /* ATTEMPT_SUCCEEDED: the result (borrowed; JSON null for none) */
    const json_t *error;    /* ATTEMPT_FAILED: {"type", "message", ...} (borrowed) */
    bool non_retryable;     /* ATTEMPT_FAILED: the receiver said stop (410, non_retryable) */
    int64_t retry_after_ms; /* ATTEMPT_FAILED: the receiver's Retry-After; -1 when none. It
                               can lengthen the backoff up to the policy's max_interval, never
                               beyond (a receiver cannot park an execution for years) */
    const char *signal;     /* SIGNAL: its name (borrowed) */
    const json_t *payload;  /* SIGNAL: its payload (borrowed) */
    /* ATTEMPT_STARTED, _SUCCEEDED, _FAILED, _ACCEPTED, _TIMED_OUT, HEARTBEAT, HEARTBEAT_TIMED_OUT:
     * the input is about the step's compensation, not the step's own attempt (the task or
     * webhook it comes from was a COMPENSATION or COMPENSATION_* task). Attempt numbers of the
     * two are separate. engine_input_for_task sets it from a task kind. */
    bool compensation;
    const char *reason;       /* CANCEL, TERMINATE: free text from the caller (borrowed) or NULL;
                                 journaled as data.reason of cancel_requested / execution_terminated */
    const json_t *details;    /* HEARTBEAT: the receiver's progress details (borrowed) or NULL. The
                                 interpreter does not journal heartbeats (they would flood the
                                 history) and does not keep the details; the API may. */
    const char *child_status; /* CHILD_ENDED: "completed", "failed", "cancelled", "terminated"
                                 or "not_started" (borrowed); .output is the child's output
                                 (completed), .error its error or the reason it never ran */
    const char *child_id;     /* CHILD_ENDED: the child's id (borrowed; NULL: the step's first
                                 child, engine_child_id) */
    const char *key;          /* STEP_CALL, REQUEST_DIFFERS: the key (borrowed) */
    const json_t *request;    /* STEP_CALL, REQUEST_DIFFERS: the call's body (borrowed) */
};

/* A child execution a workflow step starts, in the transaction that journals the step's
 * start: created with id unless the step started one before (a retry of the parent reached the
 * step again). That one runs again when it failed and can (no compensation ran), reports its
 * end again when it completed or failed for good, and is replaced by a new child
 * ("<id>:<n>") when it was cancelled or terminated or its saga ran (its effects were
 * undone). */
struct engine_child {
    size_t step;          /* the workflow step instance */
    char *path;           /* owned; its path (the child's parent_path) */
    char *id;             /* owned; engine_child_id of the execution and the step's path */
    const char *workflow; /* borrowed from the definition */
    int version;          /* 0: the latest when it starts */
    json_t *input;        /* owned; the evaluated input */
};

/* The running child of a workflow step to stop, because the step stopped waiting for it (the
 * parent was cancelled or terminated, or a failure elsewhere stopped the step's branch). Named
 * by the step's path: the child is whichever the step started last. */
struct engine_child_stop {
    char *path;     /* owned; the workflow step's path */
    bool terminate; /* terminate (the parent was terminated); else cancel */
};

#define ENGINE_CHILD_ID_MAX 128

/* The stable id of the child execution that the workflow step at path of execution
 * execution_id starts: "<execution_id>:<path with '/' written ':'>" when that is at most
 * ENGINE_CHILD_ID_MAX characters, else its first 111 characters, ':' and 16 hex digits of a
 * hash of the whole (ids stay distinct and within the API's limit). New string (caller
 * frees). */
char *engine_child_id(const char *execution_id, const char *path)
    __attribute__((warn_unused_result));

enum engine_task_kind {
    ENGINE_TASK_ACTIVITY,     /* send an attempt; payload {"url", "input", "timeout_ms"} */
    ENGINE_TASK_TIMER,        /* fire a sleep / sleep_until step */
    ENGINE_TASK_WAIT_TIMEOUT, /* time out a wait step */
    /* Added for "time, signals and sagas". */
    ENGINE_TASK_COMPENSATION,      /* send a compensation attempt (key <exec>/<step>/compensate);
                                      payload {"url", "input", "timeout_ms"} */
    ENGINE_TASK_ATTEMPT_TIMEOUT,   /* an accepted attempt of the step did not complete in time */
    ENGINE_TASK_HEARTBEAT_TIMEOUT, /* an accepted attempt of the step sent no heartbeat in time */
    ENGINE_TASK_COMPENSATION_TIMEOUT,           /* ATTEMPT_TIMEOUT of a compensation attempt */
    ENGINE_TASK_COMPENSATION_HEARTBEAT_TIMEOUT, /* HEARTBEAT_TIMEOUT of a compensation attempt */
    ENGINE_TASK_CANCEL_DEADLINE, /* a cancelled code execution's program did not come back in
                                    time (on its root) */
};

/* "activity", "timer", "wait_timeout", "compensation", "attempt_timeout", "heartbeat_timeout",
 * "compensation_timeout", "compensation_heartbeat_timeout", "cancel_deadline" (tasks.kind). */
const char *engine_task_kind_name(enum engine_task_kind k);
/* The kind named name (as engine_task_kind_name writes it). Returns 0, or -1 when unknown. */
int engine_task_kind_from_name(const char *name, enum engine_task_kind *out)
    __attribute__((warn_unused_result));
/* True for the kinds that send a webhook when due (ACTIVITY and COMPENSATION): the runner
 * leases them, feeds ATTEMPT_STARTED (with .compensation for COMPENSATION) and sends. */
bool engine_task_sends(enum engine_task_kind k);
/* Sets in->kind and in->compensation for a due task of kind k: ACTIVITY and COMPENSATION ->
 * ATTEMPT_STARTED; TIMER -> TIMER_FIRED; WAIT_TIMEOUT -> WAIT_TIMED_OUT; [COMPENSATION_]
 * ATTEMPT_TIMEOUT -> ATTEMPT_TIMED_OUT; [COMPENSATION_]HEARTBEAT_TIMEOUT -> HEARTBEAT_TIMED_OUT.
 * The runner still sets now_ms, step, attempt (the task's) and retry_after_ms. Returns 0, or -1
 * for an unknown kind (in untouched). */
int engine_input_for_task(enum engine_task_kind k, struct engine_input *in)
    __attribute__((warn_unused_result));

struct engine_task {
    enum engine_task_kind kind;
    size_t step;
    int attempt;       /* ACTIVITY, COMPENSATION and the timeouts of an accepted attempt: the
                          attempt number (of the step, or of its compensation); else 0 */
    int64_t due_at_ms; /* due now (== input now_ms) or later */
    json_t *payload;   /* owned; ACTIVITY and COMPENSATION: the evaluated url and input, the
                          attempt timeout in ms; else NULL */
};

/* Delete the execution's pending tasks of one kind for one step (a heartbeat moves its
 * deadline; an accepted attempt that ends drops its timeouts). */
struct engine_task_cancel {
    enum engine_task_kind kind;
    size_t step;
};

struct engine_event {
    const char *type; /* static string: "step_completed", ... (contract names) */
    long step;        /* index, or -1 when the event is about the whole execution */
    int attempt;      /* 0 when not about an attempt */
    json_t *data;     /* owned; an object, {} when there is nothing to say */
};

/* Everything one engine_advance call asks the runner to write, in one transaction. */
struct engine_effects {
    bool stale; /* the input did not apply (an old attempt, an ended execution): nothing else
                   is set, nothing must be written; the runner logs and drops it */
    struct engine_event *events; /* owned; to append in this order */
    size_t n_events;
    struct engine_task *tasks; /* owned; to insert */
    size_t n_tasks;
    size_t *changed_steps; /* owned; indexes whose step row must be written from the state
                              (status, attempt, times) and the context (output, error) */
    size_t n_changed_steps;
    bool cancel_tasks;        /* delete the execution's other pending tasks (a signal arrived before
                                 the wait timed out, a cancel interrupted a step, the execution
                                 ended, ...) */
    const char *wants_signal; /* after a wait starts: one of its signal names (borrowed from
                                 the definition); the runner then feeds ENGINE_IN_SIGNAL at once
                                 with the oldest stored signal a waiting step accepts */
    bool ended;               /* the execution reached a final status (st->status) */
    json_t *output;           /* owned; when ended completed: the evaluated output (null if none) */
    json_t *error;            /* owned; when ended failed: {"type", "message", "step", ...}
                                 (+ "compensation_errors"); when ended cancelled: NULL, or the
                                 compensation errors (see the top of this file) */
    /* Added for "time, signals and sagas". */
    struct engine_task_cancel *cancels; /* owned; delete the execution's pending tasks of each
                                           (kind, step) before inserting fx->tasks (which they
                                           never apply to). Order for the runner: cancel_tasks,
                                           then cancels, then insert fx->tasks. When it chains
                                           several calls in one transaction, a cancel applies to
                                           tasks of earlier calls too. */
    size_t n_cancels;
    bool clear_error; /* RETRY: set the execution's error to null (unless ended again: then
                         fx->error is the new one) */
    bool stale_ended; /* with stale: the execution had already ended (completed, failed,
                         cancelled, terminated); a late attempt result is then journaled by the
                         runner as result_ignored */
    /* Added for child workflows. */
    struct engine_child *children; /* owned; child executions to start */
    size_t n_children;
    struct engine_child_stop *child_stops; /* owned; child executions to cancel or terminate */
    size_t n_child_stops;
};

void engine_effects_free(struct engine_effects *fx);

/* True when (step, attempt) is in flight in st: the step's own attempt, or, with compensation,
 * its compensation's. An ATTEMPT_STARTED for it is then a redelivery (set in->redelivery). */
bool engine_attempt_in_flight(const struct engine_state *st, size_t step, int attempt,
                              bool compensation);

/* The attempts in flight among st's instances (load them all first for a whole execution) that
 * a new sender must send again: not accepted (a 202's receiver has its attempt). */
struct engine_attempt_ref {
    size_t step;
    int attempt;
    bool compensation;
};
/* Fills *out (caller frees) and returns how many. */
size_t engine_attempts_to_resend(const struct engine_state *st, struct engine_attempt_ref **out);

/* Applies one input. st is updated in place. ctx is the expression context
 *   {"input": ..., "steps": {"<id>": {"output": ..., "error": ...}},
 *    "execution": {"id": ..., "workflow": ...}}
 * which the runner loads and engine_advance updates as steps complete or fail (so the next
 * step's input can use the output just produced). fx must be zeroed by the caller and freed
 * with engine_effects_free. Returns 0; -1 only on a programming error (an input kind that does
 * not exist), never on user data: bad expressions, bad URLs and failed attempts become step
 * errors and events.
 *
 * Events added for this issue (on top of the contract's names): "attempt_accepted" (step,
 * attempt; {"timeout_at", "heartbeat_timeout_at" (null when none)} + "compensation": true for
 * a compensation attempt). The other new events use the contract's names: cancel_requested
 * ({} or {"reason"}), execution_cancelled ({"error": null or ...}), execution_terminated ({} or
 * {"reason"}), execution_retried ({"step": the step re-entered}), compensation_started (step,
 * attempt; {} or {"redelivery": true}), compensation_completed (step, attempt; {"output"}),
 * compensation_failed (step, attempt; {"error"}), and attempt_failed for a compensation
 * ({"compensation": true, "error", "next_attempt_at"}). HEARTBEAT emits no event (the only
 * input that can apply without one): it only moves the heartbeat task.
 *
 * Control flow goes through the definition's plan (plan.h), which this call builds and frees;
 * engine_advance_plan takes one built beforehand. */
int engine_advance(const struct defn *d, struct engine_state *st, json_t *ctx,
                   const struct engine_input *in, struct engine_effects *fx);

struct engine_plan;

/* engine_advance with the plan of the definition (plan.h) built beforehand: the same inputs,
 * effects and return value, for a caller that keeps the plan with the definition instead of
 * having engine_advance build one for the call (which costs one allocation per call, O(steps)).
 * p->d is the definition. Returns -1 as engine_advance does, or when p is NULL. */
int engine_advance_plan(const struct engine_plan *p, struct engine_state *st, json_t *ctx,
                        const struct engine_input *in, struct engine_effects *fx);

#endif
