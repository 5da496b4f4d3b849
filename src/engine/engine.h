/* The interpreter: a pure function from (definition, state, one input) to (new state, events to
 * append, tasks to schedule). No I/O, no clock, no database: time and results arrive as
 * inputs, so replaying a history is calling engine_advance over it, and every guarantee of the
 * journal is a property of this one module. The runner wraps each call in one transaction. */
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

/* Names as in the contract ("running", "completed", ...). */
const char *engine_exec_status_name(enum engine_exec_status s);
const char *engine_step_status_name(enum engine_step_status s);

/* What the interpreter remembers of one step between inputs. Outputs and errors are not here:
 * they live in the expression context (see engine_advance) and in the step rows. */
struct engine_step {
    enum engine_step_status status;
    int attempt;             /* number of the current or last attempt; 0 = none yet */
    int64_t scheduled_at_ms; /* first scheduling: schedule_to_close counts from here; 0 = never */
    int64_t started_at_ms;   /* first attempt start (or timer/wait start); 0 = never */
    int64_t completed_at_ms; /* 0 = not ended */
    int completion_order;    /* 1, 2, ... in order of completion (sagas undo in reverse); 0 */
};

struct engine_state {
    enum engine_exec_status status;
    size_t n_steps;
    struct engine_step *steps; /* owned; parallel to defn->steps */
    size_t current;            /* index of the step being run; n_steps when none is left */
    int completions;           /* how many steps have completed so far */
};

/* A fresh state for d: running, every step pending, current = 0. Free with engine_state_free. */
void engine_state_init(struct engine_state *st, const struct defn *d);
void engine_state_free(struct engine_state *st);
/* Compact JSON for executions.state (new reference, caller decrefs) and back. from_json
 * returns -1 when the JSON does not fit d (wrong step count, bad status names). */
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
};

struct engine_input {
    enum engine_input_kind kind;
    int64_t now_ms;       /* the time of the input, from the runner's clock */
    size_t step;          /* all but START: index of the step the input is about */
    int attempt;          /* ATTEMPT_*: the attempt number it is about */
    bool redelivery;      /* ATTEMPT_STARTED: the same attempt sent again after its lease expired */
    const json_t *output; /* ATTEMPT_SUCCEEDED: the result (borrowed; JSON null for none) */
    const json_t *error;  /* ATTEMPT_FAILED: {"type", "message", ...} (borrowed) */
    bool non_retryable;   /* ATTEMPT_FAILED: the receiver said stop (410, non_retryable) */
    int64_t retry_after_ms; /* ATTEMPT_FAILED: the receiver's Retry-After; -1 when none */
    const char *signal;     /* SIGNAL: its name (borrowed) */
    const json_t *payload;  /* SIGNAL: its payload (borrowed) */
};

enum engine_task_kind {
    ENGINE_TASK_ACTIVITY,     /* send an attempt; payload {"url", "input", "timeout_ms"} */
    ENGINE_TASK_TIMER,        /* fire a sleep / sleep_until step */
    ENGINE_TASK_WAIT_TIMEOUT, /* time out a wait step */
};

const char *engine_task_kind_name(enum engine_task_kind k); /* "activity", "timer", ... */

struct engine_task {
    enum engine_task_kind kind;
    size_t step;
    int attempt;       /* ACTIVITY: the attempt number; else 0 */
    int64_t due_at_ms; /* due now (== input now_ms) or later */
    json_t *payload;   /* owned; ACTIVITY: the evaluated url and input, the attempt timeout in
                          ms; else NULL */
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
                                 the wait timed out, ...) */
    const char *wants_signal; /* after a wait starts: the signal name (borrowed from the
                                 definition); the runner feeds ENGINE_IN_SIGNAL at once if one
                                 is already stored */
    bool ended;               /* the execution reached a final status (st->status) */
    json_t *output;           /* owned; when ended completed: the evaluated output (null if none) */
    json_t *error;            /* owned; when ended failed: {"type", "message", "step"} */
};

void engine_effects_free(struct engine_effects *fx);

/* Applies one input. st is updated in place. ctx is the expression context
 *   {"input": ..., "steps": {"<id>": {"output": ..., "error": ...}},
 *    "execution": {"id": ..., "workflow": ...}}
 * which the runner loads and engine_advance updates as steps complete or fail (so the next
 * step's input can use the output just produced). fx must be zeroed by the caller and freed
 * with engine_effects_free. Returns 0; -1 only on a programming error (an input kind that does
 * not exist), never on user data: bad expressions, bad URLs and failed attempts become step
 * errors and events. */
int engine_advance(const struct defn *d, struct engine_state *st, json_t *ctx,
                   const struct engine_input *in, struct engine_effects *fx);

#endif
