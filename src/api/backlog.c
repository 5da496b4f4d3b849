/* One thread reads the backlog when a scrape asks; scrapes wait for it only briefly. */
#include "api/backlog.h"

#include "engine/engine.h"
#include "log.h"
#include "runner/transition.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What one read found. */
struct backlog_values {
    long long running, due, overdue, leased;
    double oldest_due_s;
    json_t *pending; /* {kind: n} */
};

struct backlog {
    struct store_pool *pool;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the thread: a read is asked for, or stop */
    pthread_cond_t done; /* scrapes: a read finished */
    bool requested, reading, stopping;
    uint64_t reads;            /* reads finished, successful or not */
    int64_t asked_mono_ms;     /* when the latest read was asked for; 0: never */
    bool ok;                   /* the latest read succeeded */
    int64_t ok_at_ms;          /* wall clock of the latest successful read; 0: none yet */
    unsigned long long errors; /* reads that failed */
    struct backlog_values v;   /* of the latest successful read */
    pthread_t thread;
};

/* Every kind a task may have, shown even when none is pending (0), in this order. */
static void known_kinds(json_t *pending)
{
    for (int k = ENGINE_TASK_ACTIVITY; k <= ENGINE_TASK_CANCEL_DEADLINE; k++)
        json_object_set_new(pending, engine_task_kind_name((enum engine_task_kind)k),
                            json_integer(0));
    const char *runner_kinds[] = {TASK_CHILD_START,   TASK_CHILD_ENDED,
                                  TASK_PARENT_CANCEL, TASK_PARENT_TERMINATE,
                                  TASK_HANDLER_CALL,  TASK_HANDLER_INACTIVITY};
    for (size_t i = 0; i < sizeof runner_kinds / sizeof runner_kinds[0]; i++)
        json_object_set_new(pending, runner_kinds[i], json_integer(0));
}

/* One read, in a read-only transaction under a statement timeout. 0, or -1 with *why set. */
static int read_backlog(struct store_pool *pool, struct backlog_values *v, char **why)
{
    int rc = -1;
    PGresult *res[4] = {NULL, NULL, NULL, NULL};
    PGconn *conn = store_acquire(pool, BACKLOG_ACQUIRE_WAIT_MS, why);
    if (!conn)
        goto done;
    char timeout[64], overdue[24];
    snprintf(timeout, sizeof timeout, "SET LOCAL statement_timeout = %d",
             BACKLOG_STATEMENT_TIMEOUT_MS);
    snprintf(overdue, sizeof overdue, "%d", BACKLOG_OVERDUE_MS);
    const char *params[] = {overdue};
    struct store_call calls[] = {
        {.command = "BEGIN READ ONLY"},
        {.command = timeout},
        {.stmt = STMT_BACKLOG, .n_params = 1, .params = params},
        {.command = "COMMIT"},
    };
    if (store_pipeline(conn, calls, 4, res, why) < 0)
        goto done;
    PGresult *r = res[2];
    if (PQntuples(r) != 1) {
        *why = xstrdup("the backlog query returned no row");
        goto done;
    }
    v->running = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    v->due = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    v->overdue = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    v->oldest_due_s = strtod(PQgetvalue(r, 0, 3), NULL);
    v->leased = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    json_t *by_kind = json_loads(PQgetvalue(r, 0, 5), 0, NULL);
    v->pending = json_object();
    known_kinds(v->pending);
    const char *kind;
    json_t *n;
    json_object_foreach(by_kind, kind, n)
    {
        json_object_set(v->pending, kind, n);
    }
    json_decref(by_kind);
    rc = 0;
done:
    for (int i = 0; i < 4; i++)
        PQclear(res[i]);
    if (conn)
        store_release(pool, conn);
    return rc;
}

static void *backlog_main(void *arg)
{
    struct backlog *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (!b->requested && !b->stopping)
            pthread_cond_wait(&b->wake, &b->lock);
        if (b->stopping)
            break;
        b->requested = false;
        b->reading = true;
        pthread_mutex_unlock(&b->lock);

        struct backlog_values v = {0};
        char *why = NULL;
        int rc = read_backlog(b->pool, &v, &why);

        pthread_mutex_lock(&b->lock);
        b->reading = false;
        b->reads++;
        if (rc == 0) {
            if (!b->ok && b->errors > 0)
                log_info("the backlog gauges of /metrics are read again");
            json_decref(b->v.pending);
            b->v = v;
            b->ok = true;
            b->ok_at_ms = time_now_ms();
        } else {
            if (b->ok || b->errors == 0)
                log_warn("cannot read the backlog gauges of /metrics", "error", why);
            b->ok = false;
            b->errors++;
        }
        free(why);
        pthread_cond_broadcast(&b->done);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

struct backlog *backlog_start(struct store_pool *pool)
{
    struct backlog *b = xcalloc(1, sizeof *b);
    b->pool = pool;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->wake, NULL);
    pthread_cond_init(&b->done, NULL);
    xthread_create(&b->thread, backlog_main, b, "metrics backlog");
    return b;
}

void backlog_stop(struct backlog *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stopping = true;
    pthread_cond_broadcast(&b->wake);
    pthread_cond_broadcast(&b->done);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    json_decref(b->v.pending);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->wake);
    pthread_cond_destroy(&b->done);
    free(b);
}

void backlog_render(struct backlog *b, struct buf *out)
{
    pthread_mutex_lock(&b->lock);
    int64_t now = time_mono_ms();
    if (!b->stopping && !b->requested && !b->reading &&
        (b->asked_mono_ms == 0 || now - b->asked_mono_ms >= BACKLOG_MIN_INTERVAL_MS)) {
        b->requested = true;
        b->asked_mono_ms = now;
        pthread_cond_signal(&b->wake);
    }
    uint64_t seen = b->reads;
    struct timespec deadline = time_deadline_in(BACKLOG_SCRAPE_WAIT_MS);
    while ((b->requested || b->reading) && b->reads == seen && !b->stopping)
        if (pthread_cond_timedwait(&b->done, &b->lock, &deadline) == ETIMEDOUT)
            break;
    bool ok = b->ok;
    int64_t ok_at_ms = b->ok_at_ms;
    unsigned long long errors = b->errors;
    struct backlog_values v = b->v;
    json_incref(v.pending); /* the thread replaces it, never changes it */
    pthread_mutex_unlock(&b->lock);

    buf_printf(out,
               "# HELP keel_backlog_read_ok Whether the latest read of the backlog gauges "
               "(keel_executions_running, keel_tasks_*) from the database succeeded.\n"
               "# TYPE keel_backlog_read_ok gauge\nkeel_backlog_read_ok %d\n"
               "# HELP keel_backlog_read_errors_total Reads of the backlog gauges that failed.\n"
               "# TYPE keel_backlog_read_errors_total counter\n"
               "keel_backlog_read_errors_total %llu\n",
               ok ? 1 : 0, errors);
    if (ok_at_ms > 0) {
        double age = (double)(time_now_ms() - ok_at_ms) / 1000.0;
        buf_printf(out,
                   "# HELP keel_backlog_read_age_seconds Seconds since the backlog gauges were "
                   "last read successfully.\n"
                   "# TYPE keel_backlog_read_age_seconds gauge\n"
                   "keel_backlog_read_age_seconds %.3f\n",
                   age < 0 ? 0 : age);
    }
    if (!ok) {
        json_decref(v.pending);
        return;
    }
    buf_printf(out,
               "# HELP keel_executions_running Executions running, cluster-wide.\n"
               "# TYPE keel_executions_running gauge\nkeel_executions_running %lld\n"
               "# HELP keel_tasks_due Tasks due now and not leased by any keeld, cluster-wide.\n"
               "# TYPE keel_tasks_due gauge\nkeel_tasks_due %lld\n"
               "# HELP keel_tasks_overdue Tasks due for more than %d seconds and not leased, "
               "cluster-wide.\n"
               "# TYPE keel_tasks_overdue gauge\nkeel_tasks_overdue %lld\n"
               "# HELP keel_tasks_oldest_due_age_seconds How long the oldest due task that no "
               "keeld leased has been due (0 when none is).\n"
               "# TYPE keel_tasks_oldest_due_age_seconds gauge\n"
               "keel_tasks_oldest_due_age_seconds %.3f\n"
               "# HELP keel_tasks_leased Tasks a keeld's claimer holds now, cluster-wide.\n"
               "# TYPE keel_tasks_leased gauge\nkeel_tasks_leased %lld\n"
               "# HELP keel_tasks_pending Tasks not yet due, by kind (timer: sleeps), "
               "cluster-wide.\n# TYPE keel_tasks_pending gauge\n",
               v.running, v.due, BACKLOG_OVERDUE_MS / 1000, v.overdue, v.oldest_due_s, v.leased);
    const char *kind;
    json_t *n;
    json_object_foreach(v.pending, kind, n)
    {
        /* Kinds are keeld's own names ([a-z_]); another one is not shown rather than
         * escaped. */
        if (kind[strspn(kind, "abcdefghijklmnopqrstuvwxyz_")] != '\0')
            continue;
        buf_printf(out, "keel_tasks_pending{kind=\"%s\"} %lld\n", kind,
                   (long long)json_integer_value(n));
    }
    json_decref(v.pending);
}
