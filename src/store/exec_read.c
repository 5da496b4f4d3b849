/* Execution reads shared by the API handlers and the long-poll waiters. */
#include "store/exec_read.h"

#include "store/stmt.h"
#include "util/alloc.h"

#include <stdio.h>
#include <string.h>

char *store_execution_json(PGconn *conn, const char *id, char status[16], char **why)
{
    *why = NULL;
    const char *params[] = {id};
    PGresult *r = store_run(conn, STMT_EXEC_JSON, 1, params);
    if (!store_ok(r)) {
        *why = store_error(r, conn);
        PQclear(r);
        return NULL;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return NULL;
    }
    char *json = xstrdup(PQgetvalue(r, 0, 0));
    snprintf(status, 16, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    return json;
}

bool store_status_is_final(const char *status)
{
    return !strcmp(status, "completed") || !strcmp(status, "failed") ||
           !strcmp(status, "cancelled") || !strcmp(status, "terminated");
}
