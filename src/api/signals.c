/* Signals are journaled and stored; a wait that is already waiting consumes one at once, and one
 * that comes later takes the oldest unconsumed signal of its name. */
#include "api/signals.h"

#include "api/common.h"
#include "app.h"
#include "runner/input.h"
#include "runner/runner.h"
#include "store/exec_read.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/jsontext.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGNAL_NAME_MAX     128
#define IDEMPOTENCY_KEY_MAX 255

static bool valid_signal_name(const char *s)
{
    return api_valid_name(s, SIGNAL_NAME_MAX, "_-.:");
}

static void reply_accepted(struct http_request *req, const char *id, const char *name,
                           const char *signal_id, bool duplicate, bool consumed)
{
    http_reply_json(req, 202,
                    json_pack("{s:s, s:s, s:I, s:b, s:b}", "execution_id", id, "signal", name,
                              "signal_id", (json_int_t)strtoll(signal_id, NULL, 10), "duplicate",
                              duplicate, "consumed", consumed));
}

/* A signal for one execution, stored and applied by the runner. */
struct signal_input {
    struct runner_input base; /* first: the runner hands this back */
    struct http_request *http;
    char *id, *name, *key, *payload_text;
    const char *key_params[4]; /* STMT_SIGNAL_BY_KEY's: id, key, name, payload */
    json_t *payload;
    json_t *received; /* the signal_received event, once the signal is stored */
    char now_text[32];
    enum { SIGNAL_STORED, SIGNAL_NO_EXECUTION, SIGNAL_ENDED, SIGNAL_KNOWN_KEY } answer;
    char status[16];      /* SIGNAL_ENDED */
    char signal_id[24];   /* SIGNAL_STORED, SIGNAL_KNOWN_KEY */
    char first_name[129]; /* SIGNAL_KNOWN_KEY: the first send's name */
    bool same_name, same_payload, consumed;
};

static int signal_before_lock(struct runner_input *in, struct store_call *calls)
{
    struct signal_input *s = (struct signal_input *)in;
    calls[0] =
        (struct store_call){.stmt = STMT_EXEC_LOCK_STATUS, .n_params = 1, .params = s->key_params};
    if (!s->key)
        return 1;
    calls[1] =
        (struct store_call){.stmt = STMT_SIGNAL_BY_KEY, .n_params = 4, .params = s->key_params};
    return 2;
}

/* A known Idempotency-Key (row 0 of r, from STMT_SIGNAL_BY_KEY). */
static void known_key(struct signal_input *s, PGresult *r)
{
    s->answer = SIGNAL_KNOWN_KEY;
    snprintf(s->signal_id, sizeof s->signal_id, "%s", PQgetvalue(r, 0, 0));
    snprintf(s->first_name, sizeof s->first_name, "%s", PQgetvalue(r, 0, 1));
    s->consumed = !strcmp(PQgetvalue(r, 0, 3), "t");
    s->same_name = !strcmp(PQgetvalue(r, 0, 4), "t");
    s->same_payload = !strcmp(PQgetvalue(r, 0, 5), "t");
}

static enum runner_input_step signal_prepare(struct runner_input *in, PGconn *conn,
                                             PGresult *const *before, char **why)
{
    struct signal_input *s = (struct signal_input *)in;
    if (PQntuples(before[0]) == 0) {
        s->answer = SIGNAL_NO_EXECUTION;
        return INPUT_SKIP;
    }
    snprintf(s->status, sizeof s->status, "%s", PQgetvalue(before[0], 0, 0));
    /* The same Idempotency-Key again is a no-op answered like the first send, even after that
     * signal ended the execution. */
    if (s->key && PQntuples(before[1]) == 1) {
        known_key(s, before[1]);
        return INPUT_SKIP;
    }
    if (store_status_is_final(s->status)) {
        s->answer = SIGNAL_ENDED;
        return INPUT_SKIP;
    }
    const char *ip[] = {s->id, s->name, s->payload_text, s->key, s->now_text};
    PGresult *r = store_run(conn, STMT_SIGNAL_INSERT, 5, ip);
    if (!store_ok(r)) {
        *why = store_error(r, conn);
        PQclear(r);
        return INPUT_ERROR;
    }
    if (PQntuples(r) == 0) {
        /* The same key, sent at the same moment through another keeld. */
        PQclear(r);
        r = store_run(conn, STMT_SIGNAL_BY_KEY, 4, s->key_params);
        if (!store_ok(r) || PQntuples(r) != 1) {
            *why = store_ok(r) ? xstrdup("the signal's key vanished") : store_error(r, conn);
            PQclear(r);
            return INPUT_ERROR;
        }
        known_key(s, r);
        PQclear(r);
        return INPUT_SKIP;
    }
    s->answer = SIGNAL_STORED;
    snprintf(s->signal_id, sizeof s->signal_id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    json_decref(s->received);
    s->received = json_pack("[{s:s, s:{s:s, s:O, s:I, s:s?}}]", "type", "signal_received", "data",
                            "signal", s->name, "payload", s->payload, "signal_id",
                            (json_int_t)strtoll(s->signal_id, NULL, 10), "idempotency_key", s->key);
    in->req.signal_id = strtoll(s->signal_id, NULL, 10);
    in->req.extra_events = s->received;
    return INPUT_APPLY;
}

static void signal_finish(struct runner_input *in, PGconn *conn, PGresult *const *reads,
                          const char *why)
{
    (void)reads;
    struct signal_input *s = (struct signal_input *)in;
    struct http_request *req = s->http;
    if (in->rc == TRANSITION_ERROR || in->rc == TRANSITION_LEASE_LOST) {
        api_transition_fail(req, conn, NULL, why);
    } else if (!in->skipped && in->rc == TRANSITION_NOT_FOUND) {
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%s\"", s->id);
    } else if (!in->skipped) {
        reply_accepted(req, s->id, s->name, s->signal_id, false, in->rc == TRANSITION_APPLIED);
    } else if (s->answer == SIGNAL_NO_EXECUTION) {
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%s\"", s->id);
    } else if (s->answer == SIGNAL_ENDED) {
        http_reply_problem(req, 409, "execution-ended", "Execution has ended",
                           "execution \"%s\" is %s and takes no more signals", s->id, s->status);
    } else if (s->same_name && s->same_payload) {
        reply_accepted(req, s->id, s->first_name, s->signal_id, true, s->consumed);
    } else {
        /* The key with another name or payload is refused, so that a different signal is never
         * dropped as a duplicate (Stripe's rule). */
        const char *what = !s->same_name && !s->same_payload ? "another signal name and payload"
                           : !s->same_name                   ? "another signal name"
                                                             : "another payload";
        char *message = xasprintf("this key was already used for a signal with %s (the first "
                                  "send was signal \"%s\"); a repeat must be identical, a new "
                                  "signal needs a new key",
                                  what, s->first_name);
        json_t *errors = json_pack("[{s:s, s:s}]", "header", "Idempotency-Key", "message", message);
        http_reply_problem_ext(req, 422, "idempotency-key-reused", "Idempotency-Key reused",
                               message, errors, NULL);
        free(message);
    }
    http_resume(req);
}

static void signal_free(struct runner_input *in)
{
    struct signal_input *s = (struct signal_input *)in;
    free(s->id);
    free(s->name);
    free(s->key);
    free(s->payload_text);
    json_decref(s->payload);
    json_decref(s->received);
    free(s);
}

static const struct runner_input_ops signal_ops = {
    .before_lock = signal_before_lock,
    .prepare = signal_prepare,
    .finish = signal_finish,
    .free = signal_free,
};

void api_signals_send(struct http_request *req)
{
    struct app *app = http_app(req);
    if (api_reject_unknown_query(req, api_no_query))
        return;
    const char *id = http_param(req, "id");
    const char *name = http_param(req, "name");
    if (!valid_signal_name(name)) {
        http_reply_problem(
            req, 400, "invalid-parameter", "Invalid path parameter",
            "signal name \"%s\" must be 1-128 characters of A-Z a-z 0-9 _ - . :", name);
        return;
    }
    const char *key = http_header(req, "Idempotency-Key");
    if (key && (!*key || strlen(key) > IDEMPOTENCY_KEY_MAX)) {
        http_reply_problem(req, 400, "invalid-header", "Invalid header",
                           "Idempotency-Key must be 1-255 characters");
        return;
    }
    json_t *payload = http_body_json(req, true);
    if (!payload && http_replied(req))
        return;
    if (!payload)
        payload = json_null();
    json_t *errors = json_array();
    if (!api_check_storable(errors, "", payload)) {
        http_reply_problem_ext(req, 422, "validation", "Invalid request",
                               "the signal payload has errors", errors, NULL);
        json_decref(payload);
        return;
    }
    json_decref(errors);
    struct signal_input *s = xcalloc(1, sizeof *s);
    s->http = req;
    s->id = xstrdup(id);
    s->key = key ? xstrdup(key) : NULL;
    s->name = xstrdup(name);
    s->payload_text = json_text(payload);
    const char *kp[] = {s->id, s->key, s->name, s->payload_text};
    memcpy(s->key_params, kp, sizeof kp);
    s->payload = payload;
    int64_t now = time_now_ms();
    time_format_rfc3339(now, s->now_text);
    s->base.ops = &signal_ops;
    s->base.req = (struct transition_request){
        .execution_id = s->id,
        .in = {.kind = ENGINE_IN_SIGNAL,
               .now_ms = now,
               .signal = s->name,
               .payload = s->payload,
               .retry_after_ms = -1},
    };
    http_suspend(req);
    runner_submit(app->runner, &s->base);
}
