/* The writes of the transitions of one transaction, gathered per table and sent as one
 * statement with one multi-row DML per table (each column one array parameter), with COMMIT,
 * in one round trip: a batch of any size costs one statement. */
#ifndef KEEL_RUNNER_BATCH_WRITES_H
#define KEEL_RUNNER_BATCH_WRITES_H

#include "store/stmt.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

struct batch_writes {
    json_t *events;   /* [{execution_id, seq, type, step, path, attempt, at, data}] */
    json_t *steps;    /* step rows, each with execution_id (transition.c's step_rows) */
    json_t *tasks;    /* [{execution_id, kind, step, attempt, due_at, payload, owner}] */
    json_t *tokens;   /* [{token_hash, execution_id, step, attempt, compensation}] */
    json_t *drops;    /* [{execution_id, kind, step}]: pending tasks deleted */
    json_t *consumed; /* [task id]: claimed tasks applied (deleted while still leased to us) */
    json_t *cancels;  /* [execution_id]: every pending task of these deleted */
    json_t *execs;    /* [{id, status, state, last_seq, output, error, at, ended, take}] */
    bool notify;      /* a task for another keeld was inserted: NOTIFY keel_tasks */
};

void batch_writes_init(struct batch_writes *w);
void batch_writes_free(struct batch_writes *w);

/* Sends the writes of w in one statement (the tasks deleted are those that existed before it),
 * then COMMIT, then the n_after calls of after (reads whose results go to after_res, for the caller
 * to clear), in one round trip. Returns 0 once COMMIT succeeded (whatever the reads did), or -1
 * with *why set (the caller rolls back; none of w's transitions happened). owner is this
 * keeld's (a consumed task must still be leased to it). */
int batch_writes_flush(PGconn *conn, const struct batch_writes *w, const char *owner,
                       const struct store_call *after, int n_after, PGresult **after_res,
                       char **why) __attribute__((warn_unused_result));

#endif
