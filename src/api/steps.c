/* Step calls: a replay is one read without a lock, answered from the key's row; a new key is an
 * input the execution's worker journals, answered from the same read after its commit. */
#include "api/steps.h"

#include "api/call_tracker.h"
#include "api/common.h"
#include "api/longpoll.h"
#include "app.h"
#include "defn/defn.h"
#include "runner/input.h"
#include "runner/runner.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/b64.h"
#include "util/jsontext.h"
#include "util/timeutil.h"
#include "webhook/destination.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool valid_key(const char *s)
{
    return s && api_valid_name(s, API_STEP_KEY_MAX, "_-:@");
}

/* What one call asks, as the answers need it. */
struct call {
    const char *id, *key;
    const char *kind;   /* the body's kind (defn_step_call_kind); NULL for a GET */
    const char *url;    /* an activity's URL, else NULL */
    bool pending_503;   /* ?pending=503 */
    bool replayed;      /* the key was journaled before this call */
    bool any_status;    /* GET: 200 with the step, whatever its status */
    char *request_text; /* the body as JSON text (STMT_STEP_CALL_READ's $3); NULL for a GET */
    int wait_s;         /* Prefer: wait= (GET: ?wait=): hold a pending step this long */
    bool hold;          /* a pending step is not answered yet: the caller waits for its end */
};

/* The columns of STMT_STEP_CALL_READ. */
enum {
    COL_EXEC_KIND,
    COL_EXEC_STATUS,
    COL_CANCEL,
    COL_KIND,
    COL_STATUS,
    COL_SAME,
    COL_URL,
    COL_DIFFERS,
    COL_RETRY_AFTER,
    COL_JSON,
};

enum next_step {
    NEXT_DONE,           /* replied */
    NEXT_HOLD,           /* not replied: the step is pending and the call waits (c->hold) */
    NEXT_CALL,           /* journal the key: a STEP_CALL input */
    NEXT_MARK_DIFFERENT, /* journal that this call's request differs, then reply */
};

static const char *col(PGresult *r, int c)
{
    return PQgetisnull(r, 0, c) ? NULL : PQgetvalue(r, 0, c);
}

/* 409 cancel-requested, with the keys completed so far, last completed first (what a program
 * undoes, in the order to undo it). */
static void reply_cancel_requested(struct http_request *req, PGconn *conn, const struct call *c)
{
    json_t *done = NULL;
    if (conn) {
        const char *p[] = {c->id};
        PGresult *r = store_run(conn, STMT_STEP_CALL_DONE, 1, p);
        if (store_ok(r) && PQntuples(r) == 1)
            done = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
        PQclear(r);
    }
    char *detail = xasprintf("execution \"%s\" is being cancelled: no new step starts; end it "
                             "with POST /v1/executions/%s/complete or /fail (it ends cancelled "
                             "either way)",
                             c->id, c->id);
    http_reply_problem_ext(req, 409, "cancel-requested", "Cancel requested", detail, NULL,
                           json_pack("{s:o}", "completed_keys", done ? done : json_array()));
    free(detail);
}

/* A step status that is not final (the step may still complete or fail). */
static bool status_pending(const char *status)
{
    static const char *const final[] = {"completed", "compensated", "failed", "skipped"};
    for (size_t i = 0; i < sizeof final / sizeof final[0]; i++)
        if (!strcmp(status, final[i]))
            return false;
    return true;
}

/* The answer for a key whose row says it has started: by its status. False, without a reply,
 * for a pending step that the call holds for (c->hold). */
static bool reply_from_row(struct http_request *req, PGresult *r, const struct call *c,
                           bool differs)
{
    const char *status = col(r, COL_STATUS);
    if (c->hold && status_pending(status))
        return false;
    if (!c->any_status) {
        /* A program's call: counted (replays, its idle time) without a write of its own. */
        struct app *app = http_app(req);
        call_tracker_note(app->calls, c->id, c->key, c->replayed, time_now_ms());
    }
    if (c->wait_s > 0 && c->request_text) {
        char applied[24];
        snprintf(applied, sizeof applied, "wait=%d", c->wait_s);
        http_add_header(req, "Preference-Applied", applied);
    }
    json_t *step = json_loads(col(r, COL_JSON), 0, NULL);
    if (!step) {
        http_reply_problem(req, 500, "internal", "Internal error",
                           "the step of key \"%s\" could not be read", c->key);
        return true;
    }
    if (c->replayed)
        http_add_header(req, "Keel-Replayed", "true");
    if (differs)
        http_add_header(req, "Keel-Request-Differs", "true");
    if (c->any_status || !strcmp(status, "completed") || !strcmp(status, "compensated")) {
        http_reply_json(req, 200, step);
    } else if (!strcmp(status, "failed")) {
        json_t *error = json_incref(json_object_get(step, "error"));
        char *detail = xasprintf("step \"%s\" failed for good: %s", c->key,
                                 json_string_value(json_object_get(error, "message"))
                                     ? json_string_value(json_object_get(error, "message"))
                                     : "see its error");
        http_reply_problem_ext(
            req, 424, "step-failed", "Step failed", detail, NULL,
            json_pack("{s:o, s:o}", "error", error ? error : json_null(), "step", step));
        free(detail);
    } else if (!strcmp(status, "skipped")) {
        http_reply_problem_ext(req, 409, "step-stopped", "Step stopped",
                               "the step was stopped before it ended (the execution was "
                               "cancelled, terminated or ended by its program)",
                               NULL, json_pack("{s:o}", "step", step));
    } else {
        /* Scheduled, running, retrying, sleeping, waiting (pending only before a retry runs
         * it again, which a call does). */
        http_add_header(req, "Retry-After", col(r, COL_RETRY_AFTER));
        if (c->pending_503) {
            http_reply_problem_ext(req, 503, "step-pending", "Step pending",
                                   "the step has not ended yet; call again after Retry-After", NULL,
                                   json_pack("{s:o}", "step", step));
        } else {
            http_reply_json(req, 202, step);
        }
    }
    return true;
}

/* Answers from row 0 of r (STMT_STEP_CALL_READ), or says what must be journaled first (only
 * when may_journal). conn, when not NULL, may be used for one more read. */
static enum next_step answer(struct http_request *req, PGconn *conn, PGresult *r,
                             const struct call *c, bool may_journal)
{
    if (PQntuples(r) == 0) {
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%s\"", c->id);
        return NEXT_DONE;
    }
    if (strcmp(col(r, COL_EXEC_KIND), "code") != 0) {
        http_reply_problem(req, 409, "not-a-code-execution", "Not a code execution",
                           "execution \"%s\" runs a workflow definition, whose steps come from "
                           "it; step calls are for executions started with POST /v1/executions",
                           c->id);
        return NEXT_DONE;
    }
    const char *kind = col(r, COL_KIND), *status = col(r, COL_STATUS);
    bool running = !strcmp(col(r, COL_EXEC_STATUS), "running");
    if (c->any_status) {
        if (kind)
            return reply_from_row(req, r, c, false) ? NEXT_DONE : NEXT_HOLD;
        else
            http_reply_problem(req, 404, "not-found", "Not found",
                               "execution \"%s\" has no step \"%s\"", c->id, c->key);
        return NEXT_DONE;
    }
    if (kind && c->kind && strcmp(kind, c->kind) != 0) {
        http_reply_problem(req, 409, "key-conflict", "Key used for another step",
                           "key \"%s\" was first called as %s and this call is %s: a key names "
                           "one step (use a new key for a new step)",
                           c->key, kind, c->kind);
        return NEXT_DONE;
    }
    const char *url = col(r, COL_URL);
    if (kind && c->url && url && strcmp(url, c->url) != 0) {
        http_reply_problem(req, 409, "key-conflict", "Key used for another step",
                           "key \"%s\" was first called with activity URL %s and this call "
                           "has %s: a key names one step (use a new key for a new step)",
                           c->key, url, c->url);
        return NEXT_DONE;
    }
    if (kind && strcmp(status, "pending") != 0) {
        bool differs = c->request_text && col(r, COL_SAME) && !strcmp(col(r, COL_SAME), "false");
        if (differs && may_journal && running && !strcmp(col(r, COL_DIFFERS), "false"))
            return NEXT_MARK_DIFFERENT;
        return reply_from_row(req, r, c, differs) ? NEXT_DONE : NEXT_HOLD;
    }
    /* Not journaled yet (or made new again by a retry). */
    if (!running) {
        http_reply_problem(req, 409, "execution-ended", "Execution has ended",
                           "execution \"%s\" is %s and starts no more steps", c->id,
                           col(r, COL_EXEC_STATUS));
        return NEXT_DONE;
    }
    if (!strcmp(col(r, COL_CANCEL), "true")) {
        reply_cancel_requested(req, conn, c);
        return NEXT_DONE;
    }
    if (may_journal)
        return NEXT_CALL;
    /* Journaled, yet the read does not show it: a retry of the same call will. */
    http_add_header(req, "Retry-After", "1");
    http_reply_problem(req, 503, "try-again", "Try again",
                       "the step of key \"%s\" could not be journaled just now; call again",
                       c->key);
    return NEXT_DONE;
}

/* A call held until its step ends (Prefer: wait=, GET ?wait=), on the long polls' thread. */
struct held {
    struct call call; /* its strings are the held call's own */
    char *id, *key, *url;
};

static void held_free(void *arg)
{
    struct held *h = arg;
    free(h->id);
    free(h->key);
    free(h->url);
    free(h->call.request_text);
    free(h);
}

static bool held_answer(void *arg, struct http_request *req, PGconn *conn, const char *why,
                        bool must_answer)
{
    struct held *h = arg;
    if (!conn) {
        http_reply_problem(req, 503, "database-unavailable", "Database unavailable", "%s", why);
        return true;
    }
    h->call.hold = !must_answer;
    const char *p[] = {h->id, h->key, h->call.request_text};
    PGresult *r = store_run(conn, STMT_STEP_CALL_READ, 3, p);
    if (!store_ok(r)) {
        PQclear(r);
        if (!must_answer)
            return false;
        http_reply_problem(req, 503, "database-unavailable", "Database unavailable",
                           "the step could not be read");
        return true;
    }
    bool done = answer(req, conn, r, &h->call, false) != NEXT_HOLD;
    PQclear(r);
    return done;
}

/* Holds the call c (pending, not answered) until its step ends or its wait runs out. */
static void hold(struct http_request *req, const struct call *c)
{
    struct app *app = http_app(req);
    struct held *h = xcalloc(1, sizeof *h);
    h->id = xstrdup(c->id);
    h->key = xstrdup(c->key);
    h->url = c->url ? xstrdup(c->url) : NULL;
    h->call = *c;
    h->call.id = h->id;
    h->call.key = h->key;
    h->call.url = h->url;
    h->call.request_text = c->request_text ? xstrdup(c->request_text) : NULL;
    char *topic = xasprintf("%s/%s", c->id, c->key);
    longpoll_wait_for(app->longpoll, req, topic, time_mono_ms() + (int64_t)c->wait_s * 1000,
                      held_answer, h, held_free);
    free(topic);
}

/* A key to journal (STEP_CALL), or a differing request to mark (REQUEST_DIFFERS). */
struct step_input {
    struct runner_input base; /* first: the runner hands this back */
    struct http_request *http;
    struct call call;
    char *id, *key;
    json_t *body;
    const char *params[3];
};

static int step_reads(struct runner_input *in, struct store_call *calls)
{
    struct step_input *s = (struct step_input *)in;
    calls[0] = (struct store_call){.stmt = STMT_STEP_CALL_READ, .n_params = 3, .params = s->params};
    return 1;
}

static void step_finish(struct runner_input *in, PGconn *conn, PGresult *const *reads,
                        const char *why)
{
    struct step_input *s = (struct step_input *)in;
    struct http_request *req = s->http;
    PGresult *r = reads ? reads[0] : NULL;
    if (in->rc == TRANSITION_ERROR || in->rc == TRANSITION_LEASE_LOST) {
        api_transition_fail(req, conn, NULL, why);
    } else if (in->rc == TRANSITION_NOT_FOUND) {
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%s\"", s->id);
    } else if (!r || !store_ok(r)) {
        api_transition_fail(req, conn, r, NULL);
    } else {
        /* Journaled here, unless a concurrent call of the key came first: the row says. */
        s->call.replayed =
            !(in->rc == TRANSITION_APPLIED && in->req.in.kind == ENGINE_IN_STEP_CALL);
        if (answer(req, conn, r, &s->call, false) == NEXT_HOLD) {
            /* Still suspended: the long polls answer it. */
            hold(req, &s->call);
            return;
        }
    }
    http_resume(req);
}

static void step_free(struct runner_input *in)
{
    struct step_input *s = (struct step_input *)in;
    free(s->id);
    free(s->key);
    free(s->call.request_text);
    json_decref(s->body);
    free(s);
}

static const struct runner_input_ops step_ops = {
    .reply_reads = step_reads,
    .finish = step_finish,
    .free = step_free,
};

/* Checks the body of a step call; false when it replied 422. */
static bool check_body(struct http_request *req, const json_t *body)
{
    json_t *errors = json_array();
    if (api_check_storable(errors, "", body)) {
        struct defn_step *st = NULL;
        json_t *found = NULL;
        if (defn_parse_step_call(body, http_param(req, "key"), &st, &found) != 0) {
            json_array_extend(errors, found);
            json_decref(found);
        }
        defn_step_free(st);
        /* The destination policy, as at a definition's registration. */
        static const char *const members[] = {"activity", "compensate"};
        for (size_t k = 0; k < 2 && json_array_size(errors) == 0; k++) {
            const char *url =
                json_string_value(json_object_get(json_object_get(body, members[k]), "url"));
            char *why = NULL;
            if (url && wh_dest_check_url(wh_dest_global(), url, NULL, &why) == WH_DEST_REFUSED) {
                char *ptr = xasprintf("/%s/url", members[k]);
                json_array_append_new(errors, json_pack("{s:s, s:s+}", "pointer", ptr, "message",
                                                        "destination refused: ", why ? why : ""));
                free(ptr);
            }
            free(why);
        }
    }
    if (json_array_size(errors) > 0) {
        http_reply_problem_ext(req, 422, "validation", "Invalid step call",
                               "the step call's body has errors", errors, NULL);
        return false;
    }
    json_decref(errors);
    return true;
}

#define MAX_WAIT_S 60

/* Seconds from text: a decimal integer 0..MAX_WAIT_S and nothing else. */
static bool wait_seconds(const char *text, size_t len, int *out)
{
    int v = 0;
    if (len == 0 || len > 2)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        v = v * 10 + (text[i] - '0');
    }
    if (v > MAX_WAIT_S)
        return false;
    *out = v;
    return true;
}

/* The wait preference of Prefer (RFC 7240: "Prefer: wait=30", among others separated by
 * commas; unknown preferences are ignored). False when it replied 400 for a bad wait. */
static bool prefer_wait(struct http_request *req, int *wait_s)
{
    *wait_s = 0;
    const char *h = http_header(req, "Prefer");
    for (const char *p = h; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t end = n;
        while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t'))
            end--;
        if (end >= 4 && !strncasecmp(p, "wait", 4) && (end == 4 || p[4] == '=' || p[4] == ' ')) {
            const char *v = p + 4;
            while (*v == ' ')
                v++;
            if (*v != '=' || !wait_seconds(v + 1, (size_t)(p + end - v - 1), wait_s)) {
                http_reply_problem(req, 400, "invalid-header", "Invalid header",
                                   "Prefer: wait= must be a whole number of seconds from 0 to %d",
                                   MAX_WAIT_S);
                return false;
            }
        }
        p += n;
    }
    return true;
}

/* The path's id and key; false when it replied. */
static bool read_path(struct http_request *req, const char **id, const char **key)
{
    *id = http_param(req, "id");
    *key = http_param(req, "key");
    if (!api_valid_execution_id(*id)) {
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%.128s\"", *id);
        return false;
    }
    if (!valid_key(*key)) {
        http_reply_problem(req, 400, "invalid-parameter", "Invalid path parameter",
                           "key \"%.200s\" must be 1-128 characters of A-Z a-z 0-9 _ - : @", *key);
        return false;
    }
    return true;
}

/* Reads the key's row on the request's own connection; NULL when it replied. */
static PGresult *read_key(struct http_request *req, PGconn *conn, const struct call *c)
{
    const char *p[] = {c->id, c->key, c->request_text};
    PGresult *r = store_run(conn, STMT_STEP_CALL_READ, 3, p);
    if (!store_ok(r)) {
        api_db_fail(req, conn, r);
        PQclear(r);
        return NULL;
    }
    return r;
}

void api_steps_call(struct http_request *req)
{
    static const char *const allowed[] = {"pending", NULL};
    if (api_reject_unknown_query(req, allowed))
        return;
    const char *pending = http_query(req, "pending");
    if (pending && strcmp(pending, "503") != 0) {
        api_bad_parameter(req, "pending",
                          "must be 503 (answer a pending step with 503 and Retry-After instead "
                          "of 202, for curl --retry)");
        return;
    }
    const char *id, *key;
    int wait_s;
    if (!read_path(req, &id, &key) || !prefer_wait(req, &wait_s))
        return;
    json_t *body = http_body_json(req, false);
    if (!body)
        return;
    if (!check_body(req, body)) {
        json_decref(body);
        return;
    }
    struct step_input *s = xcalloc(1, sizeof *s);
    s->http = req;
    s->id = xstrdup(id);
    s->key = xstrdup(key);
    s->body = body;
    const json_t *activity = json_object_get(body, "activity");
    s->call = (struct call){.id = s->id,
                            .key = s->key,
                            .kind = defn_step_call_kind(body),
                            .url = json_string_value(json_object_get(activity, "url")),
                            .pending_503 = pending != NULL,
                            .replayed = true,
                            .request_text = json_text(body),
                            .wait_s = wait_s,
                            .hold = wait_s > 0};
    PGconn *conn = api_db_acquire(req);
    if (!conn) {
        step_free(&s->base);
        return;
    }
    PGresult *r = read_key(req, conn, &s->call);
    enum next_step next = r ? answer(req, conn, r, &s->call, true) : NEXT_DONE;
    PQclear(r);
    api_db_release(req, conn);
    if (next == NEXT_HOLD)
        hold(req, &s->call);
    if (next == NEXT_DONE || next == NEXT_HOLD) {
        step_free(&s->base);
        return;
    }
    s->params[0] = s->id;
    s->params[1] = s->key;
    s->params[2] = s->call.request_text;
    s->base.ops = &step_ops;
    s->base.req = (struct transition_request){
        .execution_id = s->id,
        .in = {.kind = next == NEXT_CALL ? ENGINE_IN_STEP_CALL : ENGINE_IN_REQUEST_DIFFERS,
               .now_ms = time_now_ms(),
               .key = s->key,
               .request = s->body,
               .retry_after_ms = -1},
    };
    struct app *app = http_app(req);
    http_suspend(req);
    runner_submit(app->runner, &s->base);
}

void api_steps_get(struct http_request *req)
{
    static const char *const allowed[] = {"wait", NULL};
    if (api_reject_unknown_query(req, allowed))
        return;
    const char *id, *key;
    if (!read_path(req, &id, &key))
        return;
    const char *w = http_query(req, "wait");
    int wait_s = 0;
    if (w && !wait_seconds(w, strlen(w), &wait_s)) {
        api_bad_parameter(req, "wait", "must be a whole number of seconds from 0 to 60");
        return;
    }
    struct call c = {
        .id = id, .key = key, .any_status = true, .wait_s = wait_s, .hold = wait_s > 0};
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        return;
    PGresult *r = read_key(req, conn, &c);
    enum next_step next = r ? answer(req, conn, r, &c, false) : NEXT_DONE;
    PQclear(r);
    api_db_release(req, conn);
    if (next == NEXT_HOLD)
        hold(req, &c);
}

void api_steps_list(struct http_request *req)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    if (api_reject_unknown_query(req, allowed))
        return;
    const char *id = http_param(req, "id");
    int limit;
    if (!api_parse_limit(req, &limit))
        return;
    /* The cursor is the last position shown (base64url, as every cursor of this API). */
    char after[24] = "-1";
    const char *cursor = http_query(req, "cursor");
    if (cursor) {
        size_t len;
        char *raw = b64url_decode(cursor, &len);
        char *end = NULL;
        long v = raw && len > 0 && len < 12 && strlen(raw) == len ? strtol(raw, &end, 10) : -1;
        bool ok = raw && end && !*end && v >= 0;
        free(raw);
        if (!ok) {
            api_bad_parameter(req, "cursor", "not a cursor this API returned");
            return;
        }
        snprintf(after, sizeof after, "%ld", v);
    }
    if (!api_valid_execution_id(id)) {
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%.128s\"", id);
        return;
    }
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        return;
    const char *sp[] = {id};
    PGresult *r = store_run(conn, STMT_EXEC_STATUS, 1, sp);
    if (!store_ok(r)) {
        api_db_fail(req, conn, r);
    } else if (PQntuples(r) == 0) {
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%s\"", id);
    } else if (strcmp(PQgetvalue(r, 0, 1), "code") != 0) {
        http_reply_problem(req, 409, "not-a-code-execution", "Not a code execution",
                           "execution \"%s\" runs a workflow definition: its steps are in GET "
                           "/v1/executions/%s",
                           id, id);
    } else {
        PQclear(r);
        char lim[16];
        snprintf(lim, sizeof lim, "%d", limit + 1);
        const char *lp[] = {id, after, lim};
        r = store_run(conn, STMT_STEP_CALL_LIST, 3, lp);
        if (!store_ok(r)) {
            api_db_fail(req, conn, r);
        } else {
            static const int cursor_cols[] = {1};
            api_reply_page(req, r, limit, "steps", 0, cursor_cols, 1);
        }
    }
    PQclear(r);
    api_db_release(req, conn);
}
