/* Bulk actions' endpoints. The count and the batch's row are written by the API; the acting is
 * the batch worker's (ops/batches.c). */
#include "api/batches.h"

#include "api/common.h"
#include "app.h"
#include "ops/batch_filter.h"
#include "ops/batches.h"
#include "runner/runner.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/ids.h"
#include "util/jsontext.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REASON_MAX 1024

static void bulk(struct http_request *req, const char *action)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    struct app *app = http_app(req);
    bool retry = !strcmp(action, "retry");
    json_t *body = http_body_json(req, true);
    if (!body && http_replied(req))
        return;
    json_t *errors = json_array();
    json_t *filter = NULL;
    const char *reason = NULL;
    bool dry_run = false;
    if (!body || !json_is_object(body)) {
        api_add_field_error(errors, "",
                            "the body must be a JSON object with a filter: \"workflow\", "
                            "\"name\", \"status\", \"since\", \"until\", \"ids\" or \"tags\"");
    } else {
        filter = batch_filter_read(body, errors);
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v)
        {
            char *ptr = xasprintf("/%s", key);
            if (batch_filter_member(key)) {
                /* read above */
            } else if (!strcmp(key, "dry_run")) {
                if (!json_is_boolean(v))
                    api_add_field_error(errors, ptr, "must be true or false");
                else
                    dry_run = json_is_true(v);
            } else if (!strcmp(key, "reason") && !retry) {
                if (!json_is_string(v) || json_string_length(v) > REASON_MAX)
                    api_add_field_error(errors, ptr, "must be a string of at most 1024 bytes");
                else
                    reason = json_string_value(v);
            } else {
                api_add_field_error(errors, ptr,
                                    retry ? "unknown field (allowed: workflow, name, status, "
                                            "since, until, ids, tags, dry_run)"
                                          : "unknown field (allowed: workflow, name, status, "
                                            "since, until, ids, tags, reason, dry_run)");
            }
            free(ptr);
        }
        if (filter && json_object_size(filter) == 0)
            api_add_field_error(errors, "",
                                "give at least one filter (workflow, name, status, since, until, "
                                "ids or tags); to act on every execution, say so with "
                                "\"status\"");
    }
    if (json_array_size(errors) > 0) {
        http_reply_problem_ext(req, 422, "validation", "Invalid request",
                               "the request body has errors", errors, NULL);
        json_decref(filter);
        json_decref(body);
        return;
    }
    json_decref(errors);

    int64_t now = time_now_ms();
    char now_text[32], id[40];
    time_format_rfc3339(now, now_text);
    ids_uuid7(now, id);
    struct batch_filter_params fp;
    batch_filter_params(filter, &fp);
    fp.v[6] = now_text;
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        goto out;
    PGresult *r = store_run(conn, STMT_BATCH_COUNT, 11, fp.v);
    if (!store_ok(r)) {
        api_db_fail(req, conn, r);
        PQclear(r);
        api_db_release(req, conn);
        goto out;
    }
    json_int_t matched = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (dry_run) {
        http_reply_json(req, 200,
                        json_pack("{s:s, s:O, s:I, s:b}", "action", action, "filter", filter,
                                  "matched", matched, "dry_run", 1));
        api_db_release(req, conn);
        goto out;
    }
    char *filter_text = json_text(filter);
    char matched_text[24];
    snprintf(matched_text, sizeof matched_text, "%lld", (long long)matched);
    const char *ip[] = {
        id, action, filter_text, reason, matched_text, now_text, runner_env(app->runner)->owner};
    r = store_run(conn, STMT_BATCH_INSERT, 7, ip);
    free(filter_text);
    if (!store_ok(r) || PQntuples(r) != 1) {
        api_db_fail(req, conn, r);
    } else {
        char *location = xasprintf("/v1/batches/%s", id);
        http_add_header(req, "Location", location);
        free(location);
        http_reply_json(req, 202, json_loads(PQgetvalue(r, 0, 0), 0, NULL));
        batches_wake(app->batches);
    }
    PQclear(r);
    api_db_release(req, conn);
out:
    batch_filter_params_free(&fp);
    json_decref(filter);
    json_decref(body);
}

void api_batches_cancel(struct http_request *req)
{
    bulk(req, "cancel");
}

void api_batches_terminate(struct http_request *req)
{
    bulk(req, "terminate");
}

void api_batches_retry(struct http_request *req)
{
    bulk(req, "retry");
}

void api_batches_get(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    const char *id = http_param(req, "id");
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        return;
    const char *params[] = {id};
    PGresult *r = store_run(conn, STMT_BATCH_GET, 1, params);
    if (!store_ok(r))
        api_db_fail(req, conn, r);
    else if (PQntuples(r) == 0)
        http_reply_problem(req, 404, "not-found", "Not found", "no batch \"%s\"", id);
    else
        http_reply_json(req, 200, json_loads(PQgetvalue(r, 0, 0), 0, NULL));
    PQclear(r);
    api_db_release(req, conn);
}

void api_batches_list(struct http_request *req)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    if (api_reject_unknown_query(req, allowed))
        return;
    int limit;
    if (!api_parse_limit(req, &limit))
        return;
    const char *cursor = http_query(req, "cursor");
    char *cur = NULL;
    const char *cur_at = NULL, *cur_id = NULL;
    if (cursor && !api_decode_time_cursor(req, cursor, &cur, &cur_at, &cur_id))
        return;
    PGconn *conn = api_db_acquire(req);
    if (!conn) {
        free(cur);
        return;
    }
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {cur_at, cur_id, lim};
    PGresult *r = store_run(conn, STMT_BATCH_LIST, 3, params);
    static const int cursor_cols[] = {1, 2};
    if (!store_ok(r))
        api_db_fail(req, conn, r);
    else
        api_reply_page(req, r, limit, "batches", 0, cursor_cols, 2);
    PQclear(r);
    api_db_release(req, conn);
    free(cur);
}

void api_batches_items(struct http_request *req)
{
    static const char *const allowed[] = {"result", "limit", "cursor", NULL};
    if (api_reject_unknown_query(req, allowed))
        return;
    int limit;
    if (!api_parse_limit(req, &limit))
        return;
    const char *id = http_param(req, "id");
    const char *result = http_query(req, "result");
    if (result && strcmp(result, "acted") != 0 && strcmp(result, "skipped") != 0) {
        api_bad_parameter(req, "result", "must be acted or skipped");
        return;
    }
    const char *cursor = http_query(req, "cursor");
    char *cur = NULL;
    const char *cur_at = NULL, *cur_id = NULL;
    if (cursor && !api_decode_time_cursor(req, cursor, &cur, &cur_at, &cur_id))
        return;
    PGconn *conn = api_db_acquire(req);
    if (!conn) {
        free(cur);
        return;
    }
    const char *gp[] = {id};
    PGresult *r = store_run(conn, STMT_BATCH_GET, 1, gp);
    if (!store_ok(r)) {
        api_db_fail(req, conn, r);
    } else if (PQntuples(r) == 0) {
        http_reply_problem(req, 404, "not-found", "Not found", "no batch \"%s\"", id);
    } else {
        PQclear(r);
        char lim[16];
        snprintf(lim, sizeof lim, "%d", limit + 1);
        const char *params[] = {id, result, cur_at, cur_id, lim};
        r = store_run(conn, STMT_BATCH_ITEMS, 5, params);
        static const int cursor_cols[] = {1, 2};
        if (!store_ok(r))
            api_db_fail(req, conn, r);
        else
            api_reply_page(req, r, limit, "items", 0, cursor_cols, 2);
    }
    PQclear(r);
    api_db_release(req, conn);
    free(cur);
}
