/* The claimer leases due tasks of this keeld's executions; the listener wakes it on NOTIFY. */
#include "runner/internal.h"

#include "log.h"
#include "metrics.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLAIM_BATCH       64
#define MAX_IDLE_SLEEP_MS 30000

/* ---- claimer ------------------------------------------------------------------------------- */

static int claim_batch(struct runner *r, PGconn *conn, int limit, char **why)
{
    char grace[24], lim[16];
    snprintf(grace, sizeof grace, "%ld", r->cfg.lease_grace_ms);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *params[] = {r->owner, grace, lim};
    PGresult *res = store_run(conn, STMT_TASKS_CLAIM, 3, params);
    if (!store_ok(res)) {
        *why = store_error(res, conn);
        PQclear(res);
        return -1;
    }
    int n = PQntuples(res);
    metrics_tasks_claimed(n);
    for (int i = 0; i < n; i++) {
        struct job *j = xcalloc(1, sizeof *j);
        j->kind = JOB_CLAIMED;
        j->task_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        j->execution_id = xstrdup(PQgetvalue(res, i, 1));
        j->task_kind = xstrdup(PQgetvalue(res, i, 2));
        j->step_id = xstrdup(PQgetvalue(res, i, 3));
        j->attempt = PQgetisnull(res, i, 4) ? 0 : atoi(PQgetvalue(res, i, 4));
        j->payload = PQgetisnull(res, i, 5) ? NULL : json_loads(PQgetvalue(res, i, 5), 0, NULL);
        j->workflow = xstrdup(PQgetvalue(res, i, 6));
        j->version = atoi(PQgetvalue(res, i, 7));
        push_job(r, j);
    }
    PQclear(res);
    return n;
}

/* Milliseconds until the next task is due or a lease expires; MAX_IDLE_SLEEP_MS when none. */
static long next_wake_ms(struct runner *r, PGconn *conn)
{
    const char *params[] = {r->owner};
    PGresult *res = store_run(conn, STMT_TASKS_NEXT_WAKE, 1, params);
    long ms = MAX_IDLE_SLEEP_MS;
    if (store_ok(res) && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        long v = atol(PQgetvalue(res, 0, 0));
        ms = v < 0 ? 0 : v < MAX_IDLE_SLEEP_MS ? v : MAX_IDLE_SLEEP_MS;
    } else if (!store_ok(res)) {
        ms = 1000;
    }
    PQclear(res);
    return ms;
}

void timed_wait(pthread_cond_t *cond, pthread_mutex_t *lock, long ms)
{
    struct timespec ts = time_deadline_in(ms);
    pthread_cond_timedwait(cond, lock, &ts);
}

void *claimer_main(void *arg)
{
    struct runner *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stopping_claims;
        r->claim_requested = false;
        r->claimer_wakes_at_ms = INT64_MAX;
        r->due_while_awake = INT64_MAX;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            return NULL;

        long sleep_ms = MAX_IDLE_SLEEP_MS;
        /* Nothing is claimed without the liveness lock: the others would take it over at once. */
        if (!atomic_load(&r->live)) {
            pthread_mutex_lock(&r->lock);
            if (!r->stopping_claims && !r->claim_requested)
                timed_wait(&r->wake, &r->lock, 1000);
            pthread_mutex_unlock(&r->lock);
            continue;
        }
        long room = r->cfg.max_in_flight - atomic_load(&r->in_flight);
        atomic_store(&r->starved, room <= 0);
        char *why = NULL;
        PGconn *conn = room > 0 ? store_acquire(r->pool, 5000, &why) : NULL;
        if (room > 0 && !conn) {
            log_warn("claimer: database unavailable", "error", why);
            free(why);
            sleep_ms = 1000;
        } else if (conn) {
            int limit = room < CLAIM_BATCH ? (int)room : CLAIM_BATCH;
            int n = claim_batch(r, conn, limit, &why);
            if (n < 0) {
                log_warn("claimer: claim failed", "error", why);
                free(why);
                sleep_ms = 1000;
            } else if (n == limit) {
                sleep_ms = 0; /* more may be due */
            } else {
                /* Tasks of executions this keeld took over, and leases that ran out, are not
                 * announced: look again within LIVENESS_SWEEP_MS. */
                sleep_ms = next_wake_ms(r, conn);
                if (sleep_ms > LIVENESS_SWEEP_MS)
                    sleep_ms = LIVENESS_SWEEP_MS;
            }
            store_release(r->pool, conn);
        }
        if (sleep_ms == 0)
            continue;
        pthread_mutex_lock(&r->lock);
        int64_t now = time_now_ms();
        if (r->due_while_awake != INT64_MAX && r->due_while_awake - now < sleep_ms)
            sleep_ms = r->due_while_awake > now ? (long)(r->due_while_awake - now) : 0;
        if (!r->claim_requested && !r->stopping_claims && sleep_ms > 0) {
            r->claimer_wakes_at_ms = now + sleep_ms;
            timed_wait(&r->wake, &r->lock, sleep_ms);
        }
        pthread_mutex_unlock(&r->lock);
    }
}

/* ---- listener ------------------------------------------------------------------------------ */

static PGconn *listen_connect(struct runner *r)
{
    char *why = NULL;
    PGconn *c = store_connect(r->cfg.database_url, &why);
    if (!c) {
        free(why);
        return NULL;
    }
    if (store_command(c, "LISTEN keel_tasks") < 0 || store_command(c, "LISTEN keel_done") < 0 ||
        store_command(c, "LISTEN keel_steps") < 0) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

void *listener_main(void *arg)
{
    struct runner *r = arg;
    PGconn *c = NULL;
    bool was_down = false;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stopping_claims;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            break;
        if (!c) {
            c = listen_connect(r);
            if (!c) {
                was_down = true;
                usleep(500 * 1000);
                continue;
            }
            if (was_down) {
                log_info("listener reconnected to the database");
                wake_claimer(r);
                if (r->cfg.on_missed_notifications)
                    r->cfg.on_missed_notifications(r->cfg.hook_arg);
            }
            was_down = false;
        }
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        int pr = poll(&pfd, 1, 250);
        if (pr < 0 && errno != EINTR)
            continue;
        if (pr > 0 && !PQconsumeInput(c)) {
            log_warn("listener lost its database connection");
            PQfinish(c);
            c = NULL;
            was_down = true;
            continue;
        }
        PGnotify *n;
        while ((n = PQnotifies(c))) {
            if (!strcmp(n->relname, "keel_tasks"))
                wake_claimer(r);
            else if (!strcmp(n->relname, "keel_done"))
                runner_ended(r, n->extra);
            else if (!strcmp(n->relname, "keel_steps") && r->cfg.on_step_ended)
                r->cfg.on_step_ended(r->cfg.hook_arg, n->extra);
            PQfreemem(n);
        }
        if (PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = NULL;
            was_down = true;
        }
    }
    if (c)
        PQfinish(c);
    return NULL;
}
