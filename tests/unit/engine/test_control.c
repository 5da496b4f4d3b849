/* Controlling an execution from outside: graceful cancel (at every kind of safe point),
 * terminate (while running and while compensating), and redrive of a failed execution. */
#include "harness.h"

/* 0 pay and 1 ship have compensations; 2 a sleep, 3 a wait, 4 a last activity. */
static const char *const FLOW =
    "{\"name\": \"flow\", \"steps\": ["
    " {\"id\": \"pay\", \"activity\": {\"url\": \"http://svc/pay\"}, \"compensate\": {\"url\": "
    "\"http://svc/refund\", \"input\": \"${steps.pay.output}\"}},"
    " {\"id\": \"ship\", \"activity\": {\"url\": \"http://svc/ship\"}, \"retry\": "
    "{\"max_attempts\": 3}, \"compensate\": {\"url\": \"http://svc/unship\"}},"
    " {\"id\": \"nap\", \"sleep\": \"1h\"},"
    " {\"id\": \"ok\", \"wait\": {\"signal\": \"go\", \"timeout\": \"1d\"}},"
    " {\"id\": \"last\", \"activity\": {\"url\": \"http://svc/last\"}}]}";

/* Runs FLOW until `upto` steps completed (pay at T0 + 2, ship at T0 + 4, nap at T0 + 1h). */
static void run_until(struct h *h, int upto)
{
    h_init(h, FLOW, "{}");
    h_feed(h, in_start(T0));
    if (upto >= 1) {
        h_feed(h, in_started(0, 1, T0 + 1));
        h_succeed(h, 0, 1, T0 + 2, "\"P\"");
    }
    if (upto >= 2) {
        h_feed(h, in_started(1, 1, T0 + 3));
        h_succeed(h, 1, 1, T0 + 4, "\"S\"");
    }
    if (upto >= 3)
        h_feed(h, in_timer(2, T0 + HOUR));
}

/* Feeds both compensations (ship's if ship completed, then pay's) successfully from now on. */
static void finish_saga(struct h *h, bool ship, int64_t now)
{
    json_t *out = json_null();
    if (ship) {
        h_feed(h, comp(in_started(1, 1, now)));
        h_feed(h, comp(in_succeeded(1, 1, now + 1, out)));
        assert_false(h->fx.ended);
    }
    h_feed(h, comp(in_started(0, 1, now + 2)));
    h_feed(h, comp(in_succeeded(0, 1, now + 3, out)));
    assert_true(h->fx.ended);
    assert_int_equal(h->st.status, ENGINE_EXEC_CANCELLED);
    expect_events(h, "[[\"compensation_completed\", 0, 1, {\"output\": null}],"
                     " [\"execution_cancelled\", -1, 0, {\"error\": null}]]");
    assert_null(h->fx.error);
    assert_true(h->fx.cancel_tasks);
}

/* ---- cancel ------------------------------------------------------------------------------ */

/* The attempt in flight finishes first; its success is compensated like the others. */
static void cancel_waits_for_the_attempt_in_flight(void **state)
{
    (void)state;
    struct h h;
    run_until(&h, 1);
    h_feed(&h, in_started(1, 1, T0 + 3));
    struct engine_input in = in_cancel(T0 + 10);
    in.reason = "customer asked";
    h_feed(&h, in);
    expect_events(&h, "[[\"cancel_requested\", -1, 0, {\"reason\": \"customer asked\"}]]");
    expect_tasks(&h, "[]");
    expect_changed(&h, "[]");
    assert_false(h.fx.cancel_tasks);
    assert_false(h.fx.ended);
    assert_true(h.st.cancel_requested);
    assert_int_equal(h.st.steps[1].status, ENGINE_STEP_RUNNING);
    /* A second cancel is stale; so is a redrive of a running execution. */
    h_feed(&h, in_cancel(T0 + 11));
    assert_true(h.fx.stale);
    assert_false(h.fx.stale_ended);
    h_feed(&h, in_retry(T0 + 11));
    assert_true(h.fx.stale);

    h_succeed(&h, 1, 1, T0 + 20, "\"S\"");
    expect_events(&h, "[[\"step_completed\", 1, 1, {\"output\": \"S\"}]]");
    expect_tasks(&h, "[[\"compensation\", 1, 1, 20, {\"url\": \"http://svc/unship\", \"input\": "
                     "null, \"timeout_ms\": 30000}]]");
    expect_changed(&h, "[1, 2, 3, 4]");
    expect_state(&h, "{\"v\": 1, \"status\": \"running\", \"current\": 1, \"completions\": 2, "
                     "\"cancel_requested\": true, \"compensating\": true, \"steps\": ["
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 0, "
                     "\"started_at\": 1, \"completed_at\": 2, \"order\": 1},"
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 2, "
                     "\"started_at\": 3, \"completed_at\": 20, \"order\": 2, \"comp\": "
                     "{\"status\": \"scheduled\", \"attempt\": 1}},"
                     "{\"status\": \"skipped\"}, {\"status\": \"skipped\"}, "
                     "{\"status\": \"skipped\"}]}");
    finish_saga(&h, true, T0 + 30);
    expect_state(&h, "{\"v\": 1, \"status\": \"cancelled\", \"current\": 1, \"completions\": 2, "
                     "\"cancel_requested\": true, \"steps\": ["
                     "{\"status\": \"compensated\", \"attempt\": 1, \"scheduled_at\": 0, "
                     "\"started_at\": 1, \"completed_at\": 2, \"order\": 1},"
                     "{\"status\": \"compensated\", \"attempt\": 1, \"scheduled_at\": 2, "
                     "\"started_at\": 3, \"completed_at\": 20, \"order\": 2},"
                     "{\"status\": \"skipped\"}, {\"status\": \"skipped\"}, "
                     "{\"status\": \"skipped\"}]}");
    h_feed(&h, in_cancel(T0 + 40));
    assert_true(h.fx.stale);
    assert_true(h.fx.stale_ended);
    h_free(&h);
}

/* A failure of the attempt in flight is not retried: the step fails, the execution is
 * cancelled (without an error: the cancel is what ended it). */
static void cancel_stops_retries_of_the_attempt_in_flight(void **state)
{
    (void)state;
    struct h h;
    run_until(&h, 1);
    h_feed(&h, in_started(1, 1, T0 + 3));
    h_feed(&h, in_cancel(T0 + 10));
    h_fail(&h, 1, 1, T0 + 20, "{\"type\": \"http_5xx\", \"message\": \"503\"}");
    expect_events(&h, "[[\"attempt_failed\", 1, 1, {\"error\": {\"type\": \"http_5xx\", "
                      "\"message\": \"503\"}, \"next_attempt_at\": null}],"
                      " [\"step_failed\", 1, 1, {\"error\": {\"type\": \"http_5xx\", \"message\": "
                      "\"503\", \"step\": \"ship\", \"attempts\": 1}}]]");
    expect_tasks(&h, "[[\"compensation\", 0, 1, 20, {\"url\": \"http://svc/refund\", \"input\": "
                     "\"P\", \"timeout_ms\": 30000}]]");
    assert_int_equal(h.st.steps[1].status, ENGINE_STEP_FAILED);
    finish_saga(&h, false, T0 + 30);
    assert_int_equal(h.st.steps[1].status, ENGINE_STEP_FAILED);
    h_free(&h);
}

/* A retry waiting for its backoff is interrupted at once. */
static void cancel_interrupts_a_backoff(void **state)
{
    (void)state;
    struct h h;
    run_until(&h, 1);
    h_feed(&h, in_started(1, 1, T0 + 3));
    h_fail(&h, 1, 1, T0 + 4, "{\"type\": \"http_5xx\", \"message\": \"503\"}");
    assert_int_equal(h.st.steps[1].status, ENGINE_STEP_SCHEDULED);
    h_feed(&h, in_cancel(T0 + 100));
    expect_events(&h, "[[\"cancel_requested\", -1, 0, {}]]");
    assert_true(h.fx.cancel_tasks);
    expect_tasks(&h, "[[\"compensation\", 0, 1, 100, {\"url\": \"http://svc/refund\", \"input\": "
                     "\"P\", \"timeout_ms\": 30000}]]");
    expect_changed(&h, "[1, 2, 3, 4]");
    expect_state(&h, "{\"v\": 1, \"status\": \"running\", \"current\": 1, \"completions\": 1, "
                     "\"cancel_requested\": true, \"compensating\": true, \"steps\": ["
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 0, "
                     "\"started_at\": 1, \"completed_at\": 2, \"order\": 1, \"comp\": "
                     "{\"status\": \"scheduled\", \"attempt\": 1}},"
                     "{\"status\": \"skipped\", \"attempt\": 2, \"scheduled_at\": 2, "
                     "\"started_at\": 3},"
                     "{\"status\": \"skipped\"}, {\"status\": \"skipped\"}, "
                     "{\"status\": \"skipped\"}]}");
    /* The retry's task, claimed before it was deleted, is stale. */
    h_feed(&h, in_started(1, 2, T0 + 1004));
    assert_true(h.fx.stale);
    finish_saga(&h, false, T0 + 200);
    h_free(&h);
}

static void cancel_interrupts_a_sleep(void **state)
{
    (void)state;
    struct h h;
    run_until(&h, 2);
    assert_int_equal(h.st.steps[2].status, ENGINE_STEP_SCHEDULED);
    h_feed(&h, in_cancel(T0 + MIN));
    assert_true(h.fx.cancel_tasks);
    expect_changed(&h, "[2, 3, 4]");
    assert_int_equal(h.st.steps[2].status, ENGINE_STEP_SKIPPED);
    /* ship completed last, so its compensation runs first. */
    expect_tasks(&h, "[[\"compensation\", 1, 1, 60000, {\"url\": \"http://svc/unship\", "
                     "\"input\": null, \"timeout_ms\": 30000}]]");
    h_feed(&h, in_timer(2, T0 + HOUR));
    assert_true(h.fx.stale);
    finish_saga(&h, true, T0 + 2 * MIN);
    h_free(&h);
}

static void cancel_interrupts_a_wait(void **state)
{
    (void)state;
    struct h h;
    run_until(&h, 3);
    assert_int_equal(h.st.steps[3].status, ENGINE_STEP_WAITING);
    h_feed(&h, in_cancel(T0 + 2 * HOUR));
    assert_true(h.fx.cancel_tasks);
    expect_changed(&h, "[3, 4]");
    assert_null(h.fx.wants_signal);
    expect_state(&h, "{\"v\": 1, \"status\": \"running\", \"current\": 3, \"completions\": 3, "
                     "\"cancel_requested\": true, \"compensating\": true, \"steps\": ["
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 0, "
                     "\"started_at\": 1, \"completed_at\": 2, \"order\": 1},"
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 2, "
                     "\"started_at\": 3, \"completed_at\": 4, \"order\": 2, \"comp\": "
                     "{\"status\": \"scheduled\", \"attempt\": 1}},"
                     "{\"status\": \"completed\", \"scheduled_at\": 4, \"started_at\": 4, "
                     "\"completed_at\": 3600000, \"order\": 3},"
                     "{\"status\": \"skipped\", \"scheduled_at\": 3600000, \"started_at\": "
                     "3600000}, {\"status\": \"skipped\"}]}");
    h_feed(&h, in_signal(3, T0 + 2 * HOUR, "go", NULL));
    assert_true(h.fx.stale);
    h_feed(&h, in_wait_timeout(3, T0 + DAY));
    assert_true(h.fx.stale);
    finish_saga(&h, true, T0 + 3 * HOUR);
    h_free(&h);
}

/* Before START, or with nothing to compensate, a cancel ends the execution at once. */
static void cancel_with_nothing_to_undo(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, FLOW, "{}");
    h_feed(&h, in_cancel(T0));
    expect_events(&h, "[[\"cancel_requested\", -1, 0, {}],"
                      " [\"execution_cancelled\", -1, 0, {\"error\": null}]]");
    expect_changed(&h, "[0, 1, 2, 3, 4]");
    assert_true(h.fx.ended);
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    h_feed(&h, in_start(T0));
    assert_true(h.fx.stale);
    assert_true(h.fx.stale_ended);
    h_free(&h);

    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}},"
           " {\"id\": \"b\", \"sleep\": \"1h\"}]}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_succeed(&h, 0, 1, T0 + 1, "1");
    h_feed(&h, in_cancel(T0 + 2));
    expect_events(&h, "[[\"cancel_requested\", -1, 0, {}],"
                      " [\"execution_cancelled\", -1, 0, {\"error\": null}]]");
    expect_changed(&h, "[1]");
    assert_true(h.fx.ended);
    assert_true(h.fx.cancel_tasks);
    assert_null(h.fx.error);
    expect_state(&h, "{\"v\": 1, \"status\": \"cancelled\", \"current\": 1, \"completions\": 1, "
                     "\"cancel_requested\": true, \"steps\": ["
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 0, "
                     "\"started_at\": 0, \"completed_at\": 1, \"order\": 1},"
                     "{\"status\": \"skipped\", \"scheduled_at\": 1, \"started_at\": 1}]}");
    h_free(&h);
}

/* A cancel whose compensation fails for good still ends cancelled, with the error set. */
static void cancel_with_a_failed_compensation(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}, "
           "\"compensate\": {\"url\": \"http://x/undo\", \"retry\": {\"max_attempts\": 1}}},"
           " {\"id\": \"b\", \"sleep\": \"1h\"}]}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_succeed(&h, 0, 1, T0 + 1, "1");
    h_feed(&h, in_cancel(T0 + 2));
    h_feed(&h, comp(in_started(0, 1, T0 + 3)));
    json_t *err = parse_json("{\"type\": \"http_5xx\", \"message\": \"500\"}");
    h_feed(&h, comp(in_failed(0, 1, T0 + 4, err)));
    json_decref(err);
    const char *want = "{\"type\": \"compensation_failed\", \"message\": \"the compensation of "
                       "step \\\"a\\\" failed\", \"step\": \"a\", \"compensation_errors\": "
                       "[{\"type\": \"http_5xx\", \"message\": \"500\", \"step\": \"a\", "
                       "\"attempts\": 1, \"compensation\": true}]}";
    assert_true(h.fx.ended);
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    expect_json(h.fx.error, want, "errors");
    assert_string_equal(h.fx.events[h.fx.n_events - 1].type, "execution_cancelled");
    expect_json(json_object_get(h.fx.events[h.fx.n_events - 1].data, "error"), want, "errors");
    assert_int_equal(h.st.steps[0].status, ENGINE_STEP_COMPLETED);
    h_free(&h);
}

/* During the saga of a failure, a cancel is stale: the execution already unwinds. */
static void cancel_during_a_failure_saga_is_stale(void **state)
{
    (void)state;
    struct h h;
    run_until(&h, 1);
    h_feed(&h, in_started(1, 1, T0 + 3));
    json_t *err = parse_json("{\"type\": \"x\", \"message\": \"y\"}");
    struct engine_input in = in_failed(1, 1, T0 + 4, err);
    in.non_retryable = true;
    h_feed(&h, in);
    json_decref(err);
    assert_true(h.st.compensating);
    h_feed(&h, in_cancel(T0 + 5));
    assert_true(h.fx.stale);
    assert_false(h.fx.stale_ended);
    h_free(&h);
}

/* A cancel while an accepted attempt is in flight waits for it; its timeout is not retried. */
static void cancel_waits_for_an_accepted_attempt(void **state)
{
    (void)state;
    struct h h;
    run_until(&h, 1);
    h_feed(&h, in_started(1, 1, T0 + 3));
    h_feed(&h, in_accepted(1, 1, T0 + 4));
    h_feed(&h, in_cancel(T0 + 5));
    expect_events(&h, "[[\"cancel_requested\", -1, 0, {}]]");
    assert_false(h.fx.cancel_tasks);
    h_feed(&h, in_heartbeat(1, 1, T0 + 6)); /* still applies */
    assert_false(h.fx.stale);
    h_feed(&h, in_attempt_timeout(1, 1, T0 + 3 + 30 * SEC));
    expect_events(&h, "[[\"attempt_failed\", 1, 1, {\"error\": {\"type\": \"timeout\", "
                      "\"message\": \"attempt 1 did not complete within 30s\"}, "
                      "\"next_attempt_at\": null}],"
                      " [\"step_failed\", 1, 1, {\"error\": {\"type\": \"timeout\", \"message\": "
                      "\"attempt 1 did not complete within 30s\", \"step\": \"ship\", "
                      "\"attempts\": 1}}]]");
    expect_cancels(&h, "[[\"attempt_timeout\", 1]]");
    finish_saga(&h, false, T0 + MIN);
    h_free(&h);
}

/* ---- terminate --------------------------------------------------------------------------- */

static void terminate_while_running(void **state)
{
    (void)state;
    struct h h;
    run_until(&h, 1);
    h_feed(&h, in_started(1, 1, T0 + 3));
    h_feed(&h, in_accepted(1, 1, T0 + 4));
    struct engine_input in = in_terminate(T0 + 5);
    in.reason = "runaway";
    h_feed(&h, in);
    expect_events(&h, "[[\"execution_terminated\", -1, 0, {\"reason\": \"runaway\"}]]");
    expect_tasks(&h, "[]");
    expect_changed(&h, "[1, 2, 3, 4]");
    assert_true(h.fx.ended);
    assert_true(h.fx.cancel_tasks);
    assert_null(h.fx.error);
    assert_null(h.fx.output);
    /* No compensation: pay stays completed. */
    expect_state(&h, "{\"v\": 1, \"status\": \"terminated\", \"current\": 1, \"completions\": 1, "
                     "\"steps\": ["
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 0, "
                     "\"started_at\": 1, \"completed_at\": 2, \"order\": 1},"
                     "{\"status\": \"skipped\", \"attempt\": 1, \"scheduled_at\": 2, "
                     "\"started_at\": 3},"
                     "{\"status\": \"skipped\"}, {\"status\": \"skipped\"}, "
                     "{\"status\": \"skipped\"}]}");

    /* Every later input is stale, and says the execution had ended. */
    json_t *out = json_true(), *err = parse_json("{\"type\": \"x\", \"message\": \"\"}");
    const struct engine_input late[] = {
        in_start(T0 + 6),
        in_started(1, 1, T0 + 6),
        in_redelivered(1, 1, T0 + 6),
        in_succeeded(1, 1, T0 + 6, out),
        in_failed(1, 1, T0 + 6, err),
        in_accepted(1, 1, T0 + 6),
        in_heartbeat(1, 1, T0 + 6),
        in_heartbeat_timeout(1, 1, T0 + 6),
        in_attempt_timeout(1, 1, T0 + 6),
        in_timer(2, T0 + 6),
        in_signal(3, T0 + 6, "go", out),
        in_wait_timeout(3, T0 + 6),
        in_cancel(T0 + 6),
        in_terminate(T0 + 6),
        in_retry(T0 + 6),
        comp(in_started(0, 1, T0 + 6)),
        comp(in_succeeded(0, 1, T0 + 6, out)),
    };
    for (size_t i = 0; i < sizeof late / sizeof late[0]; i++) {
        print_message("late input %zu\n", i);
        h_feed(&h, late[i]);
        assert_true(h.fx.stale);
        assert_true(h.fx.stale_ended);
    }
    json_decref(out);
    json_decref(err);
    h_free(&h);
}

static void terminate_while_compensating(void **state)
{
    (void)state;
    struct h h;
    run_until(&h, 2);
    h_feed(&h, in_cancel(T0 + 10));
    h_feed(&h, comp(in_started(1, 1, T0 + 11)));
    assert_true(h.st.compensating);
    h_feed(&h, in_terminate(T0 + 12));
    expect_events(&h, "[[\"execution_terminated\", -1, 0, {}]]");
    assert_true(h.fx.ended);
    assert_true(h.fx.cancel_tasks);
    expect_changed(&h, "[]");
    expect_state(&h, "{\"v\": 1, \"status\": \"terminated\", \"current\": 2, \"completions\": 2, "
                     "\"cancel_requested\": true, \"steps\": ["
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 0, "
                     "\"started_at\": 1, \"completed_at\": 2, \"order\": 1},"
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 2, "
                     "\"started_at\": 3, \"completed_at\": 4, \"order\": 2, \"comp\": "
                     "{\"status\": \"interrupted\", \"attempt\": 1}},"
                     "{\"status\": \"skipped\", \"scheduled_at\": 4, \"started_at\": 4},"
                     "{\"status\": \"skipped\"}, {\"status\": \"skipped\"}]}");
    json_t *out = json_null();
    h_feed(&h, comp(in_succeeded(1, 1, T0 + 13, out)));
    assert_true(h.fx.stale);
    assert_true(h.fx.stale_ended);
    h_feed(&h, in_retry(T0 + 14));
    assert_true(h.fx.stale);
    h_free(&h);
}

/* ---- redrive ----------------------------------------------------------------------------- */

static const char *const REDRIVE =
    "{\"name\": \"r\", \"steps\": ["
    " {\"id\": \"a\", \"activity\": {\"url\": \"http://x/a\"}},"
    " {\"id\": \"b\", \"activity\": {\"url\": \"http://x/b/${steps.a.output}\"}, \"timeout\": "
    "\"5s\", \"schedule_to_close\": \"10s\", \"retry\": {\"max_attempts\": 2}, \"compensate\": "
    "{\"url\": \"http://x/undo-b\"}},"
    " {\"id\": \"c\", \"sleep\": \"1s\"}],"
    " \"output\": [\"${steps.a.output}\", \"${steps.b.output}\"]}";

/* Runs REDRIVE until b fails for good at T0 + 2 s (its two attempts used). */
static void run_redrive_to_failure(struct h *h)
{
    h_init(h, REDRIVE, "{}");
    h_feed(h, in_start(T0));
    h_feed(h, in_started(0, 1, T0));
    h_succeed(h, 0, 1, T0 + 1, "7");
    h_feed(h, in_started(1, 1, T0 + 2));
    h_fail(h, 1, 1, T0 + 3, "{\"type\": \"http_5xx\", \"message\": \"503\"}");
    h_feed(h, in_started(1, 2, T0 + 1003));
    h_fail(h, 1, 2, T0 + 2 * SEC, "{\"type\": \"http_5xx\", \"message\": \"503\"}");
    assert_true(h->fx.ended);
    assert_int_equal(h->st.status, ENGINE_EXEC_FAILED);
}

static void redrive_resumes_at_the_failed_step(void **state)
{
    (void)state;
    struct h h;
    run_redrive_to_failure(&h);
    h_feed(&h, in_retry(T0 + HOUR));
    expect_events(&h, "[[\"execution_retried\", -1, 0, {\"step\": \"b\"}],"
                      " [\"step_scheduled\", 1, 0, {\"kind\": \"activity\"}]]");
    /* A fresh attempt count, and schedule_to_close counts from now: 5 s, not a stale cap. */
    expect_tasks(&h, "[[\"activity\", 1, 1, 3600000, {\"url\": \"http://x/b/7\", \"input\": null, "
                     "\"timeout_ms\": 5000}]]");
    expect_changed(&h, "[1, 2]");
    assert_true(h.fx.clear_error);
    assert_false(h.fx.ended);
    assert_false(h.fx.cancel_tasks);
    expect_state(&h, "{\"v\": 1, \"status\": \"running\", \"current\": 1, \"completions\": 1, "
                     "\"steps\": [{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 0, "
                     "\"started_at\": 0, \"completed_at\": 1, \"order\": 1},"
                     "{\"status\": \"scheduled\", \"attempt\": 1, \"scheduled_at\": 3600000},"
                     "{\"status\": \"pending\"}]}");
    /* a's output is kept; b's old error is gone. */
    expect_ctx(&h, "{\"input\": {}, \"steps\": {\"a\": {\"output\": 7}, \"b\": {}}, "
                   "\"execution\": {\"id\": \"exec-1\", \"workflow\": \"r\"}}");
    /* A second redrive while running is stale. */
    h_feed(&h, in_retry(T0 + HOUR));
    assert_true(h.fx.stale);
    /* The old attempts are stale; the new one runs to the end. */
    h_feed(&h, in_started(1, 2, T0 + HOUR));
    assert_true(h.fx.stale);
    h_feed(&h, in_started(1, 1, T0 + HOUR + 1));
    h_succeed(&h, 1, 1, T0 + HOUR + 2, "8");
    h_feed(&h, in_timer(2, T0 + HOUR + 2 + SEC));
    assert_true(h.fx.ended);
    expect_json(h.fx.output, "[7, 8]", "outputs");
    h_free(&h);
}

/* Redrive may fail again, and be redriven again; an expression error fails at once. */
static void redrive_can_fail_again(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": "
           "\"${input.u}\"}}, {\"id\": \"b\", \"sleep\": 0}]}",
           "{}");
    h_feed(&h, in_start(T0));
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    h_feed(&h, in_retry(T0 + 1));
    expect_events(&h,
                  "[[\"execution_retried\", -1, 0, {\"step\": \"a\"}],"
                  " [\"step_scheduled\", 0, 0, {\"kind\": \"activity\"}],"
                  " [\"step_failed\", 0, 0, {\"error\": {\"type\": \"expression\", \"message\": "
                  "\"${input.u}: \\\"input\\\" has no field \\\"u\\\"\", \"step\": \"a\", "
                  "\"attempts\": 0, \"pointer\": \"/steps/0/activity/url\"}}],"
                  " [\"execution_failed\", -1, 0, {\"error\": {\"type\": \"expression\", "
                  "\"message\": \"${input.u}: \\\"input\\\" has no field \\\"u\\\"\", "
                  "\"step\": \"a\", \"attempts\": 0, \"pointer\": "
                  "\"/steps/0/activity/url\"}}]]");
    assert_true(h.fx.clear_error);
    assert_true(h.fx.ended);
    assert_non_null(h.fx.error);
    expect_changed(&h, "[0, 1]");
    h_feed(&h, in_retry(T0 + 2));
    assert_false(h.fx.stale);
    h_free(&h);
}

static void redrive_is_refused_when_it_does_not_apply(void **state)
{
    (void)state;
    struct h h;
    /* Running and completed executions. */
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"sleep\": 0}], \"output\": "
           "\"${steps.a.output.x}\"}",
           "{}");
    h_feed(&h, in_retry(T0));
    assert_true(h.fx.stale);
    h_feed(&h, in_start(T0));
    h_feed(&h, in_retry(T0));
    assert_true(h.fx.stale);
    /* The output template failed: there is no failed step to resume. */
    h_feed(&h, in_timer(0, T0));
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    h_feed(&h, in_retry(T0 + 1));
    assert_true(h.fx.stale);
    assert_true(h.fx.stale_ended);
    h_free(&h);

    /* A terminated execution. */
    h_init(&h, REDRIVE, "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_succeed(&h, 0, 1, T0, "7");
    h_feed(&h, in_started(1, 1, T0));
    h_succeed(&h, 1, 1, T0, "8");
    h_feed(&h, in_terminate(T0 + 1));
    h_feed(&h, in_retry(T0 + 2));
    assert_true(h.fx.stale);
    assert_true(h.fx.stale_ended);
    h_free(&h);

    /* A cancelled one. */
    h_init(&h, REDRIVE, "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_cancel(T0 + 1));
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    h_feed(&h, in_retry(T0 + 2));
    assert_true(h.fx.stale);
    h_free(&h);
}

/* The failure saga ran a compensation: the execution cannot be redriven. */
static void redrive_is_refused_after_compensation(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}, "
           "\"compensate\": {\"url\": \"http://x/undo\"}}, {\"id\": \"b\", \"activity\": "
           "{\"url\": \"http://y\"}, \"retry\": {\"max_attempts\": 1}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_succeed(&h, 0, 1, T0, "1");
    h_feed(&h, in_started(1, 1, T0));
    h_fail(&h, 1, 1, T0 + 1, "{\"type\": \"x\", \"message\": \"\"}");
    /* While the saga runs, the execution is not failed yet. */
    h_feed(&h, in_retry(T0 + 2));
    assert_true(h.fx.stale);
    h_feed(&h, comp(in_started(0, 1, T0 + 2)));
    json_t *out = json_null();
    h_feed(&h, comp(in_succeeded(0, 1, T0 + 3, out)));
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    h_feed(&h, in_retry(T0 + 4));
    assert_true(h.fx.stale);
    assert_true(h.fx.stale_ended);
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cancel_waits_for_the_attempt_in_flight),
        cmocka_unit_test(cancel_stops_retries_of_the_attempt_in_flight),
        cmocka_unit_test(cancel_interrupts_a_backoff),
        cmocka_unit_test(cancel_interrupts_a_sleep),
        cmocka_unit_test(cancel_interrupts_a_wait),
        cmocka_unit_test(cancel_with_nothing_to_undo),
        cmocka_unit_test(cancel_with_a_failed_compensation),
        cmocka_unit_test(cancel_during_a_failure_saga_is_stale),
        cmocka_unit_test(cancel_waits_for_an_accepted_attempt),
        cmocka_unit_test(terminate_while_running),
        cmocka_unit_test(terminate_while_compensating),
        cmocka_unit_test(redrive_resumes_at_the_failed_step),
        cmocka_unit_test(redrive_can_fail_again),
        cmocka_unit_test(redrive_is_refused_when_it_does_not_apply),
        cmocka_unit_test(redrive_is_refused_after_compensation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
