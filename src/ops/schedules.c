/* The scheduler and the starts of schedules. */
#include "ops/schedules.h"

#include "log.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How far the scheduler looks for the latest missed due time after downtime, in due times: a
 * schedule every minute down for almost two years. Beyond it, the latest one found starts. */
#define MISSED_SCAN_MAX 1000000
/* The longest the scheduler sleeps: schedules created or resumed on other keelds are found
 * within it. */
#define SCHEDULER_IDLE_MS 1000
/* How soon it looks again at a due schedule it could not take (another keeld holds it). */
#define SCHEDULER_RETRY_MS 100

bool schedule_times_parse(const char *cron, const char *zone, struct schedule_times *t,
                          const char **field, char *why)
{
    t->zone = NULL;
    if (!cron_parse(cron, &t->cron, why)) {
        *field = "cron";
        return false;
    }
    if (!tz_load(zone, &t->zone, why)) {
        *field = "timezone";
        return false;
    }
    return true;
}

void schedule_times_free(struct schedule_times *t)
{
    tz_free(t->zone);
    t->zone = NULL;
}

bool schedule_next_after(const char *cron, const char *zone, int64_t after_unix,
                         char buf[SCHED_DUE_MAX])
{
    struct schedule_times t;
    const char *field;
    char why[TZ_ERROR_MAX + CRON_ERROR_MAX];
    if (!schedule_times_parse(cron, zone, &t, &field, why))
        return false;
    int64_t next;
    bool found = sched_next(&t.cron, t.zone, after_unix, &next);
    if (found)
        sched_format_due(next, buf);
    schedule_times_free(&t);
    return found;
}

void sched_row_read(const PGresult *r, int row, struct sched_row *s)
{
    s->id = PQgetvalue(r, row, 0);
    s->workflow = PQgetvalue(r, row, 1);
    s->cron = PQgetvalue(r, row, 2);
    s->timezone = PQgetvalue(r, row, 3);
    s->input = PQgetvalue(r, row, 4);
    s->tags = PQgetisnull(r, row, 5) ? NULL : PQgetvalue(r, row, 5);
    s->overlap = PQgetvalue(r, row, 6);
    s->paused = !strcmp(PQgetvalue(r, row, 7), "t");
    s->has_next = !PQgetisnull(r, row, 8);
    s->next_due = s->has_next ? strtoll(PQgetvalue(r, row, 8), NULL, 10) : 0;
    s->last_execution_id = PQgetisnull(r, row, 9) ? NULL : PQgetvalue(r, row, 9);
}

static bool run_ok(PGconn *conn, enum store_stmt stmt, int n, const char *const *params,
                   PGresult **out, char **why)
{
    PGresult *r = store_run(conn, stmt, n, params);
    if (!store_ok(r)) {
        *why = store_error(r, conn);
        PQclear(r);
        return false;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return true;
}

static bool event(PGconn *conn, const char *id, const char *type, const char *due,
                  const char *exec_id, json_t *data, char **why)
{
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    const char *params[] = {id, type, due, exec_id, text};
    bool ok = run_ok(conn, STMT_SCHED_EVENT, 5, params, NULL, why);
    free(text);
    return ok;
}

enum schedule_start schedule_start_due(PGconn *conn, const struct sched_row *s, int64_t due,
                                       const char *owner, const char *event_type, char *exec_id,
                                       char **why)
{
    char due_text[SCHED_DUE_MAX], now_text[32];
    sched_format_due(due, due_text);
    snprintf(exec_id, 129, "%s:%s", s->id, due_text);
    int64_t now = time_now_ms();
    time_format_rfc3339(now, now_text);
    const char *prev = s->last_execution_id;
    if (prev && strcmp(s->overlap, "allow") != 0 && strcmp(prev, exec_id) != 0) {
        const char *params[] = {prev};
        PGresult *r = NULL;
        if (!run_ok(conn, STMT_SCHED_EXEC_STATUS, 1, params, &r, why))
            return SCHEDULE_DB_ERROR;
        bool running = PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "running");
        PQclear(r);
        if (running && !strcmp(s->overlap, "skip")) {
            if (!event(conn, s->id, "skipped", due_text, NULL,
                       json_pack("{s:s, s:s}", "reason", "overlap", "running", prev), why))
                return SCHEDULE_DB_ERROR;
            return SCHEDULE_SKIPPED;
        }
        if (running) {
            char *reason = xasprintf("schedule %s: the start due at %s cancels it (overlap "
                                     "cancel_previous)",
                                     s->id, due_text);
            const char *cp[] = {prev, now_text, owner, reason};
            bool ok = run_ok(conn, STMT_SCHED_CANCEL_PREV, 4, cp, NULL, why);
            free(reason);
            if (!ok)
                return SCHEDULE_DB_ERROR;
        }
    }
    const char *sp[] = {exec_id, s->workflow, s->input, s->tags, now_text, owner, s->id};
    PGresult *r = NULL;
    if (!run_ok(conn, STMT_SCHED_START, 7, sp, &r, why))
        return SCHEDULE_DB_ERROR;
    bool have_workflow = !strcmp(PQgetvalue(r, 0, 0), "1");
    bool created = !strcmp(PQgetvalue(r, 0, 1), "1");
    PQclear(r);
    if (!have_workflow) {
        if (!event(conn, s->id, "start_failed", due_text, exec_id,
                   json_pack("{s:s}", "message", "the workflow is not registered"), why))
            return SCHEDULE_DB_ERROR;
        return SCHEDULE_NO_WORKFLOW;
    }
    if (!created)
        return SCHEDULE_EXISTED;
    if (!event(conn, s->id, event_type, due_text, exec_id, NULL, why))
        return SCHEDULE_DB_ERROR;
    return SCHEDULE_STARTED;
}

/* ---- the scheduler ------------------------------------------------------------------------ */

struct scheduler {
    struct store_pool *pool;
    char *owner;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping, woken;
    pthread_t thread;
};

static void rollback(PGconn *conn)
{
    (void)store_command(conn, "ROLLBACK");
}

/* The latest due time at or before now from the one due (count: the earlier ones, missed). */
static int64_t latest_due(const struct schedule_times *t, int64_t due, int64_t now, long *missed,
                          int64_t *last_missed)
{
    *missed = 0;
    int64_t latest = due, next;
    while (*missed < MISSED_SCAN_MAX && sched_next(&t->cron, t->zone, latest, &next) &&
           next <= now) {
        *last_missed = latest;
        ++*missed;
        latest = next;
    }
    return latest;
}

/* One due schedule, in a transaction of its own: 1 when one was handled, 0 when none is due, -1
 * on an error (logged). */
static int fire_one(struct scheduler *sc, PGconn *conn)
{
    char *why = NULL;
    if (store_command(conn, "BEGIN") < 0)
        return -1;
    PGresult *r = NULL;
    if (!run_ok(conn, STMT_SCHED_CLAIM_DUE, 0, NULL, &r, &why))
        goto fail;
    if (PQntuples(r) == 0) {
        PQclear(r);
        rollback(conn);
        return 0;
    }
    struct sched_row s;
    sched_row_read(r, 0, &s);
    struct schedule_times t;
    const char *field = NULL;
    char terr[TZ_ERROR_MAX + CRON_ERROR_MAX];
    int64_t now = time_now_ms() / 1000;
    char next_text[SCHED_DUE_MAX] = "", last_text[SCHED_DUE_MAX];
    const char *next_param = NULL;
    char exec_id[160];
    const char *started_id = NULL;
    if (!schedule_times_parse(s.cron, s.timezone, &t, &field, terr)) {
        /* Its zone may have gone from this machine's tzdata: it stays due and says so. */
        log_warn("schedule: cannot compute its times; it waits", "schedule", s.id, "error", terr);
        PQclear(r);
        rollback(conn);
        return -1;
    }
    long missed = 0;
    int64_t last_missed = 0;
    int64_t due = latest_due(&t, s.next_due, now, &missed, &last_missed);
    if (missed > 0) {
        char first[SCHED_DUE_MAX], last[SCHED_DUE_MAX];
        sched_format_due(s.next_due, first);
        sched_format_due(last_missed, last);
        if (!event(conn, s.id, "missed", first, NULL,
                   json_pack("{s:I, s:s, s:s}", "count", (json_int_t)missed, "first", first, "last",
                             last),
                   &why)) {
            schedule_times_free(&t);
            goto fail;
        }
    }
    enum schedule_start st = schedule_start_due(conn, &s, due, sc->owner, "started", exec_id, &why);
    if (st == SCHEDULE_DB_ERROR) {
        schedule_times_free(&t);
        goto fail;
    }
    if (st == SCHEDULE_STARTED || st == SCHEDULE_EXISTED)
        started_id = exec_id;
    int64_t next;
    if (sched_next(&t.cron, t.zone, due, &next)) {
        sched_format_due(next, next_text);
        next_param = next_text;
    }
    schedule_times_free(&t);
    sched_format_due(due, last_text);
    const char *ap[] = {s.id, next_param, last_text, started_id};
    if (!run_ok(conn, STMT_SCHED_ADVANCE, 4, ap, NULL, &why))
        goto fail;
    PQclear(r);
    r = NULL;
    if (store_command(conn, "COMMIT") < 0) {
        why = store_error(NULL, conn);
        goto fail;
    }
    return 1;
fail:
    PQclear(r);
    log_warn("schedule: a start failed; it is tried again", "error", why ? why : "");
    free(why);
    rollback(conn);
    return -1;
}

/* How long to sleep: until the earliest due schedule, at most SCHEDULER_IDLE_MS. */
static long next_wait_ms(PGconn *conn)
{
    PGresult *r = store_run(conn, STMT_SCHED_NEXT_WAKE, 0, NULL);
    long wait = SCHEDULER_IDLE_MS;
    if (store_ok(r) && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        long long ms = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        wait = ms < 0 ? 0 : ms < SCHEDULER_IDLE_MS ? (long)ms : SCHEDULER_IDLE_MS;
    }
    PQclear(r);
    return wait;
}

static void *scheduler_main(void *arg)
{
    struct scheduler *sc = arg;
    for (;;) {
        long wait = SCHEDULER_IDLE_MS;
        char *why = NULL;
        PGconn *conn = store_acquire(sc->pool, 1000, &why);
        if (conn) {
            int rc = 0, n = 0;
            /* A bounded round, so that a stop is never held up for long. */
            while (n < 100 && (rc = fire_one(sc, conn)) == 1)
                n++;
            wait = n == 100 ? 0 : next_wait_ms(conn);
            /* A schedule due but held by another keeld's transaction, or one that failed: look
             * again soon, but do not spin on it. */
            if (rc < 0)
                wait = SCHEDULER_IDLE_MS;
            else if (n == 0 && wait < SCHEDULER_RETRY_MS)
                wait = SCHEDULER_RETRY_MS;
            store_release(sc->pool, conn);
        }
        free(why);
        pthread_mutex_lock(&sc->lock);
        if (!sc->stopping && !sc->woken && wait > 0) {
            /* Woken a few ms after the due second has begun, never before it. */
            struct timespec ts = time_deadline_in(wait + 5);
            while (!sc->stopping && !sc->woken &&
                   pthread_cond_timedwait(&sc->cond, &sc->lock, &ts) == 0)
                ;
        }
        sc->woken = false;
        bool stop = sc->stopping;
        pthread_mutex_unlock(&sc->lock);
        if (stop)
            break;
    }
    return NULL;
}

struct scheduler *scheduler_start(struct store_pool *pool, const char *owner)
{
    struct scheduler *sc = xcalloc(1, sizeof *sc);
    sc->pool = pool;
    sc->owner = xstrdup(owner);
    pthread_mutex_init(&sc->lock, NULL);
    pthread_cond_init(&sc->cond, NULL);
    xthread_create(&sc->thread, scheduler_main, sc, "scheduler");
    return sc;
}

void scheduler_wake(struct scheduler *sc)
{
    pthread_mutex_lock(&sc->lock);
    sc->woken = true;
    pthread_cond_broadcast(&sc->cond);
    pthread_mutex_unlock(&sc->lock);
}

void scheduler_stop(struct scheduler *sc)
{
    if (!sc)
        return;
    pthread_mutex_lock(&sc->lock);
    sc->stopping = true;
    pthread_cond_broadcast(&sc->cond);
    pthread_mutex_unlock(&sc->lock);
    pthread_join(sc->thread, NULL);
    pthread_mutex_destroy(&sc->lock);
    pthread_cond_destroy(&sc->cond);
    free(sc->owner);
    free(sc);
}
