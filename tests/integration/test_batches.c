/* Bulk actions (issue 12) against real keelds and PostgreSQL: a dry run counts and creates
 * nothing; bad bodies are 422 naming the member and create nothing; cancel by tag and terminate
 * by ids act on exactly the executions matched, with progress at GET /v1/batches/{id}; a bulk
 * retry of 500 failed executions whose keeld is stopped in the middle of a page and killed -9
 * is finished by another keeld, each execution retried exactly once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void define(const struct proc *k, const struct proc *receiver)
{
    http_post_expect(k->base_url, "/v1/workflows",
                     "{\"name\": \"napper\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"1h\"}]}",
                     201, NULL);
    char *def = harness_subst_r("{\"name\": \"broken\", \"steps\": [{\"id\": \"a\", \"activity\": "
                                "{\"url\": \"%R/fail/500\"}, \"retry\": {\"max_attempts\": 1}}]}",
                                receiver->base_url);
    http_post_expect(k->base_url, "/v1/workflows", def, 201, NULL);
    free(def);
}

static void start_tagged(const struct proc *k, const char *id, const char *team)
{
    char body[160];
    snprintf(body, sizeof body, "{\"id\": \"%s\", \"tags\": {\"team\": \"%s\"}}", id, team);
    http_post_expect(k->base_url, "/v1/workflows/napper/executions", body, 201, NULL);
}

/* Waits until batch id is completed (up to 120 s); returns it (new reference). */
static json_t *wait_batch(const struct proc *k, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/batches/%s", id);
    int64_t deadline = now_ms() + 120000;
    for (;;) {
        struct hreply r;
        if (http_do(k->base_url, "GET", path, NULL, NULL, 0, NULL, 10000, &r) == 0 &&
            r.status == 200) {
            if (!strcmp(json_str(r.json, "status"), "completed")) {
                json_t *b = json_incref(r.json);
                hreply_free(&r);
                return b;
            }
        } else if (r.status == 404) {
            fail_msg("no batch %s", id);
        }
        hreply_free(&r);
        if (now_ms() > deadline)
            fail_msg("batch %s did not complete in 120 s", id);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static json_int_t num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return json_integer_value(v);
}

static void expect_bad(const struct proc *k, const char *action, const char *body,
                       const char *pointer)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/executions/%s", action);
    struct hreply r = http_post_want(k->base_url, path, body, 422);
    assert_problem(&r, 422, "validation");
    bool found = false;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(r.json, "errors"), i, e) found =
        found || !strcmp(json_str(e, "pointer"), pointer);
    if (!found)
        fail_msg("%s %s: no error at \"%s\" in %s", action, body, pointer, r.body);
    hreply_free(&r);
}

static void test_dry_run_and_bad_bodies(void **state)
{
    (void)state;
    char *db = NULL;
    struct proc k, receiver;
    stack_start("keel_it_batches_dry", NULL, &db, &k, &receiver);
    define(&k, &receiver);
    start_range(&k, "broken", "broken", 0, 6, NULL);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "nap-%d", i);
        start_tagged(&k, id, "a");
    }
    wait_sql(db, "6", "SELECT count(*) FROM executions WHERE status = 'failed'");
    struct hreply r = http_post_want(k.base_url, "/v1/executions/retry",
                                     "{\"workflow\": \"broken\", \"status\": \"failed\", "
                                     "\"dry_run\": true}",
                                     200);
    assert_int_equal(num(r.json, "matched"), 6);
    assert_true(json_is_true(json_object_get(r.json, "dry_run")));
    assert_string_equal(json_str(r.json, "action"), "retry");
    hreply_free(&r);
    r = http_post_want(k.base_url, "/v1/executions/cancel",
                       "{\"tags\": {\"team\": \"a\"}, \"status\": \"running,failed\", "
                       "\"dry_run\": true}",
                       200);
    assert_int_equal(num(r.json, "matched"), 3);
    /* The status list is stored sorted as the statuses are listed. */
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(r.json, "filter"), "status"), 0)),
                        "running");
    hreply_free(&r);

    expect_bad(&k, "retry", "{}", "");
    expect_bad(&k, "retry", "[1]", "");
    expect_bad(&k, "retry", "{\"dry_run\": true}", "");
    expect_bad(&k, "retry", "{\"status\": \"bogus\"}", "/status");
    expect_bad(&k, "retry", "{\"status\": []}", "/status");
    expect_bad(&k, "retry", "{\"status\": \"failed,\"}", "/status");
    expect_bad(&k, "retry", "{\"ids\": []}", "/ids");
    expect_bad(&k, "retry", "{\"ids\": [\"ok\", \"not ok\"]}", "/ids/1");
    expect_bad(&k, "retry", "{\"since\": \"yesterday\"}", "/since");
    expect_bad(&k, "retry", "{\"workflow\": \"a b\"}", "/workflow");
    expect_bad(&k, "retry", "{\"tags\": {\"team\": 1}}", "/tags/team");
    expect_bad(&k, "retry", "{\"status\": \"failed\", \"reason\": \"x\"}", "/reason");
    expect_bad(&k, "cancel", "{\"status\": \"running\", \"reason\": 5}", "/reason");
    expect_bad(&k, "cancel", "{\"status\": \"running\", \"dry_run\": \"yes\"}", "/dry_run");
    expect_bad(&k, "terminate", "{\"status\": \"running\", \"force\": true}", "/force");
    assert_sql(db, "0", "SELECT count(*) FROM batches");
    http_get(k.base_url, "/v1/batches/nope", &r);
    assert_problem(&r, 404, "not-found");
    hreply_free(&r);
    http_get(k.base_url, "/v1/batches?cursor=bm9wZQ", &r);
    assert_problem(&r, 400, "invalid-parameter");
    hreply_free(&r);
    stack_stop(&db, &k, &receiver);
}

static void test_cancel_terminate(void **state)
{
    (void)state;
    char *db = NULL;
    struct proc k, receiver;
    stack_start("keel_it_batches_ct", NULL, &db, &k, &receiver);
    define(&k, &receiver);
    const char *teams[] = {"a", "b", "a", "b", "a"};
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "nap-%d", i);
        start_tagged(&k, id, teams[i]);
    }
    struct hreply r = http_post_want(k.base_url, "/v1/executions/cancel",
                                     "{\"tags\": {\"team\": \"a\"}, \"reason\": \"cleanup\"}", 202);
    char loc[128], id[64];
    assert_true(hreply_header(&r, "Location", loc, sizeof loc));
    snprintf(id, sizeof id, "%s", json_str(r.json, "id"));
    char want_loc[128];
    snprintf(want_loc, sizeof want_loc, "/v1/batches/%s", id);
    assert_string_equal(loc, want_loc);
    assert_string_equal(json_str(r.json, "action"), "cancel");
    assert_string_equal(json_str(r.json, "reason"), "cleanup");
    assert_int_equal(num(r.json, "matched"), 3);
    hreply_free(&r);
    json_t *b = wait_batch(&k, id);
    assert_int_equal(num(b, "matched"), 3);
    assert_int_equal(num(b, "acted"), 3);
    assert_int_equal(num(b, "skipped"), 0);
    assert_int_equal(num(b, "processed"), 3);
    assert_non_null(json_str(b, "completed_at"));
    json_decref(b);
    assert_sql(db, "nap-0,nap-2,nap-4",
               "SELECT string_agg(id, ',' ORDER BY id) FROM executions WHERE status = "
               "'cancelled'");
    assert_sql(db, "3",
               "SELECT count(*) FROM events WHERE type = 'cancel_requested' AND data->>'reason' = "
               "'cleanup'");

    /* By ids: an unknown id matches nothing; a cancelled one is reached and skipped. */
    r = http_post_want(k.base_url, "/v1/executions/terminate",
                       "{\"ids\": [\"nap-1\", \"nap-3\", \"nap-0\", \"nobody\"]}", 202);
    snprintf(id, sizeof id, "%s", json_str(r.json, "id"));
    assert_int_equal(num(r.json, "matched"), 3);
    hreply_free(&r);
    b = wait_batch(&k, id);
    assert_int_equal(num(b, "acted"), 2);
    assert_int_equal(num(b, "skipped"), 1);
    json_decref(b);
    assert_sql(db, "nap-1,nap-3",
               "SELECT string_agg(id, ',' ORDER BY id) FROM executions WHERE status = "
               "'terminated'");
    assert_sql(db, "skipped cancelled",
               "SELECT result || ' ' || status FROM batch_items WHERE execution_id = 'nap-0' "
               "AND batch_id = (SELECT id FROM batches WHERE action = 'terminate')");
    /* Its items: in the batch's order, what it did to each, their status then. */
    char items_path[160];
    snprintf(items_path, sizeof items_path, "/v1/batches/%s/items?result=skipped", id);
    http_get(k.base_url, items_path, &r);
    json_t *skipped = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(skipped), 1);
    assert_string_equal(json_str(json_array_get(skipped, 0), "execution_id"), "nap-0");
    assert_string_equal(json_str(json_array_get(skipped, 0), "status"), "cancelled");
    hreply_free(&r);
    snprintf(items_path, sizeof items_path, "/v1/batches/%s/items?limit=1", id);
    http_get(k.base_url, items_path, &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    assert_string_equal(
        json_str(json_array_get(json_object_get(r.json, "items"), 0), "execution_id"), "nap-0");
    char next_path[512];
    snprintf(next_path, sizeof next_path, "/v1/batches/%s/items?limit=2&cursor=%s", id,
             json_str(r.json, "next_cursor"));
    hreply_free(&r);
    http_get(k.base_url, next_path, &r);
    json_t *rest = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(rest), 2);
    assert_string_equal(json_str(json_array_get(rest, 0), "execution_id"), "nap-1");
    assert_string_equal(json_str(json_array_get(rest, 1), "result"), "acted");
    hreply_free(&r);
    snprintf(items_path, sizeof items_path, "/v1/batches/%s/items?result=maybe", id);
    http_get(k.base_url, items_path, &r);
    assert_problem(&r, 400, "invalid-parameter");
    hreply_free(&r);
    /* Newest first. */
    http_get(k.base_url, "/v1/batches?limit=1", &r);
    json_t *items = json_object_get(r.json, "batches");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_str(json_array_get(items, 0), "action"), "terminate");
    char cursor[256];
    snprintf(cursor, sizeof cursor, "/v1/batches?limit=1&cursor=%s",
             json_str(r.json, "next_cursor"));
    hreply_free(&r);
    http_get(k.base_url, cursor, &r);
    items = json_object_get(r.json, "batches");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_str(json_array_get(items, 0), "action"), "cancel");
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    hreply_free(&r);
    stack_stop(&db, &k, &receiver);
}

/* 500 failed executions; keeld A, which works on their bulk retry, stops inside a transaction
 * of its third page (KEEL_TEST_SIGSTOP_IN_TRANSACTION) and is killed -9 there; keeld B takes
 * the batch over and finishes it. Each execution is retried exactly once. */
static void test_retry_kill9(void **state)
{
    (void)state;
    static const char *const env_b[] = {"KEEL_LEASE_GRACE_MS=1000", NULL};
    static const char *const env_a[] = {"KEEL_LEASE_GRACE_MS=1000",
                                        "KEEL_TEST_SIGSTOP_IN_TRANSACTION=broken-250", NULL};
    char *db = NULL;
    struct proc a, b, receiver;
    stack_start("keel_it_batches_kill", env_b, &db, &b, &receiver);
    define(&b, &receiver);
    int started = start_range(&b, "broken", "broken", 0, 500, NULL);
    assert_int_equal(started, 500);
    wait_sql(db, "500", "SELECT count(*) FROM executions WHERE status = 'failed'");
    keeld_start(&a, db, env_a, NULL);

    struct hreply r = http_post_want(a.base_url, "/v1/executions/retry",
                                     "{\"workflow\": \"broken\", \"status\": \"failed\"}", 202);
    char id[64];
    snprintf(id, sizeof id, "%s", json_str(r.json, "id"));
    assert_int_equal(num(r.json, "matched"), 500);
    hreply_free(&r);
    if (!wait_for(proc_is_stopped, &a, 60000))
        fail_msg("keeld A did not stop inside the batch");
    /* Stopped in the middle: some pages done, broken-250 not. */
    char *reached = harness_sql_value(db, "SELECT count(*) FROM batch_items");
    assert_true(atoi(reached) >= 100 && atoi(reached) < 500);
    free(reached);
    assert_sql(db, "0", "SELECT count(*) FROM batch_items WHERE execution_id = 'broken-250'");
    proc_kill9(&a);

    json_t *done = wait_batch(&b, id);
    assert_int_equal(num(done, "acted"), 500);
    assert_int_equal(num(done, "skipped"), 0);
    json_decref(done);
    /* Exactly once: one execution_retried event each, and one batch_items row each. */
    assert_sql(db, "500",
               "SELECT count(*) FROM (SELECT execution_id FROM events WHERE type = "
               "'execution_retried' GROUP BY execution_id HAVING count(*) = 1) x");
    assert_sql(db, "0",
               "SELECT count(*) FROM (SELECT execution_id FROM events WHERE type = "
               "'execution_retried' GROUP BY execution_id HAVING count(*) > 1) x");
    assert_sql(db, "500", "SELECT count(*) FROM batch_items WHERE result = 'acted'");
    /* Retried, each failed again: at least two deliveries of each key (attempts A had on the
     * wire when it died are sent again by B: at least once, as always). */
    wait_sql(db, "500", "SELECT count(*) FROM executions WHERE status = 'failed'");
    json_t *stats = receiver_stats(&receiver, "?keys=0");
    assert_true(json_integer_value(json_object_get(stats, "deliveries")) >= 1000);
    json_decref(stats);
    stack_stop(&db, &b, &receiver);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dry_run_and_bad_bodies),
        cmocka_unit_test(test_cancel_terminate),
        cmocka_unit_test(test_retry_kill9),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
