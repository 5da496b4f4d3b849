/* Reading executions as the API shows them. */
#ifndef KEEL_STORE_EXEC_READ_H
#define KEEL_STORE_EXEC_READ_H

#include <libpq-fe.h>
#include <stdbool.h>

/* The execution as API JSON (id, workflow, version, status, input, output, error, times and
 * steps), as a new string (caller frees); its status is copied into status. Returns NULL with
 * *why NULL when there is no such execution, or NULL with *why set (caller frees) on a database
 * error. */
char *store_execution_json(PGconn *conn, const char *id, char status[16], char **why);
/* True for completed, failed, cancelled and terminated. */
bool store_status_is_final(const char *status);

#endif
