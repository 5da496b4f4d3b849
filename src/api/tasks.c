/* A task token names one sent attempt and is the whole credential of these calls. It is valid
 * from the moment its attempt is sent (before the receiver answers, while its 202 is being
 * journaled, and after) and completes or fails that attempt once: a second use, or a use after
 * the attempt timed out, was completed otherwise or its execution ended, is 409; a token that
 * was never issued is 404. Only the SHA-256 of a token is stored (attempt_tokens). */
#include "api/tasks.h"

#include "api/common.h"
#include "app.h"
#include "runner/input.h"
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
                if (api_check_error_object(errors, ptr, v))
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

/* A task token's call, applied by the runner once the token has named its execution. */
struct task_input {
    struct runner_input base; /* first: the runner hands this back */
    struct http_request *http;
    enum task_call call;
    json_t *body; /* holds what in points to */
    char hash[WH_TASK_TOKEN_HASH_LEN + 1];
    const char *hash_param[1];
    char *exec_id, *step;
    const char *lock_params[1];
    enum { TASK_APPLIED, TASK_UNKNOWN, TASK_GONE, TASK_USED } answer;
};

/* Every token is recorded when its attempt is journaled as started, before it is sent, so a
 * token not found here was never issued. */
static int task_resolve(struct runner_input *in, PGconn *conn, char **why)
{
    struct task_input *t = (struct task_input *)in;
    PGresult *r = store_run(conn, STMT_TOKEN_FIND, 1, t->hash_param);
    if (!store_ok(r)) {
        *why = store_error(r, conn);
        PQclear(r);
        return -1;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        t->answer = TASK_UNKNOWN;
        return 0;
    }
    t->exec_id = xstrdup(PQgetvalue(r, 0, 0));
    t->step = xstrdup(PQgetvalue(r, 0, 1));
    PQclear(r);
    t->lock_params[0] = t->exec_id;
    in->req.execution_id = t->exec_id;
    in->req.step_id = t->step;
    return 1;
}

/* The execution first, then the token: the order every transition locks in. */
static int task_before_lock(struct runner_input *in, struct store_call *calls)
{
    struct task_input *t = (struct task_input *)in;
    calls[0] =
        (struct store_call){.stmt = STMT_EXEC_LOCK_STATUS, .n_params = 1, .params = t->lock_params};
    calls[1] = (struct store_call){.stmt = STMT_TOKEN_LOCK, .n_params = 1, .params = t->hash_param};
    return 2;
}

/* The interpreter decides whether the attempt is still in flight: a completion before the
 * receiver's 202 is journaled applies as well as one after; the 202 or a 200 that comes later
 * is then stale (journaled as result_ignored when it carries a result). */
static enum runner_input_step task_prepare(struct runner_input *in, PGconn *conn,
                                           PGresult *const *before, char **why)
{
    (void)conn;
    (void)why;
    struct task_input *t = (struct task_input *)in;
    if (PQntuples(before[0]) != 1 || PQntuples(before[1]) != 1) {
        t->answer = TASK_GONE;
        return INPUT_SKIP;
    }
    if (!strcmp(PQgetvalue(before[1], 0, 4), "t")) {
        t->answer = TASK_USED;
        return INPUT_SKIP;
    }
    t->answer = TASK_APPLIED;
    in->req.in.attempt = atoi(PQgetvalue(before[1], 0, 2));
    in->req.in.compensation = !strcmp(PQgetvalue(before[1], 0, 3), "t");
    return INPUT_APPLY;
}

/* A completion or failure spends the token whether or not it still applied. */
static int task_after(struct runner_input *in, PGconn *conn, enum transition_outcome rc, char **why)
{
    (void)rc;
    struct task_input *t = (struct task_input *)in;
    if (t->call == TASK_HEARTBEAT)
        return 0;
    PGresult *r = store_run(conn, STMT_TOKEN_USE, 1, t->hash_param);
    int ok = store_ok(r);
    if (!ok)
        *why = store_error(r, conn);
    PQclear(r);
    return ok ? 0 : -1;
}

static void task_finish(struct runner_input *in, PGconn *conn, PGresult *const *reads,
                        const char *why)
{
    (void)reads;
    struct task_input *t = (struct task_input *)in;
    struct http_request *req = t->http;
    if (in->rc == TRANSITION_ERROR || in->rc == TRANSITION_LEASE_LOST)
        api_transition_fail(req, conn, NULL, why);
    else if (in->skipped && t->answer == TASK_UNKNOWN)
        http_reply_problem(req, 404, "unknown-token", "Unknown task token",
                           "no attempt was ever sent with this token");
    else if (in->skipped && t->answer == TASK_USED)
        http_reply_problem(req, 409, "token-used", "Task token already used",
                           "the attempt of this token has already been completed or failed");
    else if (in->skipped || in->rc == TRANSITION_NOT_FOUND)
        http_reply_problem(req, 409, "attempt-over", "Attempt no longer in flight",
                           "the execution of this token no longer exists; nothing was applied");
    else if (in->rc == TRANSITION_STALE)
        http_reply_problem(req, 409, "attempt-over", "Attempt no longer in flight",
                           "the attempt of this token timed out, was superseded, or its "
                           "execution has ended; nothing was applied");
    else
        http_reply_json(req, t->call == TASK_HEARTBEAT ? 200 : 202,
                        json_pack("{s:s, s:s, s:i, s:b}", "execution_id", t->exec_id, "step",
                                  t->step, "attempt", in->req.in.attempt, "cancel_requested",
                                  in->out.cancel_requested));
    http_resume(req);
}

static void task_free(struct runner_input *in)
{
    struct task_input *t = (struct task_input *)in;
    json_decref(t->body);
    free(t->exec_id);
    free(t->step);
    free(t);
}

static const struct runner_input_ops task_ops = {
    .resolve = task_resolve,
    .before_lock = task_before_lock,
    .prepare = task_prepare,
    .after = task_after,
    .finish = task_finish,
    .free = task_free,
};

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
    struct task_input *t = xcalloc(1, sizeof *t);
    t->http = req;
    t->call = call;
    t->body = body;
    /* Only the token's hash is stored; the token itself goes no further than this. */
    wh_task_token_hash(http_param(req, "token"), t->hash);
    t->hash_param[0] = t->hash;
    t->base.ops = &task_ops;
    t->base.route = t->hash;
    t->base.req = (struct transition_request){.in = in};
    http_suspend(req);
    runner_submit(app->runner, &t->base);
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
