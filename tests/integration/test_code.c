/* Code executions (issue 10, step calls), against a real keeld and PostgreSQL, before any step
 * call: POST /v1/executions starts one (201; 200 for the same id, name and input; 409 for
 * anything else with that id), its program completes it with an output or fails it with an
 * error, a cancel waits for the program's complete or fail and ends it cancelled, terminate and
 * retry work as for workflows; the lists find it by name; bad bodies are 422 naming the field
 * and change nothing; complete and fail are 409 for a workflow execution. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const *env(void)
{
    static const char *e[] = {"KEEL_LEASE_GRACE_MS=300", NULL};
    return e;
}

static struct hreply post(const struct proc *k, const char *path, const char *body, long want)
{
    return http_post_want(k->base_url, path, body, want);
}

static const char *str(const json_t *o, const char *key)
{
    return json_str(o, key);
}

static void test_start_complete_fail(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_code_basic");
    struct proc k;
    keeld_start(&k, db, env(), NULL);

    struct hreply r =
        post(&k, "/v1/executions",
             "{\"id\": \"c-1\", \"name\": \"checkout\", \"input\": {\"cart\": 3}}", 201);
    assert_string_equal(str(r.json, "id"), "c-1");
    assert_string_equal(str(r.json, "kind"), "code");
    assert_string_equal(str(r.json, "name"), "checkout");
    assert_true(json_is_null(json_object_get(r.json, "workflow")));
    assert_true(json_is_null(json_object_get(r.json, "version")));
    assert_string_equal(str(r.json, "status"), "running");
    assert_int_equal(json_array_size(json_object_get(r.json, "steps")), 0);
    char loc[128];
    assert_true(hreply_header(&r, "Location", loc, sizeof loc));
    assert_string_equal(loc, "/v1/executions/c-1");
    hreply_free(&r);
    /* The same start again is answered with it; another name or input is a conflict. */
    r = post(&k, "/v1/executions",
             "{\"id\": \"c-1\", \"name\": \"checkout\", \"input\": {\"cart\": 3}}", 200);
    hreply_free(&r);
    r = post(&k, "/v1/executions", "{\"id\": \"c-1\", \"name\": \"checkout\", \"input\": 4}", 409);
    assert_problem(&r, 409, "execution-exists");
    hreply_free(&r);

    /* Completed by its program, with its output. */
    r = post(&k, "/v1/executions/c-1/complete", "{\"output\": {\"paid\": 0.1}}", 200);
    assert_string_equal(str(r.json, "status"), "completed");
    hreply_free(&r);
    json_t *done = wait_result(k.base_url, "c-1");
    assert_string_equal(str(done, "status"), "completed");
    assert_true(json_is_real(json_object_get(json_object_get(done, "output"), "paid")));
    json_decref(done);
    assert_sql(db, "{\"paid\": 0.1}", "SELECT output::text FROM executions WHERE id = 'c-1'");
    assert_sql(db, "execution_started,complete_requested,execution_completed",
               "SELECT string_agg(type, ',' ORDER BY seq) FROM events WHERE execution_id = "
               "'c-1'");
    /* Ended: complete and fail again are 409. */
    r = post(&k, "/v1/executions/c-1/complete", "{}", 409);
    assert_problem(&r, 409, "execution-ended");
    hreply_free(&r);

    /* Failed by its program; a retry lets it run again, and then it completes. */
    r = post(&k, "/v1/executions", "{\"id\": \"c-2\", \"name\": \"checkout\"}", 201);
    hreply_free(&r);
    r = post(&k, "/v1/executions/c-2/fail",
             "{\"error\": {\"type\": \"OutOfStock\", \"message\": \"no more\"}}", 200);
    assert_string_equal(str(r.json, "status"), "failed");
    assert_string_equal(str(json_object_get(r.json, "error"), "type"), "OutOfStock");
    hreply_free(&r);
    r = post(&k, "/v1/executions/c-2/retry", "{}", 202);
    assert_string_equal(str(r.json, "status"), "running");
    hreply_free(&r);
    r = post(&k, "/v1/executions/c-2/complete", "", 200);
    assert_true(json_is_null(json_object_get(r.json, "output")));
    hreply_free(&r);

    /* An id of its own when none is given; the name defaults to "code". */
    r = post(&k, "/v1/executions", "{}", 201);
    assert_string_equal(str(r.json, "name"), "code");
    assert_int_equal(strlen(str(r.json, "id")), 36);
    hreply_free(&r);
    keeld_stop(&k);
    free(db);
}

static void test_cancel_terminate_and_lists(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_code_cancel");
    struct proc k;
    keeld_start(&k, db, env(), NULL);
    struct hreply r = post(&k, "/v1/executions", "{\"id\": \"k-1\", \"name\": \"refund\"}", 201);
    hreply_free(&r);
    /* A cancel waits for the program: still running, its deadline due in 5 minutes. */
    r = post(&k, "/v1/executions/k-1/cancel", "{\"reason\": \"customer asked\"}", 202);
    assert_string_equal(str(r.json, "status"), "running");
    hreply_free(&r);
    assert_sql(db, "cancel_deadline",
               "SELECT kind FROM tasks WHERE execution_id = 'k-1' AND due_at > now() + "
               "interval '4 minutes'");
    r = post(&k, "/v1/executions/k-1/cancel", "{}", 409);
    assert_problem(&r, 409, "already-cancelling");
    hreply_free(&r);
    /* The program's complete then ends it cancelled, and the deadline goes. */
    r = post(&k, "/v1/executions/k-1/complete", "{\"output\": 1}", 200);
    assert_string_equal(str(r.json, "status"), "cancelled");
    hreply_free(&r);
    assert_sql(db, "0", "SELECT count(*) FROM tasks WHERE execution_id = 'k-1'");

    r = post(&k, "/v1/executions", "{\"id\": \"k-2\", \"name\": \"refund\"}", 201);
    hreply_free(&r);
    r = post(&k, "/v1/executions/k-2/terminate", "{}", 202);
    assert_string_equal(str(r.json, "status"), "terminated");
    hreply_free(&r);

    /* A workflow of the same name, for the lists. */
    http_post_expect(k.base_url, "/v1/workflows",
                     "{\"name\": \"refund\", \"steps\": [{\"id\": \"s\", \"sleep\": \"0s\"}]}", 201,
                     NULL);
    http_post_expect(k.base_url, "/v1/workflows/refund/executions", "{\"id\": \"w-1\"}", 201, NULL);
    json_decref(wait_result(k.base_url, "w-1"));
    struct hreply l;
    http_get(k.base_url, "/v1/executions?name=refund", &l);
    assert_int_equal(l.status, 200);
    assert_int_equal(json_array_size(json_object_get(l.json, "executions")), 3);
    hreply_free(&l);
    http_get(k.base_url, "/v1/executions?workflow=refund", &l);
    json_t *items = json_object_get(l.json, "executions");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(str(json_array_get(items, 0), "id"), "w-1");
    assert_string_equal(str(json_array_get(items, 0), "kind"), "workflow");
    hreply_free(&l);
    http_get(k.base_url, "/v1/executions?name=no%20way", &l);
    assert_problem(&l, 400, "invalid-parameter");
    hreply_free(&l);

    /* complete and fail are a program's: 409 for a workflow execution. */
    r = post(&k, "/v1/executions/w-1/complete", "{}", 409);
    assert_problem(&r, 409, "not-a-code-execution");
    hreply_free(&r);
    /* A workflow start may not take a code execution's id, nor the other way round. */
    r = post(&k, "/v1/workflows/refund/executions", "{\"id\": \"k-2\"}", 409);
    hreply_free(&r);
    r = post(&k, "/v1/executions", "{\"id\": \"w-1\", \"name\": \"refund\"}", 409);
    hreply_free(&r);
    r = post(&k, "/v1/executions/nope/complete", "{}", 404);
    hreply_free(&r);
    keeld_stop(&k);
    free(db);
}

static void test_bad_input(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_code_bad");
    struct proc k;
    keeld_start(&k, db, env(), NULL);
    static const struct {
        const char *path, *body, *pointer, *message;
    } cases[] = {
        {"/v1/executions", "[]", "", "must be a JSON object"},
        {"/v1/executions", "{\"id\": \"a b\"}", "/id", "1-128 characters"},
        {"/v1/executions", "{\"name\": \"..\"}", "/name", "1-128 characters"},
        {"/v1/executions", "{\"name\": 5}", "/name", "1-128 characters"},
        {"/v1/executions", "{\"nmae\": \"x\"}", "/nmae", "unknown field"},
        {"/v1/executions", "{\"handler\": {\"url\": \"ftp://h\"}}", "/handler/url",
         "http:// or https://"},
        {"/v1/executions", "{\"handler\": \"http://h\"}", "/handler", "must be an object"},
        {"/v1/executions", "{\"handler\": {\"url\": \"http://h\", \"inactivity_timeout\": \"0s\"}}",
         "/handler/inactivity_timeout", ""},
        {"/v1/executions", "{\"handler\": {\"url\": \"http://h\", \"every\": 1}}", "/handler/every",
         "unknown field"},
        {"/v1/executions", "{\"handler\": {}}", "/handler/url", "missing required field"},
        {"/v1/executions/x/fail", "{}", "", "missing required field \"error\""},
        {"/v1/executions/x/fail", "{\"error\": \"boom\"}", "/error", "must be an object"},
        {"/v1/executions/x/fail", "{\"error\": {\"message\": \"m\"}}", "/error/type",
         "1 to 128 characters"},
        {"/v1/executions/x/fail", "{\"error\": {\"type\": \"T\", \"message\": 3}}",
         "/error/message", "must be a string"},
        {"/v1/executions/x/fail", "{\"error\": {\"type\": \"T\", \"why\": 3}}", "/error/why",
         "unknown field"},
        {"/v1/executions/x/complete", "{\"outptu\": 1}", "/outptu", "unknown field"},
        {"/v1/executions/x/complete", "7", "", "must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hreply r;
        http_post_json(k.base_url, cases[i].path, cases[i].body, &r);
        if (r.status != 422)
            fail_msg("%s %s: got %ld: %s", cases[i].path, cases[i].body, r.status, r.body);
        json_t *e = json_array_get(json_object_get(r.json, "errors"), 0);
        if (strcmp(str(e, "pointer"), cases[i].pointer) != 0 ||
            !strstr(str(e, "message"), cases[i].message))
            fail_msg("%s %s: %s", cases[i].path, cases[i].body, r.body);
        hreply_free(&r);
    }
    assert_sql(db, "0", "SELECT count(*) FROM executions");
    keeld_stop(&k);
    free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_complete_fail),
        cmocka_unit_test(test_cancel_terminate_and_lists),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
