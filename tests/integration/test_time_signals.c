/* Durable timers and signals against a real keeld: sleep across kill -9, timer punctuality,
 * signals before and after the wait, idempotent sends, wait timeouts both ways. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *db;
static struct proc keeld, receiver;
static const char *const env[] = {"KEEL_LEASE_GRACE_MS=300", NULL};

static int setup(void **state)
{
    (void)state;
    stack_start("keel_it_time", env, &db, &keeld, &receiver);
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

static void test_timer_survives_kill9(void **state)
{
    (void)state;
    char *def = NULL;
    assert_true(asprintf(&def,
                         "{\"name\": \"napper\", \"steps\": [{\"id\": \"nap\", \"sleep\": "
                         "\"1500ms\"}, {\"id\": \"after\", \"activity\": {\"url\": \"%s/ok\"}}]}",
                         receiver.base_url) > 0);
    post("/v1/workflows", def, 201, NULL);
    free(def);
    post("/v1/workflows/napper/executions", "{\"id\": \"nap-1\"}", 201, NULL);
    /* The daemon dies while the timer runs and stays down past its due time. */
    proc_kill9(&keeld);
    sleep(2);
    int64_t restart = now_ms();
    keeld_start(&keeld, db, env, NULL);
    json_t *done = wait_result(keeld.base_url, "nap-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_decref(done);
    /* A late timer fires at once after the restart (well within a second of coming up). */
    assert_true(now_ms() - restart < 8000);
    char *n = harness_sqlf(db,
                           "SELECT count(*) FROM events WHERE execution_id = '%s' AND type = "
                           "'timer_fired'",
                           "nap-1");
    assert_string_equal(n, "1");
    free(n);
}

static void test_timer_is_punctual(void **state)
{
    (void)state;
    post("/v1/workflows",
         "{\"name\": \"punctual\", \"steps\": [{\"id\": \"t\", \"sleep\": \"1s\"}]}", 201, NULL);
    post("/v1/workflows/punctual/executions", "{\"id\": \"punctual-1\"}", 201, NULL);
    json_t *done = wait_result(keeld.base_url, "punctual-1");
    json_decref(done);
    /* Fired within a second of due (the check is generous; the design aims for milliseconds). */
    char *late =
        harness_sqlf(db,
                     "SELECT extract(epoch FROM f.at - (s.data->>'due_at')::timestamptz) * 1000 "
                     "FROM events s JOIN events f ON f.execution_id = s.execution_id AND f.type "
                     "= 'timer_fired' WHERE s.execution_id = '%s' AND s.type = 'timer_started'",
                     "punctual-1");
    assert_non_null(late);
    double ms = atof(late);
    assert_true(ms >= 0 && ms < 1000);
    free(late);
}

static void test_signal_before_and_after_wait(void **state)
{
    (void)state;
    post("/v1/workflows",
         "{\"name\": \"approval\", \"steps\": [{\"id\": \"pause\", \"sleep\": \"300ms\"},"
         "{\"id\": \"approve\", \"wait\": {\"signal\": \"approve\", \"timeout\": \"1h\"}}],"
         "\"output\": \"${steps.approve.output}\"}",
         201, NULL);

    /* Before: kept, then consumed when the wait begins. The first of two is taken. */
    post("/v1/workflows/approval/executions", "{\"id\": \"early\"}", 201, NULL);
    struct hreply r;
    post("/v1/executions/early/signals/approve", "{\"by\": \"ann\"}", 202, &r);
    assert_false(json_is_true(json_object_get(r.json, "consumed")));
    hreply_free(&r);
    post("/v1/executions/early/signals/approve", "{\"by\": \"bob\"}", 202, NULL);
    json_t *done = wait_result(keeld.base_url, "early");
    assert_string_equal(json_string_value(json_object_get(json_object_get(done, "output"), "by")),
                        "ann");
    json_decref(done);
    char *n =
        harness_sqlf(db,
                     "SELECT count(*) FROM signals WHERE execution_id = '%s' AND consumed_seq IS "
                     "NULL",
                     "early");
    assert_string_equal(n, "1");
    free(n);

    /* After: delivered straight to the waiting step. */
    post("/v1/workflows/approval/executions", "{\"id\": \"late\"}", 201, NULL);
    char *waiting = NULL;
    for (int i = 0; i < 250 && !waiting; i++) {
        waiting =
            harness_sqlf(db,
                         "SELECT 1 FROM steps WHERE execution_id = '%s' AND step_id = 'approve' "
                         "AND status = 'waiting'",
                         "late");
        if (!waiting)
            usleep(20000);
    }
    assert_non_null(waiting);
    free(waiting);
    post("/v1/executions/late/signals/approve", "{\"by\": \"cy\"}", 202, &r);
    assert_true(json_is_true(json_object_get(r.json, "consumed")));
    hreply_free(&r);
    done = wait_result(keeld.base_url, "late");
    assert_string_equal(json_string_value(json_object_get(json_object_get(done, "output"), "by")),
                        "cy");
    json_decref(done);
    char *types =
        harness_sqlf(db,
                     "SELECT string_agg(type, ',' ORDER BY seq) FROM events WHERE "
                     "execution_id = '%s' AND type LIKE 'signal%%' OR (execution_id = 'late' "
                     "AND type = 'wait_started')",
                     "late");
    assert_string_equal(types, "wait_started,signal_received,signal_consumed");
    free(types);

    /* Ended: 409. Unknown: 404. A bad name: 400. */
    post("/v1/executions/late/signals/approve", "{}", 409, &r);
    assert_problem(&r, 409, "execution-ended");
    hreply_free(&r);
    post("/v1/executions/nobody/signals/approve", "{}", 404, NULL);
    post("/v1/executions/late/signals/no%20spaces", "{}", 400, NULL);
}

static void test_signal_idempotency_key(void **state)
{
    (void)state;
    post("/v1/workflows",
         "{\"name\": \"twice\", \"steps\": [{\"id\": \"one\", \"wait\": {\"signal\": \"go\"}},"
         "{\"id\": \"two\", \"wait\": {\"signal\": \"go\", \"timeout\": \"1s\"}, \"on_timeout\": "
         "\"continue\"}], \"output\": {\"one\": \"${steps.one.output}\", \"two\": "
         "\"${steps.two.output}\"}}",
         201, NULL);
    post("/v1/workflows/twice/executions", "{\"id\": \"twice-1\"}", 201, NULL);
    const char *key[] = {"Idempotency-Key: send-1", NULL};
    for (int i = 0; i < 3; i++) {
        struct hreply r;
        assert_int_equal(http_do(keeld.base_url, "POST", "/v1/executions/twice-1/signals/go",
                                 "application/json", "1", 1, key, 10000, &r),
                         0);
        assert_int_equal(r.status, 202);
        assert_int_equal(json_is_true(json_object_get(r.json, "duplicate")), i > 0);
        hreply_free(&r);
    }
    /* The repeats were no-ops: the second wait saw no signal and timed out (continue). */
    json_t *done = wait_result(keeld.base_url, "twice-1");
    /* After the end, the same key is still a no-op (202), not a 409. */
    struct hreply again;
    assert_int_equal(http_do(keeld.base_url, "POST", "/v1/executions/twice-1/signals/go",
                             "application/json", "1", 1, key, 10000, &again),
                     0);
    assert_int_equal(again.status, 202);
    assert_true(json_is_true(json_object_get(again.json, "duplicate")));
    assert_true(json_is_true(json_object_get(again.json, "consumed")));
    hreply_free(&again);
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_t *out = json_object_get(done, "output");
    assert_int_equal(json_integer_value(json_object_get(out, "one")), 1);
    assert_true(json_is_null(json_object_get(out, "two")));
    json_decref(done);
    char *n = harness_sqlf(db, "SELECT count(*) FROM signals WHERE execution_id = '%s'", "twice-1");
    assert_string_equal(n, "1");
    free(n);
    n = harness_sqlf(
        db, "SELECT count(*) FROM events WHERE execution_id = '%s' AND type = 'wait_timed_out'",
        "twice-1");
    assert_string_equal(n, "1");
    free(n);
}

static void test_wait_timeout_fails(void **state)
{
    (void)state;
    post("/v1/workflows",
         "{\"name\": \"impatient\", \"steps\": [{\"id\": \"w\", \"wait\": {\"signal\": \"x\", "
         "\"timeout\": \"500ms\"}, \"on_timeout\": \"fail\"}]}",
         201, NULL);
    post("/v1/workflows/impatient/executions", "{\"id\": \"impatient-1\"}", 201, NULL);
    json_t *done = wait_result(keeld.base_url, "impatient-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "failed");
    json_t *err = json_object_get(done, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "timeout");
    assert_string_equal(json_string_value(json_object_get(err, "step")), "w");
    json_decref(done);
}

/* A wait for any of several signals: the first accepted name ends it, with output {"signal",
 * "payload"}; early signals of any of its names are taken oldest first, the others stay
 * stored; its timeout names them all. */
static void test_wait_for_any_signal(void **state)
{
    (void)state;
    post("/v1/workflows",
         "{\"name\": \"review\", \"steps\": [{\"id\": \"decide\", \"wait\": {\"any\": "
         "[\"approve\", \"reject\"], \"timeout\": \"30s\"}}], \"output\": "
         "\"${steps.decide.output}\"}",
         201, NULL);
    post("/v1/workflows",
         "{\"name\": \"review-late\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"1s\"}, {\"id\": "
         "\"decide\", \"wait\": {\"any\": [\"approve\", \"reject\"]}}], \"output\": "
         "\"${steps.decide.output}\"}",
         201, NULL);
    post("/v1/workflows",
         "{\"name\": \"review-t\", \"steps\": [{\"id\": \"decide\", \"wait\": {\"any\": [\"a\", "
         "\"b\"], \"timeout\": \"1s\"}}]}",
         201, NULL);

    post("/v1/workflows/review/executions", "{\"id\": \"review-1\"}", 201, NULL);
    char *waiting = NULL;
    for (int i = 0; i < 500 && !waiting; i++) {
        waiting = harness_sql_value(db, "SELECT 1 FROM steps WHERE execution_id = 'review-1' "
                                        "AND status = 'waiting'");
        if (!waiting)
            usleep(20000);
    }
    assert_non_null(waiting);
    free(waiting);
    struct hreply r;
    post("/v1/executions/review-1/signals/reject", "{\"why\": \"late\"}", 202, &r);
    assert_true(json_is_true(json_object_get(r.json, "consumed")));
    hreply_free(&r);
    json_t *done = wait_result(keeld.base_url, "review-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    char *out = json_dumps(json_object_get(done, "output"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(out, "{\"payload\":{\"why\":\"late\"},\"signal\":\"reject\"}");
    free(out);
    json_decref(done);

    /* Both sent before the wait starts: the older one (reject) is taken, approve stays. */
    post("/v1/workflows/review-late/executions", "{\"id\": \"review-2\"}", 201, NULL);
    post("/v1/executions/review-2/signals/reject", "1", 202, &r);
    assert_false(json_is_true(json_object_get(r.json, "consumed")));
    hreply_free(&r);
    post("/v1/executions/review-2/signals/approve", "2", 202, NULL);
    done = wait_result(keeld.base_url, "review-2");
    out = json_dumps(json_object_get(done, "output"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(out, "{\"payload\":1,\"signal\":\"reject\"}");
    free(out);
    json_decref(done);
    char *n =
        harness_sql_value(db, "SELECT string_agg(name || ':' || (consumed_seq IS NOT NULL), "
                              "',' ORDER BY id) FROM signals WHERE execution_id = 'review-2'");
    assert_string_equal(n, "reject:true,approve:false");
    free(n);

    post("/v1/workflows/review-t/executions", "{\"id\": \"review-3\"}", 201, NULL);
    done = wait_result(keeld.base_url, "review-3");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "failed");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(done, "error"), "message")),
        "no signal \"a\" or \"b\" arrived within 1s");
    json_decref(done);
}

static long metric(const char *name)
{
    struct hreply r;
    http_get(keeld.base_url, "/metrics", &r);
    assert_int_equal(r.status, 200);
    char *line = NULL;
    assert_true(asprintf(&line, "\n%s ", name) > 0);
    const char *at = strstr(r.body, line);
    assert_non_null(at);
    long v = atol(at + strlen(line));
    free(line);
    hreply_free(&r);
    return v;
}

/* Timers due at the same instant are claimed together and applied in shared transactions,
 * whose writes go as one statement for all their executions (runner/batch_writes.c): each
 * timer fires once and its task is gone, each follow-up attempt is sent once, the executions
 * cancelled while they slept lose their timers, and every history is gapless. */
static bool count_reaches(void *arg)
{
    const char **q = arg;
    char *n = harness_sql_value(db, q[0]);
    bool ok = n && atoi(n) >= atoi(q[1]);
    free(n);
    return ok;
}

static void test_timers_due_together(void **state)
{
    (void)state;
    enum { N = 200, CANCELLED = 50 };
    char *def = NULL;
    assert_true(asprintf(&def,
                         "{\"name\": \"together\", \"steps\": [{\"id\": \"nap\", \"sleep_until\": "
                         "\"${input.at}\"}, {\"id\": \"call\", \"activity\": {\"url\": \"%s/ok\", "
                         "\"input\": \"${input}\"}}, {\"id\": \"go\", \"wait\": {\"signal\": "
                         "\"go\"}}]}",
                         receiver.base_url) > 0);
    post("/v1/workflows", def, 201, NULL);
    free(def);
    long batches_before = metric("keel_transition_batches_total");
    /* Far enough ahead for every start (and cancel) to be in before the timers are due; one
     * that came late would fire at once and still be checked below. */
    time_t due = time(NULL) + 6;
    char at[32], input[64];
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", gmtime(&due));
    snprintf(input, sizeof input, "{\"at\": \"%s\"}", at);
    assert_int_equal(start_range(&keeld, "together", "together", 0, N, input), N);
    for (int i = N - CANCELLED; i < N; i++) {
        char path[96];
        snprintf(path, sizeof path, "/v1/executions/together-%d/cancel", i);
        post(path, "{}", 202, NULL);
    }
    /* Every timer fired and every call completed: the executions wait for "go", with no task
     * left (a timer's task is deleted with the transition that fires it). */
    char want[16];
    snprintf(want, sizeof want, "%d", N - CANCELLED);
    const char *waiting[] = {"SELECT count(*) FROM steps WHERE execution_id LIKE 'together-%' "
                             "AND path = 'go' AND status = 'waiting'",
                             want};
    if (!wait_for(count_reaches, waiting, 60000))
        fail_msg("the timers did not all fire and lead to the wait");
    char *n = harness_sql_value(db, "SELECT count(*) FROM tasks WHERE execution_id LIKE "
                                    "'together-%'");
    assert_string_equal(n, "0");
    free(n);
    n = harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id LIKE "
                              "'together-%' AND type = 'timer_fired'");
    assert_int_equal(atoi(n), N - CANCELLED);
    free(n);
    /* 150 timers claimed 64 at a time cannot all have been applied one per transaction. */
    long batches = metric("keel_transition_batches_total") - batches_before;
    print_message("# %ld transactions applied several transitions at once\n", batches);
    assert_true(batches > 0);
    for (int i = 0; i < N; i++) {
        char id[32], path[96];
        snprintf(id, sizeof id, "together-%d", i);
        if (i < N - CANCELLED) {
            snprintf(path, sizeof path, "/v1/executions/%s/signals/go", id);
            post(path, "{}", 202, NULL);
        }
        json_t *done = wait_result(keeld.base_url, id);
        assert_string_equal(json_string_value(json_object_get(done, "status")),
                            i < N - CANCELLED ? "completed" : "cancelled");
        json_decref(done);
        if (i < N - CANCELLED) {
            char key[48];
            snprintf(key, sizeof key, "%s/call", id);
            assert_key_counts(&receiver, key, 1, 1);
        }
    }
    n = harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id LIKE 'together-%' "
                              "AND type = 'step_completed' AND step = 'call'");
    assert_int_equal(atoi(n), N - CANCELLED);
    free(n);
    /* Every history is gapless: seq runs 1..last_seq. */
    n = harness_sql_value(db, "SELECT count(*) FROM executions e WHERE e.id LIKE 'together-%' AND "
                              "(SELECT count(*) FROM events v WHERE v.execution_id = e.id) <> "
                              "e.last_seq");
    assert_string_equal(n, "0");
    free(n);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_survives_kill9),
        cmocka_unit_test(test_timer_is_punctual),
        cmocka_unit_test(test_signal_before_and_after_wait),
        cmocka_unit_test(test_signal_idempotency_key),
        cmocka_unit_test(test_wait_timeout_fails),
        cmocka_unit_test(test_timers_due_together),
        cmocka_unit_test(test_wait_for_any_signal),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
