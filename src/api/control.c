/* Cancel, terminate and redrive, and a code execution's complete and fail: each one input to
 * the interpreter, in one transition. */
#include "api/control.h"

#include "api/call_tracker.h"
#include "api/common.h"
#include "app.h"
#include "runner/input.h"
#include "runner/runner.h"
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

/* An input that cancels, terminates or retries one execution, applied by the runner. */
struct control_input {
    struct runner_input base; /* first: the runner hands this back */
    struct http_request *http;
    enum engine_input_kind kind;
    const char *verb;
    char *id;
    json_t *body; /* holds the reason */
};

static int control_reads(struct runner_input *in, struct store_call *calls)
{
    struct control_input *c = (struct control_input *)in;
    if (in->rc == TRANSITION_NOT_FOUND)
        return 0;
    /* Applied: the execution as it is now; stale: its status says why. */
    calls[0] = (struct store_call){
        .stmt = STMT_EXEC_JSON, .n_params = 1, .params = (const char *const *)&c->id};
    return 1;
}

static void control_finish(struct runner_input *in, PGconn *conn, PGresult *const *reads,
                           const char *why)
{
    struct control_input *c = (struct control_input *)in;
    struct http_request *req = c->http;
    const char *id = c->id;
    PGresult *r = reads ? reads[0] : NULL;
    bool have = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    const char *status = have ? PQgetvalue(r, 0, 1) : "";
    bool code = have && !strcmp(PQgetvalue(r, 0, 2), "code");
    bool ends = c->kind == ENGINE_IN_COMPLETE || c->kind == ENGINE_IN_FAIL;
    switch (in->rc) {
    case TRANSITION_APPLIED:
        /* complete and fail end the execution at once (200), unless compensations run first
         * (202, as for the others: the result long-poll says when it has ended). */
        if (have)
            http_reply_json(req, ends && strcmp(status, "running") ? 200 : 202,
                            json_loads(PQgetvalue(r, 0, 0), 0, NULL));
        else
            api_transition_fail(req, conn, r, NULL);
        break;
    case TRANSITION_NOT_FOUND:
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%s\"", id);
        break;
    case TRANSITION_STALE:
        if (!have)
            api_transition_fail(req, conn, r, NULL);
        else if (ends && !code)
            http_reply_problem(req, 409, "not-a-code-execution", "Not a code execution",
                               "execution \"%s\" runs a workflow definition, which completes "
                               "or fails by itself; only an execution started with POST "
                               "/v1/executions is %s by its program",
                               id, c->verb);
        else if (ends && !strcmp(status, "running"))
            http_reply_problem(req, 409, "compensating", "Execution is being compensated",
                               "execution \"%s\" failed and runs its compensations; it ends by "
                               "itself",
                               id);
        else if (c->kind == ENGINE_IN_RETRY && !strcmp(status, "failed"))
            http_reply_problem(req, 409, "not-retryable", "Execution cannot be retried",
                               "execution \"%s\" ran compensations after it failed (or failed "
                               "in its output), so it cannot resume where it stopped",
                               id);
        else if (c->kind == ENGINE_IN_RETRY)
            http_reply_problem(req, 409, "not-failed", "Execution has not failed",
                               "execution \"%s\" is %s; only a failed execution can be retried", id,
                               status);
        else if (!strcmp(status, "running"))
            http_reply_problem(req, 409, "already-cancelling", "Execution is already stopping",
                               "execution \"%s\" is already being cancelled or compensated", id);
        else
            http_reply_problem(req, 409, "execution-ended", "Execution has ended",
                               "execution \"%s\" is %s and cannot be %s", id, status, c->verb);
        break;
    case TRANSITION_LEASE_LOST:
    case TRANSITION_ERROR:
        api_transition_fail(req, conn, NULL, why);
        break;
    }
    http_resume(req);
}

static void control_free(struct runner_input *in)
{
    struct control_input *c = (struct control_input *)in;
    free(c->id);
    json_decref(c->body);
    free(c);
}

static const struct runner_input_ops control_ops = {
    .reply_reads = control_reads,
    .finish = control_finish,
    .free = control_free,
};

static void control(struct http_request *req, enum engine_input_kind kind, const char *verb)
{
    struct app *app = http_app(req);
    json_t *body = NULL;
    const char *reason = NULL;
    if (!read_reason(req, kind != ENGINE_IN_RETRY, &body, &reason)) {
        json_decref(body);
        return;
    }
    struct control_input *c = xcalloc(1, sizeof *c);
    c->http = req;
    c->kind = kind;
    c->verb = verb;
    c->id = xstrdup(http_param(req, "id"));
    c->body = body;
    c->base.ops = &control_ops;
    c->base.req = (struct transition_request){
        .execution_id = c->id,
        .in = {.kind = kind, .now_ms = time_now_ms(), .retry_after_ms = -1, .reason = reason},
    };
    http_suspend(req);
    runner_submit(app->runner, &c->base);
}

/* The body of complete, {"output"?: any}, or of fail, {"error": {"type", "message"?}}; each
 * value is copied into in (borrowed from *body). False when it replied with an error. */
static bool read_end(struct http_request *req, bool fail, json_t **body, struct engine_input *in)
{
    *body = http_body_json(req, true);
    if (!*body && http_replied(req))
        return false;
    json_t *errors = json_array();
    if (*body && !json_is_object(*body)) {
        api_add_field_error(errors, "",
                            fail ? "the body must be a JSON object {\"error\": {\"type\", "
                                   "\"message\"?}}"
                                 : "the body must be a JSON object {\"output\"?}");
    } else if (*body) {
        const char *key;
        json_t *v;
        json_object_foreach(*body, key, v)
        {
            char *ptr = xasprintf("/%s", key);
            if (!fail && !strcmp(key, "output")) {
                if (api_check_storable(errors, ptr, v))
                    in->output = v;
            } else if (fail && !strcmp(key, "error")) {
                const char *k2;
                json_t *v2;
                bool ok = api_check_error_object(errors, ptr, v);
                if (json_is_object(v))
                    json_object_foreach(v, k2, v2)
                    {
                        if (strcmp(k2, "type") != 0 && strcmp(k2, "message") != 0) {
                            char *p2 = xasprintf("/error/%s", k2);
                            api_add_field_error(errors, p2,
                                                "unknown field (allowed: type, "
                                                "message)");
                            free(p2);
                            ok = false;
                        }
                    }
                if (ok && api_check_storable(errors, ptr, v))
                    in->error = v;
            } else {
                api_add_field_error(errors, ptr,
                                    fail ? "unknown field (allowed: error)"
                                         : "unknown field (allowed: output)");
            }
            free(ptr);
        }
    }
    if (fail && !in->error && json_array_size(errors) == 0)
        api_add_field_error(errors, "", "missing required field \"error\"");
    if (json_array_size(errors) > 0) {
        http_reply_problem_ext(req, 422, "validation", "Invalid request",
                               "the request body has errors", errors, NULL);
        return false;
    }
    json_decref(errors);
    return true;
}

/* complete or fail of a code execution, by its program. */
static void end_by_program(struct http_request *req, bool fail)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    struct app *app = http_app(req);
    json_t *body = NULL;
    struct engine_input in = {.kind = fail ? ENGINE_IN_FAIL : ENGINE_IN_COMPLETE,
                              .now_ms = time_now_ms(),
                              .retry_after_ms = -1};
    if (!read_end(req, fail, &body, &in)) {
        json_decref(body);
        return;
    }
    if (!fail && !in.output)
        in.output = json_null();
    struct control_input *c = xcalloc(1, sizeof *c);
    c->http = req;
    c->kind = in.kind;
    c->verb = fail ? "failed" : "completed";
    c->id = xstrdup(http_param(req, "id"));
    c->body = body;
    c->base.ops = &control_ops;
    c->base.req = (struct transition_request){.execution_id = c->id, .in = in};
    call_tracker_note(app->calls, c->id, NULL, false, in.now_ms);
    http_suspend(req);
    runner_submit(app->runner, &c->base);
}

void api_executions_complete(struct http_request *req)
{
    end_by_program(req, false);
}

void api_executions_fail(struct http_request *req)
{
    end_by_program(req, true);
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
