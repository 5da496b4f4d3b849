/* The HTTP API against a real keeld, PostgreSQL and receiver: definitions, starting executions,
 * reading them, history, the result long poll, and the errors of each. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "prom.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *db;
static struct proc keeld, receiver;

static int setup(void **state)
{
    (void)state;
    stack_start("keel_it_api", NULL, &db, &keeld, &receiver);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stack_stop(&db, &keeld, &receiver);
    return 0;
}

/* A definition of three activity steps against the receiver, the second using the first's
 * output. */
static char *three_steps(const char *name, const char *path2)
{
    char *s = NULL;
    int n = asprintf(&s,
                     "{\"name\": \"%s\", \"steps\": ["
                     "{\"id\": \"one\", \"activity\": {\"url\": \"%s/ok\", \"input\": "
                     "{\"n\": \"${input.n}\"}}},"
                     "{\"id\": \"two\", \"activity\": {\"url\": \"%s%s\", \"input\": "
                     "{\"prev\": \"${steps.one.output.echo.n}\"}}, \"retry\": "
                     "{\"initial_interval\": \"10ms\", \"max_attempts\": 4}},"
                     "{\"id\": \"three\", \"activity\": {\"url\": \"%s/ok\", \"input\": "
                     "\"id ${execution.id}\"}}],"
                     "\"output\": {\"first\": \"${steps.one.output.echo}\", \"last\": "
                     "\"${steps.three.output.echo}\"}}",
                     name, receiver.base_url, receiver.base_url, path2, receiver.base_url);
    assert_true(n > 0);
    return s;
}

static void register_ok(const char *json, long want_status)
{
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows", json, &r);
    if (r.status != want_status)
        fail_msg("register: %ld %s", r.status, r.body);
    hreply_free(&r);
}

static void test_register_versions(void **state)
{
    (void)state;
    char *def = three_steps("versions", "/ok");
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows", def, &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 1);
    char loc[128];
    assert_true(hreply_header(&r, "Location", loc, sizeof loc));
    assert_string_equal(loc, "/v1/workflows/versions/versions/1");
    const char *digest = json_string_value(json_object_get(r.json, "digest"));
    assert_int_equal(strlen(digest), 64);
    char *digest1 = strdup(digest);
    hreply_free(&r);

    /* The same content again (other key order, whitespace): 200 and the same version. */
    json_t *doc = json_loads(def, 0, NULL);
    char *reordered = json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(2));
    json_decref(doc);
    http_post_json(keeld.base_url, "/v1/workflows", reordered, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 1);
    assert_string_equal(json_string_value(json_object_get(r.json, "digest")), digest1);
    hreply_free(&r);
    free(reordered);

    /* A change makes version 2; version 1 stays readable as it was. */
    char *changed = three_steps("versions", "/empty");
    http_post_json(keeld.base_url, "/v1/workflows", changed, &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 2);
    hreply_free(&r);
    http_get(keeld.base_url, "/v1/workflows/versions", &r);
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 2);
    hreply_free(&r);
    http_get(keeld.base_url, "/v1/workflows/versions/versions/1", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "digest")), digest1);
    hreply_free(&r);
    http_get(keeld.base_url, "/v1/workflows/versions/versions/3", &r);
    assert_problem(&r, 404, "not-found");
    hreply_free(&r);
    http_get(keeld.base_url, "/v1/workflows/versions/versions/zero", &r);
    assert_problem(&r, 400, "invalid-parameter");
    hreply_free(&r);
    http_get(keeld.base_url, "/v1/workflows/nope", &r);
    assert_problem(&r, 404, "not-found");
    hreply_free(&r);
    free(def);
    free(changed);
    free(digest1);
}

static void test_invalid_definition_lists_every_error(void **state)
{
    (void)state;
    const char *bad = "{\"name\": \"bad/name\", \"steps\": ["
                      "{\"id\": \"a\", \"activity\": {\"url\": \"ftp://x\"}, \"colour\": 1},"
                      "{\"id\": \"a\", \"sleep\": \"soon\"},"
                      "{\"id\": \"c\", \"activity\": {\"url\": \"http://x/${steps.zz.output}\"},"
                      " \"retry\": {\"max_attempts\": 0}}]}";
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows", bad, &r);
    assert_problem(&r, 422, "invalid-definition");
    json_t *errors = json_object_get(r.json, "errors");
    assert_true(json_array_size(errors) >= 6);
    const char *want[] = {"/name",       "/steps/0/activity/url", "/steps/0/colour",
                          "/steps/1/id", "/steps/1/sleep",        "/steps/2/retry/max_attempts"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        bool found = false;
        size_t j;
        json_t *e;
        json_array_foreach(errors, j, e)
        {
            found |= !strcmp(json_string_value(json_object_get(e, "pointer")), want[i]);
            assert_non_null(json_string_value(json_object_get(e, "message")));
        }
        if (!found)
            fail_msg("no error at %s in %s", want[i], r.body);
    }
    hreply_free(&r);
    /* Nothing was written. */
    char *n = harness_sql_value(db, "SELECT count(*) FROM workflows WHERE name = 'bad/name'");
    assert_string_equal(n, "0");
    free(n);
}

static void test_malformed_bodies(void **state)
{
    (void)state;
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows", "{\"name\": ", &r);
    assert_problem(&r, 400, "malformed-json");
    assert_non_null(json_object_get(r.json, "position"));
    hreply_free(&r);
    assert_int_equal(
        http_do(keeld.base_url, "POST", "/v1/workflows", "text/yaml", "name: x", 7, NULL, 5000, &r),
        0);
    assert_problem(&r, 415, "unsupported-media-type");
    hreply_free(&r);
    http_post_json(keeld.base_url, "/v1/workflows", NULL, &r);
    assert_problem(&r, 400, "empty-body");
    hreply_free(&r);
}

static bool result_done(const char *id, json_t **out)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/executions/%s/result?wait=30", id);
    struct hreply r;
    http_get(keeld.base_url, path, &r);
    bool done = r.status == 200;
    if (out)
        *out = json_incref(r.json);
    hreply_free(&r);
    return done;
}

static void test_execution_runs_to_completion(void **state)
{
    (void)state;
    char *def = three_steps("happy", "/ok");
    register_ok(def, 201);
    free(def);
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows/happy/executions",
                   "{\"id\": \"happy-1\", \"input\": {\"n\": 7}}", &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(json_string_value(json_object_get(r.json, "id")), "happy-1");
    assert_int_equal(json_array_size(json_object_get(r.json, "steps")), 3);
    hreply_free(&r);

    json_t *done = NULL;
    assert_true(result_done("happy-1", &done));
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_t *out = json_object_get(done, "output");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "first"), "n")), 7);
    assert_string_equal(json_string_value(json_object_get(out, "last")), "id happy-1");
    json_t *steps = json_object_get(done, "steps");
    for (size_t i = 0; i < 3; i++) {
        json_t *s = json_array_get(steps, i);
        assert_string_equal(json_string_value(json_object_get(s, "status")), "completed");
        assert_int_equal(json_integer_value(json_object_get(s, "attempts")), 1);
        assert_non_null(json_string_value(json_object_get(s, "completed_at")));
    }
    assert_non_null(json_string_value(json_object_get(done, "completed_at")));
    json_decref(done);

    /* The history: every event in order, one step_completed per step. */
    http_get(keeld.base_url, "/v1/executions/happy-1/history", &r);
    assert_int_equal(r.status, 200);
    json_t *events = json_object_get(r.json, "events");
    const char *want[] = {"execution_started", "step_scheduled",     "attempt_started",
                          "step_completed",    "step_scheduled",     "attempt_started",
                          "step_completed",    "step_scheduled",     "attempt_started",
                          "step_completed",    "execution_completed"};
    assert_int_equal(json_array_size(events), sizeof want / sizeof want[0]);
    for (size_t i = 0; i < json_array_size(events); i++) {
        json_t *e = json_array_get(events, i);
        assert_int_equal(json_integer_value(json_object_get(e, "seq")), (json_int_t)i + 1);
        assert_string_equal(json_string_value(json_object_get(e, "type")), want[i]);
        assert_non_null(json_string_value(json_object_get(e, "at")));
    }
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    hreply_free(&r);

    /* Paginated: 4 at a time, by cursor and by after_seq. */
    http_get(keeld.base_url, "/v1/executions/happy-1/history?limit=4", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "events")), 4);
    const char *cur = json_string_value(json_object_get(r.json, "next_cursor"));
    assert_non_null(cur);
    char path[256];
    snprintf(path, sizeof path, "/v1/executions/happy-1/history?limit=4&cursor=%s", cur);
    hreply_free(&r);
    http_get(keeld.base_url, path, &r);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(r.json, "events"), 0), "seq")),
                     5);
    hreply_free(&r);
    http_get(keeld.base_url, "/v1/executions/happy-1/history?after_seq=10", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "events")), 1);
    hreply_free(&r);
    http_get(keeld.base_url, "/v1/executions/happy-1/history?after_seq=-1", &r);
    assert_problem(&r, 400, "invalid-parameter");
    hreply_free(&r);
    http_get(keeld.base_url, "/v1/executions/nope/history", &r);
    assert_problem(&r, 404, "not-found");
    hreply_free(&r);

    /* The receiver saw each step once, with the execution's key. */
    json_t *stats = receiver_stats(&receiver, "?key=happy-1/two");
    json_t *k = json_object_get(json_object_get(stats, "keys"), "happy-1/two");
    assert_int_equal(json_integer_value(json_object_get(k, "deliveries")), 1);
    json_decref(stats);
}

/* A user's numbers come back as they were sent, through the start, a webhook and its answer,
 * templates and the history: 0.1 stays 0.1 (jansson would write 0.10000000000000001). */
static void test_numbers_come_back_as_sent(void **state)
{
    (void)state;
    char *def = three_steps("exact", "/ok");
    register_ok(def, 201);
    free(def);
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows/exact/executions",
                   "{\"id\": \"exact-1\", \"input\": {\"n\": 0.1, \"price\": 19.99}}", &r);
    assert_int_equal(r.status, 201);
    hreply_free(&r);
    json_t *done = NULL;
    assert_true(result_done("exact-1", &done));
    json_decref(done);
    static const char *const paths[] = {"/v1/executions/exact-1", "/v1/executions/exact-1/history"};
    for (size_t i = 0; i < 2; i++) {
        http_get(keeld.base_url, paths[i], &r);
        assert_int_equal(r.status, 200);
        /* The history carries the outputs (0.1 echoed), the execution the input as well. */
        if (strstr(r.body, "0.1000000") || strstr(r.body, "19.98999") || !strstr(r.body, "0.1") ||
            (i == 0 && !strstr(r.body, "19.99")))
            fail_msg("%s: %s", paths[i], r.body);
        hreply_free(&r);
    }
    /* The webhook got the value as sent too: step two's input is step one's echo. */
    json_t *stats = receiver_stats(&receiver, "?key=exact-1/two");
    assert_non_null(json_object_get(json_object_get(stats, "keys"), "exact-1/two"));
    json_decref(stats);
    char *n = harness_sql_value(db, "SELECT input->>'n' || ' ' || (output->'first'->>'n') FROM "
                                    "executions WHERE id = 'exact-1'");
    assert_string_equal(n, "0.1 0.1");
    free(n);
}

static void test_start_is_idempotent(void **state)
{
    (void)state;
    char *def = three_steps("idem", "/ok");
    register_ok(def, 201);
    free(def);
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows/idem/executions",
                   "{\"id\": \"idem-1\", \"input\": {\"n\": 1}}", &r);
    assert_int_equal(r.status, 201);
    hreply_free(&r);
    http_post_json(keeld.base_url, "/v1/workflows/idem/executions",
                   "{\"input\": {\"n\": 1}, \"id\": \"idem-1\"}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "id")), "idem-1");
    hreply_free(&r);
    http_post_json(keeld.base_url, "/v1/workflows/idem/executions",
                   "{\"id\": \"idem-1\", \"input\": {\"n\": 2}}", &r);
    assert_problem(&r, 409, "execution-exists");
    hreply_free(&r);
    assert_true(result_done("idem-1", NULL));
    char *n = harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id = 'idem-1' "
                                    "AND type = 'execution_started'");
    assert_string_equal(n, "1");
    free(n);

    /* No id: a UUIDv7 is made. */
    http_post_json(keeld.base_url, "/v1/workflows/idem/executions", "{\"input\": {\"n\": 3}}", &r);
    assert_int_equal(r.status, 201);
    const char *id = json_string_value(json_object_get(r.json, "id"));
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '7');
    hreply_free(&r);
}

static void test_start_errors(void **state)
{
    (void)state;
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows/missing/executions", "{}", &r);
    assert_problem(&r, 404, "not-found");
    hreply_free(&r);
    char *def = three_steps("starterr", "/ok");
    register_ok(def, 201);
    free(def);
    http_post_json(keeld.base_url, "/v1/workflows/starterr/executions",
                   "{\"id\": \"has/slash\", \"version\": 0, \"extra\": true}", &r);
    assert_problem(&r, 422, "validation");
    json_t *errors = json_object_get(r.json, "errors");
    assert_int_equal(json_array_size(errors), 3);
    hreply_free(&r);
    http_post_json(keeld.base_url, "/v1/workflows/starterr/executions", "[1]", &r);
    assert_problem(&r, 422, "validation");
    hreply_free(&r);
    http_post_json(keeld.base_url, "/v1/workflows/starterr/executions", "{\"version\": 9}", &r);
    assert_problem(&r, 404, "not-found");
    hreply_free(&r);
    char *n = harness_sql_value(db, "SELECT count(*) FROM executions WHERE workflow IN "
                                    "('starterr', 'missing')");
    assert_string_equal(n, "0");
    free(n);
    http_get(keeld.base_url, "/v1/executions/none-such", &r);
    assert_problem(&r, 404, "not-found");
    hreply_free(&r);
    http_get(keeld.base_url, "/v1/executions/none-such/result", &r);
    assert_problem(&r, 404, "not-found");
    hreply_free(&r);
    http_get(keeld.base_url, "/v1/executions/x/result?wait=61", &r);
    assert_problem(&r, 400, "invalid-parameter");
    hreply_free(&r);
}

static void test_retries_then_success(void **state)
{
    (void)state;
    char *def = three_steps("flaky", "/flaky/2");
    register_ok(def, 201);
    free(def);
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows/flaky/executions",
                   "{\"id\": \"flaky-1\", \"input\": {\"n\": 1}}", &r);
    assert_int_equal(r.status, 201);
    hreply_free(&r);
    json_t *done = NULL;
    assert_true(result_done("flaky-1", &done));
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_t *two = json_array_get(json_object_get(done, "steps"), 1);
    assert_int_equal(json_integer_value(json_object_get(two, "attempts")), 3);
    json_decref(done);
    char *failed = harness_sql_value(
        db, "SELECT string_agg(attempt::text || ':' || (data->'error'->>'type') || ':' || "
            "(data->>'next_attempt_at' IS NOT NULL)::text, ',' ORDER BY seq) FROM events "
            "WHERE execution_id = 'flaky-1' AND type = 'attempt_failed'");
    assert_string_equal(failed, "1:http_5xx:true,2:http_5xx:true");
    free(failed);
    char *started = harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id = "
                                          "'flaky-1' AND type = 'attempt_started' AND step = "
                                          "'two'");
    assert_string_equal(started, "3");
    free(started);
}

static void test_failure_is_precise(void **state)
{
    (void)state;
    char *def = three_steps("doomed", "/problem/PaymentDeclined?non_retryable=1");
    register_ok(def, 201);
    free(def);
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows/doomed/executions",
                   "{\"id\": \"doomed-1\", \"input\": {\"n\": 1}}", &r);
    hreply_free(&r);
    json_t *done = NULL;
    assert_true(result_done("doomed-1", &done));
    assert_string_equal(json_string_value(json_object_get(done, "status")), "failed");
    json_t *err = json_object_get(done, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "PaymentDeclined");
    assert_string_equal(json_string_value(json_object_get(err, "step")), "two");
    json_t *steps = json_object_get(done, "steps");
    assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 1), "status")),
                        "failed");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(steps, 1), "attempts")), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 2), "status")),
                        "skipped");
    json_decref(done);

    /* A missing path in an expression fails the step, naming the path. */
    char *expr = NULL;
    assert_true(asprintf(&expr,
                         "{\"name\": \"badpath\", \"steps\": [{\"id\": \"a\", \"activity\": "
                         "{\"url\": \"%s/ok\", \"input\": \"${input.customer.id}\"}}]}",
                         receiver.base_url) > 0);
    register_ok(expr, 201);
    free(expr);
    http_post_json(keeld.base_url, "/v1/workflows/badpath/executions",
                   "{\"id\": \"badpath-1\", \"input\": {\"order\": 1}}", &r);
    hreply_free(&r);
    assert_true(result_done("badpath-1", &done));
    err = json_object_get(done, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "expression");
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "customer"));
    json_decref(done);
}

static void test_list_filters_and_pages(void **state)
{
    (void)state;
    char *def = three_steps("listed", "/ok");
    register_ok(def, 201);
    free(def);
    for (int i = 0; i < 5; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"id\": \"listed-%d\", \"input\": {\"n\": %d}}", i, i);
        struct hreply r;
        http_post_json(keeld.base_url, "/v1/workflows/listed/executions", body, &r);
        assert_int_equal(r.status, 201);
        hreply_free(&r);
        char id[32];
        snprintf(id, sizeof id, "listed-%d", i);
        assert_true(result_done(id, NULL));
    }
    struct hreply r;
    /* Newest first, two per page, three pages. */
    const char *expect[] = {"listed-4", "listed-3", "listed-2", "listed-1", "listed-0"};
    char path[512] = "/v1/executions?workflow=listed&limit=2";
    size_t seen = 0;
    for (int page = 0; page < 3; page++) {
        http_get(keeld.base_url, path, &r);
        assert_int_equal(r.status, 200);
        json_t *items = json_object_get(r.json, "executions");
        for (size_t i = 0; i < json_array_size(items); i++)
            assert_string_equal(json_string_value(json_object_get(json_array_get(items, i), "id")),
                                expect[seen++]);
        json_t *next = json_object_get(r.json, "next_cursor");
        if (page < 2)
            snprintf(path, sizeof path, "/v1/executions?workflow=listed&limit=2&cursor=%s",
                     json_string_value(next));
        else
            assert_true(json_is_null(next));
        hreply_free(&r);
    }
    assert_int_equal(seen, 5);
    http_get(keeld.base_url, "/v1/executions?workflow=listed&status=failed", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "executions")), 0);
    hreply_free(&r);
    http_get(keeld.base_url,
             "/v1/executions?workflow=listed&status=completed&since=2000-01-01T00:00:00Z", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "executions")), 5);
    hreply_free(&r);
    http_get(keeld.base_url, "/v1/executions?workflow=listed&until=2000-01-01T00:00:00Z", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "executions")), 0);
    hreply_free(&r);
    const char *bad[][2] = {{"/v1/executions?status=weird", "status"},
                            {"/v1/executions?since=yesterday", "since"},
                            {"/v1/executions?limit=0", "limit"},
                            {"/v1/executions?limit=501", "limit"},
                            {"/v1/executions?cursor=%25%25", "cursor"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_get(keeld.base_url, bad[i][0], &r);
        assert_problem(&r, 400, "invalid-parameter");
        json_t *e = json_array_get(json_object_get(r.json, "errors"), 0);
        assert_string_equal(json_string_value(json_object_get(e, "parameter")), bad[i][1]);
        hreply_free(&r);
    }
    http_get(keeld.base_url, "/v1/workflows?limit=1", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "workflows")), 1);
    assert_non_null(json_string_value(json_object_get(r.json, "next_cursor")));
    hreply_free(&r);
}

/* 429 with Retry-After: the next attempt waits at least that long, even with a short backoff. */
static void test_retry_after_is_honoured(void **state)
{
    (void)state;
    char *def = NULL;
    assert_true(asprintf(&def,
                         "{\"name\": \"throttled\", \"steps\": [{\"id\": \"a\", \"activity\": "
                         "{\"url\": \"%s/retry-after/1\"}, \"retry\": {\"initial_interval\": "
                         "\"10ms\"}}]}",
                         receiver.base_url) > 0);
    register_ok(def, 201);
    free(def);
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows/throttled/executions",
                   "{\"id\": \"throttled-1\"}", &r);
    hreply_free(&r);
    json_t *done = NULL;
    assert_true(result_done("throttled-1", &done));
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_decref(done);
    char *gap = harness_sql_value(
        db, "SELECT extract(epoch FROM (SELECT at FROM events WHERE execution_id = "
            "'throttled-1' AND type = 'attempt_started' AND attempt = 2) - (SELECT at FROM "
            "events WHERE execution_id = 'throttled-1' AND type = 'attempt_failed')) * 1000");
    assert_true(atof(gap) >= 950);
    free(gap);
    char *type = harness_sql_value(db, "SELECT data->'error'->>'type' FROM events WHERE "
                                       "execution_id = 'throttled-1' AND type = "
                                       "'attempt_failed'");
    assert_string_equal(type, "http_4xx");
    free(type);
}

static void test_result_long_poll(void **state)
{
    (void)state;
    char *def = NULL;
    assert_true(asprintf(&def,
                         "{\"name\": \"slow\", \"steps\": [{\"id\": \"a\", \"activity\": "
                         "{\"url\": \"%s/slow/1500\"}}]}",
                         receiver.base_url) > 0);
    register_ok(def, 201);
    free(def);
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows/slow/executions", "{\"id\": \"slow-1\"}", &r);
    hreply_free(&r);
    /* Without wait: 202 at once while it runs. */
    http_get(keeld.base_url, "/v1/executions/slow-1/result", &r);
    assert_int_equal(r.status, 202);
    hreply_free(&r);
    /* A wait that ends before the execution: 202 after about a second. */
    int64_t t0 = now_ms();
    http_get(keeld.base_url, "/v1/executions/slow-1/result?wait=1", &r);
    int64_t took = now_ms() - t0;
    if (r.status == 202) {
        assert_true(took >= 900);
    }
    hreply_free(&r);
    /* Many long polls at once (more than HTTP threads): all answered when it ends. */
    t0 = now_ms();
    assert_true(result_done("slow-1", NULL));
    assert_true(now_ms() - t0 < 10000);
}

/* Prometheus text, parsed strictly (prom.h): counters moved by the work done above, histograms
 * cumulative. */
static void test_metrics(void **state)
{
    (void)state;
    struct hreply r;
    http_get(keeld.base_url, "/metrics", &r);
    assert_int_equal(r.status, 200);
    char ct[128];
    assert_true(hreply_header(&r, "Content-Type", ct, sizeof ct));
    assert_non_null(strstr(ct, "text/plain; version=0.0.4"));
    struct prom p;
    char *why = NULL;
    if (prom_parse(r.body, &p, &why) < 0 || prom_check_histograms(&p, &why) < 0)
        fail_msg("%s in\n%s", why, r.body);
    const char *families[] = {"keel_executions_started_total", "keel_executions_ended_total",
                              "keel_webhook_attempts_total",   "keel_transition_duration_seconds",
                              "keel_http_requests_total",      "keel_build_info"};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (!json_object_get(p.types, families[i]))
            fail_msg("no # TYPE %s in\n%s", families[i], r.body);
    assert_string_equal(
        json_string_value(json_object_get(p.types, "keel_executions_started_total")), "counter");
    assert_true(prom_sum(&p, "keel_executions_started_total", "") >= 10);
    assert_true(prom_sum(&p, "keel_executions_ended_total", "status=completed") >= 10);
    assert_int_equal(prom_count(&p, "keel_http_requests_total", "code=4xx"), 1);
    assert_int_equal(prom_count(&p, "keel_build_info", ""), 1);
    double v = 0;
    assert_true(prom_get(&p, "keel_webhook_attempts_total", "outcome=ok", &v));
    assert_true(v >= 20);
    assert_true(prom_get(&p, "keel_webhook_duration_seconds_bucket", "le=+Inf", &v));
    assert_true(v >= 20);
    assert_true(prom_get(&p, "keel_transition_duration_seconds_bucket", "le=+Inf", &v));
    prom_free(&p);
    hreply_free(&r);
}

/* The web UI's files: content types, CSP, ETag revalidation, deep links, and no way out of the
 * UI folder when it is served from disk. */
static void test_ui_files(void **state)
{
    (void)state;
    struct hreply r;
    assert_int_equal(http_do(keeld.base_url, "GET", "/", NULL, NULL, 0, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 302);
    char v[512];
    assert_true(hreply_header(&r, "Location", v, sizeof v));
    assert_string_equal(v, "/ui/");
    hreply_free(&r);

    http_get(keeld.base_url, "/ui/", &r);
    assert_int_equal(r.status, 200);
    assert_true(hreply_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "text/html; charset=utf-8");
    assert_true(hreply_header(&r, "Content-Security-Policy", v, sizeof v));
    assert_non_null(strstr(v, "script-src 'self'"));
    assert_null(strstr(v, "unsafe-inline"));
    char etag[128];
    assert_true(hreply_header(&r, "ETag", etag, sizeof etag));
    char *index = strdup(r.body);
    hreply_free(&r);

    /* A deep link answers the same page, so a reload lands on the same view. */
    http_get(keeld.base_url, "/ui/executions/some-id", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, index);
    hreply_free(&r);

    http_get(keeld.base_url, "/ui/style.css", &r);
    assert_int_equal(r.status, 200);
    assert_true(hreply_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "text/css; charset=utf-8");
    hreply_free(&r);

    char inm[160];
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    const char *h[] = {inm, NULL};
    assert_int_equal(http_do(keeld.base_url, "GET", "/ui/", NULL, NULL, 0, h, 5000, &r), 0);
    assert_int_equal(r.status, 304);
    hreply_free(&r);

    /* From disk (--ui-dir): a path that climbs out of the folder gets index.html, not the file. */
    char dir[] = "/tmp/keel-ui-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/index.html", dir);
    FILE *f = fopen(path, "w");
    fputs("<!doctype html><title>disk</title>", f);
    fclose(f);
    char uienv[300];
    snprintf(uienv, sizeof uienv, "KEEL_UI_DIR=%s", dir);
    const char *env[] = {uienv, NULL};
    struct proc k;
    keeld_start(&k, db, env, NULL);
    const char *escapes[] = {"/ui/../../../etc/passwd", "/ui/%2e%2e/%2e%2e/etc/passwd",
                             "/ui/.hidden", "/ui//etc/passwd"};
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
        assert_int_equal(http_do(k.base_url, "GET", escapes[i], NULL, NULL, 0, NULL, 5000, &r), 0);
        if (r.status == 200)
            assert_string_equal(r.body, "<!doctype html><title>disk</title>");
        else
            assert_true(r.status == 400 || r.status == 404);
        assert_null(strstr(r.body, "root:"));
        hreply_free(&r);
    }
    proc_signal(&k, SIGTERM);
    assert_int_equal(proc_wait(&k, 15000), 0);
    unlink(path);
    rmdir(dir);
    free(index);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_versions),
        cmocka_unit_test(test_invalid_definition_lists_every_error),
        cmocka_unit_test(test_malformed_bodies),
        cmocka_unit_test(test_execution_runs_to_completion),
        cmocka_unit_test(test_numbers_come_back_as_sent),
        cmocka_unit_test(test_start_is_idempotent),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_retries_then_success),
        cmocka_unit_test(test_failure_is_precise),
        cmocka_unit_test(test_list_filters_and_pages),
        cmocka_unit_test(test_retry_after_is_honoured),
        cmocka_unit_test(test_result_long_poll),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_ui_files),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
