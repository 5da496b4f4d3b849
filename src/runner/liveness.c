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

int liveness_take_over_dead(struct liveness *l, char **why)
{
    if (!l->held) {
        *why = xstrdup("the liveness lock is not held");
        return -1;
    }
    const char *params[] = {l->owner};
    PGresult *r = store_run(l->conn, STMT_LEASES_OF_DEAD, 1, params);
    if (!store_ok(r)) {
        *why = store_error(r, l->conn);
        PQclear(r);
        drop(l);
        return -1;
    }
    int n = PQntuples(r);
    if (n > 0) {
        char count[16];
        snprintf(count, sizeof count, "%d", n);
        log_info("took over the leases of keelds whose database session ended", "tasks", count,
                 "first_owner", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return n;
}
