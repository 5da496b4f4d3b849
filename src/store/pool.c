/* Connection pool: slots guarded by one mutex; connections are opened lazily and checked for a
 * server that went away while they sat idle. */
#include "store/pool.h"

#include "log.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
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

PGconn *store_connect(const char *conninfo, char **why)
{
    /* Our defaults come first so that values in the user's connection string override them. */
    /* Generic plans: every statement is prepared once, its parameters hardly change the best
     * plan, and re-planning the large write statement costs more than running it. */
    const char *keys[] = {"connect_timeout",
                          "application_name",
                          "keepalives",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "options",
                          "dbname",
                          NULL};
    const char *vals[] = {"5",
                          "keeld",
                          "1",
                          "10",
                          "5",
                          "3",
                          "-c plan_cache_mode=force_generic_plan -c client_min_messages=warning",
                          conninfo,
                          NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(conn);
        size_t len = strlen(msg);
        while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
            len--;
        *why = xstrndup(msg, len);
        PQfinish(conn);
        return NULL;
    }
    return conn;
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
