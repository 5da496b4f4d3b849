/* Schema migrations: the SQL files of migrations/, compiled into keeld, applied in order. */
#ifndef KEEL_STORE_MIGRATE_H
#define KEEL_STORE_MIGRATE_H

#include <libpq-fe.h>

/* Applies every embedded migration not yet recorded in schema_migrations, each in its own
 * transaction, in version order. Holds a PostgreSQL advisory lock meanwhile, so several keeld
 * starting at once apply each migration exactly once. Returns the number applied, or -1 with
 * a message in *why (caller frees). */
int store_migrate(PGconn *conn, char **why) __attribute__((warn_unused_result));

#endif
