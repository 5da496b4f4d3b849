/* A fixed-size pool of libpq connections that reconnects by itself after PostgreSQL restarts. */
#ifndef KEEL_STORE_POOL_H
#define KEEL_STORE_POOL_H

#include <libpq-fe.h>
#include <stdbool.h>

struct store_pool;

/* Makes a pool of at most size connections to conninfo (URI or key=value). No connection is
 * opened until the first acquire, so a pool can be made while the database is down. */
struct store_pool *store_pool_new(const char *conninfo, int size);
void store_pool_free(struct store_pool *pool);

/* Borrows a working connection, opening or re-opening it as needed; a new connection has every
 * statement of store/stmt.h prepared. Waits up to wait_ms for a
 * free slot. Returns NULL with a message in *why (caller frees) when the database cannot be
 * reached or the pool stays exhausted; callers answer 503 then. */
PGconn *store_acquire(struct store_pool *pool, int wait_ms, char **why)
    __attribute__((warn_unused_result));
/* Returns a connection. A connection left inside a transaction is rolled back; one that is
 * broken is closed and re-opened on a later acquire. */
void store_release(struct store_pool *pool, PGconn *conn);

/* Opens one connection outside any pool with Keel's connection defaults (timeouts, keepalives,
 * application_name). Returns NULL with *why set (caller frees) on failure. */
PGconn *store_connect(const char *conninfo, char **why) __attribute__((warn_unused_result));

/* True when the connection is gone (the server restarted or the network dropped). */
bool store_conn_lost(PGconn *conn);

#endif
