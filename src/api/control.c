/* Cancel, terminate and redrive: each one input to the interpreter, in one transition. */
#include "api/control.h"

#include "api/common.h"
#include "app.h"
#include "runner/runner.h"
#include "store/exec_read.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REASON_MAX 1024

/* Reads the optional body {"reason": string}; false when it replied with an error. */
static bool read_reason(struct http_request *req, bool reason_allowed, json_t **body,
                        const char **reason)
{
    *reason = NULL;
    *body = http_body_json(req, true);
    if (!*body)
        return !http_replied(req);
    if (!json_is_object(*body)) {
        api_invalid_field(req, "", "the body must be a JSON object");
        return false;
    }
    json_t *errors = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(*body, key, v)
    {
        char *ptr = xasprintf("/%s", key);
        if (reason_allowed && !strcmp(key, "reason")) {
            if (!json_is_string(v) || strlen(json_string_value(v)) > REASON_MAX)
                api_add_field_error(errors, ptr, "must be a string of at most 1024 bytes");
            else
                *reason = json_string_value(v);
        } else {
            api_add_field_error(errors, ptr,
                                reason_allowed ? "unknown field (allowed: reason)"
                                               : "unknown field (this request takes none)");
        }
        free(ptr);
    }
    if (json_array_size(errors) > 0) {
        http_reply_problem_ext(req, 422, "validation", "Invalid request",
                               "the request body has errors", errors, NULL);
        return false;
    }
    json_decref(errors);
    return true;
}

static void control(struct http_request *req, enum engine_input_kind kind, const char *verb)
{
    struct app *app = http_app(req);
    const char *id = http_param(req, "id");
    json_t *body = NULL;
    const char *reason = NULL;
    if (!read_reason(req, kind != ENGINE_IN_RETRY, &body, &reason)) {
        json_decref(body);
        return;
    }
    PGconn *conn = api_db_acquire(req);
    if (!conn) {
        json_decref(body);
        return;
    }
    struct transition_request treq = {
        .execution_id = id,
        .in = {.kind = kind, .now_ms = time_now_ms(), .retry_after_ms = -1, .reason = reason},
    };
    struct transition_out out;
    char *why = NULL;
    enum transition_outcome rc = transition_run(runner_env(app->runner), conn, &treq, &out, &why);
    char status[16] = "";
    char *json = NULL;
    switch (rc) {
    case TRANSITION_APPLIED:
        runner_committed(app->runner, &out, id);
        json = store_execution_json(conn, id, status, &why);
        if (json)
            http_reply_json(req, 202, json_loads(json, 0, NULL));
        else
            api_db_fail(req, conn, NULL);
        break;
    case TRANSITION_NOT_FOUND:
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%s\"", id);
        break;
    case TRANSITION_STALE:
        json = store_execution_json(conn, id, status, &why);
        if (kind == ENGINE_IN_RETRY && !strcmp(status, "failed"))
            http_reply_problem(req, 409, "not-retryable", "Execution cannot be retried",
                               "execution \"%s\" ran compensations after it failed (or failed "
                               "in its output), so it cannot resume where it stopped",
                               id);
        else if (kind == ENGINE_IN_RETRY)
            http_reply_problem(req, 409, "not-failed", "Execution has not failed",
                               "execution \"%s\" is %s; only a failed execution can be retried", id,
                               status);
        else if (!strcmp(status, "running"))
            http_reply_problem(req, 409, "already-cancelling", "Execution is already stopping",
                               "execution \"%s\" is already being cancelled or compensated", id);
        else
            http_reply_problem(req, 409, "execution-ended", "Execution has ended",
                               "execution \"%s\" is %s and cannot be %s", id, status, verb);
        break;
    case TRANSITION_LEASE_LOST:
    case TRANSITION_ERROR:
        api_transition_fail(req, conn, NULL, why);
        break;
    }
    free(json);
    free(why);
    api_db_release(req, conn);
    json_decref(body);
}

void api_executions_cancel(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    control(req, ENGINE_IN_CANCEL, "cancelled");
}

void api_executions_terminate(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    control(req, ENGINE_IN_TERMINATE, "terminated");
}

void api_executions_retry(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    control(req, ENGINE_IN_RETRY, "retried");
}
