/* One connection per keeld that holds pg_try_advisory_lock(KEEL_LIVENESS_NS, hashtext(owner))
 * for as long as the session lives, and sweeps the leases of owners whose lock is gone. */
#include "runner/liveness.h"

#include "log.h"
#include "store/pool.h"
#include "store/stmt.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct liveness {
    char *conninfo;
    char *owner;
    PGconn *conn; /* NULL when not connected */
    bool held;
};

struct liveness *liveness_new(const char *conninfo, const char *owner)
{
    struct liveness *l = xcalloc(1, sizeof *l);
    l->conninfo = xstrdup(conninfo);
    l->owner = xstrdup(owner);
    return l;
}

static void drop(struct liveness *l)
{
    if (l->conn)
        PQfinish(l->conn);
    l->conn = NULL;
    l->held = false;
}

void liveness_free(struct liveness *l)
{
    if (!l)
        return;
    drop(l);
    free(l->conninfo);
    free(l->owner);
    free(l);
}

bool liveness_hold(struct liveness *l, char **why)
{
    if (l->conn && PQstatus(l->conn) != CONNECTION_OK)
        drop(l);
    if (l->held)
        return true;
    if (!l->conn) {
        l->conn = store_connect(l->conninfo, why);
        if (!l->conn)
            return false;
        if (store_prepare_all(l->conn, why) < 0) {
            drop(l);
            return false;
        }
        /* The sweeps look for what is rare (dead keelds, their leases): planned afresh each
         * time (a few hundred microseconds a second), they use the tables' indexes once the
         * tables are large, where a generic plan made while they were small would read every
         * waiting task each second. */
        if (store_command(l->conn, "SET plan_cache_mode = force_custom_plan") < 0) {
            *why = store_error(NULL, l->conn);
            drop(l);
            return false;
        }
    }
    const char *params[] = {l->owner};
    PGresult *r = store_run(l->conn, STMT_LIVENESS_LOCK, 1, params);
    if (!store_ok(r)) {
        *why = store_error(r, l->conn);
        PQclear(r);
        drop(l);
        return false;
    }
    l->held = PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    if (!l->held)
        *why = xasprintf("another live session holds the liveness lock of \"%s\"", l->owner);
    return l->held;
}

int liveness_heartbeat(struct liveness *l, long alive_ms, char **why)
{
    if (!l->held) {
        *why = xstrdup("the liveness lock is not held");
        return -1;
    }
    char ms[24];
    snprintf(ms, sizeof ms, "%ld", alive_ms);
    const char *params[] = {l->owner, ms};
    PGresult *r = store_run(l->conn, STMT_KEELD_HEARTBEAT, 2, params);
    bool ok = store_ok(r);
    if (!ok) {
        *why = store_error(r, l->conn);
        drop(l);
    }
    PQclear(r);
    return ok ? 0 : -1;
}

/* Runs a statement with this keeld's owner id on the liveness connection. */
static PGresult *run_own(struct liveness *l, enum store_stmt stmt, const char *extra, char **why)
{
    const char *params[] = {l->owner, extra};
    PGresult *r = store_run(l->conn, stmt, extra ? 2 : 1, params);
    if (!store_ok(r)) {
        *why = store_error(r, l->conn);
        PQclear(r);
        drop(l);
        return NULL;
    }
    return r;
}

int liveness_live_keelds(struct liveness *l, int *keelds, int *rank, char **why)
{
    if (!l->held) {
        *why = xstrdup("the liveness lock is not held");
        return -1;
    }
    PGresult *r = run_own(l, STMT_KEELDS_LIVE, NULL, why);
    if (!r)
        return -1;
    *keelds = atoi(PQgetvalue(r, 0, 0));
    *rank = atoi(PQgetvalue(r, 0, 1));
    PQclear(r);
    return 0;
}

long liveness_take_over_dead(struct liveness *l, bool orphans,
                             void (*taken)(void *arg, const char *execution_id), void *arg,
                             char **why)
{
    if (!l->held) {
        *why = xstrdup("the liveness lock is not held");
        return -1;
    }
    PGresult *r;
    if (orphans) {
        if (!(r = run_own(l, STMT_KEELDS_ORPHANS, NULL, why)))
            return -1;
        if (PQntuples(r) > 0)
            log_warn("found executions owned by a keeld that never registered or was forgotten; "
                     "taking them over",
                     "owner", PQgetvalue(r, 0, 0));
        PQclear(r);
        if (!(r = run_own(l, STMT_TASKS_REALIGN, NULL, why)))
            return -1;
        if (PQntuples(r) > 0) {
            char count[16];
            snprintf(count, sizeof count, "%d", PQntuples(r));
            log_info("moved tasks queued for another execution to its owner", "tasks", count);
        }
        PQclear(r);
    }
    if (!(r = run_own(l, STMT_LEASES_OF_DEAD, NULL, why)))
        return -1;
    if (PQntuples(r) > 0) {
        char count[16];
        snprintf(count, sizeof count, "%d", PQntuples(r));
        log_info("took over the task leases of keelds that died or stopped", "tasks", count,
                 "first_owner", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    /* In chunks, each its own statement: a few hundred row locks at a time, never all of a
     * dead keeld's executions at once. */
    long total = 0;
    for (;;) {
        char limit[16];
        snprintf(limit, sizeof limit, "%d", LIVENESS_TAKE_OVER_CHUNK);
        if (!(r = run_own(l, STMT_TAKE_OVER, limit, why)))
            return total > 0 ? total : -1;
        int n = PQntuples(r);
        if (n > 0) {
            char count[16];
            snprintf(count, sizeof count, "%d", n);
            log_info("took over the executions of a keeld that died or stopped", "executions",
                     count, "owner", PQgetvalue(r, 0, 1));
        }
        for (int i = 0; i < n; i++)
            taken(arg, PQgetvalue(r, i, 0));
        PQclear(r);
        total += n;
        if (n < LIVENESS_TAKE_OVER_CHUNK)
            break;
    }
    if ((r = run_own(l, STMT_KEELDS_FORGET, NULL, why)))
        PQclear(r);
    else
        free(*why), *why = NULL; /* the forgetting is tried again next time */
    return total;
}
