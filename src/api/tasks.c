/* A task token names one sent attempt and is the whole credential of these calls. It is valid
 * from the moment its attempt is sent (before the receiver answers, while its 202 is being
 * journaled, and after) and completes or fails that attempt once: a second use, or a use after
 * the attempt timed out, was completed otherwise or its execution ended, is 409; a token that
 * was never issued is 404. Only the SHA-256 of a token is stored (attempt_tokens). */
#include "api/tasks.h"

#include "api/common.h"
#include "app.h"
#include "runner/runner.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/timeutil.h"
#include "webhook/sign.h"

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
            if (((call == TASK_COMPLETE && !strcmp(key, "output")) ||
                 (call == TASK_FAIL && !strcmp(key, "error"))) &&
                !api_check_storable(errors, ptr, v)) {
                free(ptr);
                continue;
            }
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

static void task_call(struct http_request *req, enum task_call call)
{
    struct app *app = http_app(req);
    if (api_reject_unknown_query(req, api_no_query))
        return;
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
    /* Only the token's hash is stored; the token itself goes no further than this. */
    char hash[WH_TASK_TOKEN_HASH_LEN + 1];
    wh_task_token_hash(http_param(req, "token"), hash);
    const char *hp[] = {hash};

    PGconn *conn = api_db_acquire(req);
    PGresult *r = NULL;
    char *exec_id = NULL, *step = NULL, *why = NULL;
    struct transition_out out = {0};
    if (!conn)
        goto out;
    if (store_command(conn, "BEGIN") < 0)
        goto db_fail;
    /* Every token is recorded when its attempt is journaled as started, before it is sent, so
     * a token not found here was never issued. */
    r = store_run(conn, STMT_TOKEN_FIND, 1, hp);
    if (!store_ok(r))
        goto db_fail;
    if (PQntuples(r) == 0) {
        store_command(conn, "ROLLBACK");
        http_reply_problem(req, 404, "unknown-token", "Unknown task token",
                           "no attempt was ever sent with this token");
        goto out;
    }
    exec_id = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    /* The execution first, then the token: the order every transition locks in. */
    const char *lp[] = {exec_id};
    r = store_run(conn, STMT_EXEC_LOCK_STATUS, 1, lp);
    if (!store_ok(r))
        goto db_fail;
    bool exists = PQntuples(r) == 1;
    PQclear(r);
    r = NULL;
    if (exists) {
        r = store_run(conn, STMT_TOKEN_LOCK, 1, hp);
        if (!store_ok(r))
            goto db_fail;
        exists = PQntuples(r) == 1;
    }
    if (!exists) {
        store_command(conn, "ROLLBACK");
        http_reply_problem(req, 409, "attempt-over", "Attempt no longer in flight",
                           "the execution of this token no longer exists; nothing was applied");
        goto out;
    }
    if (!strcmp(PQgetvalue(r, 0, 4), "t")) {
        store_command(conn, "ROLLBACK");
        http_reply_problem(req, 409, "token-used", "Task token already used",
                           "the attempt of this token has already been completed or failed");
        goto out;
    }
    step = xstrdup(PQgetvalue(r, 0, 1));
    in.attempt = atoi(PQgetvalue(r, 0, 2));
    in.compensation = !strcmp(PQgetvalue(r, 0, 3), "t");
    PQclear(r);
    r = NULL;
    /* The interpreter decides whether the attempt is still in flight: a completion before the
     * receiver's 202 is journaled applies as well as one after; the 202 or a 200 that comes
     * later is then stale (journaled as result_ignored when it carries a result). */
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
        r = store_run(conn, STMT_TOKEN_USE, 1, hp);
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
    api_transition_fail(req, conn, r, why);
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
