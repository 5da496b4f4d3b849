/* The retention thread. */
#include "ops/retention.h"

#include "log.h"
#include "metrics.h"
#include "store/purge.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

struct retention {
    struct store_pool *pool;
    int64_t retention_ms;
    long pause_ms;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    pthread_t thread;
};

static bool stopping(struct retention *r)
{
    pthread_mutex_lock(&r->lock);
    bool s = r->stopping;
    pthread_mutex_unlock(&r->lock);
    return s;
}

/* One round: batches until one comes back short (or an error, logged once per round). */
static void purge_round(struct retention *r)
{
    char *why = NULL;
    PGconn *conn = store_acquire(r->pool, 1000, &why);
    if (!conn) {
        free(why); /* the database is away; the next round tries again */
        return;
    }
    for (;;) {
        struct purge_counts c = {0};
        long n = purge_ended_before(conn, r->retention_ms, RETENTION_BATCH, &c, &why);
        if (n < 0) {
            log_warn("retention: a purge batch failed; retrying in the next round", "error", why);
            free(why);
            break;
        }
        metrics_purged(METRICS_PURGE_RETENTION, c.executions, c.events + c.steps + c.other);
        if (n < RETENTION_BATCH || stopping(r))
            break;
    }
    /* Then the schedules' events and the completed batches, as old. */
    for (;;) {
        long n = purge_operations_before(conn, r->retention_ms, &why);
        if (n < 0) {
            log_warn("retention: purging old schedule events or batches failed; retrying in the "
                     "next round",
                     "error", why);
            free(why);
            break;
        }
        metrics_purged(METRICS_PURGE_RETENTION, 0, n);
        if (n == 0 || stopping(r))
            break;
    }
    store_release(r->pool, conn);
}

static void *retention_main(void *arg)
{
    struct retention *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        pthread_mutex_unlock(&r->lock);
        purge_round(r);
        pthread_mutex_lock(&r->lock);
        struct timespec ts = time_deadline_in(r->pause_ms);
        while (!r->stopping && pthread_cond_timedwait(&r->cond, &r->lock, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

struct retention *retention_start(struct store_pool *pool, int64_t retention_ms)
{
    struct retention *r = xcalloc(1, sizeof *r);
    r->pool = pool;
    r->retention_ms = retention_ms;
    int64_t pause = retention_ms / 10;
    r->pause_ms = (long)(pause < 100 ? 100 : pause > 10000 ? 10000 : pause);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    xthread_create(&r->thread, retention_main, r, "retention");
    return r;
}

void retention_stop(struct retention *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}
