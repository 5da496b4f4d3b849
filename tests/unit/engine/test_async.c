/* Asynchronous activities: a 202 accept, heartbeats that move their deadline, completion and
 * failure after the accept, the attempt and heartbeat timeouts (retried per the policy), stale
 * inputs about attempts that are over, and the task-kind helpers the runner maps tasks with.
 * Compensations that complete asynchronously are in test_saga.c. */
#include "harness.h"

/* "job" is asynchronous: 1 h per attempt, a heartbeat every 30 s, 3 attempts 1 s apart. */
static const char *const ASYNC =
    "{\"name\": \"w\", \"steps\": ["
    " {\"id\": \"job\", \"activity\": {\"url\": \"http://x/job\"}, \"timeout\": \"1h\", "
    "\"heartbeat_timeout\": \"30s\", \"retry\": {\"max_attempts\": 3, \"initial_interval\": "
    "\"1s\"}},"
    " {\"id\": \"next\", \"sleep\": \"1s\"}]}";

static void accept_heartbeat_complete(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, ASYNC, "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0 + 1));
    /* Timeouts and heartbeats do not apply before the accept... except that a heartbeat that
     * overtakes the 202 is taken, and changes nothing. */
    h_feed(&h, in_attempt_timeout(0, 1, T0 + 2));
    assert_true(h.fx.stale);
    h_feed(&h, in_heartbeat_timeout(0, 1, T0 + 2));
    assert_true(h.fx.stale);
    h_feed(&h, in_heartbeat(0, 1, T0 + 2));
    assert_false(h.fx.stale);
    expect_events(&h, "[]");
    expect_tasks(&h, "[]");
    expect_cancels(&h, "[]");

    h_feed(&h, in_accepted(0, 1, T0 + 3));
    expect_events(&h, "[[\"attempt_accepted\", 0, 1, {\"timeout_at\": "
                      "\"2026-01-01T01:00:00.001Z\", \"heartbeat_timeout_at\": "
                      "\"2026-01-01T00:00:30.003Z\"}]]");
    expect_tasks(&h, "[[\"attempt_timeout\", 0, 1, 3600001, null],"
                     " [\"heartbeat_timeout\", 0, 1, 30003, null]]");
    expect_changed(&h, "[]");
    expect_cancels(&h, "[]");
    assert_false(h.fx.cancel_tasks);
    expect_state(&h, "{\"v\": 1, \"status\": \"running\", \"current\": 0, \"completions\": 0,"
                     " \"steps\": [{\"status\": \"running\", \"attempt\": 1, \"scheduled_at\": 0,"
                     " \"started_at\": 1, \"accepted\": true}, {\"status\": \"pending\"}]}");
    /* A second accept, an accept of another attempt and a redelivery are stale. */
    h_feed(&h, in_accepted(0, 1, T0 + 4));
    assert_true(h.fx.stale);
    h_feed(&h, in_accepted(0, 2, T0 + 4));
    assert_true(h.fx.stale);
    h_feed(&h, in_redelivered(0, 1, T0 + 4));
    assert_true(h.fx.stale);
    h_feed(&h, in_heartbeat(0, 2, T0 + 4));
    assert_true(h.fx.stale);

    h_feed(&h, in_heartbeat(0, 1, T0 + 20 * SEC));
    expect_events(&h, "[]");
    expect_cancels(&h, "[[\"heartbeat_timeout\", 0]]");
    expect_tasks(&h, "[[\"heartbeat_timeout\", 0, 1, 50000, null]]");
    expect_changed(&h, "[]");
    h_feed(&h, in_heartbeat(0, 1, T0 + 40 * SEC));
    expect_tasks(&h, "[[\"heartbeat_timeout\", 0, 1, 70000, null]]");

    h_succeed(&h, 0, 1, T0 + 60 * SEC, "{\"done\": true}");
    expect_events(&h, "[[\"step_completed\", 0, 1, {\"output\": {\"done\": true}}],"
                      " [\"step_scheduled\", 1, 0, {\"kind\": \"sleep\"}],"
                      " [\"timer_started\", 1, 0, {\"due_at\": \"2026-01-01T00:01:01.000Z\"}]]");
    expect_cancels(&h, "[[\"attempt_timeout\", 0], [\"heartbeat_timeout\", 0]]");
    expect_tasks(&h, "[[\"timer\", 1, 0, 61000, null]]");
    assert_false(h.fx.cancel_tasks);
    expect_state(&h, "{\"v\": 1, \"status\": \"running\", \"current\": 1, \"completions\": 1,"
                     " \"steps\": [{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 0,"
                     " \"started_at\": 1, \"completed_at\": 60000, \"order\": 1},"
                     " {\"status\": \"scheduled\", \"scheduled_at\": 60000, \"started_at\": "
                     "60000}]}");

    /* Everything about the finished attempt is stale now. */
    const struct engine_input late[] = {
        in_heartbeat(0, 1, T0 + 61 * SEC),       in_heartbeat_timeout(0, 1, T0 + 70 * SEC),
        in_attempt_timeout(0, 1, T0 + HOUR),     in_accepted(0, 1, T0 + 61 * SEC),
        comp(in_heartbeat(0, 1, T0 + 61 * SEC)),
    };
    for (size_t i = 0; i < sizeof late / sizeof late[0]; i++) {
        h_feed(&h, late[i]);
        assert_true(h.fx.stale);
        assert_false(h.fx.stale_ended);
    }
    h_free(&h);
}

/* A missed heartbeat fails the attempt as "heartbeat_timeout" and it is retried. */
static void heartbeat_timeout_retries(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, ASYNC, "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_feed(&h, in_accepted(0, 1, T0 + 1));
    h_feed(&h, in_heartbeat_timeout(0, 1, T0 + 30 * SEC + 1));
    expect_events(&h, "[[\"attempt_failed\", 0, 1, {\"error\": {\"type\": \"heartbeat_timeout\", "
                      "\"message\": \"attempt 1 sent no heartbeat within 30s\"}, "
                      "\"next_attempt_at\": \"2026-01-01T00:00:31.001Z\"}]]");
    expect_cancels(&h, "[[\"attempt_timeout\", 0], [\"heartbeat_timeout\", 0]]");
    expect_tasks(&h, "[[\"activity\", 0, 2, 31001, {\"url\": \"http://x/job\", \"input\": null, "
                     "\"timeout_ms\": 3600000}]]");
    expect_changed(&h, "[0]");
    expect_state(&h, "{\"v\": 1, \"status\": \"running\", \"current\": 0, \"completions\": 0,"
                     " \"steps\": [{\"status\": \"scheduled\", \"attempt\": 2, \"scheduled_at\": 0,"
                     " \"started_at\": 0}, {\"status\": \"pending\"}]}");
    /* The late result of attempt 1 is stale; attempt 2 runs synchronously this time. */
    h_succeed(&h, 0, 1, T0 + 31 * SEC, "1");
    assert_true(h.fx.stale);
    h_feed(&h, in_started(0, 2, T0 + 32 * SEC));
    expect_state(&h, "{\"v\": 1, \"status\": \"running\", \"current\": 0, \"completions\": 0,"
                     " \"steps\": [{\"status\": \"running\", \"attempt\": 2, \"scheduled_at\": 0,"
                     " \"started_at\": 0, \"attempt_started_at\": 32000}, {\"status\": "
                     "\"pending\"}]}");
    h_feed(&h, in_heartbeat_timeout(0, 1, T0 + 33 * SEC));
    assert_true(h.fx.stale);
    h_succeed(&h, 0, 2, T0 + 33 * SEC, "2");
    expect_cancels(&h, "[]"); /* never accepted: no timeouts to drop */
    assert_int_equal(h.st.steps[0].status, ENGINE_STEP_COMPLETED);
    h_free(&h);
}

/* The attempt timeout fails the attempt as "timeout"; with no retry left the step fails. */
static void attempt_timeout_fails_the_step(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}, "
           "\"timeout\": \"10m\", \"retry\": {\"max_attempts\": 1}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0 + 5));
    h_feed(&h, in_accepted(0, 1, T0 + 6));
    expect_events(&h, "[[\"attempt_accepted\", 0, 1, {\"timeout_at\": "
                      "\"2026-01-01T00:10:00.005Z\", \"heartbeat_timeout_at\": null}]]");
    expect_tasks(&h, "[[\"attempt_timeout\", 0, 1, 600005, null]]");
    /* Without a heartbeat_timeout, heartbeats change nothing and cannot time out. */
    h_feed(&h, in_heartbeat(0, 1, T0 + MIN));
    expect_tasks(&h, "[]");
    expect_cancels(&h, "[]");
    h_feed(&h, in_heartbeat_timeout(0, 1, T0 + MIN));
    assert_true(h.fx.stale);
    h_feed(&h, in_attempt_timeout(0, 1, T0 + 10 * MIN + 5));
    const char *err = "{\"type\": \"timeout\", \"message\": \"attempt 1 did not complete within "
                      "10m\", \"step\": \"a\", \"attempts\": 1}";
    expect_events(&h, "[[\"attempt_failed\", 0, 1, {\"error\": {\"type\": \"timeout\", "
                      "\"message\": \"attempt 1 did not complete within 10m\"}, "
                      "\"next_attempt_at\": null}],"
                      " [\"step_failed\", 0, 1, {\"error\": {\"type\": \"timeout\", \"message\": "
                      "\"attempt 1 did not complete within 10m\", \"step\": \"a\", \"attempts\": "
                      "1}}],"
                      " [\"execution_failed\", -1, 0, {\"error\": {\"type\": \"timeout\", "
                      "\"message\": \"attempt 1 did not complete within 10m\", \"step\": \"a\", "
                      "\"attempts\": 1}}]]");
    expect_cancels(&h, "[[\"attempt_timeout\", 0]]");
    expect_json(h.fx.error, err, "errors");
    /* A completion that arrives after the timeout is stale, and says the execution ended. */
    h_succeed(&h, 0, 1, T0 + 11 * MIN, "1");
    assert_true(h.fx.stale);
    assert_true(h.fx.stale_ended);
    h_free(&h);
}

/* schedule_to_close caps the attempt timeout of an accepted attempt; "timeout" can be listed in
 * non_retryable_errors; a failure reported after the accept is retried like any other. */
static void timeouts_follow_the_policy(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}, "
           "\"timeout\": \"1h\", \"schedule_to_close\": \"10m\", \"retry\": "
           "{\"non_retryable_errors\": [\"timeout\"]}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0 + 5));
    h_feed(&h, in_accepted(0, 1, T0 + 6));
    h_fail(&h, 0, 1, T0 + MIN, "{\"type\": \"busy\", \"message\": \"try later\"}");
    expect_cancels(&h, "[[\"attempt_timeout\", 0]]");
    expect_tasks(&h, "[[\"activity\", 0, 2, 61000, {\"url\": \"http://x\", \"input\": null, "
                     "\"timeout_ms\": 539000}]]");
    h_feed(&h, in_started(0, 2, T0 + 61 * SEC));
    h_feed(&h, in_accepted(0, 2, T0 + 62 * SEC));
    expect_tasks(&h, "[[\"attempt_timeout\", 0, 2, 600000, null]]");
    h_feed(&h, in_attempt_timeout(0, 2, T0 + 10 * MIN));
    expect_json(h.fx.error,
                "{\"type\": \"timeout\", \"message\": \"attempt 2 did not complete before "
                "schedule_to_close (10m) ran out\", \"step\": \"a\", \"attempts\": 2}",
                "errors");
    assert_true(h.fx.ended);
    h_free(&h);
}

/* A redelivery before the accept restarts the attempt's clock; the state written by an older
 * keeld (no attempt_started_at) reads the attempt's start as the step's first start. */
static void attempt_clock_and_old_states(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, ASYNC, "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0 + 1));
    h_feed(&h, in_redelivered(0, 1, T0 + MIN));
    expect_state(&h, "{\"v\": 1, \"status\": \"running\", \"current\": 0, \"completions\": 0,"
                     " \"steps\": [{\"status\": \"running\", \"attempt\": 1, \"scheduled_at\": 0,"
                     " \"started_at\": 1, \"attempt_started_at\": 60000}, {\"status\": "
                     "\"pending\"}]}");
    h_feed(&h, in_accepted(0, 1, T0 + MIN + 1));
    expect_tasks(&h, "[[\"attempt_timeout\", 0, 1, 3660000, null],"
                     " [\"heartbeat_timeout\", 0, 1, 90001, null]]");
    h_free(&h);

    h_init(&h, ASYNC, "{}");
    engine_state_free(&h.st);
    json_t *old = parse_json("{\"v\": 1, \"status\": \"running\", \"current\": 0, \"completions\": "
                             "0, \"steps\": [{\"status\": \"running\", \"attempt\": 1, "
                             "\"scheduled_at\": 1767225600000, \"started_at\": 1767225600100}, "
                             "{\"status\": \"pending\"}]}");
    assert_int_equal(engine_state_from_json(old, h.d, &h.st), 0);
    json_decref(old);
    assert_int_equal(h.st.steps[0].attempt_started_at_ms, T0 + 100);
    h_feed(&h, in_accepted(0, 1, T0 + 200));
    expect_tasks(&h, "[[\"attempt_timeout\", 0, 1, 3600100, null],"
                     " [\"heartbeat_timeout\", 0, 1, 30200, null]]");
    h_free(&h);
}

/* ---- the helpers the runner maps tasks with ------------------------------------------------ */

static void task_kinds_and_inputs(void **state)
{
    (void)state;
    static const struct {
        enum engine_task_kind kind;
        const char *name;
        enum engine_input_kind input;
        bool compensation, sends;
    } kinds[] = {
        {ENGINE_TASK_ACTIVITY, "activity", ENGINE_IN_ATTEMPT_STARTED, false, true},
        {ENGINE_TASK_TIMER, "timer", ENGINE_IN_TIMER_FIRED, false, false},
        {ENGINE_TASK_WAIT_TIMEOUT, "wait_timeout", ENGINE_IN_WAIT_TIMED_OUT, false, false},
        {ENGINE_TASK_COMPENSATION, "compensation", ENGINE_IN_ATTEMPT_STARTED, true, true},
        {ENGINE_TASK_ATTEMPT_TIMEOUT, "attempt_timeout", ENGINE_IN_ATTEMPT_TIMED_OUT, false, false},
        {ENGINE_TASK_HEARTBEAT_TIMEOUT, "heartbeat_timeout", ENGINE_IN_HEARTBEAT_TIMED_OUT, false,
         false},
        {ENGINE_TASK_COMPENSATION_TIMEOUT, "compensation_timeout", ENGINE_IN_ATTEMPT_TIMED_OUT,
         true, false},
        {ENGINE_TASK_COMPENSATION_HEARTBEAT_TIMEOUT, "compensation_heartbeat_timeout",
         ENGINE_IN_HEARTBEAT_TIMED_OUT, true, false},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        assert_string_equal(engine_task_kind_name(kinds[i].kind), kinds[i].name);
        enum engine_task_kind k;
        assert_int_equal(engine_task_kind_from_name(kinds[i].name, &k), 0);
        assert_int_equal(k, kinds[i].kind);
        struct engine_input in = {.kind = ENGINE_IN_START, .compensation = !kinds[i].compensation};
        assert_int_equal(engine_input_for_task(kinds[i].kind, &in), 0);
        assert_int_equal(in.kind, kinds[i].input);
        assert_int_equal(in.compensation, kinds[i].compensation);
        assert_int_equal(engine_task_sends(kinds[i].kind), kinds[i].sends);
    }
    enum engine_task_kind k = ENGINE_TASK_TIMER;
    assert_int_equal(engine_task_kind_from_name("Activity", &k), -1);
    assert_int_equal(engine_task_kind_from_name("unknown", &k), -1);
    assert_int_equal(engine_task_kind_from_name(NULL, &k), -1);
    assert_int_equal(engine_task_kind_from_name("timer", NULL), -1);
    assert_int_equal(k, ENGINE_TASK_TIMER);
    struct engine_input in = {.kind = ENGINE_IN_START};
    assert_int_equal(engine_input_for_task((enum engine_task_kind)99, &in), -1);
    assert_int_equal(in.kind, ENGINE_IN_START);
    assert_int_equal(engine_input_for_task(ENGINE_TASK_TIMER, NULL), -1);
    assert_string_equal(engine_comp_status_name(ENGINE_COMP_INTERRUPTED), "interrupted");
    assert_string_equal(engine_comp_status_name((enum engine_comp_status)99), "unknown");
}

static void attempt_in_flight(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, ASYNC, "{}");
    assert_false(engine_attempt_in_flight(&h.st, 0, 1, false));
    h_feed(&h, in_start(T0));
    assert_false(engine_attempt_in_flight(&h.st, 0, 1, false)); /* scheduled, not sent */
    h_feed(&h, in_started(0, 1, T0));
    assert_true(engine_attempt_in_flight(&h.st, 0, 1, false));
    assert_false(engine_attempt_in_flight(&h.st, 0, 2, false));
    assert_false(engine_attempt_in_flight(&h.st, 0, 1, true));
    assert_false(engine_attempt_in_flight(&h.st, 1, 1, false));
    assert_false(engine_attempt_in_flight(&h.st, 9, 1, false));
    assert_false(engine_attempt_in_flight(NULL, 0, 1, false));
    h_feed(&h, in_terminate(T0 + 1));
    assert_false(engine_attempt_in_flight(&h.st, 0, 1, false));
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accept_heartbeat_complete),
        cmocka_unit_test(heartbeat_timeout_retries),
        cmocka_unit_test(attempt_timeout_fails_the_step),
        cmocka_unit_test(timeouts_follow_the_policy),
        cmocka_unit_test(attempt_clock_and_old_states),
        cmocka_unit_test(task_kinds_and_inputs),
        cmocka_unit_test(attempt_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
