/* Signals are journaled and stored; a wait that is already waiting consumes one at once, and one
 * that comes later takes the oldest unconsumed signal of its name. */
#include "api/signals.h"

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

/* A known Idempotency-Key (row r of STMT_SIGNAL_BY_KEY): a true repeat is a no-op answered like
 * the first send (with whether the signal has been consumed by now); the key with another name
 * or payload is refused with 422, so that a different signal is never dropped as a duplicate
 * (Stripe's rule). */
static void reply_known_key(struct http_request *req, PGconn *conn, PGresult *r, const char *id)
{
    bool same_name = !strcmp(PQgetvalue(r, 0, 4), "t");
    bool same_payload = !strcmp(PQgetvalue(r, 0, 5), "t");
    if (same_name && same_payload) {
        store_command(conn, "COMMIT");
        reply_accepted(req, id, PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 0), true,
                       !strcmp(PQgetvalue(r, 0, 3), "t"));
        return;
    }
    store_command(conn, "ROLLBACK");
    const char *what = !same_name && !same_payload ? "another signal name and payload"
                       : !same_name                ? "another signal name"
                                                   : "another payload";
    char *message = xasprintf("this key was already used for a signal with %s (the first send "
                              "was signal \"%s\"); a repeat must be identical, a new signal "
                              "needs a new key",
                              what, PQgetvalue(r, 0, 1));
    json_t *errors = json_pack("[{s:s, s:s}]", "header", "Idempotency-Key", "message", message);
    http_reply_problem_ext(req, 422, "idempotency-key-reused", "Idempotency-Key reused", message,
                           errors, NULL);
    free(message);
}

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
    char *payload_text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);

    PGconn *conn = api_db_acquire(req);
    PGresult *r = NULL;
    struct transition_out out = {0};
    if (!conn)
        goto out;
    if (store_command(conn, "BEGIN") < 0)
        goto db_fail;
    const char *lp[] = {id};
    r = store_run(conn, STMT_EXEC_LOCK_STATUS, 1, lp);
    if (!store_ok(r))
        goto db_fail;
    if (PQntuples(r) == 0) {
        store_command(conn, "ROLLBACK");
        http_reply_problem(req, 404, "not-found", "Not found", "no execution \"%s\"", id);
        goto out;
    }
    bool ended = store_status_is_final(PQgetvalue(r, 0, 0));
    char status[16];
    snprintf(status, sizeof status, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    r = NULL;
    if (key) {
        /* The same Idempotency-Key again is a no-op answered like the first send, even after
         * that signal ended the execution. */
        const char *kp[] = {id, key, name, payload_text};
        r = store_run(conn, STMT_SIGNAL_BY_KEY, 4, kp);
        if (!store_ok(r))
            goto db_fail;
        if (PQntuples(r) == 1) {
            reply_known_key(req, conn, r, id);
            goto out;
        }
        PQclear(r);
        r = NULL;
    }
    if (ended) {
        store_command(conn, "ROLLBACK");
        http_reply_problem(req, 409, "execution-ended", "Execution has ended",
                           "execution \"%s\" is %s and takes no more signals", id, status);
        goto out;
    }
    int64_t now = time_now_ms();
    char now_text[32];
    time_format_rfc3339(now, now_text);
    const char *ip[] = {id, name, payload_text, key, now_text};
    r = store_run(conn, STMT_SIGNAL_INSERT, 5, ip);
    if (!store_ok(r))
        goto db_fail;
    if (PQntuples(r) == 0) {
        /* The same Idempotency-Key again: a no-op that answers like the first send. */
        PQclear(r);
        const char *kp[] = {id, key, name, payload_text};
        r = store_run(conn, STMT_SIGNAL_BY_KEY, 4, kp);
        if (!store_ok(r) || PQntuples(r) != 1)
            goto db_fail;
        reply_known_key(req, conn, r, id);
        goto out;
    }
    char signal_id[24];
    snprintf(signal_id, sizeof signal_id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    r = NULL;
    json_t *received = json_pack("[{s:s, s:{s:s, s:O, s:I, s:s?}}]", "type", "signal_received",
                                 "data", "signal", name, "payload", payload, "signal_id",
                                 (json_int_t)strtoll(signal_id, NULL, 10), "idempotency_key", key);
    struct transition_request treq = {
        .execution_id = id,
        .signal_id = strtoll(signal_id, NULL, 10),
        .extra_events = received,
        .in = {.kind = ENGINE_IN_SIGNAL,
               .now_ms = now,
               .signal = name,
               .payload = payload,
               .retry_after_ms = -1},
    };
    char *why = NULL;
    enum transition_outcome rc = transition_apply(runner_env(app->runner), conn, &treq, &out, &why);
    json_decref(received);
    if (rc != TRANSITION_APPLIED && rc != TRANSITION_STALE) {
        api_transition_fail(req, conn, r, why);
        free(why);
        goto out;
    }
    if (store_command(conn, "COMMIT") < 0)
        goto db_fail;
    runner_committed(app->runner, &out, id);
    reply_accepted(req, id, name, signal_id, false, rc == TRANSITION_APPLIED);
    goto out;
db_fail:
    api_db_fail(req, conn, r);
out:
    PQclear(r);
    attempt_dispatch_free_list(out.dispatches);
    if (conn)
        api_db_release(req, conn);
    json_decref(payload);
    free(payload_text);
}
