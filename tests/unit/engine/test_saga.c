/* Sagas through the interpreter: a step that fails for good undoes the completed steps in reverse
 * order of completion, each compensation once, retried on its own policy, failing for good
 * without stopping the saga; the saga's progress survives a reload between any two inputs, and
 * replay stays deterministic. Cancel and terminate are in test_control.c. */
#include "harness.h"

/* Step 2 ("c") fails with a non-retryable error; a and b have compensations, d is never
 * reached. b's compensation reads both outputs; it is retried up to 3 times, 2 s apart. */
static const char *const SAGA =
    "{\"name\": \"saga\", \"steps\": ["
    " {\"id\": \"a\", \"activity\": {\"url\": \"http://svc/a\"},"
    "  \"compensate\": {\"url\": \"http://svc/undo-a\", \"input\": {\"id\": "
    "\"${steps.a.output.id}\"}}},"
    " {\"id\": \"b\", \"activity\": {\"url\": \"http://svc/b\"},"
    "  \"compensate\": {\"url\": \"http://svc/undo-b/${steps.b.output.id}\", \"input\": "
    "\"${steps.a.output}\", \"timeout\": \"5s\", \"retry\": {\"max_attempts\": 3, "
    "\"initial_interval\": \"2s\"}}},"
    " {\"id\": \"c\", \"activity\": {\"url\": \"http://svc/c\"}, \"retry\": "
    "{\"non_retryable_errors\": [\"Declined\"]}, \"compensate\": {\"url\": \"http://svc/undo-c\"}},"
    " {\"id\": \"d\", \"activity\": {\"url\": \"http://svc/d\"}, \"compensate\": {\"url\": "
    "\"http://svc/undo-d\"}}]}";

#define C_ERROR                                                                                    \
    "{\"type\": \"Declined\", \"message\": \"card declined\", \"step\": \"c\", \"attempts\": 1}"

/* Runs SAGA up to c's failure at T0 + 6 with feed. */
static void run_to_failure(void (*feed)(struct h *, struct engine_input), struct h *h)
{
    json_t *a = parse_json("{\"id\": \"A1\"}"), *b = parse_json("{\"id\": \"B1\"}");
    json_t *declined = parse_json("{\"type\": \"Declined\", \"message\": \"card declined\"}");
    h_init(h, SAGA, "{}");
    feed(h, in_start(T0));
    feed(h, in_started(0, 1, T0 + 1));
    feed(h, in_succeeded(0, 1, T0 + 2, a));
    feed(h, in_started(1, 1, T0 + 3));
    feed(h, in_succeeded(1, 1, T0 + 4, b));
    feed(h, in_started(2, 1, T0 + 5));
    feed(h, in_failed(2, 1, T0 + 6, declined));
    json_decref(a);
    json_decref(b);
    json_decref(declined);
}

/* The happy saga, input by input. */
static void failure_compensates_in_reverse_order(void **state)
{
    (void)state;
    struct h h;
    run_to_failure(h_feed, &h);
    expect_events(&h, "[[\"attempt_failed\", 2, 1, {\"error\": {\"type\": \"Declined\", "
                      "\"message\": \"card declined\"}, \"next_attempt_at\": null}],"
                      " [\"step_failed\", 2, 1, {\"error\": " C_ERROR "}]]");
    /* b completed last, so its compensation runs first; c (the failed step) and d (never run)
     * have none to run. */
    expect_tasks(&h, "[[\"compensation\", 1, 1, 6, {\"url\": \"http://svc/undo-b/B1\", \"input\": "
                     "{\"id\": \"A1\"}, \"timeout_ms\": 5000}]]");
    expect_changed(&h, "[2, 3]");
    assert_false(h.fx.ended);
    assert_false(h.fx.cancel_tasks);
    assert_int_equal(h.st.status, ENGINE_EXEC_RUNNING);
    expect_state(&h, "{\"v\": 1, \"status\": \"running\", \"current\": 2, \"completions\": 2, "
                     "\"compensating\": true, \"steps\": ["
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 0, "
                     "\"started_at\": 1, \"completed_at\": 2, \"order\": 1},"
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 2, "
                     "\"started_at\": 3, \"completed_at\": 4, \"order\": 2, \"comp\": "
                     "{\"status\": \"scheduled\", \"attempt\": 1}},"
                     "{\"status\": \"failed\", \"attempt\": 1, \"scheduled_at\": 4, "
                     "\"started_at\": 5, \"completed_at\": 6},"
                     "{\"status\": \"skipped\"}]}");
    /* Inputs about the failed step, or a's compensation before its turn, are stale. */
    h_feed(&h, in_started(2, 2, T0 + 7));
    assert_true(h.fx.stale);
    assert_false(h.fx.stale_ended);
    h_feed(&h, comp(in_started(0, 1, T0 + 7)));
    assert_true(h.fx.stale);
    h_feed(&h, in_started(1, 1, T0 + 7)); /* b's own attempt, not its compensation */
    assert_true(h.fx.stale);

    h_feed(&h, comp(in_started(1, 1, T0 + 7)));
    expect_events(&h, "[[\"compensation_started\", 1, 1, {}]]");
    expect_changed(&h, "[]");
    assert_true(engine_attempt_in_flight(&h.st, 1, 1, true));
    assert_false(engine_attempt_in_flight(&h.st, 1, 1, false));
    /* A second start without the redelivery flag is stale; with it, it is journaled. */
    h_feed(&h, comp(in_started(1, 1, T0 + 8)));
    assert_true(h.fx.stale);
    h_feed(&h, comp(in_redelivered(1, 1, T0 + 8)));
    expect_events(&h, "[[\"compensation_started\", 1, 1, {\"redelivery\": true}]]");

    json_t *out = parse_json("{\"refunded\": true}");
    h_feed(&h, comp(in_succeeded(1, 1, T0 + 9, out)));
    expect_events(&h, "[[\"compensation_completed\", 1, 1, {\"output\": {\"refunded\": true}}]]");
    expect_tasks(&h, "[[\"compensation\", 0, 1, 9, {\"url\": \"http://svc/undo-a\", \"input\": "
                     "{\"id\": \"A1\"}, \"timeout_ms\": 30000}]]");
    expect_changed(&h, "[1]");
    assert_int_equal(h.st.steps[1].status, ENGINE_STEP_COMPENSATED);
    /* The same result again is stale. */
    h_feed(&h, comp(in_succeeded(1, 1, T0 + 9, out)));
    assert_true(h.fx.stale);

    h_feed(&h, comp(in_started(0, 1, T0 + 10)));
    expect_events(&h, "[[\"compensation_started\", 0, 1, {}]]");
    h_feed(&h, comp(in_succeeded(0, 1, T0 + 11, out)));
    expect_events(&h, "[[\"compensation_completed\", 0, 1, {\"output\": {\"refunded\": true}}],"
                      " [\"execution_failed\", -1, 0, {\"error\": " C_ERROR "}]]");
    expect_tasks(&h, "[]");
    expect_changed(&h, "[0]");
    assert_true(h.fx.ended);
    assert_true(h.fx.cancel_tasks);
    expect_json(h.fx.error, C_ERROR, "errors");
    expect_state(&h, "{\"v\": 1, \"status\": \"failed\", \"current\": 2, \"completions\": 2, "
                     "\"steps\": ["
                     "{\"status\": \"compensated\", \"attempt\": 1, \"scheduled_at\": 0, "
                     "\"started_at\": 1, \"completed_at\": 2, \"order\": 1},"
                     "{\"status\": \"compensated\", \"attempt\": 1, \"scheduled_at\": 2, "
                     "\"started_at\": 3, \"completed_at\": 4, \"order\": 2},"
                     "{\"status\": \"failed\", \"attempt\": 1, \"scheduled_at\": 4, "
                     "\"started_at\": 5, \"completed_at\": 6},"
                     "{\"status\": \"skipped\"}]}");
    /* Outputs stay in the context: the rows of compensated steps keep them. */
    expect_ctx(&h, "{\"input\": {}, \"steps\": {\"a\": {\"output\": {\"id\": \"A1\"}}, \"b\": "
                   "{\"output\": {\"id\": \"B1\"}}, \"c\": {\"error\": " C_ERROR "}},"
                   " \"execution\": {\"id\": \"exec-1\", \"workflow\": \"saga\"}}");

    /* Redrive is refused once anything was undone; late results are stale. */
    h_feed(&h, in_retry(T0 + 12));
    assert_true(h.fx.stale);
    assert_true(h.fx.stale_ended);
    h_feed(&h, comp(in_succeeded(0, 1, T0 + 12, out)));
    assert_true(h.fx.stale);
    assert_true(h.fx.stale_ended);
    json_decref(out);
    h_free(&h);
}

/* The whole history of SAGA where b's compensation fails twice (a retry, then with Retry-After)
 * and succeeds, or (final) fails three times; every compensation event is counted. */
static void run_saga(void (*feed)(struct h *, struct engine_input), struct h *h, bool final,
                     json_t *log)
{
    json_t *e503 = parse_json("{\"type\": \"http_5xx\", \"message\": \"503\"}");
    json_t *ok = parse_json("\"undone\"");
    run_to_failure(feed, h);
    struct engine_input ins[16];
    size_t n = 0;
    ins[n++] = comp(in_started(1, 1, T0 + 10));
    ins[n++] = comp(in_failed(1, 1, T0 + 20, e503));
    ins[n++] = comp(in_started(1, 1, T0 + 30)); /* stale: attempt 1 is over */
    ins[n++] = comp(in_started(1, 2, T0 + 2020));
    ins[n] = comp(in_failed(1, 2, T0 + 2030, e503));
    ins[n++].retry_after_ms = 10000;
    ins[n++] = comp(in_started(1, 3, T0 + 12030));
    ins[n++] =
        final ? comp(in_failed(1, 3, T0 + 12040, e503)) : comp(in_succeeded(1, 3, T0 + 12040, ok));
    ins[n++] = comp(in_started(0, 1, T0 + 12050));
    ins[n++] = comp(in_succeeded(0, 1, T0 + 12060, ok));
    ins[n++] = comp(in_succeeded(0, 1, T0 + 12070, ok)); /* stale: ended */
    for (size_t i = 0; i < n; i++) {
        feed(h, ins[i]);
        json_array_append_new(
            log, json_pack("{s:b, s:o, s:o, s:o, s:o, s:b, s:b, s:O?, s:o, s:o}", "stale",
                           h->fx.stale, "events", events_json(&h->fx), "tasks", tasks_json(&h->fx),
                           "cancels", cancels_json(&h->fx), "changed", changed_json(&h->fx),
                           "ended", h->fx.ended, "cancel", h->fx.cancel_tasks, "error", h->fx.error,
                           "state", engine_state_to_json(&h->st), "ctx", json_deep_copy(h->ctx)));
    }
    json_decref(e503);
    json_decref(ok);
}

/* How many events of type about step the log holds. */
static int count_events(const json_t *log, const char *type, long step)
{
    int n = 0;
    size_t i, k;
    json_t *entry, *e;
    json_array_foreach(log, i, entry)
    {
        json_array_foreach(json_object_get(entry, "events"), k, e)
        {
            if (strcmp(json_string_value(json_array_get(e, 0)), type) == 0 &&
                json_integer_value(json_array_get(e, 1)) == step)
                n++;
        }
    }
    return n;
}

static void compensation_retries_then_succeeds(void **state)
{
    (void)state;
    struct h h;
    json_t *log = json_array();
    run_saga(h_feed, &h, false, log);
    expect_json(json_object_get(json_array_get(log, 1), "events"),
                "[[\"attempt_failed\", 1, 1, {\"compensation\": true, \"error\": {\"type\": "
                "\"http_5xx\", \"message\": \"503\"}, \"next_attempt_at\": "
                "\"2026-01-01T00:00:02.020Z\"}]]",
                "events");
    expect_json(json_object_get(json_array_get(log, 1), "tasks"),
                "[[\"compensation\", 1, 2, 2020, {\"url\": \"http://svc/undo-b/B1\", \"input\": "
                "{\"id\": \"A1\"}, \"timeout_ms\": 5000}]]",
                "tasks");
    /* The step's row does not change while its compensation retries. */
    expect_json(json_object_get(json_array_get(log, 1), "changed"), "[]", "changed steps");
    expect_json(json_object_get(json_object_get(json_array_get(log, 1), "state"), "steps"),
                "[{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 1767225600000, "
                "\"started_at\": 1767225600001, \"completed_at\": 1767225600002, \"order\": 1},"
                " {\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 1767225600002, "
                "\"started_at\": 1767225600003, \"completed_at\": 1767225600004, \"order\": 2, "
                "\"comp\": {\"status\": \"scheduled\", \"attempt\": 2}},"
                " {\"status\": \"failed\", \"attempt\": 1, \"scheduled_at\": 1767225600004, "
                "\"started_at\": 1767225600005, \"completed_at\": 1767225600006},"
                " {\"status\": \"skipped\"}]",
                "steps");
    assert_true(json_is_true(json_object_get(json_array_get(log, 2), "stale")));
    /* Retry-After beyond the backoff wins for a compensation too. */
    expect_json(json_object_get(json_array_get(log, 4), "tasks"),
                "[[\"compensation\", 1, 3, 12030, {\"url\": \"http://svc/undo-b/B1\", \"input\": "
                "{\"id\": \"A1\"}, \"timeout_ms\": 5000}]]",
                "tasks");
    expect_json(json_object_get(json_array_get(log, 6), "events"),
                "[[\"compensation_completed\", 1, 3, {\"output\": \"undone\"}]]", "events");
    json_t *last = json_array_get(log, 8);
    expect_json(json_object_get(last, "events"),
                "[[\"compensation_completed\", 0, 1, {\"output\": \"undone\"}],"
                " [\"execution_failed\", -1, 0, {\"error\": " C_ERROR "}]]",
                "events");
    assert_true(json_is_true(json_object_get(json_array_get(log, 9), "stale")));
    /* Exactly once each, in the order b then a; nothing for c and d. */
    assert_int_equal(count_events(log, "compensation_completed", 1), 1);
    assert_int_equal(count_events(log, "compensation_completed", 0), 1);
    assert_int_equal(count_events(log, "compensation_started", 1), 3);
    assert_int_equal(count_events(log, "compensation_started", 0), 1);
    assert_int_equal(count_events(log, "compensation_started", 2), 0);
    assert_int_equal(count_events(log, "compensation_started", 3), 0);
    assert_int_equal(count_events(log, "compensation_failed", 1), 0);
    assert_int_equal(h.st.steps[0].status, ENGINE_STEP_COMPENSATED);
    assert_int_equal(h.st.steps[1].status, ENGINE_STEP_COMPENSATED);
    json_decref(log);
    h_free(&h);
}

#define B_COMP_ERROR                                                                               \
    "{\"type\": \"http_5xx\", \"message\": \"503\", \"step\": \"b\", \"attempts\": 3, "            \
    "\"compensation\": true}"

static void compensation_final_failure_continues_the_saga(void **state)
{
    (void)state;
    struct h h;
    json_t *log = json_array();
    run_saga(h_feed, &h, true, log);
    expect_json(json_object_get(json_array_get(log, 6), "events"),
                "[[\"attempt_failed\", 1, 3, {\"compensation\": true, \"error\": {\"type\": "
                "\"http_5xx\", \"message\": \"503\"}, \"next_attempt_at\": null}],"
                " [\"compensation_failed\", 1, 3, {\"error\": " B_COMP_ERROR "}]]",
                "events");
    /* The saga goes on with a. */
    expect_json(json_object_get(json_array_get(log, 6), "tasks"),
                "[[\"compensation\", 0, 1, 12040, {\"url\": \"http://svc/undo-a\", \"input\": "
                "{\"id\": \"A1\"}, \"timeout_ms\": 30000}]]",
                "tasks");
    expect_json(json_object_get(json_array_get(log, 6), "changed"), "[1]", "changed steps");
    json_t *last = json_array_get(log, 8);
    const char *want = "{\"type\": \"Declined\", \"message\": \"card declined\", \"step\": \"c\", "
                       "\"attempts\": 1, \"compensation_errors\": [" B_COMP_ERROR "]}";
    expect_json(json_object_get(last, "error"), want, "errors");
    expect_json(json_object_get(last, "events"),
                "[[\"compensation_completed\", 0, 1, {\"output\": \"undone\"}],"
                " [\"execution_failed\", -1, 0, {\"error\": {\"type\": \"Declined\", \"message\": "
                "\"card declined\", \"step\": \"c\", \"attempts\": 1, \"compensation_errors\": "
                "[" B_COMP_ERROR "]}}]]",
                "events");
    /* b stays completed, with its output, and its row shows the compensation's error. */
    assert_int_equal(h.st.steps[1].status, ENGINE_STEP_COMPLETED);
    assert_int_equal(h.st.steps[1].comp.status, ENGINE_COMP_FAILED);
    assert_int_equal(h.st.steps[0].status, ENGINE_STEP_COMPENSATED);
    expect_json(json_object_get(json_object_get(json_object_get(h.ctx, "steps"), "b"), "error"),
                B_COMP_ERROR, "context errors");
    expect_json(json_object_get(json_object_get(json_object_get(h.ctx, "steps"), "b"), "output"),
                "{\"id\": \"B1\"}", "outputs");
    expect_json(json_object_get(json_object_get(json_array_get(log, 8), "state"), "steps"),
                "[{\"status\": \"compensated\", \"attempt\": 1, \"scheduled_at\": 1767225600000, "
                "\"started_at\": 1767225600001, \"completed_at\": 1767225600002, \"order\": 1},"
                " {\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 1767225600002, "
                "\"started_at\": 1767225600003, \"completed_at\": 1767225600004, \"order\": 2, "
                "\"comp\": {\"status\": \"failed\", \"attempt\": 3}},"
                " {\"status\": \"failed\", \"attempt\": 1, \"scheduled_at\": 1767225600004, "
                "\"started_at\": 1767225600005, \"completed_at\": 1767225600006},"
                " {\"status\": \"skipped\"}]",
                "steps");
    assert_int_equal(count_events(log, "compensation_failed", 1), 1);
    assert_int_equal(count_events(log, "compensation_completed", 0), 1);
    assert_int_equal(count_events(log, "compensation_completed", 1), 0);
    /* Nothing is redriven after a saga, even one whose compensations failed. */
    h_feed(&h, in_retry(T0 + DAY));
    assert_true(h.fx.stale);
    json_decref(log);
    h_free(&h);
}

/* The state and context come back from their JSON text before every input: the saga goes on
 * exactly as in memory, both when b's compensation succeeds and when it fails for good. */
static void saga_survives_reload_between_inputs(void **state)
{
    (void)state;
    for (int final = 0; final < 2; final++) {
        struct h mem, disk;
        json_t *log_mem = json_array(), *log_disk = json_array();
        run_saga(h_feed, &mem, final, log_mem);
        run_saga(h_feed_reloaded, &disk, final, log_disk);
        char *a = dump(log_mem), *b = dump(log_disk);
        assert_string_equal(a, b);
        free(a);
        free(b);
        json_decref(log_mem);
        json_decref(log_disk);
        h_free(&mem);
        h_free(&disk);
    }
}

/* Steps without compensate are passed over; a failure of the first step has nothing to undo. */
static void steps_without_compensation_are_passed_over(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": ["
           " {\"id\": \"a\", \"activity\": {\"url\": \"http://x/a\"}, \"compensate\": {\"url\": "
           "\"http://x/undo-a\"}},"
           " {\"id\": \"b\", \"activity\": {\"url\": \"http://x/b\"}},"
           " {\"id\": \"c\", \"sleep\": \"1s\"},"
           " {\"id\": \"d\", \"activity\": {\"url\": \"${input.missing}\"}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_succeed(&h, 0, 1, T0 + 1, "1");
    h_feed(&h, in_started(1, 1, T0 + 2));
    h_succeed(&h, 1, 1, T0 + 3, "2");
    /* d fails on its expression when c's timer fires: b and c have nothing to undo. */
    h_feed(&h, in_timer(2, T0 + 1003));
    assert_string_equal(h.fx.events[h.fx.n_events - 1].type, "step_failed");
    expect_tasks(&h, "[[\"compensation\", 0, 1, 1003, {\"url\": \"http://x/undo-a\", \"input\": "
                     "null, \"timeout_ms\": 30000}]]");
    assert_false(h.fx.ended);
    h_feed(&h, comp(in_started(0, 1, T0 + 1004)));
    h_succeed(&h, 0, 1, T0 + 1005, "1"); /* a's own attempt: stale */
    assert_true(h.fx.stale);
    json_t *out = json_null();
    h_feed(&h, comp(in_succeeded(0, 1, T0 + 1005, out)));
    assert_true(h.fx.ended);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")), "expression");
    assert_null(json_object_get(h.fx.error, "compensation_errors"));
    assert_int_equal(h.st.steps[1].status, ENGINE_STEP_COMPLETED);
    assert_int_equal(h.st.steps[2].status, ENGINE_STEP_COMPLETED);
    h_free(&h);

    /* The first step fails: the saga is empty and the execution fails in the same call. */
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}, "
           "\"retry\": {\"max_attempts\": 1}, \"compensate\": {\"url\": \"http://x/undo\"}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_fail(&h, 0, 1, T0 + 1, "{\"type\": \"x\", \"message\": \"y\"}");
    expect_events(&h, "[[\"attempt_failed\", 0, 1, {\"error\": {\"type\": \"x\", \"message\": "
                      "\"y\"}, \"next_attempt_at\": null}],"
                      " [\"step_failed\", 0, 1, {\"error\": {\"type\": \"x\", \"message\": \"y\", "
                      "\"step\": \"a\", \"attempts\": 1}}],"
                      " [\"execution_failed\", -1, 0, {\"error\": {\"type\": \"x\", \"message\": "
                      "\"y\", \"step\": \"a\", \"attempts\": 1}}]]");
    expect_tasks(&h, "[]");
    h_free(&h);
}

/* A compensation whose url does not evaluate fails for good at once, and the saga goes on; a
 * compensation can be non-retryable by flag or by its policy's non_retryable_errors. */
static void compensation_errors_without_attempts(void **state)
{
    (void)state;
    struct h h;
    h_init(
        &h,
        "{\"name\": \"w\", \"steps\": ["
        " {\"id\": \"a\", \"activity\": {\"url\": \"http://x/a\"}, \"compensate\": {\"url\": "
        "\"http://x/undo-a\", \"retry\": {\"non_retryable_errors\": [\"Nope\"]}}},"
        " {\"id\": \"b\", \"activity\": {\"url\": \"http://x/b\"}, \"compensate\": {\"url\": "
        "\"http://x/${steps.b.output.missing}\"}},"
        " {\"id\": \"c\", \"activity\": {\"url\": \"http://x/c\"}, \"compensate\": {\"url\": "
        "\"${steps.c.output}\"}},"
        " {\"id\": \"d\", \"activity\": {\"url\": \"http://x/d\"}, \"retry\": {\"max_attempts\": "
        "1}}]}",
        "{}");
    h_feed(&h, in_start(T0));
    for (size_t i = 0; i < 3; i++) {
        h_feed(&h, in_started(i, 1, T0 + (int64_t)i));
        h_succeed(&h, i, 1, T0 + (int64_t)i, i == 2 ? "\"not a url\"" : "{}");
    }
    h_feed(&h, in_started(3, 1, T0 + 10));
    h_fail(&h, 3, 1, T0 + 11, "{\"type\": \"boom\", \"message\": \"d broke\"}");
    const char *c_err = "{\"type\": \"invalid_url\", \"message\": \"url \\\"not a url\\\" is not "
                        "an http:// or https:// URL with a host and no spaces\", \"step\": \"c\", "
                        "\"attempts\": 0, \"compensation\": true}";
    const char *b_err =
        "{\"type\": \"expression\", \"message\": \"${steps.b.output.missing}: "
        "\\\"steps.b.output\\\" has no field \\\"missing\\\"\", \"step\": \"b\", \"attempts\": 0, "
        "\"pointer\": \"/steps/1/compensate/url\", \"compensation\": true}";
    char want[2048];
    snprintf(want, sizeof want,
             "[[\"attempt_failed\", 3, 1, {\"error\": {\"type\": \"boom\", \"message\": \"d "
             "broke\"}, \"next_attempt_at\": null}],"
             " [\"step_failed\", 3, 1, {\"error\": {\"type\": \"boom\", \"message\": \"d broke\", "
             "\"step\": \"d\", \"attempts\": 1}}],"
             " [\"compensation_failed\", 2, 0, {\"error\": %s}],"
             " [\"compensation_failed\", 1, 0, {\"error\": %s}]]",
             c_err, b_err);
    expect_events(&h, want);
    expect_tasks(&h, "[[\"compensation\", 0, 1, 11, {\"url\": \"http://x/undo-a\", \"input\": "
                     "null, \"timeout_ms\": 30000}]]");
    expect_changed(&h, "[1, 2, 3]");
    assert_int_equal(h.st.steps[1].comp.status, ENGINE_COMP_FAILED);
    assert_int_equal(h.st.steps[1].comp.attempt, 0);

    /* a's compensation: a non_retryable_errors type stops it at once. */
    h_feed(&h, comp(in_started(0, 1, T0 + 12)));
    h_feed(&h, comp(in_failed(0, 1, T0 + 13, NULL))); /* no error given: retried */
    expect_tasks(&h, "[[\"compensation\", 0, 2, 1013, {\"url\": \"http://x/undo-a\", \"input\": "
                     "null, \"timeout_ms\": 30000}]]");
    h_feed(&h, comp(in_started(0, 2, T0 + 1013)));
    json_t *nope = parse_json("{\"type\": \"Nope\", \"message\": \"no\"}");
    h_feed(&h, comp(in_failed(0, 2, T0 + 1014, nope)));
    json_decref(nope);
    assert_true(h.fx.ended);
    snprintf(want, sizeof want,
             "{\"type\": \"boom\", \"message\": \"d broke\", \"step\": \"d\", \"attempts\": 1, "
             "\"compensation_errors\": [%s, %s, {\"type\": \"Nope\", \"message\": \"no\", "
             "\"step\": \"a\", \"attempts\": 2, \"compensation\": true}]}",
             c_err, b_err);
    expect_json(h.fx.error, want, "errors");
    h_free(&h);

    /* The receiver's non_retryable flag stops a compensation too. */
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x/a\"}, "
           "\"compensate\": {\"url\": \"http://x/undo-a\"}}, {\"id\": \"b\", \"activity\": "
           "{\"url\": \"http://x/b\"}, \"retry\": {\"max_attempts\": 1}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_succeed(&h, 0, 1, T0, "{}");
    h_feed(&h, in_started(1, 1, T0));
    h_fail(&h, 1, 1, T0, "{\"type\": \"x\", \"message\": \"\"}");
    h_feed(&h, comp(in_started(0, 1, T0 + 1)));
    json_t *gone = parse_json("{\"type\": \"gone\", \"message\": \"410\"}");
    struct engine_input in = comp(in_failed(0, 1, T0 + 2, gone));
    in.non_retryable = true;
    h_feed(&h, in);
    json_decref(gone);
    assert_true(h.fx.ended);
    expect_json(json_object_get(h.fx.error, "compensation_errors"),
                "[{\"type\": \"gone\", \"message\": \"410\", \"step\": \"a\", \"attempts\": 1, "
                "\"compensation\": true}]",
                "errors");
    h_free(&h);
}

/* Compensations may complete asynchronously: accept, heartbeat and both timeouts use the
 * COMPENSATION_* task kinds. */
static void asynchronous_compensation(void **state)
{
    (void)state;
    struct h h;
    h_init(
        &h,
        "{\"name\": \"w\", \"defaults\": {\"heartbeat_timeout\": \"10s\"}, \"steps\": ["
        " {\"id\": \"a\", \"activity\": {\"url\": \"http://x/a\"}, \"compensate\": {\"url\": "
        "\"http://x/undo-a\", \"timeout\": \"1m\", \"retry\": {\"max_attempts\": 2}}},"
        " {\"id\": \"b\", \"activity\": {\"url\": \"http://x/b\"}, \"retry\": {\"max_attempts\": "
        "1}}]}",
        "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_succeed(&h, 0, 1, T0, "{}");
    h_feed(&h, in_started(1, 1, T0));
    h_fail(&h, 1, 1, T0, "{\"type\": \"x\", \"message\": \"\"}");
    h_feed(&h, comp(in_started(0, 1, T0 + SEC)));
    h_feed(&h, comp(in_accepted(0, 1, T0 + 2 * SEC)));
    expect_events(&h, "[[\"attempt_accepted\", 0, 1, {\"timeout_at\": \"2026-01-01T00:01:01.000Z\","
                      " \"heartbeat_timeout_at\": \"2026-01-01T00:00:12.000Z\", \"compensation\": "
                      "true}]]");
    expect_tasks(&h, "[[\"compensation_timeout\", 0, 1, 61000, null],"
                     " [\"compensation_heartbeat_timeout\", 0, 1, 12000, null]]");
    /* The step's own kinds do not apply to its compensation. */
    h_feed(&h, in_heartbeat(0, 1, T0 + 5 * SEC));
    assert_true(h.fx.stale);
    h_feed(&h, comp(in_heartbeat(0, 1, T0 + 5 * SEC)));
    expect_events(&h, "[]");
    expect_cancels(&h, "[[\"compensation_heartbeat_timeout\", 0]]");
    expect_tasks(&h, "[[\"compensation_heartbeat_timeout\", 0, 1, 15000, null]]");
    h_feed(&h, comp(in_heartbeat_timeout(0, 1, T0 + 15 * SEC)));
    expect_events(&h, "[[\"attempt_failed\", 0, 1, {\"compensation\": true, \"error\": {\"type\": "
                      "\"heartbeat_timeout\", \"message\": \"attempt 1 sent no heartbeat within "
                      "10s\"}, \"next_attempt_at\": \"2026-01-01T00:00:16.000Z\"}]]");
    expect_cancels(&h, "[[\"compensation_timeout\", 0], [\"compensation_heartbeat_timeout\", 0]]");
    expect_tasks(&h, "[[\"compensation\", 0, 2, 16000, {\"url\": \"http://x/undo-a\", \"input\": "
                     "null, \"timeout_ms\": 60000}]]");
    h_feed(&h, comp(in_started(0, 2, T0 + 16 * SEC)));
    h_feed(&h, comp(in_accepted(0, 2, T0 + 17 * SEC)));
    h_feed(&h, comp(in_attempt_timeout(0, 2, T0 + 76 * SEC)));
    expect_events(&h,
                  "[[\"attempt_failed\", 0, 2, {\"compensation\": true, \"error\": {\"type\": "
                  "\"timeout\", \"message\": \"attempt 2 did not complete within 1m\"}, "
                  "\"next_attempt_at\": null}],"
                  " [\"compensation_failed\", 0, 2, {\"error\": {\"type\": \"timeout\", "
                  "\"message\": \"attempt 2 did not complete within 1m\", \"step\": \"a\", "
                  "\"attempts\": 2, \"compensation\": true}}],"
                  " [\"execution_failed\", -1, 0, {\"error\": {\"type\": \"x\", \"message\": "
                  "\"\", \"step\": \"b\", \"attempts\": 1, \"compensation_errors\": [{\"type\": "
                  "\"timeout\", \"message\": \"attempt 2 did not complete within 1m\", "
                  "\"step\": \"a\", \"attempts\": 2, \"compensation\": true}]}}]]");
    expect_cancels(&h, "[[\"compensation_timeout\", 0], [\"compensation_heartbeat_timeout\", 0]]");
    h_free(&h);
}

/* ---- replay ------------------------------------------------------------------------------ */

static const char *const MIXED =
    "{\"name\": \"mixed\", \"defaults\": {\"heartbeat_timeout\": \"20s\"}, \"steps\": ["
    " {\"id\": \"charge\", \"activity\": {\"url\": \"http://pay/charge\"}, \"compensate\": "
    "{\"url\": \"http://pay/refund\", \"input\": \"${steps.charge.output}\"}},"
    " {\"id\": \"nap\", \"sleep\": \"5m\"},"
    " {\"id\": \"reserve\", \"activity\": {\"url\": \"http://stock/reserve\"}, \"timeout\": "
    "\"1h\", \"compensate\": {\"url\": \"http://stock/release\"}},"
    " {\"id\": \"approve\", \"wait\": {\"signal\": \"ok\"}},"
    " {\"id\": \"ship\", \"activity\": {\"url\": \"http://ship\"}}]}";

/* A history with an asynchronous attempt, heartbeats, a redelivery, a cancel that waits for the
 * attempt in flight and a saga with a retried compensation. */
static void run_mixed(void (*feed)(struct h *, struct engine_input), struct h *h, json_t *log)
{
    json_t *charge = parse_json("{\"id\": \"ch\"}"), *res = parse_json("{\"r\": 1}");
    json_t *e500 = parse_json("{\"type\": \"http_5xx\", \"message\": \"500\"}");
    struct engine_input ins[32];
    size_t n = 0;
    ins[n++] = in_start(T0);
    ins[n++] = in_started(0, 1, T0 + 1);
    ins[n++] = in_succeeded(0, 1, T0 + 2, charge);
    ins[n++] = in_timer(1, T0 + 2 + 5 * MIN);
    ins[n++] = in_started(2, 1, T0 + 5 * MIN + 10);
    ins[n++] = in_redelivered(2, 1, T0 + 5 * MIN + 20);
    ins[n++] = in_accepted(2, 1, T0 + 5 * MIN + 30);
    ins[n++] = in_accepted(2, 1, T0 + 5 * MIN + 31); /* stale */
    ins[n++] = in_heartbeat(2, 1, T0 + 5 * MIN + 40);
    ins[n++] = in_cancel(T0 + 5 * MIN + 50);
    ins[n++] = in_cancel(T0 + 5 * MIN + 51); /* stale */
    ins[n++] = in_heartbeat(2, 1, T0 + 5 * MIN + 60);
    ins[n++] = in_succeeded(2, 1, T0 + 5 * MIN + 70, res);
    ins[n++] = comp(in_started(2, 1, T0 + 5 * MIN + 80));
    ins[n++] = comp(in_succeeded(2, 1, T0 + 5 * MIN + 90, res));
    ins[n++] = comp(in_started(0, 1, T0 + 5 * MIN + 100));
    ins[n++] = comp(in_failed(0, 1, T0 + 5 * MIN + 110, e500));
    ins[n++] = comp(in_started(0, 2, T0 + 5 * MIN + 1110));
    ins[n++] = comp(in_accepted(0, 2, T0 + 5 * MIN + 1120));
    ins[n++] = comp(in_succeeded(0, 2, T0 + 5 * MIN + 1130, res));
    ins[n++] = in_signal(3, T0 + 6 * MIN, "ok", res); /* stale */
    for (size_t i = 0; i < n; i++) {
        feed(h, ins[i]);
        json_array_append_new(
            log,
            json_pack("{s:b, s:b, s:o, s:o, s:o, s:o, s:b, s:b, s:b, s:O?, s:o, s:o}", "stale",
                      h->fx.stale, "stale_ended", h->fx.stale_ended, "events", events_json(&h->fx),
                      "tasks", tasks_json(&h->fx), "cancels", cancels_json(&h->fx), "changed",
                      changed_json(&h->fx), "ended", h->fx.ended, "cancel", h->fx.cancel_tasks,
                      "clear", h->fx.clear_error, "error", h->fx.error, "state",
                      engine_state_to_json(&h->st), "ctx", json_deep_copy(h->ctx)));
    }
    json_decref(charge);
    json_decref(res);
    json_decref(e500);
}

static void replay_is_deterministic(void **state)
{
    (void)state;
    struct h a, b, c;
    json_t *log_a = json_array(), *log_b = json_array(), *log_c = json_array();
    h_init(&a, MIXED, "{}");
    h_init(&b, MIXED, "{}");
    h_init(&c, MIXED, "{}");
    run_mixed(h_feed, &a, log_a);
    run_mixed(h_feed, &b, log_b);
    run_mixed(h_feed_reloaded, &c, log_c);
    char *ta = dump(log_a), *tb = dump(log_b), *tc = dump(log_c);
    assert_string_equal(ta, tb);
    assert_string_equal(ta, tc);

    /* Spot checks that the history is the one intended. */
    json_t *last = json_array_get(log_a, json_array_size(log_a) - 1);
    assert_true(json_is_true(json_object_get(last, "stale")));
    assert_true(json_is_true(json_object_get(last, "stale_ended")));
    json_t *end = json_array_get(log_a, json_array_size(log_a) - 2);
    expect_json(json_object_get(end, "events"),
                "[[\"compensation_completed\", 0, 2, {\"output\": {\"r\": 1}}],"
                " [\"execution_cancelled\", -1, 0, {\"error\": null}]]",
                "events");
    expect_json(json_object_get(end, "cancels"),
                "[[\"compensation_timeout\", 0], [\"compensation_heartbeat_timeout\", 0]]",
                "task cancels");
    expect_json(json_object_get(json_object_get(end, "state"), "steps"),
                "[{\"status\": \"compensated\", \"attempt\": 1, \"scheduled_at\": 1767225600000, "
                "\"started_at\": 1767225600001, \"completed_at\": 1767225600002, \"order\": 1},"
                " {\"status\": \"completed\", \"scheduled_at\": 1767225600002, \"started_at\": "
                "1767225600002, \"completed_at\": 1767225900002, \"order\": 2},"
                " {\"status\": \"compensated\", \"attempt\": 1, \"scheduled_at\": 1767225900002, "
                "\"started_at\": 1767225900010, \"completed_at\": 1767225900070, \"order\": 3},"
                " {\"status\": \"skipped\"}, {\"status\": \"skipped\"}]",
                "steps");
    /* The cancel waited for the accepted attempt, whose success dropped its timeouts. */
    json_t *cancel = json_array_get(log_a, 9);
    expect_json(json_object_get(cancel, "events"), "[[\"cancel_requested\", -1, 0, {}]]", "events");
    expect_json(json_object_get(cancel, "tasks"), "[]", "tasks");
    json_t *done = json_array_get(log_a, 12);
    expect_json(json_object_get(done, "cancels"),
                "[[\"attempt_timeout\", 2], [\"heartbeat_timeout\", 2]]", "task cancels");
    expect_json(json_object_get(done, "tasks"),
                "[[\"compensation\", 2, 1, 300070, {\"url\": \"http://stock/release\", \"input\": "
                "null, \"timeout_ms\": 30000}]]",
                "tasks");
    /* The accept after a redelivery times from the redelivery. */
    expect_json(json_object_get(json_array_get(log_a, 6), "tasks"),
                "[[\"attempt_timeout\", 2, 1, 3900020, null],"
                " [\"heartbeat_timeout\", 2, 1, 320030, null]]",
                "tasks");
    free(ta);
    free(tb);
    free(tc);
    json_decref(log_a);
    json_decref(log_b);
    json_decref(log_c);
    h_free(&a);
    h_free(&b);
    h_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(failure_compensates_in_reverse_order),
        cmocka_unit_test(compensation_retries_then_succeeds),
        cmocka_unit_test(compensation_final_failure_continues_the_saga),
        cmocka_unit_test(saga_survives_reload_between_inputs),
        cmocka_unit_test(steps_without_compensation_are_passed_over),
        cmocka_unit_test(compensation_errors_without_attempts),
        cmocka_unit_test(asynchronous_compensation),
        cmocka_unit_test(replay_is_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
