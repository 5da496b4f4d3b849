/* Every SQL statement of the daemon, prepared once per connection and run by name. Each is
 * parameterised; no SQL text is ever built from data. */
#ifndef KEEL_STORE_STMT_H
#define KEEL_STORE_STMT_H

#include "util/buf.h"

#include <libpq-fe.h>

enum store_stmt {
    STMT_WORKFLOW_LOCK,         /* $1 name: serialise registrations of one name */
    STMT_WORKFLOW_LATEST,       /* $1 name -> version, digest, json */
    STMT_WORKFLOW_VERSION,      /* $1 name, $2 version -> version, digest, json */
    STMT_WORKFLOW_INSERT,       /* $1 name, $2 version, $3 definition, $4 digest */
    STMT_WORKFLOW_LIST,         /* $1 after name ('' = first), $2 limit -> json */
    STMT_WORKFLOW_DEFN,         /* $1 name, $2 version -> definition text */
    STMT_EXEC_INSERT,           /* $1 id, $2 workflow, $3 version or NULL for the latest, $4 input,
                                   $5 now, $6 owner, $7 tags or NULL -> id, version; none when the workflow
                                   (version)          does not exist or the id does */
    STMT_EXEC_SAME_START,       /* $1 id, $2 workflow, $3 input, $4 tags -> same (bool) */
    STMT_EXEC_INSERT_CODE,      /* $1 id, $2 name, $3 input, $4 now, $5 owner, $6 handler or NULL,
                                   $7 tags or NULL -> id (none: exists) */
    STMT_EXEC_SAME_CODE_START,  /* $1 id, $2 name, $3 input, $4 handler, $5 tags -> a code
                                   execution with all of them */
    STMT_EXEC_LOCK,             /* $1 id, $2 task id: locks the execution, then the task */
    STMT_EXEC_LOCKED_READ,      /* $1 id, $2 task id, $3 paths (text[]) -> row for a transition,
                                   read after the lock, with the step rows it starts from */
    STMT_EXEC_APPLY,            /* the writes of one transition (runner/batch_writes.c) */
    STMT_BATCH_APPLY,           /* the writes of a batch of transitions (runner/batch_writes.c) */
    STMT_EXEC_JSON,             /* $1 id -> the execution as API JSON with steps */
    STMT_EXEC_LIST,             /* filters ($1-$4, $8-$10) and keyset ($5-$7) -> json rows */
    STMT_EXEC_LIST_TAGGED,      /* as STMT_EXEC_LIST, through the rows of tag $11:$12 */
    STMT_TAGS_RAREST,           /* $1 keys (text[]), $2 values (text[]) -> the 1-based index
                                   of the tag with the fewest executions (up to 1,000) */
    STMT_PURGE_LOCK_ONE,        /* $1 id -> status; the execution locked */
    STMT_PURGE_LOCK_OLD,        /* $1 ms, $2 limit -> ids of executions ended more than $1 ms
                                   ago, oldest first, locked (SKIP LOCKED) */
    STMT_PURGE_SCHEDULE_EVENTS, /* $1 ms: up to 1,000 schedule events older -> (deleted) */
    STMT_PURGE_BATCH,           /* $1 ms: up to 1,000 rows of the oldest batch completed before ->
                                   rows removed */
    STMT_PURGE,                 /* $1 ids (text[], locked and ended) -> executions, events, steps,
                                   other rows removed */
    STMT_BATCH_COUNT,           /* EXEC_FILTER's $1-$4, $8-$10, $11 ids, $7 created up to, $5 $6
                                   cursor -> count */
    STMT_BATCH_PAGE,            /* as STMT_BATCH_COUNT, $12 limit -> id, created_at (ascending) */
    STMT_BATCH_INSERT,      /* $1 id, $2 action, $3 filter, $4 reason, $5 matched, $6 now, $7 owner
                               (the keeld that starts on it) -> json */
    STMT_BATCH_GET,         /* $1 id -> json */
    STMT_BATCH_LIST,        /* $1 cursor created_at, $2 cursor id, $3 limit -> json, created_at,
                               id */
    STMT_BATCH_CLAIM,       /* $1 owner -> id, action, filter, reason, cursor_at, cursor_id,
                               created_at of the batch claimed */
    STMT_BATCH_ITEMS,       /* $1 batch, $2 result or NULL, $3 $4 cursor, $5 limit -> json,
                               created_at, execution id (in the batch's order) */
    STMT_BATCH_ITEM_SEEN,   /* $1 batch, $2 created_at, $3 execution -> a row if reached */
    STMT_BATCH_ITEM_ADD,    /* $1 batch, $2 created_at, $3 execution, $4 result */
    STMT_BATCH_ADVANCE,     /* $1 batch, $2 owner, $3 $4 old cursor, $5 $6 new, $7 done */
    STMT_SCHED_INSERT,      /* $1 id, $2 workflow, $3 cron, $4 timezone, $5 input, $6 tags,
                               $7 overlap, $8 next due, $9 now -> id (none: it exists) */
    STMT_SCHED_SAME,        /* $1 id, $2-$7 as STMT_SCHED_INSERT -> the same (bool) */
    STMT_SCHED_GET,         /* $1 id -> json, cron, timezone, next due (s) */
    STMT_SCHED_LIST,        /* $1 after id, $2 limit -> json, cron, timezone, next due, id */
    STMT_SCHED_LOCK,        /* $1 id -> SCHED_ROW, locked */
    STMT_SCHED_CLAIM_DUE,   /* -> SCHED_ROW of a due schedule, locked (SKIP LOCKED) */
    STMT_SCHED_EXEC_STATUS, /* $1 execution id -> status */
    STMT_SCHED_START,       /* $1 execution id, $2 workflow, $3 input, $4 tags, $5 now, $6 owner,
                               $7 schedule id -> workflow exists (0/1), started (0/1) */
    STMT_SCHED_CANCEL_PREV, /* $1 execution id, $2 now, $3 owner, $4 reason */
    STMT_SCHED_ADVANCE,     /* $1 id, $2 next due, $3 last due, $4 last execution (NULL: kept) */
    STMT_SCHED_EVENT,       /* $1 id, $2 type, $3 due, $4 execution, $5 data */
    STMT_SCHED_PAUSE,       /* $1 id, $2 paused, $3 next due (resume) -> id when it changed */
    STMT_SCHED_DELETE,      /* $1 id -> count */
    STMT_SCHED_HISTORY,     /* $1 id, $2 before seq, $3 limit -> json, seq (newest first) */
    STMT_SCHED_NEXT_WAKE,   /* -> ms until the earliest due schedule (NULL: none) */
    STMT_EXEC_STATUS,       /* $1 id -> status, kind */
    STMT_HISTORY,           /* $1 id, $2 after seq, $3 limit -> json rows */
    STMT_TASKS_CLAIM,       /* $1 owner, $2 lease grace ms, $3 limit -> claimed tasks */
    STMT_TASKS_NEXT_WAKE,   /* $1 owner -> ms until its next task is due or a lease of its
                               expires (or NULL) */
    STMT_TASK_RELEASE,      /* $1 task id, $2 owner: give back a lease (the task's execution
                               has another owner now) */
    STMT_SIGNAL_NEXT,       /* $1 execution, $2 name, $3 ids taken -> oldest free: id, payload */
    STMT_SIGNAL_CONSUME,    /* $1 signal id, $2 seq of its signal_consumed event */
    STMT_SIGNAL_INSERT,     /* $1 execution, $2 name, $3 payload, $4 key, $5 now -> id or none */
    STMT_SIGNAL_BY_KEY,     /* $1 execution, $2 key, $3 name, $4 payload -> id, name, payload,
                               consumed, same name, same payload */
    STMT_EXEC_LOCK_STATUS,  /* $1 id -> status (FOR UPDATE) */
    STMT_TOKEN_INSERT,      /* $1 token hash, $2 execution, $3 step, $4 attempt, $5 compensation */
    STMT_TOKEN_FIND,        /* $1 token hash -> execution (no lock: lock the execution first) */
    STMT_TOKEN_LOCK,        /* $1 token hash -> execution, step, attempt, compensation, used */
    STMT_TOKEN_USE,         /* $1 token hash: mark it used */
    STMT_LIVENESS_LOCK,     /* $1 owner -> whether this session now holds its liveness lock */
    STMT_LEASES_OF_DEAD,    /* $1 own owner: expire the task leases of dead keelds */
    STMT_KEELD_HEARTBEAT,   /* $1 owner, $2 ms: this keeld is alive for that long */
    STMT_TAKE_OVER,         /* $1 own owner, $2 limit: own running executions of dead keelds ->
                               ids taken, their dead owner */
    STMT_KEELDS_FORGET,     /* $1 own owner: drop dead keelds that own nothing running */
    STMT_KEELDS_ORPHANS,    /* $1 own owner: register owners of running executions that have no
                               keelds row and no liveness lock, as dead -> owners */
    STMT_KEELDS_LIVE,       /* $1 own owner -> how many keelds are alive (this one included), and
                               how many of them have an owner id before this one's */
    STMT_STEP_CAPACITY,     /* $1 execution, $2 path, $3 capacity_wait (jsonb) or NULL */
    STMT_WORKFLOW_PICK_VERSION, /* $1 name, $2 version or NULL for the latest -> version */
    STMT_STEPS_LOAD,            /* $1 execution, $2 paths (text[]) -> step rows, as JSON */
    STMT_STEPS_LOAD_ALL,        /* $1 execution -> every step row, as JSON */
    STMT_STEPS_ITEM,            /* $1 execution, $2 for_each path, $3 index -> the element */
    STMT_STEPS_WAITING,         /* $1 execution -> paths of the waiting steps */
    STMT_EXEC_INPUT,            /* $1 execution -> its input, as text */
    STMT_WORKFLOWS_REGISTERED,  /* $1 names (text[]) -> those with a version */
    STMT_TASKS_REALIGN,         /* $1 own owner: tasks queued between executions, unleased, move to
                                   their execution's owner (this keeld for an execution not running
                                   whose task's owner is gone) -> ids moved */
    STMT_CHILD_START,    /* $1 child id, $2 workflow, $3 version or NULL, $4 input, $5 parent,
                            $6 step path, $7 max depth, $8 owner, $9 now: creates the child (or
                            finds the step's last one) and queues its child_start, or queues the
                            parent's child_ended with why it cannot start -> id, version, whether
                            it existed (no row when it cannot start) */
    STMT_CHILD_STOP,     /* $1 parent, $2 step path, $3 task kind, $4 payload, $5 now, $6 owner
                            if none: queued for the step's running child */
    STMT_CHILD_REPORT,   /* $1 child id, $2 parent, $3 step path, $4 payload or NULL (from the
                            child's row), $5 now, $6 owner if none: queues the parent's
                            child_ended while the parent runs */
    STMT_STEP_CALL_READ, /* $1 execution, $2 key, $3 request or NULL -> kind, status,
                            cancel_requested, and the key's row (when there is one): kind,
                            status, request equal to $3, activity url, differs flag, seconds
                            until it is due, the step as API JSON */
    STMT_STEP_CALL_DONE, /* $1 execution -> the keys completed, last completed first (JSON) */
    STMT_CALLS_LAST,     /* $1 executions (text[]), $2 their last call times: the programs'
                            last calls noted by api/call_tracker.c */
    STMT_CALLS_REPLAYS,  /* $1 executions of replayed keys (text[]), $2 those keys, $3 replays:
                            added to the keys' rows */
    STMT_STEP_CALL_LIST, /* $1 execution, $2 after position (-1: first), $3 limit -> the keys'
                            steps as API JSON in first-call order, position */
    STMT_HANDLER_QUEUE,  /* $1 execution, $2 due, $3 reason, $4 key or NULL, $5 owner, $6 timeout
                            ms: a handler_call task with the next run (none without a handler) */
    STMT_HANDLER_ARM,    /* $1 execution, $2 base time, $3 owner: the handler_inactivity task,
                            due the inactivity timeout after $2 (replacing one not leased) */
    STMT_HANDLER_IDLE,   /* $1 execution -> last call (or creation) in epoch ms, the inactivity
                            timeout in ms, whether a key's step is pending */
    STMT_STEPS_NOTIFY,   /* $1 topics (text[]): NOTIFY keel_steps of each "<execution>/<key>"
                            whose step ended (delivered at COMMIT) */
    STMT_BACKLOG,        /* $1 overdue after (ms) -> executions running, tasks due now (not
                            leased), due longer than $1, age of the oldest due one (seconds, 0
                            without any), tasks leased, tasks not yet due by kind (JSON
                            {kind: n}), all cluster-wide (api/backlog.c) */
    STMT__COUNT
};

/* Prepares every statement on conn. Returns 0, or -1 with *why set (caller frees). */
int store_prepare_all(PGconn *conn, char **why) __attribute__((warn_unused_result));
/* Runs a prepared statement with text parameters (NULL = SQL NULL). Caller PQclears. */
PGresult *store_run(PGconn *conn, enum store_stmt s, int n_params, const char *const *params);
/* True when r is a successful command or query result. */
int store_ok(const PGresult *r);
/* A copy of the error of r (or of conn when r is NULL), without the trailing newline. */
char *store_error(const PGresult *r, PGconn *conn);
/* One element of a pipeline: a plain command (BEGIN, COMMIT) when command is set, else a
 * prepared statement with its parameters. */
struct store_call {
    const char *command;
    enum store_stmt stmt;
    int n_params;
    const char *const *params;
};

/* Sends every call in one round trip (libpq pipeline mode) and fills results[i] for each
 * (caller PQclears them). A call after a failed one is not run (PGRES_PIPELINE_ABORTED), so
 * "BEGIN; statement" and "statement; COMMIT" are safe to pipeline. Returns 0 when every call
 * succeeded, else -1 with *why set (caller frees). */
int store_pipeline(PGconn *conn, const struct store_call *calls, int n, PGresult **results,
                   char **why) __attribute__((warn_unused_result));
/* Appends s as one element of a PostgreSQL array literal: double-quoted, with '"' and '\\'
 * escaped. */
void store_array_element(struct buf *b, const char *s);
/* Appends the strings as a PostgreSQL text[] literal: {"a","b"}. */
void store_text_array(struct buf *b, const char *const *items, size_t n);
/* Runs a plain command (BEGIN, COMMIT, ROLLBACK); 0 or -1. */
int store_command(PGconn *conn, const char *sql);

#endif
