/* Starting executions: a workflow's (POST /v1/workflows/{name}/executions) and a code
 * execution's (POST /v1/executions), each an input the runner applies, with the same answers:
 * 201 for a new one, 200 for the same start again, 409 for an id taken by another. */
#include "api/starts.h"

#include "api/common.h"
#include "api/tags.h"
#include "app.h"
#include "defn/duration.h"
#include "runner/input.h"
#include "runner/runner.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/ids.h"
#include "util/jsontext.h"
#include "util/timeutil.h"
#include "webhook/destination.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What every start takes: all borrowed from the body. */
struct start_fields {
    const char *id;
    json_t *input;
    json_t *tags; /* NULL when absent or empty */
};

/* Reads key of a start's body when it is a field every start takes (setting it in *f, or adding
 * an error for a bad value). False for any other key. */
static bool read_start_field(json_t *errors, const char *key, json_t *v, struct start_fields *f)
{
    if (!strcmp(key, "id")) {
        if (!json_is_string(v) || !api_valid_execution_id(json_string_value(v)))
            api_add_field_error(errors, "/id", "must be 1-128 characters of A-Z a-z 0-9 _ - : @");
        else
            f->id = json_string_value(v);
        return true;
    }
    if (!strcmp(key, "input")) {
        if (api_check_storable(errors, "/input", v))
            f->input = v;
        return true;
    }
    if (!strcmp(key, "tags")) {
        /* {} is no tags, stored as none, so that it starts the same execution as no field. */
        if (tags_check(errors, "/tags", v) && json_object_size(v) > 0)
            f->tags = v;
        return true;
    }
    return false;
}

/* A start, applied by the runner: the insert goes in the transaction's first round trip, and
 * this keeld owns what it starts (it sends the first attempts right after the commit). */
struct start_input {
    struct runner_input base; /* first: the runner hands this back */
    struct http_request *http;
    char id[API_EXECUTION_ID_MAX + 1];
    char *workflow, *input_text, *tags_text;
    char vtext[16], now_text[32];
    const char *insert_params[7];
    const char *pick_params[2];
    const char *same_params[4];
    const char *json_params[1];
};

static int start_before_lock(struct runner_input *in, struct store_call *calls)
{
    struct start_input *s = (struct start_input *)in;
    calls[0] =
        (struct store_call){.stmt = STMT_EXEC_INSERT, .n_params = 7, .params = s->insert_params};
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
            .stmt = STMT_EXEC_SAME_START, .n_params = 4, .params = s->same_params};
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
        reply_id_taken(req,
                       "an execution with this id exists with another workflow, input or tags");
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
    free(s->tags_text);
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
    struct start_fields f = {0};
    json_int_t version = 0;
    if (body && !json_is_object(body)) {
        api_add_field_error(errors, "",
                            "the body must be a JSON object {\"id\"?, \"input\"?, "
                            "\"version\"?, \"tags\"?}");
    } else if (body) {
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v)
        {
            if (read_start_field(errors, key, v, &f))
                continue;
            if (!strcmp(key, "version")) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                    json_integer_value(v) > 2147483647)
                    api_add_field_error(errors, "/version", "must be a positive integer");
                else
                    version = json_integer_value(v);
            } else {
                char *ptr = xasprintf("/%s", key);
                api_add_field_error(errors, ptr,
                                    "unknown field (allowed: id, input, version, tags)");
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
    char id[API_EXECUTION_ID_MAX + 1];
    if (f.id)
        snprintf(id, sizeof id, "%s", f.id);
    else
        ids_uuid7(now, id);
    struct start_input *s = xcalloc(1, sizeof *s);
    s->http = req;
    snprintf(s->id, sizeof s->id, "%s", id);
    s->workflow = xstrdup(workflow);
    s->input_text = json_text(f.input ? f.input : json_null());
    s->tags_text = f.tags ? json_text(f.tags) : NULL;
    json_decref(body);
    if (version)
        snprintf(s->vtext, sizeof s->vtext, "%lld", (long long)version);
    time_format_rfc3339(now, s->now_text);
    const char *version_param = version ? s->vtext : NULL;
    const char *ip[] = {s->id,         s->workflow, version_param,
                        s->input_text, s->now_text, runner_env(app->runner)->owner,
                        s->tags_text};
    memcpy(s->insert_params, ip, sizeof ip);
    s->pick_params[0] = s->workflow;
    s->pick_params[1] = version_param;
    s->same_params[0] = s->id;
    s->same_params[1] = s->workflow;
    s->same_params[2] = s->input_text;
    s->same_params[3] = s->tags_text;
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
    char id[API_EXECUTION_ID_MAX + 1];
    char *name, *input_text, *handler_text, *tags_text;
    char now_text[32];
    const char *insert_params[7];
    const char *same_params[5];
    const char *json_params[1];
};

static int code_start_before_lock(struct runner_input *in, struct store_call *calls)
{
    struct code_start_input *s = (struct code_start_input *)in;
    calls[0] = (struct store_call){
        .stmt = STMT_EXEC_INSERT_CODE, .n_params = 7, .params = s->insert_params};
    return 1;
}

static int code_start_reads(struct runner_input *in, struct store_call *calls)
{
    struct code_start_input *s = (struct code_start_input *)in;
    int n = 0;
    if (in->skipped)
        calls[n++] = (struct store_call){
            .stmt = STMT_EXEC_SAME_CODE_START, .n_params = 5, .params = s->same_params};
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
        reply_id_taken(req, "an execution with this id exists with another kind, name, input, "
                            "handler or tags");
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
    free(s->handler_text);
    free(s->tags_text);
    free(s);
}

#define HANDLER_DEFAULT_INACTIVITY "5m"

/* The handler of a code execution: {"url", "inactivity_timeout"?}, stored as that plus
 * "inactivity_timeout_ms". Adds errors; returns the stored form (new reference) or NULL. */
static json_t *read_handler(json_t *errors, const json_t *v)
{
    if (!json_is_object(v)) {
        api_add_field_error(errors, "/handler",
                            "must be an object {\"url\", \"inactivity_timeout\"?}");
        return NULL;
    }
    size_t before = json_array_size(errors);
    const char *key;
    json_t *m;
    json_object_foreach((json_t *)v, key, m)
    {
        if (strcmp(key, "url") != 0 && strcmp(key, "inactivity_timeout") != 0) {
            char *ptr = xasprintf("/handler/%s", key);
            api_add_field_error(errors, ptr, "unknown field (allowed: url, inactivity_timeout)");
            free(ptr);
        }
    }
    const char *url = json_string_value(json_object_get(v, "url"));
    char *why = NULL;
    if (!url) {
        api_add_field_error(errors, "/handler/url",
                            json_object_get(v, "url") ? "must be a string"
                                                      : "missing required field \"url\"");
    } else if (wh_dest_check_url(NULL, url, NULL, &why) == WH_DEST_INVALID) {
        char *msg = xasprintf("must be an http:// or https:// URL with a host; this one %s",
                              why ? why : "is not");
        api_add_field_error(errors, "/handler/url", msg);
        free(msg);
    } else if (wh_dest_check_url(wh_dest_global(), url, NULL, &why) == WH_DEST_REFUSED) {
        char *msg = xasprintf("destination refused: %s", why ? why : "");
        api_add_field_error(errors, "/handler/url", msg);
        free(msg);
    }
    free(why);
    json_t *timeout = json_object_get(v, "inactivity_timeout");
    json_t *given = timeout ? json_incref(timeout) : json_string(HANDLER_DEFAULT_INACTIVITY);
    int64_t ms = 0;
    const char *dwhy = NULL;
    if (!defn_parse_duration(given, &ms, &dwhy) || ms <= 0)
        api_add_field_error(errors, "/handler/inactivity_timeout",
                            dwhy ? dwhy : "must be a duration greater than zero");
    json_t *stored = NULL;
    if (json_array_size(errors) == before)
        stored = json_pack("{s:s, s:O, s:I}", "url", url, "inactivity_timeout", given,
                           "inactivity_timeout_ms", (json_int_t)ms);
    json_decref(given);
    return stored;
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
    struct start_fields f = {0};
    const char *name = "code";
    json_t *handler = NULL;
    if (body && !json_is_object(body)) {
        api_add_field_error(errors, "",
                            "the body must be a JSON object {\"id\"?, \"name\"?, \"input\"?, "
                            "\"handler\"?, \"tags\"?}");
    } else if (body) {
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v)
        {
            if (read_start_field(errors, key, v, &f))
                continue;
            if (!strcmp(key, "name")) {
                const char *n = json_string_value(v);
                if (!n || !api_valid_name(n, 128, "_.-") || !strcmp(n, ".") || !strcmp(n, ".."))
                    api_add_field_error(errors, "/name",
                                        "must be 1-128 characters of A-Z a-z 0-9 _ . - (not . "
                                        "or ..)");
                else
                    name = n;
            } else if (!strcmp(key, "handler")) {
                json_decref(handler);
                handler = read_handler(errors, v);
            } else {
                char *ptr = xasprintf("/%s", key);
                api_add_field_error(errors, ptr,
                                    "unknown field (allowed: id, name, input, handler, tags)");
                free(ptr);
            }
        }
    }
    if (json_array_size(errors) > 0) {
        http_reply_problem_ext(req, 422, "validation", "Invalid request",
                               "the request body has errors", errors, NULL);
        json_decref(body);
        json_decref(handler);
        return;
    }
    json_decref(errors);

    int64_t now = time_now_ms();
    struct code_start_input *s = xcalloc(1, sizeof *s);
    s->http = req;
    if (f.id)
        snprintf(s->id, sizeof s->id, "%s", f.id);
    else
        ids_uuid7(now, s->id);
    s->name = xstrdup(name);
    s->input_text = json_text(f.input ? f.input : json_null());
    s->tags_text = f.tags ? json_text(f.tags) : NULL;
    s->handler_text = handler ? json_text(handler) : NULL;
    json_decref(handler);
    json_decref(body);
    time_format_rfc3339(now, s->now_text);
    const char *ip[] = {
        s->id,           s->name,     s->input_text, s->now_text, runner_env(app->runner)->owner,
        s->handler_text, s->tags_text};
    memcpy(s->insert_params, ip, sizeof ip);
    s->same_params[0] = s->id;
    s->same_params[1] = s->name;
    s->same_params[2] = s->input_text;
    s->same_params[3] = s->handler_text;
    s->same_params[4] = s->tags_text;
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
