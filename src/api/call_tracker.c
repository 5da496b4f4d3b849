/* Counts under one lock, swapped out and written by one thread. */
#include "api/call_tracker.h"

#include "log.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/timeutil.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct call_tracker {
    struct store_pool *pool;
    long flush_ms;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    json_t *noted; /* {execution id: {"at": ms, "keys": {key: replays}}} */
    bool stopping;
    pthread_t thread;
};

/* Adds one execution's counts (src) to dst. */
static void merge(json_t *dst, const char *id, const json_t *src)
{
    json_t *e = json_object_get(dst, id);
    if (!e) {
        json_object_set_new(dst, id, json_deep_copy(src));
        return;
    }
    json_int_t at = json_integer_value(json_object_get(src, "at"));
    if (at > json_integer_value(json_object_get(e, "at")))
        json_object_set_new(e, "at", json_integer(at));
    json_t *keys = json_object_get(e, "keys");
    const char *k;
    json_t *n;
    json_object_foreach(json_object_get(src, "keys"), k, n)
    {
        json_object_set_new(
            keys, k,
            json_integer(json_integer_value(json_object_get(keys, k)) + json_integer_value(n)));
    }
}

void call_tracker_note(struct call_tracker *t, const char *execution_id, const char *key,
                       bool replay, int64_t at_ms)
{
    if (!t || !execution_id)
        return;
    json_t *one = json_pack("{s:I, s:{}}", "at", (json_int_t)at_ms, "keys");
    if (key)
        json_object_set_new(json_object_get(one, "keys"), key, json_integer(replay ? 1 : 0));
    pthread_mutex_lock(&t->lock);
    merge(t->noted, execution_id, one);
    pthread_mutex_unlock(&t->lock);
    json_decref(one);
}

/* Writes noted ({id: {"at", "keys"}}); false when the database did not take it. */
static bool write_counts(struct call_tracker *t, const json_t *noted)
{
    struct buf ids = BUF_INIT, ats = BUF_INIT, kids = BUF_INIT, keys = BUF_INIT, ns = BUF_INIT;
    buf_putc(&ids, '{');
    buf_putc(&ats, '{');
    buf_putc(&kids, '{');
    buf_putc(&keys, '{');
    buf_putc(&ns, '{');
    const char *id;
    json_t *e;
    bool first = true, first_key = true;
    json_object_foreach((json_t *)noted, id, e)
    {
        char at[32];
        time_format_rfc3339(json_integer_value(json_object_get(e, "at")), at);
        if (!first) {
            buf_putc(&ids, ',');
            buf_putc(&ats, ',');
        }
        first = false;
        store_array_element(&ids, id);
        store_array_element(&ats, at);
        const char *k;
        json_t *n;
        json_object_foreach(json_object_get(e, "keys"), k, n)
        {
            if (json_integer_value(n) == 0)
                continue;
            if (!first_key) {
                buf_putc(&kids, ',');
                buf_putc(&keys, ',');
                buf_putc(&ns, ',');
            }
            first_key = false;
            store_array_element(&kids, id);
            store_array_element(&keys, k);
            buf_printf(&ns, "%lld", (long long)json_integer_value(n));
        }
    }
    buf_putc(&ids, '}');
    buf_putc(&ats, '}');
    buf_putc(&kids, '}');
    buf_putc(&keys, '}');
    buf_putc(&ns, '}');
    char *why = NULL;
    bool ok = false;
    PGconn *conn = store_acquire(t->pool, 2000, &why);
    if (conn) {
        /* The last calls first: kept and written again when the replays fail, they change
         * nothing the second time (greatest). */
        const char *lp[] = {ids.data, ats.data};
        const char *rp[] = {kids.data, keys.data, ns.data};
        PGresult *r = store_run(conn, STMT_CALLS_LAST, 2, lp);
        ok = store_ok(r);
        if (ok) {
            PQclear(r);
            r = store_run(conn, STMT_CALLS_REPLAYS, 3, rp);
            ok = store_ok(r);
        }
        if (!ok) {
            free(why);
            why = store_error(r, conn);
        }
        PQclear(r);
        store_release(t->pool, conn);
    }
    if (!ok)
        log_warn("step call counts not written yet; will retry", "error", why ? why : "");
    free(why);
    buf_free(&ids);
    buf_free(&ats);
    buf_free(&kids);
    buf_free(&keys);
    buf_free(&ns);
    return ok;
}

void call_tracker_flush(struct call_tracker *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    json_t *noted = t->noted;
    t->noted = json_object();
    pthread_mutex_unlock(&t->lock);
    if (json_object_size(noted) > 0 && !write_counts(t, noted)) {
        /* Kept for the next time, added to what came meanwhile. */
        pthread_mutex_lock(&t->lock);
        const char *id;
        json_t *e;
        json_object_foreach(noted, id, e)
        {
            merge(t->noted, id, e);
        }
        pthread_mutex_unlock(&t->lock);
    }
    json_decref(noted);
}

static void *tracker_main(void *arg)
{
    struct call_tracker *t = arg;
    pthread_mutex_lock(&t->lock);
    while (!t->stopping) {
        struct timespec ts = time_deadline_in(t->flush_ms);
        pthread_cond_timedwait(&t->cond, &t->lock, &ts);
        if (t->stopping)
            break;
        pthread_mutex_unlock(&t->lock);
        call_tracker_flush(t);
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

struct call_tracker *call_tracker_start(struct store_pool *pool, long flush_ms)
{
    struct call_tracker *t = xcalloc(1, sizeof *t);
    t->pool = pool;
    t->flush_ms = flush_ms > 0 ? flush_ms : 1000;
    t->noted = json_object();
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    xthread_create(&t->thread, tracker_main, t, "step call counts");
    return t;
}

void call_tracker_stop(struct call_tracker *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    call_tracker_flush(t);
    json_decref(t->noted);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t);
}
