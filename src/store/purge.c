/* Two statements per transaction: the lock, then the removal. The removal must not share the
 * locking statement's snapshot: in READ COMMITTED a statement that waited for a row lock reads
 * the other tables as they were before the wait, and would miss the events the holder of the
 * lock committed (they would stay behind, orphaned). */
#include "store/purge.h"

#include "store/stmt.h"
#include "util/alloc.h"
#include "util/buf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs STMT_PURGE over ids (a text[] literal) and adds its counts; false on an error. */
static bool remove_ids(PGconn *conn, const char *ids, struct purge_counts *c, char **why)
{
    const char *params[] = {ids};
    PGresult *r = store_run(conn, STMT_PURGE, 1, params);
    bool ok = store_ok(r) && PQntuples(r) == 1;
    if (ok) {
        c->executions += atol(PQgetvalue(r, 0, 0));
        c->events += atol(PQgetvalue(r, 0, 1));
        c->steps += atol(PQgetvalue(r, 0, 2));
        c->other += atol(PQgetvalue(r, 0, 3));
    } else {
        *why = store_error(r, conn);
    }
    PQclear(r);
    return ok;
}

static void rollback(PGconn *conn)
{
    (void)store_command(conn, "ROLLBACK");
}

enum purge_result purge_execution(PGconn *conn, const char *id, struct purge_counts *c, char **why)
{
    if (store_command(conn, "BEGIN") < 0) {
        *why = store_error(NULL, conn);
        return PURGE_DB_ERROR;
    }
    const char *params[] = {id};
    PGresult *r = store_run(conn, STMT_PURGE_LOCK_ONE, 1, params);
    if (!store_ok(r)) {
        *why = store_error(r, conn);
        PQclear(r);
        rollback(conn);
        return PURGE_DB_ERROR;
    }
    enum purge_result res = PQntuples(r) == 0                         ? PURGE_NOT_FOUND
                            : !strcmp(PQgetvalue(r, 0, 0), "running") ? PURGE_RUNNING
                                                                      : PURGE_DONE;
    PQclear(r);
    if (res != PURGE_DONE) {
        rollback(conn);
        return res;
    }
    struct buf ids = BUF_INIT;
    store_text_array(&ids, &id, 1);
    struct purge_counts add = {0};
    bool ok = remove_ids(conn, ids.data, &add, why);
    buf_free(&ids);
    if (!ok || store_command(conn, "COMMIT") < 0) {
        if (ok)
            *why = store_error(NULL, conn);
        rollback(conn);
        return PURGE_DB_ERROR;
    }
    c->executions += add.executions;
    c->events += add.events;
    c->steps += add.steps;
    c->other += add.other;
    return PURGE_DONE;
}

long purge_ended_before(PGconn *conn, int64_t older_than_ms, int limit, struct purge_counts *c,
                        char **why)
{
    if (store_command(conn, "BEGIN") < 0) {
        *why = store_error(NULL, conn);
        return -1;
    }
    char ms[24], lim[16];
    snprintf(ms, sizeof ms, "%lld", (long long)older_than_ms);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *params[] = {ms, lim};
    PGresult *r = store_run(conn, STMT_PURGE_LOCK_OLD, 2, params);
    if (!store_ok(r)) {
        *why = store_error(r, conn);
        PQclear(r);
        rollback(conn);
        return -1;
    }
    int n = PQntuples(r);
    if (n == 0) {
        PQclear(r);
        rollback(conn);
        return 0;
    }
    const char **items = xcalloc((size_t)n, sizeof *items);
    for (int i = 0; i < n; i++)
        items[i] = PQgetvalue(r, i, 0);
    struct buf ids = BUF_INIT;
    store_text_array(&ids, items, (size_t)n);
    free(items);
    PQclear(r);
    struct purge_counts add = {0};
    bool ok = remove_ids(conn, ids.data, &add, why);
    buf_free(&ids);
    if (!ok || store_command(conn, "COMMIT") < 0) {
        if (ok)
            *why = store_error(NULL, conn);
        rollback(conn);
        return -1;
    }
    c->executions += add.executions;
    c->events += add.events;
    c->steps += add.steps;
    c->other += add.other;
    return add.executions;
}

long purge_operations_before(PGconn *conn, int64_t older_than_ms, char **why)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%lld", (long long)older_than_ms);
    const char *params[] = {ms};
    PGresult *r = store_run(conn, STMT_PURGE_SCHEDULE_EVENTS, 1, params);
    if (!store_ok(r)) {
        *why = store_error(r, conn);
        PQclear(r);
        return -1;
    }
    long n = atol(PQcmdTuples(r));
    PQclear(r);
    if (n > 0)
        return n;
    r = store_run(conn, STMT_PURGE_BATCH, 1, params);
    if (!store_ok(r) || PQntuples(r) != 1) {
        *why = store_error(r, conn);
        PQclear(r);
        return -1;
    }
    n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}
