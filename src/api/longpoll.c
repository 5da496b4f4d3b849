/* Waiters in a list under one lock; one thread answers the ones that are due. */
#include "api/longpoll.h"

#include "log.h"
#include "store/exec_read.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct waiter {
    struct http_request *req;
    char *topic; /* an execution id, or "<execution id>/<key>" */
    longpoll_answer_fn answer;
    void *arg;
    void (*free_arg)(void *arg);
    int64_t deadline_ms;
    bool check; /* look at the execution now: it may have ended */
    bool busy;  /* being answered by the thread, outside the lock */
    struct waiter *next;
};

struct longpoll {
    struct store_pool *pool;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct waiter *waiters;
    bool stopping; /* answer every waiter now, and new ones at once */
    bool exiting;  /* the thread should end */
    pthread_t thread;
};

/* A result long poll's answer: 200 if the execution ended, 202 if not and must_answer. */
static bool result_answer(void *arg, struct http_request *req, PGconn *conn, const char *why,
                          bool must_answer)
{
    const char *execution_id = arg;
    char status[16] = "";
    char *json = NULL, *read_why = NULL;
    if (conn)
        json = store_execution_json(conn, execution_id, status, &read_why);
    bool ended = json && store_status_is_final(status);
    if (!ended && !must_answer) {
        free(json);
        free(read_why);
        return false;
    }
    if (json)
        http_reply_json(req, ended ? 200 : 202, json_loads(json, 0, NULL));
    else if (why || read_why)
        http_reply_problem(req, 503, "database-unavailable", "Database unavailable", "%s",
                           read_why ? read_why : why);
    else
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%s\"", execution_id);
    free(json);
    free(read_why);
    return true;
}

/* Asks w's answer with a connection of the pool; resumes its request once answered. Returns
 * false, without answering, when what it waits for is not there yet and it is not due. Called
 * without the lock. */
static bool answer(struct longpoll *lp, struct waiter *w, bool must_answer, bool stopping)
{
    char *why = NULL;
    /* While stopping, waiters are answered one after the other: a database that is down must
     * not hold the shutdown for seconds per waiter. */
    PGconn *conn = store_acquire(lp->pool, stopping ? 100 : 2000, &why);
    if (!conn && !must_answer) {
        free(why);
        return false;
    }
    bool done = w->answer(w->arg, w->req, conn, why ? why : "no database connection", must_answer);
    if (conn)
        store_release(lp->pool, conn);
    free(why);
    if (done)
        http_resume(w->req);
    return done;
}

static void waiter_free(struct waiter *w)
{
    if (w->free_arg)
        w->free_arg(w->arg);
    free(w->topic);
    free(w);
}

static void *longpoll_main(void *arg)
{
    struct longpoll *lp = arg;
    size_t cap = 16;
    struct waiter **batch = xmalloc(cap * sizeof *batch);
    pthread_mutex_lock(&lp->lock);
    for (;;) {
        int64_t now = time_mono_ms();
        int64_t next = now + 1000;
        size_t n = 0;
        /* Waiters stay in the list while they are answered, so an end reported meanwhile sets
         * their check flag again instead of being lost. */
        for (struct waiter *w = lp->waiters; w; w = w->next) {
            if (w->busy)
                continue;
            if (lp->stopping || w->check || w->deadline_ms <= now) {
                if (n == cap) {
                    cap *= 2;
                    batch = xrealloc(batch, cap * sizeof *batch);
                }
                w->busy = true;
                w->check = false;
                batch[n++] = w;
            } else if (w->deadline_ms < next) {
                next = w->deadline_ms;
            }
        }
        bool stopping = lp->stopping;
        pthread_mutex_unlock(&lp->lock);
        for (size_t i = 0; i < n; i++) {
            struct waiter *w = batch[i];
            bool done = answer(lp, w, stopping || w->deadline_ms <= time_mono_ms(), stopping);
            pthread_mutex_lock(&lp->lock);
            w->busy = false;
            if (done) {
                struct waiter **pp = &lp->waiters;
                while (*pp != w)
                    pp = &(*pp)->next;
                *pp = w->next;
                waiter_free(w);
            }
            pthread_mutex_unlock(&lp->lock);
        }
        pthread_mutex_lock(&lp->lock);
        if (lp->exiting && !lp->waiters)
            break;
        if (stopping && !lp->waiters)
            pthread_cond_broadcast(&lp->cond); /* longpoll_drain waits for this */
        bool pending = false;
        for (struct waiter *w = lp->waiters; w; w = w->next)
            pending |= w->check || lp->stopping;
        if (!pending) {
            int64_t wait = next - time_mono_ms();
            if (wait > 0) {
                struct timespec ts = time_deadline_in((long)wait);
                pthread_cond_timedwait(&lp->cond, &lp->lock, &ts);
            }
        }
    }
    pthread_mutex_unlock(&lp->lock);
    free(batch);
    return NULL;
}

struct longpoll *longpoll_start(struct store_pool *pool)
{
    struct longpoll *lp = xcalloc(1, sizeof *lp);
    lp->pool = pool;
    pthread_mutex_init(&lp->lock, NULL);
    pthread_cond_init(&lp->cond, NULL);
    xthread_create(&lp->thread, longpoll_main, lp, "long polls");
    return lp;
}

void longpoll_drain(struct longpoll *lp)
{
    pthread_mutex_lock(&lp->lock);
    lp->stopping = true;
    pthread_cond_broadcast(&lp->cond);
    while (lp->waiters)
        pthread_cond_wait(&lp->cond, &lp->lock);
    pthread_mutex_unlock(&lp->lock);
}

void longpoll_free(struct longpoll *lp)
{
    if (!lp)
        return;
    pthread_mutex_lock(&lp->lock);
    lp->stopping = true;
    lp->exiting = true;
    pthread_cond_broadcast(&lp->cond);
    pthread_mutex_unlock(&lp->lock);
    pthread_join(lp->thread, NULL);
    pthread_mutex_destroy(&lp->lock);
    pthread_cond_destroy(&lp->cond);
    free(lp);
}

void longpoll_wait_for(struct longpoll *lp, struct http_request *req, const char *topic,
                       int64_t deadline_ms, longpoll_answer_fn answer_fn, void *arg,
                       void (*free_arg)(void *arg))
{
    struct waiter *w = xcalloc(1, sizeof *w);
    w->req = req;
    w->topic = xstrdup(topic);
    w->answer = answer_fn;
    w->arg = arg;
    w->free_arg = free_arg;
    w->deadline_ms = deadline_ms;
    /* Looked at once after registering, so an end between the caller's read and now is not
     * missed. */
    w->check = true;
    http_suspend(req);
    pthread_mutex_lock(&lp->lock);
    w->next = lp->waiters;
    lp->waiters = w;
    pthread_cond_broadcast(&lp->cond);
    pthread_mutex_unlock(&lp->lock);
}

void longpoll_wait(struct longpoll *lp, struct http_request *req, const char *execution_id,
                   int64_t deadline_ms)
{
    longpoll_wait_for(lp, req, execution_id, deadline_ms, result_answer, xstrdup(execution_id),
                      free);
}

void longpoll_ended(struct longpoll *lp, const char *topic)
{
    size_t n = strlen(topic);
    pthread_mutex_lock(&lp->lock);
    bool any = false;
    for (struct waiter *w = lp->waiters; w; w = w->next) {
        /* An execution's end concerns the waiters of its steps too. */
        if (!strncmp(w->topic, topic, n) && (w->topic[n] == '\0' || w->topic[n] == '/')) {
            w->check = true;
            any = true;
        }
    }
    if (any)
        pthread_cond_broadcast(&lp->cond);
    pthread_mutex_unlock(&lp->lock);
}

bool longpoll_has_waiter(struct longpoll *lp, const char *topic)
{
    bool found = false;
    pthread_mutex_lock(&lp->lock);
    for (struct waiter *w = lp->waiters; w && !found; w = w->next)
        found = !strcmp(w->topic, topic);
    pthread_mutex_unlock(&lp->lock);
    return found;
}

void longpoll_recheck_all(struct longpoll *lp)
{
    pthread_mutex_lock(&lp->lock);
    for (struct waiter *w = lp->waiters; w; w = w->next)
        w->check = true;
    pthread_cond_broadcast(&lp->cond);
    pthread_mutex_unlock(&lp->lock);
}
