/* Schedules at work: the scheduler (a thread per keeld that starts the due schedules' executions)
 * and what the API shares with it (a schedule's times, a start under its overlap policy).
 *
 * A start is exactly-once by construction: the execution's id is "<schedule id>:<due time>",
 * inserted ON CONFLICT DO NOTHING in the transaction that holds the schedule's row (taken with
 * FOR UPDATE SKIP LOCKED, so two keelds never work on one schedule at once) and moves its
 * next_due_at on. A kill -9 before the commit leaves the schedule due; after it, started. After
 * downtime only the latest missed due time starts; one "missed" event says how many were not.
 * Its executions carry the tag keel.schedule=<schedule id> beside the schedule's tags, so that
 * GET /v1/executions?tag=keel.schedule:<id> (and bulk actions) find them. */
#ifndef KEEL_OPS_SCHEDULES_H
#define KEEL_OPS_SCHEDULES_H

#include "sched/cron.h"
#include "sched/schedule_time.h"
#include "sched/tz.h"
#include "store/pool.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/* How many due times a schedule shows. */
#define SCHEDULE_NEXT_SHOWN 5
/* The longest schedule id: 1 to 64 characters of A-Z a-z 0-9 _ - (so that
 * "<id>:<due time>" is an execution id). */
#define SCHEDULE_ID_MAX 64

/* A cron expression and zone, parsed. */
struct schedule_times {
    struct cron cron;
    struct tz *zone;
};

/* Parses cron and zone into *t (free with schedule_times_free). False with why (at least
 * TZ_ERROR_MAX bytes) and *field ("cron" or "timezone") naming the bad one. */
bool schedule_times_parse(const char *cron, const char *zone, struct schedule_times *t,
                          const char **field, char *why);
void schedule_times_free(struct schedule_times *t);
/* The first due time of cron in zone after after_unix, formatted into buf (sched_format_due);
 * false when the calendar cannot be read or never fires again. */
bool schedule_next_after(const char *cron, const char *zone, int64_t after_unix,
                         char buf[SCHED_DUE_MAX]);

/* A schedule's row as STMT_SCHED_LOCK and STMT_SCHED_CLAIM_DUE return it (SCHED_ROW); the
 * strings point into the result. */
struct sched_row {
    const char *id, *workflow, *cron, *timezone, *input, *tags, *overlap;
    bool paused;
    bool has_next;
    int64_t next_due;              /* Unix seconds */
    const char *last_execution_id; /* NULL: none yet */
};
void sched_row_read(const PGresult *r, int row, struct sched_row *s);

enum schedule_start {
    SCHEDULE_STARTED,     /* started now */
    SCHEDULE_EXISTED,     /* its execution exists already (a start is never doubled) */
    SCHEDULE_SKIPPED,     /* overlap "skip" and the previous execution still runs */
    SCHEDULE_NO_WORKFLOW, /* the workflow is not registered (any more) */
    SCHEDULE_DB_ERROR,    /* *why set; the transaction is lost */
};

/* In an open transaction holding s's row: starts the execution of due time `due` (Unix
 * seconds) under s's overlap policy (cancel_previous queues a cancel of a previous execution that
 * still runs), journals what happened in schedule_events (type `event`: "started" or
 * "triggered"; else "skipped" or "start_failed"), and writes the execution id to exec_id (at
 * least EXECUTION_ID_MAX + 1 = 129 bytes). Does not move the schedule's next due time. */
enum schedule_start schedule_start_due(PGconn *conn, const struct sched_row *s, int64_t due,
                                       const char *owner, const char *event, char *exec_id,
                                       char **why);

struct scheduler;

/* Starts the scheduler of this keeld (owner: its keelds.owner). */
struct scheduler *scheduler_start(struct store_pool *pool, const char *owner);
/* Looks for due schedules now (one was created, resumed or changed here). */
void scheduler_wake(struct scheduler *s);
/* Stops it (a start in progress commits first) and frees it; NULL is fine. */
void scheduler_stop(struct scheduler *s);

#endif
