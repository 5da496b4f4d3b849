/* Steps that hold steps, stopped: fail-fast of a parallel and a for_each (the others stop at
 * their safe point), the saga over every branch and iteration in reverse order of completion,
 * cancel and terminate inside containers. */
#include "flow_harness.h"

/* Eight branches, each caught in a different state when branch a fails for good. */
static const char *const FF =
    "{\"name\": \"ff\", \"steps\": ["
    " {\"id\": \"notify\", \"parallel\": {\"branches\": {"
    "  \"a\": [{\"id\": \"a1\", \"activity\": {\"url\": \"http://svc/a1\"}, \"retry\": "
    "{\"max_attempts\": 1}}],"
    "  \"b\": [{\"id\": \"b1\", \"activity\": {\"url\": \"http://svc/b1\"}, \"compensate\": "
    "{\"url\": \"http://svc/undo/b1\"}}, {\"id\": \"b2\", \"activity\": {\"url\": "
    "\"http://svc/b2\"}}],"
    "  \"c\": [{\"id\": \"c1\", \"sleep\": \"1h\"}],"
    "  \"d\": [{\"id\": \"d1\", \"wait\": {\"signal\": \"go\", \"timeout\": \"1h\"}}],"
    "  \"e\": [{\"id\": \"e1\", \"activity\": {\"url\": \"http://svc/e1\"}}],"
    "  \"f\": [{\"id\": \"f1\", \"activity\": {\"url\": \"http://svc/f1\"}}],"
    "  \"g\": [{\"id\": \"g1\", \"activity\": {\"url\": \"http://svc/g1\"}}],"
    "  \"h\": [{\"id\": \"h1\", \"activity\": {\"url\": \"http://svc/h1\"}, \"compensate\": "
    "{\"url\": \"http://svc/undo/h1\"}}]}}},"
    " {\"id\": \"after\", \"activity\": {\"url\": \"http://svc/after\"}}]}";

static const char *const BOOM = "{\"type\": \"Boom\", \"message\": \"no\"}";
static const char *const A1_ERROR = "{\"type\": \"Boom\", \"message\": \"no\", \"step\": \"a1\", "
                                    "\"path\": \"notify/a/a1\", \"attempts\": 1}";

/* Drives FF up to a1's failure: h1 completed, b1 and g1 in flight, f1 waiting for its retry,
 * e1 never sent, c1 sleeping, d1 waiting. */
static void ff_until_failure(struct h *h)
{
    h_init(h, FF, "{}");
    h_feed(h, in_start(T0));
    expect_ptasks(h,
                  "[[\"activity\", \"notify/a/a1\", 1, 0], [\"activity\", \"notify/b/b1\", 1, 0],"
                  " [\"timer\", \"notify/c/c1\", 0, 3600000],"
                  " [\"wait_timeout\", \"notify/d/d1\", 0, 3600000],"
                  " [\"activity\", \"notify/e/e1\", 1, 0], [\"activity\", \"notify/f/f1\", 1, 0],"
                  " [\"activity\", \"notify/g/g1\", 1, 0], [\"activity\", \"notify/h/h1\", 1, 0]]");
    p_run(h, "notify/h/h1", T0 + 1, "\"H\"");
    p_started(h, "notify/b/b1", T0 + 2);
    p_started(h, "notify/g/g1", T0 + 2);
    p_run_fail(h, "notify/f/f1", T0 + 3, BOOM);
    assert_string_equal(public_status(h, "notify/f/f1"), "retrying");
    p_started(h, "notify/a/a1", T0 + 4);
    p_fail(h, "notify/a/a1", T0 + 5, BOOM);
}

static void parallel_failure_stops_the_other_branches_at_their_safe_point(void **state)
{
    (void)state;
    struct h h;
    ff_until_failure(&h);
    /* What is not in flight stops at once, its tasks dropped; the parallel still runs. */
    expect_pevents(&h, "[[\"attempt_failed\", \"notify/a/a1\", 1],"
                       " [\"step_failed\", \"notify/a/a1\", 1]]");
    expect_pcancels(&h, "[[\"activity\", \"notify/c/c1\"], [\"timer\", \"notify/c/c1\"],"
                        " [\"wait_timeout\", \"notify/c/c1\"],"
                        " [\"activity\", \"notify/d/d1\"], [\"timer\", \"notify/d/d1\"],"
                        " [\"wait_timeout\", \"notify/d/d1\"],"
                        " [\"activity\", \"notify/e/e1\"], [\"timer\", \"notify/e/e1\"],"
                        " [\"wait_timeout\", \"notify/e/e1\"],"
                        " [\"activity\", \"notify/f/f1\"], [\"timer\", \"notify/f/f1\"],"
                        " [\"wait_timeout\", \"notify/f/f1\"]]");
    assert_false(h.fx.cancel_tasks);
    assert_int_equal(h.fx.n_tasks, 0);
    assert_false(h.fx.ended);
    expect_statuses(&h, "{\"notify\": \"running\", \"after\": \"pending\","
                        " \"notify/a\": \"failed\", \"notify/b\": \"running\","
                        " \"notify/c\": \"skipped\", \"notify/d\": \"skipped\","
                        " \"notify/e\": \"skipped\", \"notify/f\": \"skipped\","
                        " \"notify/g\": \"running\", \"notify/h\": \"completed\","
                        " \"notify/a/a1\": \"failed\", \"notify/b/b1\": \"running\","
                        " \"notify/c/c1\": \"skipped\", \"notify/d/d1\": \"skipped\","
                        " \"notify/e/e1\": \"skipped\", \"notify/f/f1\": \"skipped\","
                        " \"notify/g/g1\": \"running\", \"notify/h/h1\": \"completed\"}");
    expect_json(ctx_error_of(&h, "notify/a/a1"), A1_ERROR, "a1's error");
    /* The stopped steps keep their attempts: f1 had scheduled its second. */
    assert_int_equal(attempt_of(&h, "notify/f/f1"), 2);

    /* Inputs for what was stopped are stale. */
    json_t *payload = parse_json("{}");
    expect_stale(&h, in_timer(at(&h, "notify/c/c1"), T0 + 6));
    expect_stale(&h, in_signal(at(&h, "notify/d/d1"), T0 + 6, "go", payload));
    expect_stale(&h, in_wait_timeout(at(&h, "notify/d/d1"), T0 + 6));
    expect_stale(&h, in_started(at(&h, "notify/e/e1"), 1, T0 + 6));
    expect_stale(&h, in_started(at(&h, "notify/f/f1"), 2, T0 + 6));
    json_decref(payload);

    /* b1 in flight completes: the step completes, b2 never starts, branch b is stopped. */
    p_succeed(&h, "notify/b/b1", T0 + 7, "\"B\"");
    expect_pevents(&h, "[[\"step_completed\", \"notify/b/b1\", 1]]");
    assert_false(exists(&h, "notify/b/b2"));
    assert_string_equal(status_of(&h, "notify/b"), "skipped");
    assert_int_equal(h.fx.n_tasks, 0);
    assert_string_equal(status_of(&h, "notify"), "running");

    /* g1 in flight fails with a retryable error: no retry, it fails; the parallel now ends with
     * the first failure's error and the saga starts with the last completed step. */
    p_fail(&h, "notify/g/g1", T0 + 8, "{\"type\": \"Other\", \"message\": \"later\"}");
    expect_json(json_object_get(event_data(&h, "attempt_failed"), "next_attempt_at"), "null",
                "next_attempt_at");
    expect_pevents(&h, "[[\"attempt_failed\", \"notify/g/g1\", 1],"
                       " [\"step_failed\", \"notify/g/g1\", 1],"
                       " [\"step_failed\", \"notify\", 0]]");
    expect_json(ctx_error_of(&h, "notify"), A1_ERROR, "the parallel's error");
    expect_json(json_object_get(event_data(&h, "step_failed"), "error"),
                "{\"type\": \"Other\", \"message\": \"later\", \"step\": \"g1\", "
                "\"path\": \"notify/g/g1\", \"attempts\": 1}",
                "g1's error");
    expect_ptasks(&h, "[[\"compensation\", \"notify/b/b1\", 1, 8]]");
    expect_statuses(&h, "{\"notify\": \"failed\", \"after\": \"skipped\","
                        " \"notify/a\": \"failed\", \"notify/b\": \"skipped\","
                        " \"notify/c\": \"skipped\", \"notify/d\": \"skipped\","
                        " \"notify/e\": \"skipped\", \"notify/f\": \"skipped\","
                        " \"notify/g\": \"failed\", \"notify/h\": \"completed\","
                        " \"notify/a/a1\": \"failed\", \"notify/b/b1\": \"completed\","
                        " \"notify/c/c1\": \"skipped\", \"notify/d/d1\": \"skipped\","
                        " \"notify/e/e1\": \"skipped\", \"notify/f/f1\": \"skipped\","
                        " \"notify/g/g1\": \"failed\", \"notify/h/h1\": \"completed\"}");
    assert_true(h.st.compensating);

    /* b1 (completed last, after the failure) is undone first, then h1; then the execution
     * fails with a1's error. */
    p_compensate(&h, "notify/b/b1", T0 + 9);
    assert_string_equal(compensating(&h), "notify/h/h1");
    expect_ptasks(&h, "[[\"compensation\", \"notify/h/h1\", 1, 9]]");
    p_compensate(&h, "notify/h/h1", T0 + 10);
    assert_true(h.fx.ended);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    expect_json(h.fx.error, A1_ERROR, "the execution's error");
    assert_string_equal(status_of(&h, "notify/b/b1"), "compensated");
    assert_string_equal(status_of(&h, "notify/h/h1"), "compensated");
    h_free(&h);
}

/* A non-retryable error fails a branch step for good on its first attempt as max_attempts 1
 * does, and a parallel whose other branches have all completed fails at once. */
static void parallel_fails_on_a_non_retryable_error(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"nr\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
        " \"x\": [{\"id\": \"x1\", \"activity\": {\"url\": \"http://svc/x\"}}],"
        " \"y\": [{\"id\": \"y1\", \"activity\": {\"url\": \"http://svc/y\"}, \"retry\": "
        "{\"non_retryable_errors\": [\"Declined\"]}}]}}}]}";
    struct h h;
    h_init(&h, D, "{}");
    h_feed(&h, in_start(T0));
    p_run(&h, "p/x/x1", T0 + 1, "1");
    p_run_fail(&h, "p/y/y1", T0 + 2, "{\"type\": \"Declined\", \"message\": \"card\"}");
    /* Nothing to undo: the execution fails in the same call. */
    assert_true(h.fx.ended);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    expect_json(h.fx.error,
                "{\"type\": \"Declined\", \"message\": \"card\", \"step\": \"y1\", \"path\": "
                "\"p/y/y1\", \"attempts\": 1}",
                "error");
    expect_pevents(&h, "[[\"attempt_failed\", \"p/y/y1\", 1], [\"step_failed\", \"p/y/y1\", 1],"
                       " [\"step_failed\", \"p\", 0], [\"execution_failed\", \"-\", 0]]");

    /* The receiver said stop: the same with a retryable type. */
    h_free(&h);
    h_init(&h, D, "{}");
    h_feed(&h, in_start(T0));
    p_started(&h, "p/x/x1", T0 + 1);
    p_started(&h, "p/y/y1", T0 + 1);
    json_t *err = parse_json(BOOM);
    struct engine_input in = in_failed(at(&h, "p/y/y1"), 1, T0 + 2, err);
    in.non_retryable = true;
    h_feed(&h, in);
    json_decref(err);
    assert_string_equal(status_of(&h, "p/y/y1"), "failed");
    assert_string_equal(status_of(&h, "p"), "running"); /* x1 is in flight */
    p_succeed(&h, "p/x/x1", T0 + 3, "1");
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "path")), "p/y/y1");
    h_free(&h);
}

/* A branch or an iteration that fails the moment it is entered (its input does not evaluate):
 * the branches and iterations after it never start, and the container fails in the same call. */
static void failure_on_entry_stops_what_has_not_started(void **state)
{
    (void)state;
    static const char *const PAR_D =
        "{\"name\": \"fe\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
        " \"a\": [{\"id\": \"a1\", \"activity\": {\"url\": \"http://svc/a\"}}],"
        " \"b\": [{\"id\": \"b1\", \"activity\": {\"url\": \"http://svc/b\", \"input\": "
        "\"${input.nope}\"}}],"
        " \"c\": [{\"id\": \"c1\", \"activity\": {\"url\": \"http://svc/c\"}}]}}}]}";
    struct h h;
    h_init(&h, PAR_D, "{}");
    h_feed(&h, in_start(T0));
    /* a1 was scheduled before b1 failed in the same call: its task must not be left in the
     * effects (the runner inserts tasks after applying cancels, so it would be sent). */
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_int_equal(h.fx.n_tasks, 0);
    expect_statuses(&h, "{\"p\": \"failed\", \"p/a\": \"skipped\", \"p/b\": \"failed\","
                        " \"p/c\": \"skipped\", \"p/a/a1\": \"skipped\", \"p/b/b1\": \"failed\"}");
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "pointer")),
                        "/steps/0/parallel/branches/b/0/activity/input");
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "path")), "p/b/b1");
    h_free(&h);

    static const char *const LOOP_D =
        "{\"name\": \"fl\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": [{\"v\": 1}, "
        "2, {\"v\": 3}],"
        " \"concurrency\": 3, \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": "
        "\"http://svc/s/${item.v}\"}}]}}]}";
    h_init(&h, LOOP_D, "{}");
    h_feed(&h, in_start(T0));
    /* Iteration 0 is scheduled; iteration 1 fails on entry; iteration 2 never starts; 0 is
     * not in flight yet, so it stops at once and its task is dropped. */
    assert_false(exists(&h, "all/2"));
    assert_int_equal(h.fx.n_tasks, 0);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "path")), "all/1/s");
    expect_statuses(&h, "{\"all\": \"failed\", \"all/0\": \"skipped\", \"all/0/s\": \"skipped\","
                        " \"all/1\": \"failed\", \"all/1/s\": \"failed\"}");
    h_free(&h);
}

/* ---- for_each ---------------------------------------------------------------------------- */

static const char *const LOOP_FF =
    "{\"name\": \"lf\", \"steps\": ["
    " {\"id\": \"first\", \"activity\": {\"url\": \"http://svc/first\"}, \"compensate\": "
    "{\"url\": \"http://svc/undo/first\"}},"
    " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"concurrency\": 3, \"steps\": ["
    "   {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/charge\", \"input\": "
    "\"${item}\"}, \"retry\": {\"max_attempts\": 2, \"initial_interval\": \"1s\"}, "
    "\"compensate\": {\"url\": \"http://svc/refund\", \"input\": \"${steps.charge.output}\"}},"
    "   {\"id\": \"pause\", \"sleep\": \"1m\"}]}},"
    " {\"id\": \"last\", \"activity\": {\"url\": \"http://svc/last\"}}]}";

/* A failing iteration: no new iteration starts, the running ones stop at their safe point, the
 * loop fails with the iteration's error, and the saga undoes every completed charge of every
 * iteration in reverse order of completion, with the input of its own iteration. */
static void for_each_failure_stops_iterations_and_undoes_them_in_reverse(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, LOOP_FF, "{\"xs\": [10, 20, 30, 40, 50]}");
    h_feed(&h, in_start(T0));
    p_run(&h, "first", T0 + 1, "\"F\"");
    /* Three iterations at once. */
    assert_true(exists(&h, "all/2/charge"));
    assert_false(exists(&h, "all/3"));
    p_run(&h, "all/1/charge", T0 + 2, "\"c1\"");
    assert_string_equal(status_of(&h, "all/1/pause"), "scheduled");
    p_run(&h, "all/2/charge", T0 + 3, "\"c2\"");
    p_run_fail(&h, "all/0/charge", T0 + 4, BOOM); /* attempt 2 after 1s */
    assert_string_equal(public_status(&h, "all/0/charge"), "retrying");
    p_run_fail(&h, "all/0/charge", T0 + 2000, BOOM); /* attempt 2 of 2: for good */
    expect_pevents(&h, "[[\"attempt_failed\", \"all/0/charge\", 2],"
                       " [\"step_failed\", \"all/0/charge\", 2], [\"step_failed\", \"all\", 0]]");
    /* The sleeps of iterations 1 and 2 stop at once; the loop has nothing left in flight, so it
     * fails, and the saga starts: charge 2 completed last. */
    expect_pcancels(&h, "[[\"activity\", \"all/1/pause\"], [\"timer\", \"all/1/pause\"],"
                        " [\"wait_timeout\", \"all/1/pause\"],"
                        " [\"activity\", \"all/2/pause\"], [\"timer\", \"all/2/pause\"],"
                        " [\"wait_timeout\", \"all/2/pause\"]]");
    assert_false(exists(&h, "all/3"));
    expect_statuses(&h, "{\"first\": \"completed\", \"all\": \"failed\", \"last\": \"skipped\","
                        " \"all/0\": \"failed\", \"all/1\": \"skipped\", \"all/2\": \"skipped\","
                        " \"all/0/charge\": \"failed\", \"all/1/charge\": \"completed\","
                        " \"all/1/pause\": \"skipped\", \"all/2/charge\": \"completed\","
                        " \"all/2/pause\": \"skipped\"}");
    json_t *want = parse_json("{\"type\": \"Boom\", \"message\": \"no\", \"step\": \"charge\", "
                              "\"path\": \"all/0/charge\", \"attempts\": 2}");
    assert_true(json_equal(ctx_error_of(&h, "all"), want));
    /* Each refund's input is its own iteration's charge output. */
    expect_ptasks(&h, "[[\"compensation\", \"all/2/charge\", 1, 2000]]");
    expect_json(h.fx.tasks[0].payload,
                "{\"url\": \"http://svc/refund\", \"input\": \"c2\", \"timeout_ms\": 30000}",
                "payload");
    p_compensate(&h, "all/2/charge", T0 + 2001);
    expect_ptasks(&h, "[[\"compensation\", \"all/1/charge\", 1, 2001]]");
    expect_json(h.fx.tasks[0].payload,
                "{\"url\": \"http://svc/refund\", \"input\": \"c1\", \"timeout_ms\": 30000}",
                "payload");
    p_compensate(&h, "all/1/charge", T0 + 2002);
    assert_string_equal(compensating(&h), "first");
    p_compensate(&h, "first", T0 + 2003);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_true(json_equal(h.fx.error, want));
    json_decref(want);
    h_free(&h);
}

/* An iteration still in flight when another fails finishes first; its step completed after the
 * failure is compensated like the others, first since it completed last. */
static void for_each_iteration_in_flight_finishes_and_is_compensated(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, LOOP_FF, "{\"xs\": [10, 20]}");
    h_feed(&h, in_start(T0));
    p_run(&h, "first", T0 + 1, "\"F\"");
    p_started(&h, "all/0/charge", T0 + 2);
    p_started(&h, "all/1/charge", T0 + 2);
    json_t *err = parse_json(BOOM);
    struct engine_input in = in_failed(at(&h, "all/1/charge"), 1, T0 + 3, err);
    in.non_retryable = true;
    h_feed(&h, in);
    json_decref(err);
    assert_string_equal(status_of(&h, "all"), "running");
    assert_string_equal(status_of(&h, "all/0/charge"), "running");
    p_succeed(&h, "all/0/charge", T0 + 4, "\"late\"");
    /* The iteration does not go on to its sleep. */
    assert_false(exists(&h, "all/0/pause"));
    assert_string_equal(status_of(&h, "all/0"), "skipped");
    assert_string_equal(status_of(&h, "all"), "failed");
    assert_string_equal(compensating(&h), "all/0/charge");
    p_compensate(&h, "all/0/charge", T0 + 5);
    assert_string_equal(compensating(&h), "first");
    p_compensate(&h, "first", T0 + 6);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "path")), "all/1/charge");
    h_free(&h);
}

/* Compensation order is completion order across the whole tree: interleaved completions of
 * two branches and a loop inside one of them are undone exactly in reverse. */
static void compensation_runs_in_reverse_completion_order_across_the_tree(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"co\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
        " \"l\": [{\"id\": \"l1\", \"activity\": {\"url\": \"http://svc/l1\"}, \"compensate\": "
        "{\"url\": \"http://svc/u\"}},"
        "        {\"id\": \"loop\", \"for_each\": {\"items\": [1, 2], \"steps\": ["
        "          {\"id\": \"it\", \"activity\": {\"url\": \"http://svc/it\"}, \"compensate\": "
        "{\"url\": \"http://svc/u\"}}]}}],"
        " \"r\": [{\"id\": \"r1\", \"activity\": {\"url\": \"http://svc/r1\"}, \"compensate\": "
        "{\"url\": \"http://svc/u\"}},"
        "        {\"id\": \"r2\", \"activity\": {\"url\": \"http://svc/r2\"}, \"compensate\": "
        "{\"url\": \"http://svc/u\"}},"
        "        {\"id\": \"r3\", \"activity\": {\"url\": \"http://svc/r3\"}, \"retry\": "
        "{\"max_attempts\": 1}}]}}}]}";
    struct h h;
    h_init(&h, D, "{}");
    h_feed(&h, in_start(T0));
    p_run(&h, "p/r/r1", T0 + 1, "1");
    p_run(&h, "p/l/l1", T0 + 2, "2");
    p_run(&h, "p/l/loop/1/it", T0 + 3, "3");
    p_run(&h, "p/r/r2", T0 + 4, "4");
    p_started(&h, "p/l/loop/0/it", T0 + 5);
    p_run_fail(&h, "p/r/r3", T0 + 6, BOOM);
    p_succeed(&h, "p/l/loop/0/it", T0 + 7, "5");
    static const char *const order[] = {"p/l/loop/0/it", "p/r/r2", "p/l/loop/1/it", "p/l/l1",
                                        "p/r/r1"};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        const char *now = compensating(&h);
        if (!now || strcmp(now, order[k]) != 0)
            fail_msg("compensation %zu: expected %s, got %s", k, order[k], now ? now : "none");
        p_compensate(&h, order[k], T0 + 10 + (int64_t)k);
    }
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "path")), "p/r/r3");
    h_free(&h);
}

/* ---- cancel and terminate ----------------------------------------------------------------- */

static const char *const CANCEL_PAR =
    "{\"name\": \"cp\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
    " \"a\": [{\"id\": \"a1\", \"activity\": {\"url\": \"http://svc/a1\"}, \"compensate\": "
    "{\"url\": \"http://svc/u\"}}],"
    " \"b\": [{\"id\": \"b1\", \"wait\": {\"signal\": \"go\", \"timeout\": \"1h\"}}],"
    " \"c\": [{\"id\": \"c1\", \"sleep\": \"1h\"}],"
    " \"d\": [{\"id\": \"d1\", \"activity\": {\"url\": \"http://svc/d1\"}, \"compensate\": "
    "{\"url\": \"http://svc/u\"}}, {\"id\": \"d2\", \"activity\": {\"url\": \"http://svc/d2\"}}]"
    "}}}, {\"id\": \"after\", \"activity\": {\"url\": \"http://svc/after\"}}]}";

static void cancel_inside_a_parallel(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, CANCEL_PAR, "{}");
    h_feed(&h, in_start(T0));
    p_started(&h, "p/a/a1", T0 + 1);
    p_run(&h, "p/d/d1", T0 + 1, "\"D\"");
    p_started(&h, "p/d/d2", T0 + 2);
    h_feed(&h, in_cancel(T0 + 3));
    /* The wait and the sleep stop at once; the attempts in flight go on. */
    expect_pevents(&h, "[[\"cancel_requested\", \"-\", 0]]");
    expect_pcancels(&h, "[[\"activity\", \"p/b/b1\"], [\"timer\", \"p/b/b1\"],"
                        " [\"wait_timeout\", \"p/b/b1\"],"
                        " [\"activity\", \"p/c/c1\"], [\"timer\", \"p/c/c1\"],"
                        " [\"wait_timeout\", \"p/c/c1\"]]");
    expect_statuses(&h, "{\"p\": \"running\", \"after\": \"pending\", \"p/a\": \"running\","
                        " \"p/b\": \"skipped\", \"p/c\": \"skipped\", \"p/d\": \"running\","
                        " \"p/a/a1\": \"running\", \"p/b/b1\": \"skipped\","
                        " \"p/c/c1\": \"skipped\", \"p/d/d1\": \"completed\","
                        " \"p/d/d2\": \"running\"}");
    json_t *payload = parse_json("1");
    expect_stale(&h, in_signal(at(&h, "p/b/b1"), T0 + 4, "go", payload));
    json_decref(payload);
    expect_stale(&h, in_timer(at(&h, "p/c/c1"), T0 + 4));
    expect_stale(&h, in_cancel(T0 + 4));
    /* d2 fails: no retry under a cancel. */
    p_fail(&h, "p/d/d2", T0 + 5, BOOM);
    expect_json(json_object_get(event_data(&h, "attempt_failed"), "next_attempt_at"), "null",
                "next_attempt_at");
    assert_string_equal(status_of(&h, "p/d/d2"), "failed");
    assert_string_equal(status_of(&h, "p"), "running");
    /* a1 completes: nothing runs any more, the saga starts with a1, then d1. */
    p_succeed(&h, "p/a/a1", T0 + 6, "\"A\"");
    assert_string_equal(status_of(&h, "after"), "skipped");
    assert_string_equal(compensating(&h), "p/a/a1");
    p_compensate(&h, "p/a/a1", T0 + 7);
    assert_string_equal(compensating(&h), "p/d/d1");
    p_compensate(&h, "p/d/d1", T0 + 8);
    assert_true(h.fx.ended);
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    assert_null(h.fx.error);
    expect_pevents(&h, "[[\"compensation_completed\", \"p/d/d1\", 1],"
                       " [\"execution_cancelled\", \"-\", 0]]");
    h_free(&h);
}

static const char *const CANCEL_LOOP =
    "{\"name\": \"cl\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\","
    " \"concurrency\": 2, \"steps\": ["
    "  {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/c\"}, \"compensate\": {\"url\": "
    "\"http://svc/u\"}},"
    "  {\"id\": \"hold\", \"wait\": {\"signal\": \"go\"}}]}}]}";

static void cancel_inside_a_for_each(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, CANCEL_LOOP, "{\"xs\": [1, 2, 3, 4]}");
    h_feed(&h, in_start(T0));
    p_run(&h, "all/0/charge", T0 + 1, "0");
    assert_string_equal(status_of(&h, "all/0/hold"), "waiting");
    p_started(&h, "all/1/charge", T0 + 2);
    h_feed(&h, in_cancel(T0 + 3));
    expect_pcancels(&h, "[[\"activity\", \"all/0/hold\"], [\"timer\", \"all/0/hold\"],"
                        " [\"wait_timeout\", \"all/0/hold\"]]");
    assert_string_equal(status_of(&h, "all/0/hold"), "skipped");
    assert_string_equal(status_of(&h, "all/0"), "skipped");
    /* No new iteration starts in the room iteration 0 left. */
    assert_false(exists(&h, "all/2"));
    assert_string_equal(status_of(&h, "all"), "running");
    p_succeed(&h, "all/1/charge", T0 + 4, "1");
    assert_false(exists(&h, "all/1/hold"));
    assert_false(exists(&h, "all/2"));
    assert_string_equal(status_of(&h, "all"), "skipped");
    assert_string_equal(compensating(&h), "all/1/charge");
    p_compensate(&h, "all/1/charge", T0 + 5);
    p_compensate(&h, "all/0/charge", T0 + 6);
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    h_free(&h);
}

/* A cancel when every leaf of the loop is stoppable: the execution is cancelled in the same
 * call (nothing to undo). */
static void cancel_of_a_loop_that_only_waits_ends_at_once(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"cw\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": [1, 2, 3],"
        " \"steps\": [{\"id\": \"nap\", \"sleep\": \"1h\"}]}}]}";
    struct h h;
    h_init(&h, D, "{}");
    h_feed(&h, in_start(T0));
    expect_ptasks(&h, "[[\"timer\", \"all/0/nap\", 0, 3600000], [\"timer\", \"all/1/nap\", 0, "
                      "3600000], [\"timer\", \"all/2/nap\", 0, 3600000]]");
    h_feed(&h, in_cancel(T0 + 1));
    assert_true(h.fx.ended);
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    expect_statuses(&h, "{\"all\": \"skipped\", \"all/0\": \"skipped\", \"all/1\": \"skipped\","
                        " \"all/2\": \"skipped\", \"all/0/nap\": \"skipped\","
                        " \"all/1/nap\": \"skipped\", \"all/2/nap\": \"skipped\"}");
    expect_stale(&h, in_timer(at(&h, "all/1/nap"), T0 + HOUR));
    h_free(&h);
}

static void terminate_inside_a_parallel_and_a_for_each(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, CANCEL_PAR, "{}");
    h_feed(&h, in_start(T0));
    p_started(&h, "p/a/a1", T0 + 1);
    p_run(&h, "p/d/d1", T0 + 1, "\"D\"");
    h_feed(&h, in_terminate(T0 + 2));
    assert_true(h.fx.ended);
    assert_true(h.fx.cancel_tasks);
    assert_int_equal(h.st.status, ENGINE_EXEC_TERMINATED);
    expect_pevents(&h, "[[\"execution_terminated\", \"-\", 0]]");
    assert_int_equal(h.fx.n_tasks, 0);
    /* No saga: d1 stays completed. Everything unfinished is skipped. */
    expect_statuses(&h, "{\"p\": \"skipped\", \"after\": \"skipped\", \"p/a\": \"skipped\","
                        " \"p/b\": \"skipped\", \"p/c\": \"skipped\", \"p/d\": \"skipped\","
                        " \"p/a/a1\": \"skipped\", \"p/b/b1\": \"skipped\","
                        " \"p/c/c1\": \"skipped\", \"p/d/d1\": \"completed\","
                        " \"p/d/d2\": \"skipped\"}");
    json_t *out = parse_json("1");
    h_feed(&h, in_succeeded(at(&h, "p/a/a1"), 1, T0 + 3, out));
    json_decref(out);
    assert_true(h.fx.stale && h.fx.stale_ended);
    h_free(&h);

    h_init(&h, CANCEL_LOOP, "{\"xs\": [1, 2, 3]}");
    h_feed(&h, in_start(T0));
    p_run(&h, "all/0/charge", T0 + 1, "0");
    p_started(&h, "all/1/charge", T0 + 2);
    h_feed(&h, in_terminate(T0 + 3));
    assert_int_equal(h.st.status, ENGINE_EXEC_TERMINATED);
    assert_null(compensating(&h));
    expect_statuses(&h, "{\"all\": \"skipped\", \"all/0\": \"skipped\", \"all/1\": \"skipped\","
                        " \"all/0/charge\": \"completed\", \"all/0/hold\": \"skipped\","
                        " \"all/1/charge\": \"skipped\"}");
    expect_stale(&h, in_retry(T0 + 4));
    expect_stale(&h, in_cancel(T0 + 4));
    h_free(&h);
}

/* Terminate during the saga of a loop failure: the compensation under way is interrupted. */
static void terminate_during_a_loop_saga(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, CANCEL_LOOP, "{\"xs\": [1, 2]}");
    h_feed(&h, in_start(T0));
    p_run(&h, "all/0/charge", T0 + 1, "0");
    json_t *err = parse_json(BOOM);
    p_started(&h, "all/1/charge", T0 + 2);
    struct engine_input in = in_failed(at(&h, "all/1/charge"), 1, T0 + 3, err);
    in.non_retryable = true;
    h_feed(&h, in);
    json_decref(err);
    assert_string_equal(compensating(&h), "all/0/charge");
    h_feed(&h, comp(in_started(at(&h, "all/0/charge"), 1, T0 + 4)));
    h_feed(&h, in_terminate(T0 + 5));
    assert_int_equal(h.st.status, ENGINE_EXEC_TERMINATED);
    assert_int_equal(h.st.steps[at(&h, "all/0/charge")].comp.status, ENGINE_COMP_INTERRUPTED);
    assert_string_equal(status_of(&h, "all/0/charge"), "completed");
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parallel_failure_stops_the_other_branches_at_their_safe_point),
        cmocka_unit_test(parallel_fails_on_a_non_retryable_error),
        cmocka_unit_test(failure_on_entry_stops_what_has_not_started),
        cmocka_unit_test(for_each_failure_stops_iterations_and_undoes_them_in_reverse),
        cmocka_unit_test(for_each_iteration_in_flight_finishes_and_is_compensated),
        cmocka_unit_test(compensation_runs_in_reverse_completion_order_across_the_tree),
        cmocka_unit_test(cancel_inside_a_parallel),
        cmocka_unit_test(cancel_inside_a_for_each),
        cmocka_unit_test(cancel_of_a_loop_that_only_waits_ends_at_once),
        cmocka_unit_test(terminate_inside_a_parallel_and_a_for_each),
        cmocka_unit_test(terminate_during_a_loop_saga),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
