/* Execution endpoints. */
#include "api/executions.h"

#include "api/common.h"
#include "api/longpoll.h"
#include "app.h"
#include "metrics.h"
#include "runner/runner.h"
#include "store/exec_read.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/ids.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXECUTION_ID_MAX 128

static bool valid_execution_id(const char *s)
{
    return api_valid_name(s, EXECUTION_ID_MAX, "_-:@");
}

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

void api_executions_start(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    struct app *app = http_app(req);
    const char *workflow = http_param(req, "name");
    json_t *body = http_body_json(req, true);
    if (!body && http_replied(req))
        return;
    json_t *errors = json_array();
    const char *given_id = NULL;
    json_t *input = NULL;
    json_int_t version = 0;
    if (body && !json_is_object(body)) {
        api_add_field_error(errors, "",
                            "the body must be a JSON object {\"id\"?, \"input\"?, "
                            "\"version\"?}");
    } else if (body) {
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v)
        {
            if (!strcmp(key, "id")) {
                if (!json_is_string(v) || !valid_execution_id(json_string_value(v)))
                    api_add_field_error(errors, "/id",
                                        "must be 1-128 characters of A-Z a-z 0-9 _ - : @");
                else
                    given_id = json_string_value(v);
            } else if (!strcmp(key, "input")) {
                if (api_check_storable(errors, "/input", v))
                    input = v;
            } else if (!strcmp(key, "version")) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                    json_integer_value(v) > 2147483647)
                    api_add_field_error(errors, "/version", "must be a positive integer");
                else
                    version = json_integer_value(v);
            } else {
                char *ptr = xasprintf("/%s", key);
                api_add_field_error(errors, ptr, "unknown field (allowed: id, input, version)");
                free(ptr);
            }
        }
    }
    if (json_array_size(errors) > 0) {
        http_reply_problem_ext(req, 422, "validation", "Invalid request",
                               "the request body has errors", errors, NULL);
        json_decref(body);
        return;
    }
    json_decref(errors);

    int64_t now = time_now_ms();
    char id[EXECUTION_ID_MAX + 1];
    if (given_id)
        snprintf(id, sizeof id, "%s", given_id);
    else
        ids_uuid7(now, id);
    char *input_text = json_dumps(input ? input : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);

    PGconn *conn = api_db_acquire(req);
    PGresult *r = NULL;
    struct transition_out out = {0};
    if (!conn)
        goto out;
    char vtext[16], now_text[32];
    snprintf(vtext, sizeof vtext, "%lld", (long long)version);
    time_format_rfc3339(now, now_text);
    /* "BEGIN; insert" in one round trip; the insert picks the version itself. This keeld owns
     * what it starts: it sends the first attempts right after the commit. */
    const char *ip[] = {id,         workflow, version ? vtext : NULL,
                        input_text, now_text, runner_env(app->runner)->owner};
    struct store_call calls[] = {{.command = "BEGIN"},
                                 {.stmt = STMT_EXEC_INSERT, .n_params = 6, .params = ip}};
    PGresult *res[2] = {NULL, NULL};
    char *perr = NULL;
    int prc = store_pipeline(conn, calls, 2, res, &perr);
    PQclear(res[0]);
    r = res[1];
    free(perr);
    if (prc < 0 || !store_ok(r))
        goto db_fail;
    if (PQntuples(r) == 0) {
        /* No such workflow (or version), or the id exists: tell which. */
        PQclear(r);
        const char *wp[] = {workflow, version ? vtext : NULL};
        r = store_run(conn, STMT_WORKFLOW_PICK_VERSION, 2, wp);
        if (!store_ok(r))
            goto db_fail;
        if (PQntuples(r) == 0) {
            store_command(conn, "ROLLBACK");
            if (version)
                http_reply_problem(req, 404, "not-found", "Not found",
                                   "workflow \"%s\" has no version %s", workflow, vtext);
            else
                http_reply_problem(req, 404, "not-found", "Not found", "no workflow named \"%s\"",
                                   workflow);
            goto out;
        }
        /* The id exists: the same start again is answered with it; anything else conflicts. */
        PQclear(r);
        const char *sp[] = {id, workflow, input_text};
        r = store_run(conn, STMT_EXEC_SAME_START, 3, sp);
        if (!store_ok(r))
            goto db_fail;
        bool same = PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
        store_command(conn, "ROLLBACK");
        if (same)
            reply_execution(req, conn, id, 200);
        else
            http_reply_problem_ext(
                req, 409, "execution-exists", "Execution id already used",
                "an execution with this id exists with another workflow or input",
                json_pack("[{s:s, s:s}]", "pointer", "/id", "message",
                          "already used by a different execution"),
                NULL);
        goto out;
    }
    PQclear(r);
    r = NULL;
    struct transition_request treq = {
        .execution_id = id,
        .in = {.kind = ENGINE_IN_START, .now_ms = now, .retry_after_ms = -1},
    };
    char *why = NULL;
    /* The writes and COMMIT in one round trip. */
    enum transition_outcome rc = transition_step(runner_env(app->runner), conn, &treq, &out,
                                                 TX_COMMIT | TX_ONLY_APPLIED, &why);
    if (rc != TRANSITION_APPLIED) {
        if (PQtransactionStatus(conn) != PQTRANS_IDLE)
            store_command(conn, "ROLLBACK");
        api_transition_fail(req, conn, r, why);
        free(why);
        goto out;
    }
    metrics_execution_started();
    runner_committed(app->runner, &out, id);
    char *location = xasprintf("/v1/executions/%s", id);
    http_add_header(req, "Location", location);
    free(location);
    reply_execution(req, conn, id, 201);
    goto out;
db_fail:
    api_db_fail(req, conn, r);
out:
    PQclear(r);
    attempt_dispatch_free_list(out.dispatches);
    if (conn)
        api_db_release(req, conn);
    free(input_text);
}

static const char *const statuses[] = {"running", "completed", "failed", "cancelled", "terminated"};

void api_executions_list(struct http_request *req)
{
    static const char *const allowed[] = {"workflow", "status", "since", "until",
                                          "limit",    "cursor", NULL};
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
    char *cur = NULL;
    const char *cur_at = NULL, *cur_id = NULL;
    if (cursor) {
        size_t len;
        cur = b64url_decode(cursor, &len);
        char *nl = cur && strlen(cur) == len ? strchr(cur, '\n') : NULL;
        if (!nl) {
            free(cur);
            free(status);
            api_bad_parameter(req, "cursor", "not a cursor this API returned");
            return;
        }
        *nl = '\0';
        cur_at = cur;
        cur_id = nl + 1;
    }
    PGconn *conn = api_db_acquire(req);
    if (!conn) {
        free(cur);
        free(status);
        return;
    }
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {workflow, status, since, until, cur_at, cur_id, lim};
    PGresult *r = store_run(conn, STMT_EXEC_LIST, 7, params);
    static const int cursor_cols[] = {1, 2}; /* created_at, id */
    if (!store_ok(r))
        api_db_fail(req, conn, r);
    else
        api_reply_page(req, r, limit, "executions", 0, cursor_cols, 2);
    PQclear(r);
    api_db_release(req, conn);
    free(cur);
    free(status);
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
