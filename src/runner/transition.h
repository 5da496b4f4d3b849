/* One state change of one execution: lock its row, run the interpreter on one input, and write
 * the events, step rows, tasks and execution row it produces — all inside one transaction. */
#ifndef KEEL_RUNNER_TRANSITION_H
#define KEEL_RUNNER_TRANSITION_H

#include "engine/engine.h"
#include "runner/defcache.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/* An activity attempt that the transition leased to this process, to send after COMMIT. */
struct attempt_dispatch {
    int64_t task_id;
    char *execution_id;
    char *workflow;
    int version;
    char *step_id;
    int attempt;
    json_t *payload; /* {"url", "input", "timeout_ms"} */
    char *token;     /* the task token for asynchronous completion */
    struct attempt_dispatch *next;
};

void attempt_dispatch_free(struct attempt_dispatch *d);
/* Frees a whole list. */
void attempt_dispatch_free_list(struct attempt_dispatch *list);

struct transition_env {
    struct defcache *defs;
    const char *owner;   /* this process's lease owner id */
    long lease_grace_ms; /* added to an attempt's timeout to make its lease */
};

enum transition_outcome {
    TRANSITION_APPLIED,    /* written */
    TRANSITION_STALE,      /* the engine ignored the input; only the consumed task was dropped */
    TRANSITION_NOT_FOUND,  /* no such execution */
    TRANSITION_LEASE_LOST, /* the consumed task is no longer ours; nothing written */
    TRANSITION_ERROR,      /* database error; nothing written */
};

struct transition_out {
    struct attempt_dispatch *dispatches; /* owned by the caller after the call */
    bool ended;
    enum engine_exec_status status;
};

/* Applies in (whose step field is set from step_id when step_id is not NULL) to execution
 * exec_id inside the caller's open transaction. consume_task_id > 0 deletes that task, which
 * must still be leased to env->owner. Activity attempts due at once are leased to this process
 * and journaled as started in the same transaction; they are returned in out->dispatches. */
enum transition_outcome transition_apply(const struct transition_env *env, PGconn *conn,
                                         const char *exec_id, const char *step_id,
                                         int64_t consume_task_id, struct engine_input *in,
                                         struct transition_out *out, char **why);

/* BEGIN; transition_apply; COMMIT — or ROLLBACK when nothing is to be written. */
enum transition_outcome transition_run(const struct transition_env *env, PGconn *conn,
                                       const char *exec_id, const char *step_id,
                                       int64_t consume_task_id, struct engine_input *in,
                                       struct transition_out *out, char **why);

#endif
