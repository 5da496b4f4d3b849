/* Migration runner over the embedded migrations/ folder. */
#include "store/migrate.h"

#include "log.h"
#include "util/alloc.h"
#include "util/embed.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Any constant will do as long as no other application on the database uses it. */
#define MIGRATION_LOCK_KEY "4207111"

static char *result_error(PGresult *r, PGconn *conn)
{
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    return xstrndup(msg, len);
}

static int exec_ok(PGconn *conn, const char *sql, char **why)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        *why = result_error(r, conn);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

/* "0001_init.sql" -> 1; -1 when the name does not start with a number. */
static long migration_version(const char *path)
{
    if (!isdigit((unsigned char)path[0]))
        return -1;
    return strtol(path, NULL, 10);
}

static int is_applied(PGconn *conn, long version, char **why)
{
    char v[24];
    snprintf(v, sizeof v, "%ld", version);
    const char *params[] = {v};
    PGresult *r = PQexecParams(conn, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL,
                               params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        *why = result_error(r, conn);
        PQclear(r);
        return -1;
    }
    int applied = PQntuples(r) > 0;
    PQclear(r);
    return applied;
}

static int apply_one(PGconn *conn, const struct embedded_file *f, long version, char **why)
{
    if (exec_ok(conn, "BEGIN", why) < 0)
        return -1;
    if (exec_ok(conn, (const char *)f->data, why) < 0) {
        char *inner = *why;
        *why = xasprintf("migration %s failed: %s", f->path, inner);
        free(inner);
        goto rollback;
    }
    char v[24];
    snprintf(v, sizeof v, "%ld", version);
    const char *params[] = {v, f->path};
    PGresult *r =
        PQexecParams(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, NULL,
                     params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        *why = result_error(r, conn);
        PQclear(r);
        goto rollback;
    }
    PQclear(r);
    return exec_ok(conn, "COMMIT", why);
rollback:
    PQclear(PQexec(conn, "ROLLBACK"));
    return -1;
}

int store_migrate(PGconn *conn, char **why)
{
    int applied = 0;
    /* Another keeld may be applying a long migration: wait for its advisory lock, and for the
     * table locks a migration needs, as long as it takes (the session default is the short
     * lock timeout of the hot path). */
    if (exec_ok(conn, "SET lock_timeout = 0", why) < 0)
        return -1;
    if (exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", why) < 0)
        return -1;
    if (exec_ok(conn,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                why) < 0) {
        applied = -1;
        goto unlock;
    }
    for (const struct embedded_file *f = embedded_migrations; f->path; f++) {
        long version = migration_version(f->path);
        if (version < 0)
            continue;
        int done = is_applied(conn, version, why);
        if (done < 0) {
            applied = -1;
            goto unlock;
        }
        if (done)
            continue;
        if (apply_one(conn, f, version, why) < 0) {
            applied = -1;
            goto unlock;
        }
        log_info("migration applied", "name", f->path);
        applied++;
    }
unlock:;
    char *ignored = NULL;
    if (exec_ok(conn, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", &ignored) < 0)
        free(ignored);
    return applied;
}
