/* Inputs from the API (a start, a signal, a cancel, a task token's call) applied by the runner:
 * the worker that owns the execution's shard applies each in its next transaction, together
 * with the runner's own work, and the HTTP request waits suspended meanwhile. No HTTP thread
 * waits on the database or on a pool for them, and one execution's inputs are applied by one
 * worker at a time, in the order they came. */
#ifndef KEEL_RUNNER_INPUT_H
#define KEEL_RUNNER_INPUT_H

#include "runner/transition.h"

#include <libpq-fe.h>

/* The most statements an input sends before its execution's lock, and after the commit. */
#define RUNNER_INPUT_MAX_CALLS 3

enum runner_input_step {
    INPUT_APPLY, /* run the transition of req */
    INPUT_SKIP,  /* nothing to apply: the input knows its answer already */
    INPUT_ERROR, /* a database error: *why is set */
};

struct runner_input;

struct runner_input_ops {
    /* Optional, for an input that names no execution yet (a task token): finds it, outside any
     * transaction, and sets req.execution_id (owned by the input) and what else it knows.
     * Returns 1 when found, 0 when the input is answered already (finish is then called
     * with skipped set), -1 on a database error. */
    int (*resolve)(struct runner_input *in, PGconn *conn, char **why);
    /* Optional: statements sent in the transaction's first round trip, just before the
     * execution's lock (a start's insert; a lock that reads the status). Returns how many (at
     * most RUNNER_INPUT_MAX_CALLS); their params must live as long as the input. */
    int (*before_lock)(struct runner_input *in, struct store_call *calls);
    /* In the transaction, the execution locked, with the results of before_lock: decides
     * whether req is applied (and may fill in more of it: a signal's id, extra events). May run
     * statements on conn. */
    enum runner_input_step (*prepare)(struct runner_input *in, PGconn *conn,
                                      PGresult *const *before, char **why);
    /* Optional: after a transition that applied or was stale, more writes in the same
     * transaction (a task token spent). 0, or -1 with *why set. */
    int (*after)(struct runner_input *in, PGconn *conn, enum transition_outcome rc, char **why);
    /* Optional: reads sent right after COMMIT, in the same round trip (the execution to answer
     * with). Returns how many (at most RUNNER_INPUT_MAX_CALLS). */
    int (*reply_reads)(struct runner_input *in, struct store_call *calls);
    /* Replies and resumes the request: once the input committed (rc, out and skipped tell
     * how; reads holds the results of reply_reads, NULL when they could not run), or failed
     * (rc TRANSITION_ERROR, why; conn tells a lost connection or a lock wait from the rest,
     * and may be NULL when none could be had). Runs on a worker thread. */
    void (*finish)(struct runner_input *in, PGconn *conn, PGresult *const *reads, const char *why);
    /* Frees the input (after finish). */
    void (*free)(struct runner_input *in);
};

struct runner_input {
    const struct runner_input_ops *ops;
    /* req.execution_id must be set before runner_submit unless ops->resolve sets it; route
     * picks the worker that resolves it. The strings req points to belong to the input. */
    struct transition_request req;
    const char *route;
    bool only_applied; /* a start: nothing of it is kept unless its transition applied */
    /* Set by the runner for finish. */
    enum transition_outcome rc;
    struct transition_out out; /* its dispatches are sent by the runner */
    bool skipped;              /* prepare or resolve answered INPUT_SKIP / 0 */
};

struct runner;

/* Queues in for the worker of its execution. The caller has suspended the HTTP request; the
 * runner calls in->ops->finish exactly once, then in->ops->free. */
void runner_submit(struct runner *r, struct runner_input *in);

#endif
