/* Connection pool: slots guarded by one mutex; connections are opened lazily and checked for a
 * server that went away while they sat idle. */
#include "store/pool.h"

#include "log.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include <errno.h>
#include <libpq-events.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct store_pool {
    char *conninfo;
    int size;
    PGconn **idle; /* stack of idle slots; an entry may be NULL (a slot never opened) */
    int n_idle;
    pthread_mutex_t lock;
    pthread_cond_t freed;
};

static struct store_session_settings session = {
    .lock_timeout_ms = STORE_DEFAULT_LOCK_TIMEOUT_MS,
    .idle_in_tx_ms = STORE_DEFAULT_IDLE_IN_TX_MS,
    .tcp_user_timeout_ms = STORE_DEFAULT_TCP_USER_TIMEOUT_MS,
};

void store_set_session_settings(const struct store_session_settings *s)
{
    session = *s;
}

/* ---- per-connection error memory ----------------------------------------------------------- */

/* Kept with each connection through libpq's event interface, so that a caller that only has
 * the connection (the result is gone, or was never handed back) can still tell why the latest
 * statement failed. */
struct conn_state {
    char sqlstate[6]; /* of the latest failed result since the last reset; "" when none */
};

static int conn_event(PGEventId id, void *info, void *pass_through)
{
    (void)pass_through;
    switch (id) {
    case PGEVT_REGISTER: {
        PGEventRegister *e = info;
        struct conn_state *cs = calloc(1, sizeof *cs);
        return cs && PQsetInstanceData(e->conn, conn_event, cs);
    }
    case PGEVT_CONNDESTROY: {
        PGEventConnDestroy *e = info;
        free(PQinstanceData(e->conn, conn_event));
        return 1;
    }
    case PGEVT_RESULTCREATE: {
        PGEventResultCreate *e = info;
        struct conn_state *cs = PQinstanceData(e->conn, conn_event);
        if (cs && PQresultStatus(e->result) == PGRES_FATAL_ERROR) {
            /* "current transaction is aborted" (25P02) only echoes the error that aborted
             * it, which is the one worth keeping. */
            const char *code = PQresultErrorField(e->result, PG_DIAG_SQLSTATE);
            if (!code || strcmp(code, "25P02") != 0 || !cs->sqlstate[0])
                snprintf(cs->sqlstate, sizeof cs->sqlstate, "%s", code ? code : "");
        }
        return 1;
    }
    default:
        return 1;
    }
}

static void conn_state_reset(PGconn *conn)
{
    struct conn_state *cs = conn ? PQinstanceData(conn, conn_event) : NULL;
    if (cs)
        cs->sqlstate[0] = '\0';
}

bool store_conn_busy(PGconn *conn)
{
    struct conn_state *cs = conn ? PQinstanceData(conn, conn_event) : NULL;
    if (!cs)
        return false;
    return !strcmp(cs->sqlstate, "55P03") || !strcmp(cs->sqlstate, "40P01") ||
           !strcmp(cs->sqlstate, "40001");
}

/* ---- connecting ---------------------------------------------------------------------------- */

static char *conn_error(PGconn *conn, const char *fallback)
{
    const char *msg = conn ? PQerrorMessage(conn) : fallback;
    if (!msg || !*msg)
        msg = fallback;
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    return xstrndup(msg, len);
}

/* The server side of the same protections: its own keepalives and tcp_user_timeout (they
 * decide when a partitioned keeld's session, and its locks, go away), and the lock and
 * idle-in-transaction timeouts. Set with SET rather than the "options" connection parameter,
 * which a user's connection string would replace as a whole. */
static int setup_session(PGconn *conn, char **why)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SET lock_timeout = %ld; SET idle_in_transaction_session_timeout = %ld; "
             "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; "
             "SET tcp_keepalives_count = 3; SET tcp_user_timeout = %ld",
             session.lock_timeout_ms, session.idle_in_tx_ms, session.tcp_user_timeout_ms);
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        *why = conn_error(conn, "cannot set up the database session");
    PQclear(r);
    if (ok && !PQregisterEventProc(conn, conn_event, "keel", NULL)) {
        *why = xstrdup("cannot register the connection event handler");
        ok = 0;
    }
    return ok ? 0 : -1;
}

static PGconn *connect_start(const char *conninfo, bool async)
{
    /* Our defaults come first so that values in the user's connection string override them. */
    /* Generic plans: every statement is prepared once, its parameters hardly change the best
     * plan, and re-planning the large write statement costs more than running it. */
    char tcp_user_timeout[24];
    snprintf(tcp_user_timeout, sizeof tcp_user_timeout, "%ld", session.tcp_user_timeout_ms);
    const char *keys[] = {"connect_timeout",
                          "application_name",
                          "keepalives",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "tcp_user_timeout",
                          "options",
                          "dbname",
                          NULL};
    const char *vals[] = {"5",
                          "keeld",
                          "1",
                          "10",
                          "5",
                          "3",
                          tcp_user_timeout,
                          "-c plan_cache_mode=force_generic_plan -c client_min_messages=warning",
                          conninfo,
                          NULL};
    return async ? PQconnectStartParams(keys, vals, 1) : PQconnectdbParams(keys, vals, 1);
}

/* The connect_timeout in effect for conn (the user's or ours), in milliseconds. */
static long connect_timeout_ms(PGconn *conn)
{
    long ms = 5000;
    PQconninfoOption *opts = PQconninfo(conn);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!strcmp(o->keyword, "connect_timeout") && o->val && *o->val) {
            long s = strtol(o->val, NULL, 10);
            ms = s > 0 ? (s < 2 ? 2 : s) * 1000 : 0;
        }
    }
    PQconninfoFree(opts);
    return ms;
}

static PGconn *connect_finish(PGconn *conn, char **why)
{
    if (!conn) {
        *why = xstrdup("out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        *why = conn_error(conn, "cannot connect to the database");
        PQfinish(conn);
        return NULL;
    }
    if (setup_session(conn, why) < 0) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

PGconn *store_connect(const char *conninfo, char **why)
{
    return connect_finish(connect_start(conninfo, false), why);
}

PGconn *store_connect_interruptible(const char *conninfo, bool (*should_stop)(void *), void *arg,
                                    char **why)
{
    PGconn *conn = connect_start(conninfo, true);
    if (!conn || PQstatus(conn) == CONNECTION_BAD)
        return connect_finish(conn, why);
    long timeout_ms = connect_timeout_ms(conn);
    int64_t deadline = time_mono_ms() + timeout_ms;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        if (should_stop && should_stop(arg)) {
            *why = xstrdup("interrupted");
            PQfinish(conn);
            return NULL;
        }
        if (timeout_ms > 0 && time_mono_ms() >= deadline) {
            *why = xstrdup("timeout expired while connecting to the database");
            PQfinish(conn);
            return NULL;
        }
        struct pollfd pfd = {.fd = PQsocket(conn),
                             .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        int ready = pfd.fd >= 0 ? poll(&pfd, 1, 100) : 1;
        if (ready != 0)
            st = PQconnectPoll(conn);
    }
    return connect_finish(conn, why);
}

void store_test_pause_point(const char *execution_id)
{
    static atomic_bool done;
    const char *target = getenv("KEEL_TEST_SIGSTOP_IN_TRANSACTION");
    if (!target || !*target || !execution_id || strcmp(target, execution_id) != 0)
        return;
    if (atomic_exchange(&done, true))
        return;
    log_warn("test hook: stopping this process inside a transaction (SIGSTOP)", "execution",
             execution_id);
    raise(SIGSTOP);
}

struct store_pool *store_pool_new(const char *conninfo, int size)
{
    struct store_pool *p = xcalloc(1, sizeof *p);
    p->conninfo = xstrdup(conninfo);
    p->size = size;
    p->idle = xcalloc((size_t)size, sizeof *p->idle);
    p->n_idle = size; /* all slots free, none opened */
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    return p;
}

void store_pool_free(struct store_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_idle; i++)
        if (p->idle[i])
            PQfinish(p->idle[i]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    free(p->idle);
    free(p->conninfo);
    free(p);
}

bool store_conn_lost(PGconn *conn)
{
    return !conn || PQstatus(conn) == CONNECTION_BAD;
}

/* A pooled connection is idle and listens to nothing, so the server has no reason to send it
 * anything: if its socket is readable, the server has closed it (shutdown, restart, idle
 * timeout) or is about to. Such a connection is replaced rather than trusted. */
static bool idle_conn_alive(PGconn *conn)
{
    if (PQstatus(conn) != CONNECTION_OK)
        return false;
    struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
    if (pfd.fd < 0)
        return false;
    return poll(&pfd, 1, 0) == 0;
}

PGconn *store_acquire(struct store_pool *p, int wait_ms, char **why)
{
    struct timespec deadline = time_deadline_in(wait_ms);
    pthread_mutex_lock(&p->lock);
    while (p->n_idle == 0) {
        if (pthread_cond_timedwait(&p->freed, &p->lock, &deadline) == ETIMEDOUT && p->n_idle == 0) {
            pthread_mutex_unlock(&p->lock);
            *why = xasprintf("all %d database connections are busy", p->size);
            return NULL;
        }
    }
    PGconn *conn = p->idle[--p->n_idle];
    pthread_mutex_unlock(&p->lock);

    if (conn && !idle_conn_alive(conn)) {
        PQfinish(conn);
        conn = NULL;
    }
    if (!conn) {
        conn = store_connect(p->conninfo, why);
        if (conn && store_prepare_all(conn, why) < 0) {
            PQfinish(conn);
            conn = NULL;
        }
        if (!conn) {
            /* Give the slot back empty so the next caller tries again. */
            pthread_mutex_lock(&p->lock);
            p->idle[p->n_idle++] = NULL;
            pthread_cond_signal(&p->freed);
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
    }
    conn_state_reset(conn);
    return conn;
}

void store_release(struct store_pool *p, PGconn *conn)
{
    if (conn && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(conn, "ROLLBACK");
        PQclear(r);
    }
    if (conn && (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE)) {
        PQfinish(conn);
        conn = NULL;
    }
    pthread_mutex_lock(&p->lock);
    p->idle[p->n_idle++] = conn;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}
