/* Execution endpoints. */
#include "api/executions.h"

#include "api/common.h"
#include "api/longpoll.h"
#include "app.h"
#include "metrics.h"
#include "runner/input.h"
#include "runner/runner.h"
#include "store/exec_read.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/ids.h"
#include "util/jsontext.h"
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

/* A start, applied by the runner: the insert goes in the transaction's first round trip, and
 * this keeld owns what it starts (it sends the first attempts right after the commit). */
struct start_input {
    struct runner_input base; /* first: the runner hands this back */
    struct http_request *http;
    char id[EXECUTION_ID_MAX + 1];
    char *workflow, *input_text;
    char vtext[16], now_text[32];
    const char *insert_params[6];
    const char *pick_params[2];
    const char *same_params[3];
    const char *json_params[1];
};

static int start_before_lock(struct runner_input *in, struct store_call *calls)
{
    struct start_input *s = (struct start_input *)in;
    calls[0] =
        (struct store_call){.stmt = STMT_EXEC_INSERT, .n_params = 6, .params = s->insert_params};
    return 1;
}

static enum runner_input_step start_prepare(struct runner_input *in, PGconn *conn,
                                            PGresult *const *before, char **why)
{
    (void)in;
    (void)conn;
    (void)why;
    /* Nothing inserted: no such workflow (or version), or the id exists; the reads after the
     * commit tell which. */
    return PQntuples(before[0]) == 1 ? INPUT_APPLY : INPUT_SKIP;
}

static int start_reads(struct runner_input *in, struct store_call *calls)
{
    struct start_input *s = (struct start_input *)in;
    int n = 0;
    if (in->skipped) {
        calls[n++] = (struct store_call){
            .stmt = STMT_WORKFLOW_PICK_VERSION, .n_params = 2, .params = s->pick_params};
        calls[n++] = (struct store_call){
            .stmt = STMT_EXEC_SAME_START, .n_params = 3, .params = s->same_params};
    }
    calls[n++] =
        (struct store_call){.stmt = STMT_EXEC_JSON, .n_params = 1, .params = s->json_params};
    return n;
}

/* 409: the id is taken by another execution (what differs is said by detail). */
static void reply_id_taken(struct http_request *req, const char *detail)
{
    http_reply_problem_ext(req, 409, "execution-exists", "Execution id already used", detail,
                           json_pack("[{s:s, s:s}]", "pointer", "/id", "message",
                                     "already used by a different execution"),
                           NULL);
}

/* The answer to a start once its id is known to be this start's: 201 with Location for a new
 * execution, 200 for the same start again (skipped), with the execution as json has it. */
static void reply_started(struct http_request *req, PGconn *conn, const struct runner_input *in,
                          const char *id, PGresult *json)
{
    if (!store_ok(json) || PQntuples(json) != 1) {
        api_transition_fail(req, conn, json, NULL);
        return;
    }
    if (!in->skipped) {
        metrics_execution_started();
        char *location = xasprintf("/v1/executions/%s", id);
        http_add_header(req, "Location", location);
        free(location);
    }
    http_reply_json(req, in->skipped ? 200 : 201, json_loads(PQgetvalue(json, 0, 0), 0, NULL));
}

static void start_finish(struct runner_input *in, PGconn *conn, PGresult *const *reads,
                         const char *why)
{
    struct start_input *s = (struct start_input *)in;
    struct http_request *req = s->http;
    if (in->rc == TRANSITION_ERROR || in->rc == TRANSITION_LEASE_LOST) {
        api_transition_fail(req, conn, NULL, why);
        http_resume(req);
        return;
    }
    PGresult *pick = in->skipped && reads ? reads[0] : NULL;
    PGresult *same = in->skipped && reads ? reads[1] : NULL;
    PGresult *json = reads ? reads[in->skipped ? 2 : 0] : NULL;
    if (!reads || (in->skipped && (!store_ok(pick) || !store_ok(same)))) {
        api_transition_fail(req, conn, !reads ? NULL : !store_ok(pick) ? pick : same, NULL);
    } else if (in->skipped && PQntuples(pick) == 0) {
        if (s->vtext[0])
            http_reply_problem(req, 404, "not-found", "Not found",
                               "workflow \"%s\" has no version %s", s->workflow, s->vtext);
        else
            http_reply_problem(req, 404, "not-found", "Not found", "no workflow named \"%s\"",
                               s->workflow);
    } else if (in->skipped && !(PQntuples(same) == 1 && !strcmp(PQgetvalue(same, 0, 0), "t"))) {
        /* The id exists: the same start again is answered with it; anything else conflicts. */
        reply_id_taken(req, "an execution with this id exists with another workflow or input");
    } else {
        reply_started(req, conn, in, s->id, json);
    }
    http_resume(req);
}

static void start_free(struct runner_input *in)
{
    struct start_input *s = (struct start_input *)in;
    free(s->workflow);
    free(s->input_text);
    free(s);
}

static const struct runner_input_ops start_ops = {
    .before_lock = start_before_lock,
    .prepare = start_prepare,
    .reply_reads = start_reads,
    .finish = start_finish,
    .free = start_free,
};

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
    struct start_input *s = xcalloc(1, sizeof *s);
    s->http = req;
    snprintf(s->id, sizeof s->id, "%s", id);
    s->workflow = xstrdup(workflow);
    s->input_text = json_text(input ? input : json_null());
    json_decref(body);
    if (version)
        snprintf(s->vtext, sizeof s->vtext, "%lld", (long long)version);
    time_format_rfc3339(now, s->now_text);
    const char *version_param = version ? s->vtext : NULL;
    const char *ip[] = {s->id,         s->workflow, version_param,
                        s->input_text, s->now_text, runner_env(app->runner)->owner};
    memcpy(s->insert_params, ip, sizeof ip);
    s->pick_params[0] = s->workflow;
    s->pick_params[1] = version_param;
    s->same_params[0] = s->id;
    s->same_params[1] = s->workflow;
    s->same_params[2] = s->input_text;
    s->json_params[0] = s->id;
    s->base.ops = &start_ops;
    s->base.only_applied = true;
    s->base.req = (struct transition_request){
        .execution_id = s->id,
        .in = {.kind = ENGINE_IN_START, .now_ms = now, .retry_after_ms = -1},
    };
    http_suspend(req);
    runner_submit(app->runner, &s->base);
}

/* A code execution's start (contract, "Step calls"): no definition to look up, so the insert
 * either happens or the id exists, with the same name and input (200) or not (409). */
struct code_start_input {
    struct runner_input base; /* first: the runner hands this back */
    struct http_request *http;
    char id[EXECUTION_ID_MAX + 1];
    char *name, *input_text;
    char now_text[32];
    const char *insert_params[5];
    const char *same_params[3];
    const char *json_params[1];
};

static int code_start_before_lock(struct runner_input *in, struct store_call *calls)
{
    struct code_start_input *s = (struct code_start_input *)in;
    calls[0] = (struct store_call){
        .stmt = STMT_EXEC_INSERT_CODE, .n_params = 5, .params = s->insert_params};
    return 1;
}

static int code_start_reads(struct runner_input *in, struct store_call *calls)
{
    struct code_start_input *s = (struct code_start_input *)in;
    int n = 0;
    if (in->skipped)
        calls[n++] = (struct store_call){
            .stmt = STMT_EXEC_SAME_CODE_START, .n_params = 3, .params = s->same_params};
    calls[n++] =
        (struct store_call){.stmt = STMT_EXEC_JSON, .n_params = 1, .params = s->json_params};
    return n;
}

static void code_start_finish(struct runner_input *in, PGconn *conn, PGresult *const *reads,
                              const char *why)
{
    struct code_start_input *s = (struct code_start_input *)in;
    struct http_request *req = s->http;
    if (in->rc == TRANSITION_ERROR || in->rc == TRANSITION_LEASE_LOST) {
        api_transition_fail(req, conn, NULL, why);
        http_resume(req);
        return;
    }
    PGresult *same = in->skipped && reads ? reads[0] : NULL;
    PGresult *json = reads ? reads[in->skipped ? 1 : 0] : NULL;
    if (!reads || (in->skipped && !store_ok(same))) {
        api_transition_fail(req, conn, !reads ? NULL : same, NULL);
    } else if (in->skipped && !(PQntuples(same) == 1 && !strcmp(PQgetvalue(same, 0, 0), "t"))) {
        reply_id_taken(req, "an execution with this id exists with another kind, name or input");
    } else {
        reply_started(req, conn, in, s->id, json);
    }
    http_resume(req);
}

static void code_start_free(struct runner_input *in)
{
    struct code_start_input *s = (struct code_start_input *)in;
    free(s->name);
    free(s->input_text);
    free(s);
}

static const struct runner_input_ops code_start_ops = {
    .before_lock = code_start_before_lock,
    .prepare = start_prepare,
    .reply_reads = code_start_reads,
    .finish = code_start_finish,
    .free = code_start_free,
};

void api_executions_start_code(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    struct app *app = http_app(req);
    json_t *body = http_body_json(req, true);
    if (!body && http_replied(req))
        return;
    json_t *errors = json_array();
    const char *given_id = NULL, *name = "code";
    json_t *input = NULL;
    if (body && !json_is_object(body)) {
        api_add_field_error(errors, "",
                            "the body must be a JSON object {\"id\"?, \"name\"?, \"input\"?}");
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
            } else if (!strcmp(key, "name")) {
                const char *n = json_string_value(v);
                if (!n || !api_valid_name(n, 128, "_.-") || !strcmp(n, ".") || !strcmp(n, ".."))
                    api_add_field_error(errors, "/name",
                                        "must be 1-128 characters of A-Z a-z 0-9 _ . - (not . "
                                        "or ..)");
                else
                    name = n;
            } else if (!strcmp(key, "input")) {
                if (api_check_storable(errors, "/input", v))
                    input = v;
            } else if (!strcmp(key, "handler")) {
                /* Refused rather than ignored: a program waiting for calls that never come
                 * would be a silent failure. */
                api_add_field_error(errors, "/handler",
                                    "the resume handler is not supported by this keeld yet");
            } else {
                char *ptr = xasprintf("/%s", key);
                api_add_field_error(errors, ptr, "unknown field (allowed: id, name, input)");
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
    struct code_start_input *s = xcalloc(1, sizeof *s);
    s->http = req;
    if (given_id)
        snprintf(s->id, sizeof s->id, "%s", given_id);
    else
        ids_uuid7(now, s->id);
    s->name = xstrdup(name);
    s->input_text = json_text(input ? input : json_null());
    json_decref(body);
    time_format_rfc3339(now, s->now_text);
    const char *ip[] = {s->id, s->name, s->input_text, s->now_text, runner_env(app->runner)->owner};
    memcpy(s->insert_params, ip, sizeof ip);
    s->same_params[0] = s->id;
    s->same_params[1] = s->name;
    s->same_params[2] = s->input_text;
    s->json_params[0] = s->id;
    s->base.ops = &code_start_ops;
    s->base.only_applied = true;
    s->base.req = (struct transition_request){
        .execution_id = s->id,
        .in = {.kind = ENGINE_IN_START, .now_ms = now, .retry_after_ms = -1},
    };
    http_suspend(req);
    runner_submit(app->runner, &s->base);
}

static const char *const statuses[] = {"running", "completed", "failed", "cancelled", "terminated"};

void api_executions_list(struct http_request *req)
{
    static const char *const allowed[] = {"workflow", "status", "since", "until", "limit",
                                          "cursor",   "parent", "name",  NULL};
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
    if (parent && !valid_execution_id(parent)) {
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
    const char *params[] = {workflow, status, since, until, cur_at, cur_id, lim, parent, name};
    PGresult *r = store_run(conn, STMT_EXEC_LIST, 9, params);
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
