/* The bulk actions' worker. */
#include "ops/batches.h"

#include "log.h"
#include "ops/batch_filter.h"
#include "runner/input.h"
#include "runner/runner.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct batches {
    struct store_pool *pool;
    struct runner *runner;
    char *owner;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping, woken;
    pthread_t thread;
};

/* The executions of one page under way: the worker waits until every one is answered. */
struct page {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int pending;
    int failed; /* transitions that met a database error: the page runs again */
};

/* One execution of a page, acted on by the runner. */
struct item_input {
    struct runner_input base; /* first: the runner hands this back */
    struct page *page;
    char *batch_id, *execution_id, *created_at;
    const char *seen_params[3];
    const char *add_params[4];
};

static enum runner_input_step item_prepare(struct runner_input *in, PGconn *conn,
                                           PGresult *const *before, char **why)
{
    (void)before;
    struct item_input *it = (struct item_input *)in;
    /* The execution is locked now: a transition of this batch that reached it before has
     * committed its row, and this statement sees it. */
    PGresult *r = store_run(conn, STMT_BATCH_ITEM_SEEN, 3, it->seen_params);
    if (!store_ok(r)) {
        *why = store_error(r, conn);
        PQclear(r);
        return INPUT_ERROR;
    }
    bool seen = PQntuples(r) > 0;
    PQclear(r);
    return seen ? INPUT_SKIP : INPUT_APPLY;
}

static int item_after(struct runner_input *in, PGconn *conn, enum transition_outcome rc, char **why)
{
    struct item_input *it = (struct item_input *)in;
    it->add_params[3] = rc == TRANSITION_APPLIED ? "acted" : "skipped";
    PGresult *r = store_run(conn, STMT_BATCH_ITEM_ADD, 4, it->add_params);
    bool ok = store_ok(r);
    if (!ok)
        *why = store_error(r, conn);
    PQclear(r);
    return ok ? 0 : -1;
}

static void item_finish(struct runner_input *in, PGconn *conn, PGresult *const *reads,
                        const char *why)
{
    (void)conn;
    (void)reads;
    struct item_input *it = (struct item_input *)in;
    struct page *p = it->page;
    bool failed = !in->skipped && (in->rc == TRANSITION_ERROR || in->rc == TRANSITION_LEASE_LOST);
    if (failed)
        log_warn("batch: an execution's transition failed; its page runs again", "batch",
                 it->batch_id, "execution_id", it->execution_id, "error", why ? why : "");
    pthread_mutex_lock(&p->lock);
    p->failed += failed;
    if (--p->pending == 0)
        pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void item_free(struct runner_input *in)
{
    struct item_input *it = (struct item_input *)in;
    free(it->batch_id);
    free(it->execution_id);
    free(it->created_at);
    free(it);
}

static const struct runner_input_ops item_ops = {
    .prepare = item_prepare,
    .after = item_after,
    .finish = item_finish,
    .free = item_free,
};

/* A claimed batch. */
struct work {
    char *id;
    enum engine_input_kind kind;
    json_t *filter;
    char *reason;
    char *cursor_at, *cursor_id;
    char *created_at;
};

static void work_free(struct work *w)
{
    free(w->id);
    json_decref(w->filter);
    free(w->reason);
    free(w->cursor_at);
    free(w->cursor_id);
    free(w->created_at);
}

static bool is_stopping(struct batches *b)
{
    pthread_mutex_lock(&b->lock);
    bool s = b->stopping;
    pthread_mutex_unlock(&b->lock);
    return s;
}

/* Waits ms or until stopped or woken. */
static void pause_ms(struct batches *b, long ms)
{
    pthread_mutex_lock(&b->lock);
    struct timespec ts = time_deadline_in(ms);
    while (!b->stopping && !b->woken && pthread_cond_timedwait(&b->cond, &b->lock, &ts) == 0)
        ;
    b->woken = false;
    pthread_mutex_unlock(&b->lock);
}

static PGresult *run_once(struct batches *b, enum store_stmt stmt, int n, const char *const *params)
{
    char *why = NULL;
    PGconn *conn = store_acquire(b->pool, 5000, &why);
    if (!conn) {
        free(why);
        return NULL;
    }
    PGresult *r = store_run(conn, stmt, n, params);
    if (!store_ok(r)) {
        char *err = store_error(r, conn);
        log_warn("batch: a statement failed; retrying", "error", err);
        free(err);
        PQclear(r);
        r = NULL;
    }
    store_release(b->pool, conn);
    return r;
}

static bool claim(struct batches *b, struct work *w)
{
    const char *params[] = {b->owner};
    PGresult *r = run_once(b, STMT_BATCH_CLAIM, 1, params);
    bool got = r && PQntuples(r) == 1;
    if (got) {
        memset(w, 0, sizeof *w);
        w->id = xstrdup(PQgetvalue(r, 0, 0));
        const char *action = PQgetvalue(r, 0, 1);
        w->kind = !strcmp(action, "cancel")      ? ENGINE_IN_CANCEL
                  : !strcmp(action, "terminate") ? ENGINE_IN_TERMINATE
                                                 : ENGINE_IN_RETRY;
        w->filter = json_loads(PQgetvalue(r, 0, 2), 0, NULL);
        w->reason =
            PQgetisnull(r, 0, 3) ? xasprintf("batch %s", w->id) : xstrdup(PQgetvalue(r, 0, 3));
        w->cursor_at = PQgetisnull(r, 0, 4) ? NULL : xstrdup(PQgetvalue(r, 0, 4));
        w->cursor_id = PQgetisnull(r, 0, 5) ? NULL : xstrdup(PQgetvalue(r, 0, 5));
        w->created_at = xstrdup(PQgetvalue(r, 0, 6));
    }
    PQclear(r);
    return got;
}

/* Acts on the page's executions (rows: id, created_at) and waits for all; false when any
 * transition met a database error. */
static bool run_page(struct batches *b, struct work *w, PGresult *rows)
{
    int n = PQntuples(rows);
    struct page p = {.pending = n};
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.cond, NULL);
    int64_t now = time_now_ms();
    for (int i = 0; i < n; i++) {
        struct item_input *it = xcalloc(1, sizeof *it);
        it->page = &p;
        it->batch_id = xstrdup(w->id);
        it->execution_id = xstrdup(PQgetvalue(rows, i, 0));
        it->created_at = xstrdup(PQgetvalue(rows, i, 1));
        const char *seen[] = {it->batch_id, it->created_at, it->execution_id};
        memcpy(it->seen_params, seen, sizeof seen);
        memcpy(it->add_params, seen, sizeof seen);
        it->base.ops = &item_ops;
        it->base.req = (struct transition_request){
            .execution_id = it->execution_id,
            .in = {.kind = w->kind,
                   .now_ms = now,
                   .retry_after_ms = -1,
                   .reason = w->kind == ENGINE_IN_RETRY ? NULL : w->reason},
        };
        runner_submit(b->runner, &it->base);
    }
    pthread_mutex_lock(&p.lock);
    while (p.pending > 0)
        pthread_cond_wait(&p.cond, &p.lock);
    bool ok = p.failed == 0;
    pthread_mutex_unlock(&p.lock);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.cond);
    return ok;
}

/* Works on w until it is done, taken by another keeld, or this one stops. */
static void work_on(struct batches *b, struct work *w)
{
    struct batch_filter_params fp;
    batch_filter_params(w->filter, &fp);
    char limit[16];
    snprintf(limit, sizeof limit, "%d", BATCHES_PAGE);
    while (!is_stopping(b)) {
        fp.v[4] = w->cursor_at;
        fp.v[5] = w->cursor_id;
        fp.v[6] = w->created_at;
        fp.v[11] = limit;
        PGresult *rows = run_once(b, STMT_BATCH_PAGE, 12, fp.v);
        if (!rows) {
            pause_ms(b, 1000);
            continue;
        }
        int n = PQntuples(rows);
        if (n > 0 && !run_page(b, w, rows)) {
            PQclear(rows);
            pause_ms(b, 1000);
            continue;
        }
        const char *new_at = n > 0 ? PQgetvalue(rows, n - 1, 1) : NULL;
        const char *new_id = n > 0 ? PQgetvalue(rows, n - 1, 0) : NULL;
        bool done = n < BATCHES_PAGE;
        const char *params[] = {w->id,  b->owner, w->cursor_at,           w->cursor_id,
                                new_at, new_id,   done ? "true" : "false"};
        PGresult *r = run_once(b, STMT_BATCH_ADVANCE, 7, params);
        bool owned = r && PQntuples(r) == 1;
        bool failed = !r;
        PQclear(r);
        if (failed) {
            /* Not moved: the page runs again (its executions are skipped as reached). */
            PQclear(rows);
            pause_ms(b, 1000);
            continue;
        }
        if (n > 0) {
            free(w->cursor_at);
            free(w->cursor_id);
            w->cursor_at = xstrdup(new_at);
            w->cursor_id = xstrdup(new_id);
        }
        PQclear(rows);
        if (!owned) {
            log_info("batch: taken over by another keeld", "batch", w->id);
            break;
        }
        if (done) {
            log_info("batch completed", "batch", w->id);
            break;
        }
    }
    batch_filter_params_free(&fp);
}

static void *batches_main(void *arg)
{
    struct batches *b = arg;
    while (!is_stopping(b)) {
        struct work w;
        if (claim(b, &w)) {
            work_on(b, &w);
            work_free(&w);
        } else {
            pause_ms(b, 1000);
        }
    }
    return NULL;
}

struct batches *batches_start(struct store_pool *pool, struct runner *runner, const char *owner)
{
    struct batches *b = xcalloc(1, sizeof *b);
    b->pool = pool;
    b->runner = runner;
    b->owner = xstrdup(owner);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    xthread_create(&b->thread, batches_main, b, "batches");
    return b;
}

void batches_wake(struct batches *b)
{
    pthread_mutex_lock(&b->lock);
    b->woken = true;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

void batches_stop(struct batches *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stopping = true;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
    free(b->owner);
    free(b);
}
