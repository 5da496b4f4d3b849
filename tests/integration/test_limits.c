/* Limits and step details against a real keeld (issue 8, points 2, 13 and 14): a template that
 * would expand to a gigabyte fails its step instead of stalling the execution, receiver output
 * too deep or holding "\u0000" is a failed attempt, steps show retrying / sleeping / waiting
 * with their error and due times, and the execution list holds summaries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *db;
static struct proc keeld, receiver;
static const char *const env[] = {"KEEL_LEASE_GRACE_MS=300", NULL};

static int setup(void **state)
{
    (void)state;
    stack_start("keel_it_limits", env, &db, &keeld, &receiver);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stack_stop(&db, &keeld, &receiver);
    return 0;
}

static void post(const char *path, const char *body, long want, struct hreply *out)
{
    http_post_expect(keeld.base_url, path, body, want, out);
}

/* GET path, which must answer 200; the parsed body (new reference). */
static json_t *get_json(const char *path)
{
    struct hreply r;
    http_get(keeld.base_url, path, &r);
    if (r.status != 200 || !r.json)
        fail_msg("GET %s: %ld %s", path, r.status, r.body);
    json_t *j = json_incref(r.json);
    hreply_free(&r);
    return j;
}

/* The step named id of execution exec, as GET /v1/executions/{exec} shows it. */
static json_t *get_step(const char *exec, const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/executions/%s", exec);
    json_t *e = get_json(path);
    size_t i;
    json_t *s;
    json_t *found = NULL;
    json_array_foreach(json_object_get(e, "steps"), i, s)
    {
        if (!strcmp(json_string_value(json_object_get(s, "id")), id))
            found = json_incref(s);
    }
    json_decref(e);
    if (!found)
        fail_msg("execution %s has no step %s", exec, id);
    return found;
}

struct step_wait {
    const char *exec, *step, *status;
};

static bool step_has_status(void *arg)
{
    struct step_wait *w = arg;
    json_t *s = get_step(w->exec, w->step);
    bool ok = !strcmp(json_string_value(json_object_get(s, "status")), w->status);
    json_decref(s);
    return ok;
}

static json_t *wait_step(const char *exec, const char *step, const char *status)
{
    struct step_wait w = {exec, step, status};
    if (!wait_for(step_has_status, &w, 30000))
        fail_msg("%s/%s never became %s", exec, step, status);
    return get_step(exec, step);
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* The variant that stalled: 2,500 copies of a 400 KB value in an array. The step fails
 * with an expression error naming the limit and the execution ends failed; no task is left. */
static void test_amplification_fails_the_step(void **state)
{
    (void)state;
    char *def = NULL;
    size_t cap = 64 * 1024;
    def = malloc(cap);
    int n = snprintf(def, cap,
                     "{\"name\": \"amplify\", \"steps\": [{\"id\": \"first\", \"activity\": "
                     "{\"url\": \"%s/ok\"}}, {\"id\": \"fan\", \"activity\": {\"url\": \"%s/ok\", "
                     "\"input\": {\"copies\": [",
                     receiver.base_url, receiver.base_url);
    for (int i = 0; i < 2500; i++)
        n += snprintf(def + n, cap - (size_t)n, i ? ", \"${input.x}\"" : "\"${input.x}\"");
    snprintf(def + n, cap - (size_t)n, "]}}}]}");
    post("/v1/workflows", def, 201, NULL);
    free(def);

    size_t xlen = 400 * 1024;
    char *body = malloc(xlen + 64);
    n = snprintf(body, 64, "{\"id\": \"amp-1\", \"input\": {\"x\": \"");
    memset(body + n, 'a', xlen);
    strcpy(body + n + xlen, "\"}}");
    post("/v1/workflows/amplify/executions", body, 201, NULL);
    free(body);

    json_t *done = wait_result(keeld.base_url, "amp-1");
    assert_string_equal(str(done, "status"), "failed");
    json_t *err = json_object_get(done, "error");
    assert_string_equal(str(err, "type"), "expression");
    assert_string_equal(str(err, "step"), "fan");
    if (!strstr(str(err, "message"), "limit of 1048576 bytes"))
        fail_msg("error: %s", str(err, "message"));
    json_decref(done);
    char *left = harness_sqlf(db, "SELECT count(*) FROM tasks WHERE execution_id = 'amp-1'");
    assert_string_equal(left, "0");
    free(left);
}

/* Output nested deeper than 64 levels is a failed attempt (invalid_response, naming the
 * limit); the execution page and the history still answer. Output 64 deep is journaled. */
static void test_deep_output(void **state)
{
    (void)state;
    char *def = NULL;
    assert_true(asprintf(&def,
                         "{\"name\": \"deep\", \"steps\": [{\"id\": \"ok64\", \"activity\": "
                         "{\"url\": \"%s/deep/64\"}}, {\"id\": \"a\", \"activity\": {\"url\": "
                         "\"%s/deep/2046\"}, \"retry\": {\"max_attempts\": 1}}]}",
                         receiver.base_url, receiver.base_url) > 0);
    post("/v1/workflows", def, 201, NULL);
    free(def);
    post("/v1/workflows/deep/executions", "{\"id\": \"deep-1\"}", 201, NULL);
    json_t *done = wait_result(keeld.base_url, "deep-1");
    assert_string_equal(str(done, "status"), "failed");
    json_t *err = json_object_get(done, "error");
    assert_string_equal(str(err, "type"), "invalid_response");
    assert_string_equal(str(err, "step"), "a");
    if (!strstr(str(err, "message"), "deeper than 64 levels"))
        fail_msg("error: %s", str(err, "message"));
    json_t *first = json_array_get(json_object_get(done, "steps"), 0);
    assert_string_equal(str(first, "status"), "completed");
    json_decref(done);
    json_t *history = get_json("/v1/executions/deep-1/history");
    bool failed_attempt = false;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(history, "events"), i, e)
    {
        failed_attempt |= !strcmp(str(e, "type"), "attempt_failed");
    }
    assert_true(failed_attempt);
    json_decref(history);
}

/* A body holding "\u0000" (which jsonb refuses) is a failed attempt too, not a 500. */
static void test_nul_output(void **state)
{
    (void)state;
    char *def = NULL;
    assert_true(asprintf(&def,
                         "{\"name\": \"nul\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": "
                         "\"%s/nul\"}, \"retry\": {\"max_attempts\": 1}}]}",
                         receiver.base_url) > 0);
    post("/v1/workflows", def, 201, NULL);
    free(def);
    post("/v1/workflows/nul/executions", "{\"id\": \"nul-1\"}", 201, NULL);
    json_t *done = wait_result(keeld.base_url, "nul-1");
    assert_string_equal(str(done, "status"), "failed");
    json_t *err = json_object_get(done, "error");
    assert_string_equal(str(err, "type"), "invalid_response");
    if (!strstr(str(err, "message"), "NUL character"))
        fail_msg("error: %s", str(err, "message"));
    json_decref(done);
}

/* retrying with last_error and next_attempt_at, then sleeping with due_at. No step is
 * expected to be seen within a time window: the retry that is watched waits an hour, and the
 * one that must complete waits 50 ms and is only looked at once it has. */
static void test_step_details(void **state)
{
    (void)state;
    /* The same steps twice: the retry of "details" waits an hour, that of "details-fast"
     * 50 ms. */
    const char *variants[][2] = {{"details", "1h"}, {"details-fast", "50ms"}};
    for (size_t i = 0; i < 2; i++) {
        char *def = NULL;
        assert_true(asprintf(&def,
                             "{\"name\": \"%s\", \"steps\": [{\"id\": \"flaky\", "
                             "\"activity\": {\"url\": \"%s/flaky/1\"}, \"retry\": "
                             "{\"initial_interval\": \"%s\"}}, {\"id\": \"nap\", \"sleep\": "
                             "\"1h\"}]}",
                             variants[i][0], receiver.base_url, variants[i][1]) > 0);
        post("/v1/workflows", def, 201, NULL);
        free(def);
    }
    post("/v1/workflows/details/executions", "{\"id\": \"details-1\"}", 201, NULL);

    /* The first attempt fails (503) and the retry waits an hour. */
    json_t *s = wait_step("details-1", "flaky", "retrying");
    assert_string_equal(str(json_object_get(s, "last_error"), "type"), "http_5xx");
    assert_int_equal(json_integer_value(json_object_get(s, "attempts")), 1);
    assert_true(json_is_string(json_object_get(s, "next_attempt_at")));
    assert_true(json_is_null(json_object_get(s, "due_at")));
    assert_true(json_is_null(json_object_get(s, "heartbeat")));
    json_decref(s);
    post("/v1/executions/details-1/terminate", "{}", 202, NULL);

    /* With a short backoff the retry succeeds; the step keeps the error of its latest failed
     * attempt. */
    post("/v1/workflows/details-fast/executions", "{\"id\": \"details-2\"}", 201, NULL);
    s = wait_step("details-2", "flaky", "completed");
    assert_string_equal(str(json_object_get(s, "last_error"), "type"), "http_5xx");
    assert_int_equal(json_integer_value(json_object_get(s, "attempts")), 2);
    assert_true(json_is_null(json_object_get(s, "next_attempt_at")));
    json_decref(s);

    s = wait_step("details-2", "nap", "sleeping");
    assert_true(json_is_string(json_object_get(s, "due_at")));
    assert_true(json_is_null(json_object_get(s, "last_error")));
    assert_true(json_is_null(json_object_get(s, "next_attempt_at")));
    json_decref(s);

    /* The list: summaries without payloads; the current step of a running execution. */
    json_t *list = get_json("/v1/executions?status=running,failed&workflow=details-fast");
    json_t *item = json_array_get(json_object_get(list, "executions"), 0);
    assert_non_null(item);
    assert_string_equal(str(item, "id"), "details-2");
    assert_null(json_object_get(item, "input"));
    assert_null(json_object_get(item, "output"));
    json_t *cur = json_object_get(item, "current_step");
    assert_string_equal(str(cur, "id"), "nap");
    assert_string_equal(str(cur, "status"), "sleeping");
    assert_true(json_is_string(json_object_get(cur, "due_at")));
    assert_true(json_is_null(json_object_get(cur, "signal")));
    json_decref(list);
    post("/v1/executions/details-2/terminate", "{}", 202, NULL);
}

/* A waiting step shows its timeout as due_at and the list names the signal it waits for; an
 * ended execution has no current step. */
static void test_waiting_in_list(void **state)
{
    (void)state;
    post("/v1/workflows",
         "{\"name\": \"waits\", \"steps\": [{\"id\": \"w\", \"wait\": {\"signal\": \"go\", "
         "\"timeout\": \"1h\"}}]}",
         201, NULL);
    post("/v1/workflows/waits/executions", "{\"id\": \"waits-1\", \"input\": {\"big\": 1}}", 201,
         NULL);
    json_t *s = wait_step("waits-1", "w", "waiting");
    assert_true(json_is_string(json_object_get(s, "due_at")));
    json_decref(s);
    json_t *list = get_json("/v1/executions?workflow=waits");
    json_t *item = json_array_get(json_object_get(list, "executions"), 0);
    json_t *cur = json_object_get(item, "current_step");
    assert_string_equal(str(cur, "status"), "waiting");
    assert_string_equal(str(cur, "signal"), "go");
    json_decref(list);
    post("/v1/executions/waits-1/signals/go", "{}", 202, NULL);
    json_decref(wait_result(keeld.base_url, "waits-1"));
    list = get_json("/v1/executions?workflow=waits&status=completed");
    item = json_array_get(json_object_get(list, "executions"), 0);
    assert_string_equal(str(item, "status"), "completed");
    assert_true(json_is_null(json_object_get(item, "current_step")));
    json_decref(list);
}

struct beat_wait {
    const char *exec, *step;
    long pct;
};

static bool step_has_heartbeat(void *arg)
{
    struct beat_wait *w = arg;
    json_t *s = get_step(w->exec, w->step);
    json_t *hb = json_object_get(s, "heartbeat");
    bool ok =
        json_integer_value(json_object_get(json_object_get(hb, "details"), "pct")) == w->pct &&
        json_is_string(json_object_get(hb, "at"));
    json_decref(s);
    return ok;
}

/* The last heartbeat's details are kept on the step (they used to be thrown away). */
static void test_heartbeat_is_kept(void **state)
{
    (void)state;
    char *def = NULL;
    assert_true(asprintf(&def,
                         "{\"name\": \"beats\", \"steps\": [{\"id\": \"job\", \"activity\": "
                         "{\"url\": \"%s/async\"}, \"timeout\": \"1h\"}]}",
                         receiver.base_url) > 0);
    post("/v1/workflows", def, 201, NULL);
    free(def);
    post("/v1/workflows/beats/executions", "{\"id\": \"beats-1\"}", 201, NULL);
    char token[256] = "";
    for (int i = 0; i < 1500 && !token[0]; i++) {
        json_t *stats = receiver_stats(&receiver, "?key=beats-1/job");
        const char *t = json_string_value(json_object_get(
            json_object_get(json_object_get(stats, "keys"), "beats-1/job"), "task_token"));
        if (t)
            snprintf(token, sizeof token, "%s", t);
        json_decref(stats);
    }
    if (!token[0])
        fail_msg("no task token for beats-1/job");
    /* A heartbeat may come before the 202 is journaled; send until one applies. */
    char path[512];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", token);
    for (long pct = 10; pct <= 20; pct += 10) {
        char body[64];
        snprintf(body, sizeof body, "{\"details\": {\"pct\": %ld}}", pct);
        post(path, body, 200, NULL);
        struct beat_wait w = {"beats-1", "job", pct};
        if (!wait_for(step_has_heartbeat, &w, 30000))
            fail_msg("heartbeat %ld not shown", pct);
    }
    json_t *s = get_step("beats-1", "job");
    assert_string_equal(str(s, "status"), "running");
    json_decref(s);
    post("/v1/executions/beats-1/terminate", "{}", 202, NULL);
}

/* ?status= takes a comma-separated list; each value is checked and a bad one named. */
static void test_status_list_validation(void **state)
{
    (void)state;
    static const char *const bad[] = {"running,bogus", "running,", ",failed", "RUNNING"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/executions?status=%s", bad[i]);
        struct hreply r;
        http_get(keeld.base_url, path, &r);
        assert_problem(&r, 400, "invalid-parameter");
        json_t *e0 = json_array_get(json_object_get(r.json, "errors"), 0);
        assert_string_equal(str(e0, "parameter"), "status");
        hreply_free(&r);
    }
    struct hreply r;
    http_get(keeld.base_url, "/v1/executions?status=running,bogus", &r);
    assert_non_null(strstr(r.body, "\\\"bogus\\\" is not a status"));
    hreply_free(&r);
}

/* An input that could not be read back (too deep) or stored (NUL) is refused at start. */
static void test_start_input_checks(void **state)
{
    (void)state;
    post("/v1/workflows", "{\"name\": \"plain\", \"steps\": [{\"id\": \"t\", \"sleep\": \"0s\"}]}",
         201, NULL);
    char body[512];
    int n = snprintf(body, sizeof body, "{\"input\": ");
    for (int i = 0; i < 65; i++)
        body[n++] = '[';
    for (int i = 0; i < 65; i++)
        body[n++] = ']';
    snprintf(body + n, sizeof body - (size_t)n, "}");
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows/plain/executions", body, &r);
    assert_problem(&r, 422, "validation");
    assert_string_equal(str(json_array_get(json_object_get(r.json, "errors"), 0), "pointer"),
                        "/input");
    hreply_free(&r);
    /* The HTTP layer may refuse "\u0000" in any body first (400); if it lets it through, the
     * start handler names where it is (422). Either way nothing is stored. */
    http_post_json(keeld.base_url, "/v1/workflows/plain/executions",
                   "{\"input\": {\"a\": [\"x\", \"nul\\u0000\"]}}", &r);
    if (r.status == 422)
        assert_string_equal(str(json_array_get(json_object_get(r.json, "errors"), 0), "pointer"),
                            "/input/a/1");
    else
        assert_problem(&r, 400, "malformed-json");
    hreply_free(&r);
    char *count = harness_sqlf(db, "SELECT count(*) FROM executions WHERE workflow = 'plain'");
    assert_string_equal(count, "0");
    free(count);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amplification_fails_the_step),
        cmocka_unit_test(test_deep_output),
        cmocka_unit_test(test_nul_output),
        cmocka_unit_test(test_step_details),
        cmocka_unit_test(test_waiting_in_list),
        cmocka_unit_test(test_heartbeat_is_kept),
        cmocka_unit_test(test_status_list_validation),
        cmocka_unit_test(test_start_input_checks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
