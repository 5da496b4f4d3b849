/* Removing ended executions and everything that is theirs (events, steps, signals, tasks, task
 * tokens, tags), for DELETE /v1/executions/{id} and the retention purge (KEEL_RETENTION). A
 * running execution is never touched: each execution is locked and checked as ended in the
 * transaction that removes it, and every transition locks its execution first, so none can
 * write to one while or after it goes. */
#ifndef KEEL_STORE_PURGE_H
#define KEEL_STORE_PURGE_H

#include <libpq-fe.h>
#include <stdint.h>

struct purge_counts {
    long executions;
    long events;
    long steps;
    long other; /* signals, tasks, task tokens and tag rows */
};

enum purge_result {
    PURGE_DONE,      /* removed */
    PURGE_NOT_FOUND, /* no such execution */
    PURGE_RUNNING,   /* it runs: left alone */
    PURGE_DB_ERROR,  /* nothing changed; *why set */
};

/* Removes execution id, when it has ended, in one transaction on conn (not in one). Adds what
 * it removed to *c. */
enum purge_result purge_execution(PGconn *conn, const char *id, struct purge_counts *c, char **why);

/* Removes up to limit executions that ended more than older_than_ms ago, the oldest first,
 * skipping any another session holds locked, in one transaction on conn. Returns how many it
 * removed (added to *c), or -1 with *why set (caller frees) on a database error. */
long purge_ended_before(PGconn *conn, int64_t older_than_ms, int limit, struct purge_counts *c,
                        char **why);

/* Removes up to 1,000 rows that operations left behind more than older_than_ms ago: schedule
 * events, or the items (then the row) of the batch that completed longest ago. Returns how many
 * it removed (0: none is left), or -1 with *why set (caller frees). One statement, its own
 * transaction. */
long purge_operations_before(PGconn *conn, int64_t older_than_ms, char **why);

#endif
