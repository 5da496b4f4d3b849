/* Retries through the interpreter: backoff arithmetic, max_interval, Retry-After,
 * schedule_to_close (both as a give-up rule and as a cap on each attempt's timeout),
 * max_attempts, non_retryable_errors, the non_retryable flag, and the errors that result. */
#include "harness.h"

#include "defn/duration.h"
#include "util/timeutil.h"

#include <inttypes.h>

struct attempt {
    int64_t fail_at;     /* relative to T0; the attempt starts at its due time */
    int64_t retry_after; /* -1: none */
    int64_t next_due;    /* relative to T0; -1: no retry, the step fails */
    int64_t timeout_ms;  /* the next attempt's timeout_ms (when it retries) */
};

static const struct {
    const char *name;
    const char *defn; /* the step is named "s" and is the first of two */
    int64_t first_timeout_ms;
    size_t n; /* attempts listed in a */
    struct attempt a[8];
} cases[] = {
    {"coefficient 2: 1s, 2s, 4s, 8s, then max_attempts",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://x\"}, "
     "\"retry\": {\"max_attempts\": 5, \"initial_interval\": \"1s\", \"backoff_coefficient\": "
     "2}}, {\"id\": \"t\", \"sleep\": 0}]}",
     30000,
     5,
     {{50, -1, 1050, 30000},
      {1100, -1, 3100, 30000},
      {3150, -1, 7150, 30000},
      {7200, -1, 15200, 30000},
      {15250, -1, -1, 0}}},
    {"max_interval caps the backoff",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://x\"}, "
     "\"retry\": {\"max_attempts\": 6, \"initial_interval\": \"1s\", \"backoff_coefficient\": 3, "
     "\"max_interval\": \"5s\"}}, {\"id\": \"t\", \"sleep\": 0}]}",
     30000,
     6,
     {{0, -1, 1000, 30000},
      {1000, -1, 4000, 30000},
      {4000, -1, 9000, 30000},
      {9000, -1, 14000, 30000},
      {14000, -1, 19000, 30000},
      {19000, -1, -1, 0}}},
    {"the built-in policy: 5 attempts from 1s doubling",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://x\"}}, "
     "{\"id\": \"t\", \"sleep\": 0}]}",
     30000,
     5,
     {{0, -1, 1000, 30000},
      {1000, -1, 3000, 30000},
      {3000, -1, 7000, 30000},
      {7000, -1, 15000, 30000},
      {15000, -1, -1, 0}}},
    {"defaults.retry and defaults.timeout",
     "{\"name\": \"w\", \"defaults\": {\"timeout\": \"2s\", \"retry\": {\"max_attempts\": 3, "
     "\"initial_interval\": \"250ms\"}}, \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": "
     "\"http://x\"}}, {\"id\": \"t\", \"sleep\": 0}]}",
     2000,
     3,
     {{10, -1, 260, 2000}, {300, -1, 800, 2000}, {900, -1, -1, 0}}},
    {"max_attempts 1: no retry",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://x\"}, "
     "\"retry\": {\"max_attempts\": 1}}, {\"id\": \"t\", \"sleep\": 0}]}",
     30000,
     1,
     {{10, -1, -1, 0}}},
    {"Retry-After larger than the backoff wins; smaller or equal does not",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://x\"}, "
     "\"retry\": {\"max_attempts\": 4}}, {\"id\": \"t\", \"sleep\": 0}]}",
     30000,
     4,
     {{0, 30000, 30000, 30000},
      {30000, 500, 32000, 30000},
      {32000, 4000, 36000, 30000},
      {36000, 0, -1, 0}}},
    {"Retry-After of zero does not shorten the backoff",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://x\"}}, "
     "{\"id\": \"t\", \"sleep\": 0}]}",
     30000,
     1,
     {{0, 0, 1000, 30000}}},
    {"schedule_to_close caps each attempt's timeout and ends the retries",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://x\"}, "
     "\"schedule_to_close\": \"10s\", \"retry\": {\"max_attempts\": 10, \"initial_interval\": "
     "\"2s\"}}, {\"id\": \"t\", \"sleep\": 0}]}",
     10000,
     3,
     {{1000, -1, 3000, 7000}, {3500, -1, 7500, 2500}, {7600, -1, -1, 0}}},
    {"schedule_to_close with a shorter timeout",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://x\"}, "
     "\"timeout\": \"4s\", \"schedule_to_close\": \"10s\", \"retry\": {\"initial_interval\": "
     "\"2s\"}}, {\"id\": \"t\", \"sleep\": 0}]}",
     4000,
     2,
     {{4000, -1, 6000, 4000}, {7000, -1, -1, 0}}},
    {"a next attempt due 1 ms before schedule_to_close still runs",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://x\"}, "
     "\"schedule_to_close\": \"5s\", \"retry\": {\"initial_interval\": \"1s\"}}, {\"id\": "
     "\"t\", \"sleep\": 0}]}",
     5000,
     2,
     {{3999, -1, 4999, 1}, {5000, -1, -1, 0}}},
    {"a next attempt due exactly at schedule_to_close does not",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://x\"}, "
     "\"schedule_to_close\": \"5s\", \"retry\": {\"initial_interval\": \"1s\"}}, {\"id\": "
     "\"t\", \"sleep\": 0}]}",
     5000,
     1,
     {{4000, -1, -1, 0}}},
    {"a Retry-After beyond schedule_to_close ends the retries",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://x\"}, "
     "\"schedule_to_close\": \"1m\"}, {\"id\": \"t\", \"sleep\": 0}]}",
     30000,
     1,
     {{100, 60000, -1, 0}}},
    {"a huge Retry-After is capped by max_interval (100 x 1s by default), not overflowed",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://x\"}}, "
     "{\"id\": \"t\", \"sleep\": 0}]}",
     30000,
     1,
     {{0, INT64_MAX, 100000, 30000}}},
    {"Retry-After: 999999999 parks the step for max_interval at most, not until 2058",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://x\"}, "
     "\"retry\": {\"max_attempts\": 3, \"initial_interval\": \"1s\", \"max_interval\": "
     "\"5m\"}}, {\"id\": \"t\", \"sleep\": 0}]}",
     30000,
     2,
     {{0, 999999999000LL, 300000, 30000}, {300000, 120000, 420000, 30000}}},
};

static void backoff_schedules(void **state)
{
    (void)state;
    json_t *err = parse_json("{\"type\": \"http_5xx\", \"message\": \"HTTP 503\"}");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        print_message("case: %s\n", cases[c].name);
        struct h h;
        h_init(&h, cases[c].defn, "{\"k\": 1}");
        h_feed(&h, in_start(T0));
        assert_int_equal(h.fx.n_tasks, 1);
        assert_int_equal(h.fx.tasks[0].due_at_ms, T0);
        assert_int_equal(json_integer_value(json_object_get(h.fx.tasks[0].payload, "timeout_ms")),
                         cases[c].first_timeout_ms);
        int64_t due = 0;
        for (size_t k = 0; k < cases[c].n; k++) {
            const struct attempt *a = &cases[c].a[k];
            int attempt = (int)k + 1;
            h_feed(&h, in_started(0, attempt, T0 + due));
            assert_false(h.fx.stale);
            struct engine_input in = in_failed(0, attempt, T0 + a->fail_at, err);
            in.retry_after_ms = a->retry_after;
            h_feed(&h, in);
            assert_false(h.fx.stale);
            const struct engine_event *ev = &h.fx.events[0];
            assert_string_equal(ev->type, "attempt_failed");
            assert_int_equal(ev->step, 0);
            assert_int_equal(ev->attempt, attempt);
            expect_json(json_object_get(ev->data, "error"),
                        "{\"type\": \"http_5xx\", \"message\": \"HTTP 503\"}", "errors");
            const json_t *next_at = json_object_get(ev->data, "next_attempt_at");
            if (a->next_due < 0) {
                assert_true(json_is_null(next_at));
                assert_true(h.fx.ended);
                assert_int_equal(h.fx.n_tasks, 0);
                json_t *want = json_pack("{s:s, s:s, s:s, s:i}", "type", "http_5xx", "message",
                                         "HTTP 503", "step", "s", "attempts", attempt);
                assert_true(json_equal(h.fx.error, want));
                json_t *got = events_json(&h.fx);
                json_t *events = json_pack(
                    "[[s, i, i, {s:{s:s, s:s}, s:n}], [s, i, i, {s:O}], [s, i, i, {s:O}]]",
                    "attempt_failed", 0, attempt, "error", "type", "http_5xx", "message",
                    "HTTP 503", "next_attempt_at", "step_failed", 0, attempt, "error", want,
                    "execution_failed", -1, 0, "error", want);
                assert_true(json_equal(got, events));
                json_decref(got);
                json_decref(events);
                json_decref(want);
                expect_changed(&h, "[0, 1]");
                assert_int_equal(h.st.steps[0].status, ENGINE_STEP_FAILED);
                assert_int_equal(h.st.steps[0].attempt, attempt);
                assert_int_equal(h.st.steps[0].completed_at_ms, T0 + a->fail_at);
                assert_int_equal(h.st.steps[1].status, ENGINE_STEP_SKIPPED);
                break;
            }
            char when[32];
            time_format_rfc3339(T0 + a->next_due, when);
            assert_string_equal(json_string_value(next_at), when);
            assert_int_equal(h.fx.n_events, 1);
            assert_false(h.fx.ended);
            expect_changed(&h, "[0]");
            assert_int_equal(h.fx.n_tasks, 1);
            const struct engine_task *t = &h.fx.tasks[0];
            assert_int_equal(t->kind, ENGINE_TASK_ACTIVITY);
            assert_int_equal(t->step, 0);
            assert_int_equal(t->attempt, attempt + 1);
            assert_int_equal(t->due_at_ms, T0 + a->next_due);
            assert_int_equal(json_integer_value(json_object_get(t->payload, "timeout_ms")),
                             a->timeout_ms);
            assert_int_equal(h.st.steps[0].status, ENGINE_STEP_SCHEDULED);
            assert_int_equal(h.st.steps[0].attempt, attempt + 1);
            assert_int_equal(h.st.steps[0].scheduled_at_ms, T0);
            /* The old attempt is stale now, and so is the new one until it starts. */
            h_feed(&h, in_started(0, attempt, T0 + a->next_due));
            assert_true(h.fx.stale);
            h_feed(&h, in_succeeded(0, attempt + 1, T0 + a->next_due, err));
            assert_true(h.fx.stale);
            due = a->next_due;
        }
        h_free(&h);
    }
    json_decref(err);
}

/* Every attempt sends the same input, evaluated from the same context. */
static void input_is_identical_across_attempts(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}},"
           " {\"id\": \"b\", \"activity\": {\"url\": \"http://x/${steps.a.output.k}\", \"input\": "
           "{\"from_a\": \"${steps.a.output}\", \"in\": \"${input}\", \"text\": \"${execution.id} "
           "$${literal}\"}}}]}",
           "{\"n\": [1, 2]}");
    json_t *err = parse_json("{\"type\": \"x\", \"message\": \"\"}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_succeed(&h, 0, 1, T0, "{\"k\": \"v\"}");
    json_t *first = json_deep_copy(h.fx.tasks[0].payload);
    expect_json(first,
                "{\"url\": \"http://x/v\", \"input\": {\"from_a\": {\"k\": \"v\"}, \"in\": "
                "{\"n\": [1, 2]}, \"text\": \"exec-1 ${literal}\"}, \"timeout_ms\": 30000}",
                "payloads");
    int64_t due = T0;
    for (int attempt = 1; attempt < 5; attempt++) {
        h_feed(&h, in_started(1, attempt, due));
        h_feed(&h, in_failed(1, attempt, due + 1, err));
        assert_int_equal(h.fx.n_tasks, 1);
        assert_true(json_equal(h.fx.tasks[0].payload, first));
        due = h.fx.tasks[0].due_at_ms;
    }
    json_decref(first);
    json_decref(err);
    h_free(&h);
}

static void non_retryable_errors_stop_at_once(void **state)
{
    (void)state;
    static const char *const defns[] = {
        "{\"name\": \"w\", \"steps\": [{\"id\": \"charge\", \"activity\": {\"url\": \"http://x\"}, "
        "\"retry\": {\"non_retryable_errors\": [\"Other\", \"PaymentDeclined\"]}}]}",
        "{\"name\": \"w\", \"defaults\": {\"retry\": {\"non_retryable_errors\": "
        "[\"PaymentDeclined\"]}}, \"steps\": [{\"id\": \"charge\", \"activity\": {\"url\": "
        "\"http://x\"}}]}",
    };
    for (size_t c = 0; c < 2; c++) {
        struct h h;
        h_init(&h, defns[c], "{}");
        h_feed(&h, in_start(T0));
        h_feed(&h, in_started(0, 1, T0));
        /* Types match exactly: another case is retried. */
        h_fail(&h, 0, 1, T0 + 1, "{\"type\": \"paymentdeclined\", \"message\": \"no\"}");
        assert_false(h.fx.ended);
        h_feed(&h, in_started(0, 2, T0 + 1001));
        /* The receiver's members are kept; step and attempts are Keel's. */
        h_fail(&h, 0, 2, T0 + 1002,
               "{\"type\": \"PaymentDeclined\", \"message\": \"card declined\", \"detail\": "
               "{\"code\": 51}, \"step\": \"forged\", \"attempts\": 99}");
        expect_events(&h, "[[\"attempt_failed\", 0, 2, {\"error\": {\"type\": \"PaymentDeclined\","
                          " \"message\": \"card declined\", \"detail\": {\"code\": 51}, \"step\": "
                          "\"forged\", \"attempts\": 99}, \"next_attempt_at\": null}],"
                          " [\"step_failed\", 0, 2, {\"error\": {\"type\": \"PaymentDeclined\","
                          " \"message\": \"card declined\", \"detail\": {\"code\": 51}, \"step\": "
                          "\"charge\", \"attempts\": 2}}],"
                          " [\"execution_failed\", -1, 0, {\"error\": {\"type\": "
                          "\"PaymentDeclined\", \"message\": \"card declined\", \"detail\": "
                          "{\"code\": 51}, \"step\": \"charge\", \"attempts\": 2}}]]");
        expect_tasks(&h, "[]");
        expect_changed(&h, "[0]");
        assert_true(h.fx.ended);
        expect_ctx(&h, "{\"input\": {}, \"steps\": {\"charge\": {\"error\": {\"type\": "
                       "\"PaymentDeclined\", \"message\": \"card declined\", \"detail\": "
                       "{\"code\": 51}, \"step\": \"charge\", \"attempts\": 2}}}, \"execution\": "
                       "{\"id\": \"exec-1\", \"workflow\": \"w\"}}");
        h_free(&h);
    }
}

static void non_retryable_flag_stops_at_once(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}, "
           "\"retry\": {\"max_attempts\": 10}}]}",
           "{}");
    json_t *err = parse_json("{\"type\": \"gone\", \"message\": \"HTTP 410\"}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    struct engine_input in = in_failed(0, 1, T0 + 7, err);
    in.non_retryable = true;
    in.retry_after_ms = 5000; /* ignored: there is no next attempt */
    h_feed(&h, in);
    expect_events(&h, "[[\"attempt_failed\", 0, 1, {\"error\": {\"type\": \"gone\", \"message\": "
                      "\"HTTP 410\"}, \"next_attempt_at\": null}],"
                      " [\"step_failed\", 0, 1, {\"error\": {\"type\": \"gone\", \"message\": "
                      "\"HTTP 410\", \"step\": \"a\", \"attempts\": 1}}],"
                      " [\"execution_failed\", -1, 0, {\"error\": {\"type\": \"gone\", "
                      "\"message\": \"HTTP 410\", \"step\": \"a\", \"attempts\": 1}}]]");
    expect_state(&h, "{\"v\": 1, \"status\": \"failed\", \"current\": 0, \"completions\": 0,"
                     " \"steps\": [{\"status\": \"failed\", \"attempt\": 1, \"scheduled_at\": 0,"
                     " \"started_at\": 0, \"completed_at\": 7}]}");
    json_decref(err);
    h_free(&h);
}

/* Whatever the runner sends as the error, the step's error has a string type and message. */
static void odd_errors_are_normalised(void **state)
{
    (void)state;
    static const struct {
        const char *error; /* NULL: no error at all */
        const char *want;
    } odd[] = {
        {NULL, "{\"type\": \"unknown\", \"message\": \"\", \"step\": \"a\", \"attempts\": 1}"},
        {"\"boom\"",
         "{\"type\": \"unknown\", \"message\": \"\", \"step\": \"a\", \"attempts\": 1}"},
        {"{\"type\": 5, \"message\": [\"x\"]}",
         "{\"type\": \"unknown\", \"message\": \"\", \"step\": \"a\", \"attempts\": 1}"},
        {"{\"message\": \"only a message\"}",
         "{\"type\": \"unknown\", \"message\": \"only a message\", \"step\": \"a\", \"attempts\": "
         "1}"},
    };
    for (size_t c = 0; c < sizeof odd / sizeof odd[0]; c++) {
        struct h h;
        h_init(&h,
               "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": "
               "\"http://x\"}, \"retry\": {\"max_attempts\": 1}}]}",
               "{}");
        h_feed(&h, in_start(T0));
        h_feed(&h, in_started(0, 1, T0));
        json_t *err = odd[c].error ? parse_json(odd[c].error) : NULL;
        h_feed(&h, in_failed(0, 1, T0 + 1, err));
        expect_json(h.fx.error, odd[c].want, "errors");
        json_decref(err);
        h_free(&h);
    }
}

/* A retry shows in the state as the next attempt, scheduled; the first start stays. An error
 * the runner left out is retried like any other. */
static void attempts_and_interval_in_the_state(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0 + 5));
    h_feed(&h, in_failed(0, 1, T0 + 6, NULL));
    expect_state(&h, "{\"v\": 1, \"status\": \"running\", \"current\": 0, \"completions\": 0,"
                     " \"steps\": [{\"status\": \"scheduled\", \"attempt\": 2, \"scheduled_at\": 0,"
                     " \"started_at\": 5}]}");
    expect_tasks(&h, "[[\"activity\", 0, 2, 1006, {\"url\": \"http://x\", \"input\": null, "
                     "\"timeout_ms\": 30000}]]");
    h_feed(&h, in_started(0, 2, T0 + 1006));
    h_succeed(&h, 0, 2, T0 + 1100, "{}");
    expect_events(&h, "[[\"step_completed\", 0, 2, {\"output\": {}}],"
                      " [\"execution_completed\", -1, 0, {\"output\": null}]]");
    expect_state(&h, "{\"v\": 1, \"status\": \"completed\", \"current\": 1, \"completions\": 1,"
                     " \"steps\": [{\"status\": \"completed\", \"attempt\": 2, \"scheduled_at\": 0,"
                     " \"started_at\": 5, \"completed_at\": 1100, \"order\": 1}]}");
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_schedules),
        cmocka_unit_test(input_is_identical_across_attempts),
        cmocka_unit_test(non_retryable_errors_stop_at_once),
        cmocka_unit_test(non_retryable_flag_stops_at_once),
        cmocka_unit_test(odd_errors_are_normalised),
        cmocka_unit_test(attempts_and_interval_in_the_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
