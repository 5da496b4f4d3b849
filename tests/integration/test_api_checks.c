/* Requests that used to be half-understood (issue 8 points 5, 12 and 13): a signal's
 * Idempotency-Key reused for another signal, and misspelt query parameters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *db;
static struct proc keeld, receiver;

static int setup(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof name, "keel_it_api_checks_%d", (int)getpid());
    stack_start(name, NULL, &db, &keeld, &receiver);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stack_stop(&db, &keeld, &receiver);
    return 0;
}

static void request(const char *method, const char *path, const char *body,
                    const char *const *headers, long want, struct hreply *out)
{
    struct hreply r;
    if (http_do(keeld.base_url, method, path, body ? "application/json" : NULL, body,
                body ? strlen(body) : 0, headers, 30000, &r) < 0)
        fail_msg("%s %s: no answer", method, path);
    if (r.status != want)
        fail_msg("%s %s: want %ld, got %ld %s", method, path, want, r.status, r.body);
    if (out)
        *out = r;
    else
        hreply_free(&r);
}

/* Sends the signal "name" with payload and key; returns the reply (caller frees). */
static struct hreply signal_send(const char *id, const char *name, const char *payload,
                                 const char *key, long want)
{
    char path[256], header[300];
    snprintf(path, sizeof path, "/v1/executions/%s/signals/%s", id, name);
    snprintf(header, sizeof header, "Idempotency-Key: %s", key);
    const char *headers[] = {header, NULL};
    struct hreply r;
    request("POST", path, payload, headers, want, &r);
    return r;
}

static long signal_rows(const char *id)
{
    char *n = harness_sqlf(db, "SELECT count(*) FROM signals WHERE execution_id = '%s'", id);
    long v = n ? atol(n) : -1;
    free(n);
    return v;
}

/* Point 5: the same key with another name or payload is refused (422, naming the header) and
 * stores nothing; a true repeat is a no-op answered like the first send. Point 12: a repeat
 * tells whether the signal has been consumed by now, and stays 202 after the end. */
static void test_signal_key_reuse(void **state)
{
    (void)state;
    request("POST", "/v1/workflows",
            "{\"name\": \"gate\", \"steps\": [{\"id\": \"hold\", \"sleep\": \"1h\"}, {\"id\": "
            "\"approval\", \"wait\": {\"signal\": \"approve\"}}], \"output\": "
            "\"${steps.approval.output}\"}",
            NULL, 201, NULL);
    request("POST", "/v1/workflows/gate/executions", "{\"id\": \"gate-1\"}", NULL, 201, NULL);

    /* Sent early: kept, not consumed. */
    struct hreply r = signal_send("gate-1", "approve", "{\"by\": \"ann\"}", "k1", 202);
    assert_false(json_is_true(json_object_get(r.json, "duplicate")));
    assert_false(json_is_true(json_object_get(r.json, "consumed")));
    json_int_t first_id = json_integer_value(json_object_get(r.json, "signal_id"));
    hreply_free(&r);

    /* Another payload, another name, or both: 422 naming Idempotency-Key, nothing stored. */
    r = signal_send("gate-1", "approve", "{\"by\": \"bob\"}", "k1", 422);
    assert_problem(&r, 422, "idempotency-key-reused");
    json_t *err = json_array_get(json_object_get(r.json, "errors"), 0);
    assert_string_equal(json_string_value(json_object_get(err, "header")), "Idempotency-Key");
    assert_non_null(strstr(json_string_value(json_object_get(r.json, "detail")), "payload"));
    hreply_free(&r);
    r = signal_send("gate-1", "reject", "{\"by\": \"ann\"}", "k1", 422);
    assert_problem(&r, 422, "idempotency-key-reused");
    assert_non_null(strstr(json_string_value(json_object_get(r.json, "detail")), "name"));
    hreply_free(&r);
    r = signal_send("gate-1", "reject", "null", "k1", 422);
    assert_problem(&r, 422, "idempotency-key-reused");
    hreply_free(&r);
    assert_int_equal(signal_rows("gate-1"), 1);

    /* A true repeat (the same JSON, keys in another order and spacing) is a no-op. */
    r = signal_send("gate-1", "approve", "{ \"by\":\"ann\" }", "k1", 202);
    assert_true(json_is_true(json_object_get(r.json, "duplicate")));
    assert_false(json_is_true(json_object_get(r.json, "consumed")));
    assert_int_equal(json_integer_value(json_object_get(r.json, "signal_id")), first_id);
    hreply_free(&r);
    assert_int_equal(signal_rows("gate-1"), 1);

    /* The execution ends with the first payload; the repeat then says consumed: true, 202. */
    request("POST", "/v1/executions/gate-1/terminate", NULL, NULL, 202, NULL);
    json_t *done = wait_result(keeld.base_url, "gate-1");
    json_decref(done);
    r = signal_send("gate-1", "approve", "{\"by\": \"ann\"}", "k1", 202);
    assert_true(json_is_true(json_object_get(r.json, "duplicate")));
    hreply_free(&r);
    /* A new key after the end is refused. */
    r = signal_send("gate-1", "approve", "{\"by\": \"ann\"}", "k2", 409);
    assert_problem(&r, 409, "execution-ended");
    hreply_free(&r);
}

/* A repeat of a consumed signal says consumed: true (what the docs now say). */
static void test_signal_repeat_reports_consumed(void **state)
{
    (void)state;
    request("POST", "/v1/workflows",
            "{\"name\": \"waiter\", \"steps\": [{\"id\": \"approval\", \"wait\": {\"signal\": "
            "\"approve\"}}], \"output\": \"${steps.approval.output}\"}",
            NULL, 201, NULL);
    request("POST", "/v1/workflows/waiter/executions", "{\"id\": \"waiter-1\"}", NULL, 201, NULL);
    for (int i = 0; i < 500; i++) {
        char *s = harness_sqlf(db, "SELECT status FROM steps WHERE execution_id = 'waiter-1' "
                                   "AND step_id = 'approval' AND status = 'waiting'");
        bool waiting = s != NULL;
        free(s);
        if (waiting)
            break;
        usleep(20000);
    }
    struct hreply r = signal_send("waiter-1", "approve", "1", "w1", 202);
    assert_true(json_is_true(json_object_get(r.json, "consumed")));
    hreply_free(&r);
    json_decref(wait_result(keeld.base_url, "waiter-1"));
    r = signal_send("waiter-1", "approve", "1", "w1", 202);
    assert_true(json_is_true(json_object_get(r.json, "duplicate")));
    assert_true(json_is_true(json_object_get(r.json, "consumed")));
    hreply_free(&r);
}

/* Point 13: an unknown query parameter is 400 naming it and listing the allowed ones, on every
 * route; the known ones still work. */
static void test_unknown_query_parameters(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *param, *allowed;
    } cases[] = {
        {"GET", "/v1/executions?stauts=failed", "stauts",
         "workflow, status, since, until, limit, cursor"},
        {"GET", "/v1/workflows?limt=5", "limt", "limit, cursor"},
        {"GET", "/v1/executions/gate-1/history?after=3", "after", "after_seq, limit, cursor"},
        {"GET", "/v1/executions/gate-1/result?wiat=5", "wiat", "wait"},
        {"GET", "/v1/executions/gate-1?verbose=1", "verbose", NULL},
        {"GET", "/v1/workflows/gate?x=1", "x", NULL},
        {"GET", "/v1/workflows/gate/versions/1?x=1", "x", NULL},
        {"POST", "/v1/workflows/gate/executions?id=2", "id", NULL},
        {"POST", "/v1/executions/gate-1/cancel?force=1", "force", NULL},
        {"POST", "/v1/executions/gate-1/terminate?force=1", "force", NULL},
        {"POST", "/v1/executions/gate-1/retry?force=1", "force", NULL},
        {"POST", "/v1/executions/gate-1/signals/approve?x=1", "x", NULL},
        {"POST", "/v1/tasks/0123456789abcdef0123456789abcdef/complete?x=1", "x", NULL},
        {"GET", "/healthz?x=1", "x", NULL},
        {"GET", "/readyz?x=1", "x", NULL},
        {"GET", "/metrics?format=json", "format", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hreply r;
        request(cases[i].method, cases[i].path, NULL, NULL, 400, &r);
        assert_problem(&r, 400, "invalid-parameter");
        json_t *err = json_array_get(json_object_get(r.json, "errors"), 0);
        assert_string_equal(json_string_value(json_object_get(err, "parameter")), cases[i].param);
        const char *message = json_string_value(json_object_get(err, "message"));
        if (cases[i].allowed && !strstr(message, cases[i].allowed))
            fail_msg("%s: \"%s\" does not list \"%s\"", cases[i].path, message, cases[i].allowed);
        if (!cases[i].allowed && !strstr(message, "takes none"))
            fail_msg("%s: \"%s\"", cases[i].path, message);
        hreply_free(&r);
    }
    /* Nothing was changed by the refused POSTs. */
    char *n = harness_sqlf(db, "SELECT count(*) FROM executions WHERE workflow = 'gate'");
    assert_string_equal(n, "1");
    free(n);
    /* The known parameters still work. */
    request("GET", "/v1/executions?status=failed&limit=5", NULL, NULL, 200, NULL);
    request("GET", "/v1/workflows?limit=1", NULL, NULL, 200, NULL);
    request("GET", "/v1/executions/gate-1/history?after_seq=0&limit=2", NULL, NULL, 200, NULL);
    request("GET", "/v1/executions/gate-1/result?wait=0", NULL, NULL, 200, NULL);
}

/* Point 11: a KEEL_WEBHOOK_SECRET whose key is shorter than 24 bytes stops keeld at start, with
 * a message that says why (and never the secret). */
static void test_short_webhook_secret_refused(void **state)
{
    (void)state;
    /* "short-secret-23-bytes.." is 23 bytes. */
    const char *const bad[] = {"KEEL_WEBHOOK_SECRET=whsec_c2hvcnQtc2VjcmV0LTIzLWJ5dGVzLi4=", NULL};
    struct proc p;
    keeld_spawn(&p, db, bad, NULL);
    assert_int_equal(proc_wait(&p, 20000), 1);
    char *log = read_file(p.log_path);
    assert_non_null(log);
    if (!strstr(log, "KEEL_WEBHOOK_SECRET") ||
        !strstr(log, "the key is 23 bytes; at least 24 are required"))
        fail_msg("keeld's log does not say why: %s", log);
    assert_null(strstr(log, "c2hvcnQtc2VjcmV0LTIzLWJ5dGVzLi4"));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_webhook_secret_refused),
        cmocka_unit_test(test_signal_key_reuse),
        cmocka_unit_test(test_signal_repeat_reports_consumed),
        cmocka_unit_test(test_unknown_query_parameters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
