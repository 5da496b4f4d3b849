/* A token names one attempt that its receiver answered with 202. It completes that attempt
 * once: a second use, or a use after the attempt timed out or its execution ended, is 409; a
 * token that was never issued is 404. */
#include "api/tasks.h"

#include "api/common.h"
#include "app.h"
#include "runner/runner.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/b64.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum task_call { TASK_COMPLETE, TASK_FAIL, TASK_HEARTBEAT };

/* Checks the body of each call; fills *in. Returns false after replying 422. */
static bool validate(struct http_request *req, enum task_call call, json_t *body,
                     struct engine_input *in)
{
    json_t *errors = json_array();
    if (body && !json_is_object(body)) {
        api_add_field_error(errors, "", "the body must be a JSON object");
    } else if (body) {
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v)
        {
            char *ptr = xasprintf("/%s", key);
            if (call == TASK_COMPLETE && !strcmp(key, "output")) {
                in->output = v;
            } else if (call == TASK_FAIL && !strcmp(key, "error")) {
                json_t *type = json_object_get(v, "type");
                json_t *message = json_object_get(v, "message");
                if (!json_is_object(v))
                    api_add_field_error(errors, ptr, "must be an object {\"type\", \"message\"}");
                else if (!json_is_string(type) || !*json_string_value(type))
                    api_add_field_error(errors, "/error/type", "must be a non-empty string");
                else if (message && !json_is_string(message))
                    api_add_field_error(errors, "/error/message", "must be a string");
                else
                    in->error = v;
            } else if (call == TASK_FAIL && !strcmp(key, "non_retryable")) {
                if (!json_is_boolean(v))
                    api_add_field_error(errors, ptr, "must be true or false");
                else
                    in->non_retryable = json_is_true(v);
            } else if (call == TASK_HEARTBEAT && !strcmp(key, "details")) {
                in->details = v;
            } else {
                api_add_field_error(errors, ptr,
                                    call == TASK_COMPLETE ? "unknown field (allowed: output)"
                                    : call == TASK_FAIL
                                        ? "unknown field (allowed: error, non_retryable)"
                                        : "unknown field (allowed: details)");
            }
            free(ptr);
        }
    }
    if (call == TASK_FAIL && !in->error && json_array_size(errors) == 0)
        api_add_field_error(errors, "/error", "is required: {\"type\", \"message\"}");
    if (json_array_size(errors) > 0) {
        http_reply_problem_ext(req, 422, "validation", "Invalid request",
                               "the request body has errors", errors, NULL);
        return false;
    }
    json_decref(errors);
    return true;
}

/* Looks for token among the in-flight tasks of the execution it names, locking the execution
 * first (the order every transition locks in). For a completion, the task is dropped. Returns
 * 1 when found, 0 when not, -1 on a database error (*r holds the failed result). */
static int find_unrecorded(PGconn *conn, const char *token, char **exec_id, char **step,
                           struct engine_input *in, PGresult **r)
{
    const char *dot = strchr(token, '.');
    size_t len = 0;
    char *id = dot ? b64url_decode(dot + 1, &len) : NULL;
    if (!id || strlen(id) != len) {
        free(id);
        return 0;
    }
    const char *lp[] = {id};
    *r = store_run(conn, STMT_EXEC_LOCK_STATUS, 1, lp);
    if (!store_ok(*r)) {
        free(id);
        return -1;
    }
    PQclear(*r);
    const char *tp[] = {id, token};
    *r = store_run(conn, STMT_TOKEN_IN_TASKS, 2, tp);
    if (!store_ok(*r)) {
        free(id);
        return -1;
    }
    if (PQntuples(*r) == 0) {
        free(id);
        PQclear(*r);
        *r = NULL;
        return 0;
    }
    char task_id[24];
    snprintf(task_id, sizeof task_id, "%s", PQgetvalue(*r, 0, 0));
    *exec_id = id;
    *step = xstrdup(PQgetvalue(*r, 0, 1));
    in->attempt = atoi(PQgetvalue(*r, 0, 2));
    in->compensation = !strcmp(PQgetvalue(*r, 0, 3), "t");
    PQclear(*r);
    *r = NULL;
    if (in->kind != ENGINE_IN_HEARTBEAT) {
        const char *dp[] = {task_id};
        *r = store_run(conn, STMT_TASK_DROP, 1, dp);
        if (!store_ok(*r))
            return -1;
        PQclear(*r);
        *r = NULL;
    }
    return 1;
}

static void task_call(struct http_request *req, enum task_call call)
{
    struct app *app = http_app(req);
    const char *token = http_param(req, "token");
    json_t *body = http_body_json(req, true);
    if (!body && http_replied(req))
        return;
    struct engine_input in = {.now_ms = time_now_ms(), .retry_after_ms = -1};
    in.kind = call == TASK_COMPLETE ? ENGINE_IN_ATTEMPT_SUCCEEDED
              : call == TASK_FAIL   ? ENGINE_IN_ATTEMPT_FAILED
                                    : ENGINE_IN_HEARTBEAT;
    if (!validate(req, call, body, &in)) {
        json_decref(body);
        return;
    }
    if (call == TASK_COMPLETE && !in.output)
        in.output = json_null();

    PGconn *conn = api_db_acquire(req);
    PGresult *r = NULL;
    char *exec_id = NULL, *step = NULL, *why = NULL;
    struct transition_out out = {0};
    if (!conn)
        goto out;
    if (store_command(conn, "BEGIN") < 0)
        goto db_fail;
    const char *tp[] = {token};
    r = store_run(conn, STMT_TOKEN_LOCK, 1, tp);
    if (!store_ok(r))
        goto db_fail;
    bool recorded = PQntuples(r) == 1;
    if (recorded && !strcmp(PQgetvalue(r, 0, 4), "t")) {
        store_command(conn, "ROLLBACK");
        http_reply_problem(req, 409, "token-used", "Task token already used",
                           "the attempt of this token has already been completed or failed");
        goto out;
    }
    if (recorded) {
        exec_id = xstrdup(PQgetvalue(r, 0, 0));
        step = xstrdup(PQgetvalue(r, 0, 1));
        in.attempt = atoi(PQgetvalue(r, 0, 2));
        in.compensation = !strcmp(PQgetvalue(r, 0, 3), "t");
    }
    PQclear(r);
    r = NULL;
    if (!recorded) {
        /* The receiver may call before keeld has journaled its 202 (or while the request is
         * still open): the attempt is then found among its execution's tasks. */
        int found = find_unrecorded(conn, token, &exec_id, &step, &in, &r);
        if (found < 0)
            goto db_fail;
        if (found == 0) {
            store_command(conn, "ROLLBACK");
            http_reply_problem(req, 404, "unknown-token", "Unknown task token",
                               "no attempt in flight has this token");
            goto out;
        }
        if (call != TASK_HEARTBEAT) {
            /* The request still open will find its task gone and its result dropped. */
            char attempt[16];
            snprintf(attempt, sizeof attempt, "%d", in.attempt);
            const char *ip[] = {token, exec_id, step, attempt, in.compensation ? "true" : "false"};
            r = store_run(conn, STMT_TOKEN_INSERT, 5, ip);
            if (!store_ok(r))
                goto db_fail;
            PQclear(r);
            r = NULL;
        }
    }
    struct transition_request treq = {
        .execution_id = exec_id,
        .step_id = step,
        .in = in,
    };
    enum transition_outcome rc = transition_apply(runner_env(app->runner), conn, &treq, &out, &why);
    if (rc != TRANSITION_APPLIED && rc != TRANSITION_STALE)
        goto db_fail;
    /* A completion or failure spends the token whether or not it still applied. */
    if (call != TASK_HEARTBEAT) {
        r = store_run(conn, STMT_TOKEN_USE, 1, tp);
        if (!store_ok(r))
            goto db_fail;
        PQclear(r);
        r = NULL;
    }
    if (store_command(conn, "COMMIT") < 0)
        goto db_fail;
    runner_committed(app->runner, &out, exec_id);
    if (rc == TRANSITION_STALE)
        http_reply_problem(req, 409, "attempt-over", "Attempt no longer in flight",
                           "the attempt of this token timed out, was superseded, or its "
                           "execution has ended; nothing was applied");
    else
        http_reply_json(req, call == TASK_HEARTBEAT ? 200 : 202,
                        json_pack("{s:s, s:s, s:i, s:b}", "execution_id", exec_id, "step", step,
                                  "attempt", in.attempt, "cancel_requested", out.cancel_requested));
    goto out;
db_fail:
    api_db_fail(req, conn, r);
out:
    PQclear(r);
    attempt_dispatch_free_list(out.dispatches);
    if (conn)
        api_db_release(req, conn);
    free(exec_id);
    free(step);
    free(why);
    json_decref(body);
}

void api_tasks_complete(struct http_request *req)
{
    task_call(req, TASK_COMPLETE);
}

void api_tasks_fail(struct http_request *req)
{
    task_call(req, TASK_FAIL);
}

void api_tasks_heartbeat(struct http_request *req)
{
    task_call(req, TASK_HEARTBEAT);
}
