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

/* Session settings every connection keeld opens gets, so that a keeld that stops making
 * progress (paused, hung, cut off by the network) cannot hold row locks for long. */
struct store_session_settings {
    long lock_timeout_ms;     /* a statement waits at most this long for a lock; 0 = for ever */
    long idle_in_tx_ms;       /* the server ends a session idle inside a transaction this long
                                 (idle_in_transaction_session_timeout); 0 = never */
    long tcp_user_timeout_ms; /* unacknowledged data ends the connection after this long, on
                                 both sides (tcp_user_timeout); 0 = the OS default */
};

/* The settings used until store_set_session_settings is called. */
#define STORE_DEFAULT_LOCK_TIMEOUT_MS     5000
#define STORE_DEFAULT_IDLE_IN_TX_MS       10000
#define STORE_DEFAULT_TCP_USER_TIMEOUT_MS 30000

/* Sets the session settings of connections opened from now on. Call it once at start, before
 * any thread opens a connection (the settings are read without a lock). */
void store_set_session_settings(const struct store_session_settings *s);

/* Opens one connection outside any pool with Keel's connection defaults (timeouts, TCP
 * keepalives and tcp_user_timeout on both sides, lock_timeout and
 * idle_in_transaction_session_timeout, application_name). Returns NULL with *why set (caller
 * frees) on failure. */
PGconn *store_connect(const char *conninfo, char **why) __attribute__((warn_unused_result));

/* store_connect that gives up early, with *why "interrupted", once should_stop(arg) returns
 * true; it is asked about every 100 ms while the connection is being made (so a SIGTERM during
 * start-up is not held up by a database that does not answer). */
PGconn *store_connect_interruptible(const char *conninfo, bool (*should_stop)(void *), void *arg,
                                    char **why) __attribute__((warn_unused_result));

/* True when the connection is gone (the server restarted or the network dropped). */
bool store_conn_lost(PGconn *conn);

/* True when the latest statement that failed on conn since it was last acquired from a pool
 * failed for a transient reason worth a retry: a lock not granted within the lock timeout
 * (SQLSTATE 55P03), a deadlock (40P01) or a serialization failure (40001). API calls answer
 * 503 with Retry-After then; the engine retries the transition. Works for every connection
 * made by store_connect. */
bool store_conn_busy(PGconn *conn);

/* Test-only: when the environment variable KEEL_TEST_SIGSTOP_IN_TRANSACTION names an
 * execution, the first time this process has locked that execution inside a transaction of
 * its own (a runner job, such as an attempt's result), it stops itself with SIGSTOP (as if paused)
 * while holding the lock. Called by the store after that lock; does nothing otherwise. */
void store_test_pause_point(const char *execution_id);

#endif
