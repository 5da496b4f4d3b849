/* Execution endpoints: read, list, history, and the result long poll. */
#include "api/executions.h"

#include "api/common.h"
#include "api/longpoll.h"
#include "api/tags.h"
#include "app.h"
#include "metrics.h"
#include "runner/runner.h"
#include "store/exec_read.h"
#include "store/purge.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/b64.h"
#include "util/jsontext.h"
#include "util/buf.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply_execution(struct http_request *req, PGconn *conn, const char *id, int status)
{
    char st[16];
    char *why = NULL;
    char *json = store_execution_json(conn, id, st, &why);
    if (json) {
        http_reply_json(req, status, json_loads(json, 0, NULL));
        free(json);
    } else if (why) {
        api_db_fail(req, conn, NULL);
        free(why);
    } else {
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%s\"", id);
    }
}

static const char *const statuses[] = {"running", "completed", "failed", "cancelled", "terminated"};

/* The tag of tags (an object of at least one) whose rows lead a tagged list: the one with the
 * fewest executions, so that "env:prod and customer:42" reads customer 42's rows, not every
 * production execution's. False on a database error. */
static bool rarest_tag(PGconn *conn, json_t *tags, const char **key, const char **value)
{
    size_t n = json_object_size(tags), chosen = 0;
    if (n > 1) {
        const char *keys[TAGS_MAX_COUNT], *values[TAGS_MAX_COUNT];
        size_t i = 0;
        const char *name;
        json_t *val;
        json_object_foreach(tags, name, val)
        {
            keys[i] = name;
            values[i++] = json_string_value(val);
        }
        struct buf kt = BUF_INIT, vt = BUF_INIT;
        store_text_array(&kt, keys, n);
        store_text_array(&vt, values, n);
        const char *params[] = {kt.data, vt.data};
        PGresult *r = store_run(conn, STMT_TAGS_RAREST, 2, params);
        bool ok = store_ok(r) && PQntuples(r) == 1;
        if (ok)
            chosen = (size_t)atol(PQgetvalue(r, 0, 0)) - 1;
        PQclear(r);
        buf_free(&kt);
        buf_free(&vt);
        if (!ok)
            return false;
    }
    size_t i = 0;
    const char *name;
    json_t *val;
    json_object_foreach(tags, name, val)
    {
        if (i++ == chosen) {
            *key = name;
            *value = json_string_value(val);
            break;
        }
    }
    return true;
}

void api_executions_list(struct http_request *req)
{
    static const char *const allowed[] = {"workflow", "status", "since", "until", "limit",
                                          "cursor",   "parent", "name",  "tag",   NULL};
    if (api_reject_unknown_query(req, allowed))
        return;
    int limit;
    if (!api_parse_limit(req, &limit))
        return;
    const char *workflow = http_query(req, "workflow");
    const char *status_param = http_query(req, "status");
    const char *since = http_query(req, "since");
    const char *until = http_query(req, "until");
    const char *cursor = http_query(req, "cursor");
    const char *parent = http_query(req, "parent");
    const char *name = http_query(req, "name");
    if (name && !api_valid_name(name, 128, "_.-")) {
        api_bad_parameter(req, "name", "must be a name: 1-128 characters of A-Z a-z 0-9 _ . -");
        return;
    }
    if (parent && !api_valid_execution_id(parent)) {
        api_bad_parameter(req, "parent",
                          "must be an execution id: 1-128 characters of A-Z a-z "
                          "0-9 _ - : @");
        return;
    }
    /* ?status=running,failed: any of them; each one must be a status. */
    char *status = NULL;
    if (status_param) {
        struct buf arr = BUF_INIT;
        buf_putc(&arr, '{');
        const char *p = status_param;
        for (;;) {
            size_t n = strcspn(p, ",");
            bool ok = false;
            for (size_t i = 0; i < sizeof statuses / sizeof statuses[0] && !ok; i++)
                ok = strlen(statuses[i]) == n && !strncmp(p, statuses[i], n);
            if (!ok) {
                char *msg = xasprintf("\"%.*s\" is not a status; use running, completed, "
                                      "failed, cancelled or terminated, several separated by "
                                      "commas",
                                      (int)(n > 64 ? 64 : n), p);
                api_bad_parameter(req, "status", msg);
                free(msg);
                buf_free(&arr);
                return;
            }
            if (arr.len > 1)
                buf_putc(&arr, ',');
            buf_append(&arr, p, n);
            if (!p[n])
                break;
            p += n + 1;
        }
        buf_putc(&arr, '}');
        status = buf_steal(&arr);
    }
    int64_t t;
    if (since && !time_parse_rfc3339(since, &t)) {
        api_bad_parameter(req, "since", "must be an RFC 3339 time, e.g. 2026-01-02T03:04:05Z");
        free(status);
        return;
    }
    if (until && !time_parse_rfc3339(until, &t)) {
        api_bad_parameter(req, "until", "must be an RFC 3339 time, e.g. 2026-01-02T03:04:05Z");
        free(status);
        return;
    }
    json_t *tags = NULL;
    if (!tags_query_filter(req, &tags)) {
        free(status);
        return;
    }
    char *cur = NULL;
    const char *cur_at = NULL, *cur_id = NULL;
    if (cursor && !api_decode_time_cursor(req, cursor, &cur, &cur_at, &cur_id)) {
        free(status);
        json_decref(tags);
        return;
    }
    PGconn *conn = api_db_acquire(req);
    if (!conn) {
        free(cur);
        free(status);
        json_decref(tags);
        return;
    }
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    /* With tags, the rows of the rarest one lead; the execution must hold all of them. */
    char *tags_text = tags ? json_text(tags) : NULL;
    const char *tag_key = NULL, *tag_value = NULL;
    if (tags && !rarest_tag(conn, tags, &tag_key, &tag_value)) {
        api_db_fail(req, conn, NULL);
        api_db_release(req, conn);
        free(cur);
        free(status);
        free(tags_text);
        json_decref(tags);
        return;
    }
    const char *params[] = {workflow, status, since, until,     cur_at,  cur_id,
                            lim,      parent, name,  tags_text, tag_key, tag_value};
    PGresult *r = tags ? store_run(conn, STMT_EXEC_LIST_TAGGED, 12, params)
                       : store_run(conn, STMT_EXEC_LIST, 10, params);
    static const int cursor_cols[] = {1, 2}; /* created_at, id */
    if (!store_ok(r))
        api_db_fail(req, conn, r);
    else
        api_reply_page(req, r, limit, "executions", 0, cursor_cols, 2);
    PQclear(r);
    api_db_release(req, conn);
    free(cur);
    free(status);
    free(tags_text);
    json_decref(tags);
}

void api_executions_get(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        return;
    reply_execution(req, conn, http_param(req, "id"), 200);
    api_db_release(req, conn);
}

void api_executions_delete(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    const char *id = http_param(req, "id");
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        return;
    struct purge_counts c = {0};
    char *why = NULL;
    switch (purge_execution(conn, id, &c, &why)) {
    case PURGE_DONE:
        metrics_purged(METRICS_PURGE_API, c.executions, c.events + c.steps + c.other);
        http_reply_json(req, 200,
                        json_pack("{s:s, s:{s:I, s:I, s:I}}", "id", id, "removed", "events",
                                  (json_int_t)c.events, "steps", (json_int_t)c.steps, "other",
                                  (json_int_t)c.other));
        break;
    case PURGE_NOT_FOUND:
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%s\"", id);
        break;
    case PURGE_RUNNING:
        http_reply_problem(req, 409, "execution-running", "Execution is running",
                           "execution \"%s\" is running; cancel or terminate it first, then "
                           "delete it",
                           id);
        break;
    case PURGE_DB_ERROR:
        api_transition_fail(req, conn, NULL, why);
        free(why);
        break;
    }
    api_db_release(req, conn);
}

static bool parse_nonneg(const char *v, long long max, long long *out)
{
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || n < 0 || n > max)
        return false;
    *out = n;
    return true;
}

void api_executions_history(struct http_request *req)
{
    static const char *const allowed[] = {"after_seq", "limit", "cursor", NULL};
    if (api_reject_unknown_query(req, allowed))
        return;
    const char *id = http_param(req, "id");
    int limit;
    if (!api_parse_limit(req, &limit))
        return;
    long long after = 0;
    const char *a = http_query(req, "after_seq");
    const char *c = http_query(req, "cursor");
    if (a && !parse_nonneg(a, 9007199254740991LL, &after)) {
        api_bad_parameter(req, "after_seq", "must be a non-negative integer");
        return;
    }
    if (c && !parse_nonneg(c, 9007199254740991LL, &after)) {
        api_bad_parameter(req, "cursor", "not a cursor this API returned");
        return;
    }
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        return;
    const char *sp[] = {id};
    PGresult *r = store_run(conn, STMT_EXEC_STATUS, 1, sp);
    if (!store_ok(r)) {
        api_db_fail(req, conn, r);
        goto out;
    }
    if (PQntuples(r) == 0) {
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%s\"", id);
        goto out;
    }
    PQclear(r);
    char after_text[24], lim[16];
    snprintf(after_text, sizeof after_text, "%lld", after);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *hp[] = {id, after_text, lim};
    r = store_run(conn, STMT_HISTORY, 3, hp);
    if (!store_ok(r)) {
        api_db_fail(req, conn, r);
        goto out;
    }
    json_t *events = json_array();
    int n = PQntuples(r);
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(events, json_loads(PQgetvalue(r, i, 0), 0, NULL));
    json_t *next = n > limit ? json_string(PQgetvalue(r, limit - 1, 1)) : json_null();
    http_reply_json(req, 200, json_pack("{s:o, s:o}", "events", events, "next_cursor", next));
out:
    PQclear(r);
    api_db_release(req, conn);
}

void api_executions_result(struct http_request *req)
{
    static const char *const allowed[] = {"wait", NULL};
    if (api_reject_unknown_query(req, allowed))
        return;
    struct app *app = http_app(req);
    const char *id = http_param(req, "id");
    long long wait_s = 0;
    const char *w = http_query(req, "wait");
    if (w && !parse_nonneg(w, 60, &wait_s)) {
        api_bad_parameter(req, "wait", "must be an integer number of seconds from 0 to 60");
        return;
    }
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        return;
    char status[16];
    char *why = NULL;
    char *json = store_execution_json(conn, id, status, &why);
    if (!json) {
        if (why)
            api_db_fail(req, conn, NULL);
        else
            http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%s\"", id);
        free(why);
        api_db_release(req, conn);
        return;
    }
    api_db_release(req, conn);
    if (store_status_is_final(status) || wait_s == 0) {
        http_reply_json(req, store_status_is_final(status) ? 200 : 202, json_loads(json, 0, NULL));
        free(json);
        return;
    }
    free(json);
    longpoll_wait(app->longpoll, req, id, time_mono_ms() + wait_s * 1000);
}
