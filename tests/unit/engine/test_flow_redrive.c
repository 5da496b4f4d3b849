/* Steps that hold steps, after the fact: retry (redrive) of a failed iteration or branch, stale
 * inputs about stopped or ended instances, and replay determinism (the same inputs give the
 * same effects whether the state stays in memory or is reloaded from its JSON between
 * inputs). */
#include "flow_harness.h"

static const char *const BOOM = "{\"type\": \"Boom\", \"message\": \"no\"}";

/* ---- retry -------------------------------------------------------------------------------- */

static const char *const LOOP =
    "{\"name\": \"rl\", \"steps\": ["
    " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"concurrency\": 2, \"steps\": ["
    "   {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/charge\", \"input\": "
    "\"${item}\"}, \"retry\": {\"max_attempts\": 2, \"initial_interval\": \"1s\"}},"
    "   {\"id\": \"note\", \"activity\": {\"url\": \"http://svc/note\", \"input\": "
    "\"${steps.charge.output}\"}}]}},"
    " {\"id\": \"after\", \"activity\": {\"url\": \"http://svc/after\", \"input\": "
    "\"${steps.all.output}\"}}],"
    " \"output\": \"${steps.after.output}\"}";

/* Iteration 0 completes, 1 fails for good, 2 is stopped after its charge completed, 3 and 4
 * never start; the execution fails. */
static void loop_until_failure(struct h *h)
{
    h_init(h, LOOP, "{\"xs\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}");
    h_feed(h, in_start(T0));
    p_run(h, "all/0/charge", T0 + 1, "\"A\"");
    p_run(h, "all/0/note", T0 + 2, "\"n0\"");
    p_started(h, "all/2/charge", T0 + 3);
    p_run_fail(h, "all/1/charge", T0 + 4, BOOM);
    p_run_fail(h, "all/1/charge", T0 + 2000, BOOM);
    assert_string_equal(status_of(h, "all"), "running");
    p_succeed(h, "all/2/charge", T0 + 2001, "\"C\"");
    assert_int_equal(h->st.status, ENGINE_EXEC_FAILED);
}

static void retry_reruns_only_the_failed_and_stopped_iterations(void **state)
{
    (void)state;
    struct h h;
    loop_until_failure(&h);
    expect_statuses(&h, "{\"all\": \"failed\", \"after\": \"skipped\", \"all/0\": \"completed\","
                        " \"all/1\": \"failed\", \"all/0/charge\": \"completed\","
                        " \"all/1/charge\": \"failed\", \"all/0/note\": \"completed\","
                        " \"all/2\": \"skipped\", \"all/2/charge\": \"completed\"}");
    assert_int_equal(attempt_of(&h, "all/1/charge"), 2);

    h_feed(&h, in_retry(T0 + MIN));
    assert_true(h.fx.clear_error);
    expect_json(event_data(&h, "execution_retried"), "{\"step\": \"all\"}", "retried");
    /* Iteration 1 restarts its charge at attempt 1; iteration 2 goes on after its completed
     * charge; iteration 0 keeps its outputs; 3 and 4 wait for room. */
    expect_ptasks(&h, "[[\"activity\", \"all/1/charge\", 1, 60000],"
                      " [\"activity\", \"all/2/note\", 1, 60000]]");
    expect_json(h.fx.tasks[1].payload,
                "{\"url\": \"http://svc/note\", \"input\": \"C\", \"timeout_ms\": 30000}",
                "iteration 2's note reads its kept charge");
    assert_int_equal(attempt_of(&h, "all/1/charge"), 1);
    assert_string_equal(status_of(&h, "all/0"), "completed");
    assert_string_equal(status_of(&h, "all/0/note"), "completed");
    assert_string_equal(status_of(&h, "all/2/charge"), "completed");
    assert_string_equal(status_of(&h, "after"), "pending");
    assert_false(exists(&h, "all/3"));
    expect_json(ctx_output(&h, "all/0/note"), "\"n0\"", "kept output");

    p_run(&h, "all/2/note", T0 + MIN + 1, "\"n2\"");
    expect_ptasks(&h, "[[\"activity\", \"all/3/charge\", 1, 60001]]");
    p_run(&h, "all/1/charge", T0 + MIN + 2, "\"B\"");
    p_run(&h, "all/3/charge", T0 + MIN + 3, "\"D\"");
    expect_ptasks(&h, "[[\"activity\", \"all/3/note\", 1, 60003]]");
    p_run(&h, "all/3/note", T0 + MIN + 4, "\"n3\"");
    expect_ptasks(&h, "[[\"activity\", \"all/4/charge\", 1, 60004]]");
    p_run(&h, "all/1/note", T0 + MIN + 5, "\"n1\"");
    p_run(&h, "all/4/charge", T0 + MIN + 6, "\"E\"");
    p_run(&h, "all/4/note", T0 + MIN + 7, "\"n4\"");
    expect_json(ctx_output(&h, "all"), "[\"n0\", \"n1\", \"n2\", \"n3\", \"n4\"]", "loop output");
    expect_json(h.fx.tasks[0].payload,
                "{\"url\": \"http://svc/after\", \"input\": [\"n0\", \"n1\", \"n2\", \"n3\", "
                "\"n4\"], \"timeout_ms\": 30000}",
                "after");
    p_run(&h, "after", T0 + MIN + 8, "\"ok\"");
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    h_free(&h);
}

/* A retried loop never runs more iterations than its concurrency, even when more than that
 * many iterations failed or stopped. */
static void retry_keeps_the_concurrency(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"rc\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": [0, 1, 2, 3],"
        " \"concurrency\": 3, \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": "
        "\"http://svc/s\"},"
        " \"retry\": {\"max_attempts\": 1}}]}}], \"output\": \"${steps.all.output}\"}";
    struct h h;
    h_init(&h, D, "{}");
    h_feed(&h, in_start(T0));
    p_started(&h, "all/0/s", T0 + 1);
    p_started(&h, "all/1/s", T0 + 1);
    p_run_fail(&h, "all/2/s", T0 + 2, BOOM);
    p_fail(&h, "all/1/s", T0 + 3, BOOM);
    p_fail(&h, "all/0/s", T0 + 4, BOOM);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    /* The first failure is the loop's error. */
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "path")), "all/2/s");
    h_feed(&h, in_retry(T0 + 5));
    /* Three to redo plus one never started: three at once, in item order. */
    expect_ptasks(&h, "[[\"activity\", \"all/0/s\", 1, 5], [\"activity\", \"all/1/s\", 1, 5],"
                      " [\"activity\", \"all/2/s\", 1, 5]]");
    assert_false(exists(&h, "all/3"));
    p_run(&h, "all/1/s", T0 + 6, "1");
    expect_ptasks(&h, "[[\"activity\", \"all/3/s\", 1, 6]]");
    p_run(&h, "all/3/s", T0 + 7, "3");
    p_run(&h, "all/0/s", T0 + 8, "0");
    p_run(&h, "all/2/s", T0 + 9, "2");
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "[0, 1, 2, 3]", "output");
    h_free(&h);
}

static void retry_after_a_failed_parallel_branch(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"rp\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
        " \"a\": [{\"id\": \"a1\", \"activity\": {\"url\": \"http://svc/a1\"}, \"retry\": "
        "{\"max_attempts\": 1}}, {\"id\": \"a2\", \"activity\": {\"url\": \"http://svc/a2\", "
        "\"input\": \"${steps.a1.output}\"}}],"
        " \"b\": [{\"id\": \"b1\", \"activity\": {\"url\": \"http://svc/b1\"}}],"
        " \"c\": [{\"id\": \"c1\", \"wait\": {\"signal\": \"go\"}}]}}}],"
        " \"output\": \"${steps.p.output}\"}";
    struct h h;
    h_init(&h, D, "{}");
    h_feed(&h, in_start(T0));
    p_run(&h, "p/b/b1", T0 + 1, "\"B\"");
    p_run_fail(&h, "p/a/a1", T0 + 2, BOOM);
    /* The wait is stopped; nothing else runs: the execution fails at once. */
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    expect_statuses(&h, "{\"p\": \"failed\", \"p/a\": \"failed\", \"p/b\": \"completed\","
                        " \"p/c\": \"skipped\", \"p/a/a1\": \"failed\", \"p/b/b1\": \"completed\","
                        " \"p/c/c1\": \"skipped\"}");
    h_feed(&h, in_retry(T0 + 3));
    /* Branch a again from a1 at attempt 1, branch c's wait again; b is kept. */
    expect_ptasks(&h, "[[\"activity\", \"p/a/a1\", 1, 3]]");
    assert_string_equal(h.fx.wants_signal, "go");
    expect_statuses(&h,
                    "{\"p\": \"running\", \"p/a\": \"running\", \"p/b\": \"completed\","
                    " \"p/c\": \"running\", \"p/a/a1\": \"scheduled\", \"p/b/b1\": \"completed\","
                    " \"p/c/c1\": \"waiting\"}");
    p_run(&h, "p/a/a1", T0 + 4, "\"A\"");
    p_run(&h, "p/a/a2", T0 + 5, "\"A2\"");
    json_t *payload = parse_json("{\"ok\": true}");
    h_feed(&h, in_signal(at(&h, "p/c/c1"), T0 + 6, "go", payload));
    json_decref(payload);
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "{\"a\": \"A2\", \"b\": \"B\", \"c\": {\"ok\": true}}", "output");
    h_free(&h);
}

/* Once the saga undid anything, retry is stale; so is a retry of a completed or running one. */
static void retry_is_refused_once_a_compensation_ran(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"rr\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": [1, 2],"
        " \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://svc/s\"}, \"retry\": "
        "{\"max_attempts\": 1}, \"compensate\": {\"url\": \"http://svc/undo\"}}]}}]}";
    struct h h;
    h_init(&h, D, "{}");
    h_feed(&h, in_start(T0));
    expect_stale(&h, in_retry(T0 + 1));
    p_run(&h, "all/0/s", T0 + 1, "0");
    p_run_fail(&h, "all/1/s", T0 + 2, BOOM);
    /* The saga runs: a retry now is stale (the execution is not failed yet). */
    assert_string_equal(compensating(&h), "all/0/s");
    expect_stale(&h, in_retry(T0 + 3));
    p_compensate(&h, "all/0/s", T0 + 4);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    expect_stale(&h, in_retry(T0 + 5));
    h_free(&h);
}

/* A for_each that failed on its items (never iterated) is entered again by a retry: its items
 * are evaluated again, not taken as an empty array. With the same input it fails the same way;
 * with a larger max_items (a server setting changed) it runs. */
static void retry_of_a_loop_whose_items_failed_evaluates_them_again(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"ri\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": "
        "\"${input.xs}\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"1s\"}]}}],"
        " \"output\": \"${steps.all.output}\"}";
    struct h h;
    h_init(&h, D, "{\"xs\": 7}");
    h_feed(&h, in_start(T0));
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    h_feed(&h, in_retry(T0 + 1));
    assert_true(h.fx.ended);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")), "invalid_items");
    h_free(&h);

    h_init(&h, D, "{\"xs\": [1, 2, 3]}");
    struct engine_plan *p = engine_plan_build(h.d);
    assert_non_null(p);
    p->max_items = 2;
    h_feed_plan(&h, p, in_start(T0));
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")), "too_many_items");
    p->max_items = 3;
    h_feed_plan(&h, p, in_retry(T0 + 1));
    assert_false(h.fx.ended);
    expect_ptasks(&h, "[[\"timer\", \"all/0/nap\", 0, 1001], [\"timer\", \"all/1/nap\", 0, 1001],"
                      " [\"timer\", \"all/2/nap\", 0, 1001]]");
    for (int k = 0; k < 3; k++) {
        char path[16];
        snprintf(path, sizeof path, "all/%d/nap", k);
        h_feed_plan(&h, p, in_timer(at(&h, path), T0 + 1001));
    }
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "[null, null, null]", "output");
    engine_plan_free(p);
    h_free(&h);
}

/* ---- stale inputs ------------------------------------------------------------------------- */

static const char *const STALE =
    "{\"name\": \"st\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
    " \"a\": [{\"id\": \"a1\", \"activity\": {\"url\": \"http://svc/a1\"}, \"retry\": "
    "{\"max_attempts\": 1}}],"
    " \"b\": [{\"id\": \"b1\", \"activity\": {\"url\": \"http://svc/b1\"}}],"
    " \"c\": [{\"id\": \"c1\", \"activity\": {\"url\": \"http://svc/c1\"}, \"heartbeat_timeout\": "
    "\"10s\"}],"
    " \"d\": [{\"id\": \"d1\", \"sleep\": \"1h\"}],"
    " \"e\": [{\"id\": \"e1\", \"wait\": {\"signal\": \"go\", \"timeout\": \"1h\"}}],"
    " \"f\": [{\"id\": \"f1\", \"activity\": {\"url\": \"http://svc/f1\"}}]}}}]}";

static void stale_inputs_change_nothing(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, STALE, "{}");
    h_feed(&h, in_start(T0));
    json_t *out = parse_json("1"), *err = parse_json(BOOM), *payload = parse_json("{}");
    size_t a1 = at(&h, "p/a/a1"), b1 = at(&h, "p/b/b1"), c1 = at(&h, "p/c/c1"),
           d1 = at(&h, "p/d/d1"), e1 = at(&h, "p/e/e1"), f1 = at(&h, "p/f/f1");

    /* Attempt numbers that are not the one in flight. */
    p_started(&h, "p/b/b1", T0 + 1);
    expect_stale(&h, in_succeeded(b1, 2, T0 + 2, out));
    expect_stale(&h, in_succeeded(b1, 0, T0 + 2, out));
    expect_stale(&h, in_failed(b1, 2, T0 + 2, err));
    expect_stale(&h, in_started(b1, 2, T0 + 2));
    /* A result for a step not sent yet; a timer or a signal for the wrong kind of step. */
    expect_stale(&h, in_succeeded(f1, 1, T0 + 2, out));
    expect_stale(&h, in_timer(f1, T0 + 2));
    expect_stale(&h, in_signal(d1, T0 + 2, "go", payload));
    expect_stale(&h, in_signal(e1, T0 + 2, "other", payload));
    /* Inputs for the containers themselves: they have no attempts, timers or waits. */
    expect_stale(&h, in_started(at(&h, "p"), 1, T0 + 2));
    expect_stale(&h, in_succeeded(at(&h, "p/a"), 0, T0 + 2, out));
    expect_stale(&h, in_timer(at(&h, "p/d"), T0 + 2));
    /* No such instance. */
    expect_stale(&h, in_succeeded(h.st.n_steps + 3, 1, T0 + 2, out));

    /* c1 is accepted (202) and in flight; f1 stays unsent. Then a1 fails: d1, e1 and f1 stop. */
    p_started(&h, "p/c/c1", T0 + 3);
    h_feed(&h, in_accepted(c1, 1, T0 + 3));
    assert_false(h.fx.stale);
    p_run_fail(&h, "p/a/a1", T0 + 4, BOOM);
    expect_statuses(&h, "{\"p\": \"running\", \"p/a\": \"failed\", \"p/b\": \"running\","
                        " \"p/c\": \"running\", \"p/d\": \"skipped\", \"p/e\": \"skipped\","
                        " \"p/f\": \"skipped\", \"p/a/a1\": \"failed\", \"p/b/b1\": \"running\","
                        " \"p/c/c1\": \"running\", \"p/d/d1\": \"skipped\","
                        " \"p/e/e1\": \"skipped\", \"p/f/f1\": \"skipped\"}");
    /* Results for ended and skipped instances; a timer for a stopped sleep; a signal and a
     * timeout for a stopped wait; an attempt of a skipped step. */
    expect_stale(&h, in_succeeded(a1, 1, T0 + 5, out));
    expect_stale(&h, in_failed(a1, 1, T0 + 5, err));
    expect_stale(&h, in_started(f1, 1, T0 + 5));
    expect_stale(&h, in_succeeded(f1, 1, T0 + 5, out));
    expect_stale(&h, in_timer(d1, T0 + HOUR));
    expect_stale(&h, in_signal(e1, T0 + 5, "go", payload));
    expect_stale(&h, in_wait_timeout(e1, T0 + HOUR));
    expect_stale(&h, in_heartbeat(f1, 1, T0 + 5));
    /* The accepted c1 still takes heartbeats and its result (its safe point). */
    h_feed(&h, in_heartbeat(c1, 1, T0 + 6));
    assert_false(h.fx.stale);
    expect_stale(&h, in_heartbeat(c1, 2, T0 + 6));
    p_succeed(&h, "p/b/b1", T0 + 7, "\"B\"");
    expect_stale(&h, in_succeeded(b1, 1, T0 + 8, out));
    h_feed(&h, in_succeeded(c1, 1, T0 + 9, out));
    assert_false(h.fx.stale);
    expect_pcancels(&h, "[[\"attempt_timeout\", \"p/c/c1\"], [\"heartbeat_timeout\", \"p/c/c1\"]]");
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    /* After the end: stale, and said to be about an ended execution. */
    expect_stale(&h, in_succeeded(c1, 1, T0 + 10, out));
    assert_true(h.fx.stale_ended);
    expect_stale(&h, in_heartbeat_timeout(c1, 1, T0 + 10));
    expect_stale(&h, in_cancel(T0 + 10));
    json_decref(out);
    json_decref(err);
    json_decref(payload);
    h_free(&h);
}

/* The same for an inner loop whose items failed in one iteration: the retry evaluates them
 * again (and fails again), while the completed iteration is kept. */
static void retry_of_an_inner_loop_whose_items_failed(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"rn\", \"steps\": [{\"id\": \"outer\", \"for_each\": {\"items\": "
        "\"${input.gs}\", \"concurrency\": 1, \"steps\": [{\"id\": \"inner\", \"for_each\": "
        "{\"items\": \"${item.xs}\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": "
        "\"http://svc/s\"}}]}}]}}], \"output\": \"${steps.outer.output}\"}";
    struct h h;
    h_init(&h, D, "{\"gs\": [{\"xs\": [1]}, {\"xs\": \"no\"}]}");
    h_feed(&h, in_start(T0));
    p_run(&h, "outer/0/inner/0/s", T0 + 1, "\"S\"");
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "path")), "outer/1/inner");
    h_feed(&h, in_retry(T0 + 2));
    assert_true(h.fx.ended);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")), "invalid_items");
    assert_string_equal(status_of(&h, "outer/0/inner/0/s"), "completed");
    assert_int_equal(h.fx.n_tasks, 0);
    h_free(&h);
}

/* An accepted (202) attempt in a branch is in flight: a failure elsewhere lets it run, and its
 * timeout then fails it without a retry. */
static void accepted_attempt_times_out_without_retry_after_a_failure(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, STALE, "{}");
    h_feed(&h, in_start(T0));
    size_t c1 = at(&h, "p/c/c1");
    p_started(&h, "p/c/c1", T0 + 1);
    h_feed(&h, in_accepted(c1, 1, T0 + 1));
    p_started(&h, "p/b/b1", T0 + 1);
    p_run_fail(&h, "p/a/a1", T0 + 2, BOOM);
    assert_string_equal(status_of(&h, "p/c/c1"), "running");
    h_feed(&h, in_heartbeat_timeout(c1, 1, T0 + 10 * SEC + 1));
    assert_false(h.fx.stale);
    expect_json(json_object_get(event_data(&h, "attempt_failed"), "next_attempt_at"), "null",
                "next_attempt_at");
    assert_string_equal(status_of(&h, "p/c/c1"), "failed");
    assert_int_equal(h.fx.n_tasks, 0);
    /* b1 is still in flight; its end ends the execution with a1's error. */
    assert_string_equal(status_of(&h, "p"), "running");
    p_succeed(&h, "p/b/b1", T0 + 11 * SEC, "1");
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "path")), "p/a/a1");
    h_free(&h);
}

/* ---- replay determinism ------------------------------------------------------------------- */

enum op_kind {
    OP_START,
    OP_STARTED, /* the step's current attempt is sent */
    OP_OK,      /* ... and succeeds with text */
    OP_FAIL,    /* ... and fails with text */
    OP_FAIL_NR, /* ... and fails, non-retryable */
    OP_ACCEPT,
    OP_HEARTBEAT,
    OP_TIMER,
    OP_SIGNAL, /* text: the payload */
    OP_WAIT_TIMEOUT,
    OP_CANCEL,
    OP_TERMINATE,
    OP_RETRY,
    OP_COMP_STARTED,
    OP_COMP_OK,
    OP_STALE_OK, /* a result with attempt + 1 */
};

struct op {
    enum op_kind kind;
    const char *path;
    int64_t t;
    const char *text;
};

/* Everything the input produced, as JSON. New reference. */
static json_t *effects_record(struct h *h)
{
    json_t *ev = json_array();
    for (size_t i = 0; i < h->fx.n_events; i++)
        json_array_append_new(ev, json_pack("[s, s, i, O]", h->fx.events[i].type,
                                            path_of(h, h->fx.events[i].step),
                                            h->fx.events[i].attempt, h->fx.events[i].data));
    json_t *tasks = json_array();
    for (size_t i = 0; i < h->fx.n_tasks; i++) {
        const struct engine_task *t = &h->fx.tasks[i];
        json_array_append_new(tasks, json_pack("[s, s, i, I, O?]", engine_task_kind_name(t->kind),
                                               path_of(h, (long)t->step), t->attempt,
                                               (json_int_t)t->due_at_ms, t->payload));
    }
    json_t *changed = json_array();
    for (size_t i = 0; i < h->fx.n_changed_steps; i++)
        json_array_append_new(changed, json_string(path_of(h, (long)h->fx.changed_steps[i])));
    return json_pack("{s:o, s:o, s:o, s:o, s:b, s:b, s:b, s:b, s:s?, s:O?, s:O?, s:o, s:o}",
                     "events", ev, "tasks", tasks, "cancels", cancels_by_path(h), "changed",
                     changed, "stale", h->fx.stale, "cancel_tasks", h->fx.cancel_tasks, "ended",
                     h->fx.ended, "clear_error", h->fx.clear_error, "wants_signal",
                     h->fx.wants_signal, "output", h->fx.output, "error", h->fx.error, "state",
                     engine_state_to_json(&h->st), "ctx", json_deep_copy(h->ctx));
}

/* Runs the script with h_feed, or with h_feed_reloaded; returns the record of every input. */
static json_t *run_script(const char *defn, const char *input, const struct op *ops, size_t n,
                          bool reload)
{
    struct h h;
    h_init(&h, defn, input);
    json_t *log = json_array();
    for (size_t k = 0; k < n; k++) {
        const struct op *o = &ops[k];
        int64_t now = T0 + o->t;
        size_t i = o->path ? at(&h, o->path) : 0;
        int attempt = o->path ? h.st.steps[i].attempt : 0;
        int comp_attempt = o->path ? h.st.steps[i].comp.attempt : 0;
        json_t *v = o->text ? parse_json(o->text) : json_null();
        struct engine_input in;
        switch (o->kind) {
        case OP_START:
            in = in_start(now);
            break;
        case OP_STARTED:
            in = in_started(i, attempt, now);
            break;
        case OP_OK:
            in = in_succeeded(i, attempt, now, v);
            break;
        case OP_FAIL:
        case OP_FAIL_NR:
            in = in_failed(i, attempt, now, v);
            in.non_retryable = o->kind == OP_FAIL_NR;
            break;
        case OP_ACCEPT:
            in = in_accepted(i, attempt, now);
            break;
        case OP_HEARTBEAT:
            in = in_heartbeat(i, attempt, now);
            break;
        case OP_TIMER:
            in = in_timer(i, now);
            break;
        case OP_SIGNAL:
            in = in_signal(i, now, "go", v);
            break;
        case OP_WAIT_TIMEOUT:
            in = in_wait_timeout(i, now);
            break;
        case OP_CANCEL:
            in = in_cancel(now);
            break;
        case OP_TERMINATE:
            in = in_terminate(now);
            break;
        case OP_RETRY:
            in = in_retry(now);
            break;
        case OP_COMP_STARTED:
            in = comp(in_started(i, comp_attempt, now));
            break;
        case OP_COMP_OK:
            in = comp(in_succeeded(i, comp_attempt, now, v));
            break;
        case OP_STALE_OK:
            in = in_succeeded(i, attempt + 1, now, v);
            break;
        default:
            fail();
        }
        if (reload)
            h_feed_reloaded(&h, in);
        else
            h_feed(&h, in);
        if (h.fx.stale != (o->kind == OP_STALE_OK))
            fail_msg("op %zu (%d on %s): stale %d", k, (int)o->kind, o->path ? o->path : "-",
                     (int)h.fx.stale);
        json_array_append_new(log, effects_record(&h));
        json_decref(v);
    }
    json_array_append_new(log, json_integer(h.st.status));
    h_free(&h);
    return log;
}

static void expect_same_replay(const char *defn, const char *input, const struct op *ops, size_t n,
                               enum engine_exec_status final)
{
    json_t *a = run_script(defn, input, ops, n, false);
    json_t *b = run_script(defn, input, ops, n, true);
    for (size_t k = 0; k < json_array_size(a); k++) {
        if (!json_equal(json_array_get(a, k), json_array_get(b, k))) {
            char *x = dump(json_array_get(a, k)), *y = dump(json_array_get(b, k));
            print_error("input %zu differs\n  in memory: %s\n  reloaded:  %s\n", k, x, y);
            free(x);
            free(y);
            fail();
        }
    }
    assert_int_equal(json_array_size(a), json_array_size(b));
    assert_int_equal(json_integer_value(json_array_get(a, json_array_size(a) - 1)), final);
    json_decref(a);
    json_decref(b);
}

/* A loop of a parallel and an inner loop; COMP is the compensate member of px and pre (or
 * nothing, so that a failure leaves the execution retryable). */
#define REPLAY_DEFN(COMP_PRE, COMP_PX)                                                             \
    "{\"name\": \"rp\", \"steps\": ["                                                              \
    " {\"id\": \"pre\", \"activity\": {\"url\": \"http://svc/pre\"}" COMP_PRE "},"                 \
    " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"concurrency\": 2, "           \
    "\"steps\": ["                                                                                 \
    "   {\"id\": \"fan\", \"parallel\": {\"branches\": {"                                          \
    "     \"x\": [{\"id\": \"px\", \"activity\": {\"url\": \"http://svc/x/${index}\", "            \
    "\"input\": \"${item}\"}, \"retry\": {\"max_attempts\": 2, \"initial_interval\": \"1s\"}, "    \
    "\"heartbeat_timeout\": \"1m\"" COMP_PX "}],"                                                  \
    "     \"y\": [{\"id\": \"nap\", \"sleep\": \"1m\"}, {\"id\": \"hold\", \"wait\": "             \
    "{\"signal\": \"go\", \"timeout\": \"1h\"}, \"on_timeout\": \"continue\"}]}}},"                \
    "   {\"id\": \"inner\", \"for_each\": {\"items\": \"${steps.fan.output.x}\", \"steps\": ["     \
    "     {\"id\": \"leaf\", \"activity\": {\"url\": \"http://svc/leaf\", \"input\": {\"o\": "     \
    "\"${loops.all.index}\", \"i\": \"${item}\"}}}]}}]}},"                                         \
    " {\"id\": \"post\", \"activity\": {\"url\": \"http://svc/post\", \"input\": "                 \
    "\"${steps.all.output}\"}}],"                                                                  \
    " \"output\": {\"all\": \"${steps.all.output}\", \"post\": \"${steps.post.output}\"}}"

static const char *const REPLAY = REPLAY_DEFN(
    ", \"compensate\": {\"url\": \"http://svc/undo/pre\"}",
    ", \"compensate\": {\"url\": \"http://svc/undo/x\", \"input\": \"${steps.px.output}\"}");
static const char *const REPLAY_NO_UNDO = REPLAY_DEFN("", "");

/* Success after a failed iteration and a retry, with retries, 202s, timers, signals, a wait
 * timeout and stale results along the way. */
static void replay_with_reloads_gives_the_same_effects(void **state)
{
    (void)state;
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL},
        {OP_STARTED, "pre", 1, NULL},
        {OP_OK, "pre", 2, "\"P\""},
        {OP_STARTED, "all/0/fan/x/px", 3, NULL},
        {OP_ACCEPT, "all/0/fan/x/px", 3, NULL},
        {OP_HEARTBEAT, "all/0/fan/x/px", 4, NULL},
        {OP_STARTED, "all/1/fan/x/px", 5, NULL},
        {OP_FAIL, "all/1/fan/x/px", 6, "{\"type\": \"T\", \"message\": \"m\"}"},
        {OP_STALE_OK, "all/1/fan/x/px", 7, "1"},
        {OP_TIMER, "all/0/fan/y/nap", MIN, NULL},
        {OP_TIMER, "all/1/fan/y/nap", MIN, NULL},
        {OP_SIGNAL, "all/0/fan/y/hold", MIN + 1, "{\"s\": 0}"},
        {OP_OK, "all/0/fan/x/px", MIN + 2, "[\"a\", \"b\"]"},
        {OP_STARTED, "all/0/inner/1/leaf", MIN + 3, NULL},
        {OP_OK, "all/0/inner/1/leaf", MIN + 4, "\"L01\""},
        {OP_STARTED, "all/0/inner/0/leaf", MIN + 5, NULL},
        {OP_STARTED, "all/1/fan/x/px", MIN + 5, NULL},
        {OP_FAIL, "all/1/fan/x/px", MIN + 6, "{\"type\": \"T\", \"message\": \"again\"}"},
        {OP_OK, "all/0/inner/0/leaf", MIN + 8, "\"L00\""},
        {OP_RETRY, NULL, HOUR, NULL},
        {OP_STARTED, "all/1/fan/x/px", HOUR + 1, NULL},
        {OP_OK, "all/1/fan/x/px", HOUR + 2, "[\"c\"]"},
        {OP_WAIT_TIMEOUT, "all/1/fan/y/hold", 2 * HOUR + MIN, NULL},
        {OP_STARTED, "all/1/inner/0/leaf", 3 * HOUR, NULL},
        {OP_OK, "all/1/inner/0/leaf", 3 * HOUR + 1, "\"L10\""},
        {OP_STARTED, "all/2/fan/x/px", 3 * HOUR + 2, NULL},
        {OP_OK, "all/2/fan/x/px", 3 * HOUR + 3, "[]"},
        {OP_TIMER, "all/2/fan/y/nap", 3 * HOUR + MIN, NULL},
        {OP_SIGNAL, "all/2/fan/y/hold", 3 * HOUR + MIN, "2"},
        {OP_STARTED, "post", 4 * HOUR, NULL},
        {OP_OK, "post", 4 * HOUR + 1, "\"done\""},
    };
    expect_same_replay(REPLAY_NO_UNDO, "{\"xs\": [\"i0\", \"i1\", \"i2\"]}", ops,
                       sizeof ops / sizeof ops[0], ENGINE_EXEC_COMPLETED);
}

/* A cancel in the middle of the loop and the saga over every iteration. */
static void replay_of_a_cancel_and_its_saga(void **state)
{
    (void)state;
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL},
        {OP_STARTED, "pre", 1, NULL},
        {OP_OK, "pre", 2, "\"P\""},
        {OP_STARTED, "all/0/fan/x/px", 3, NULL},
        {OP_OK, "all/0/fan/x/px", 4, "[1]"},
        {OP_STARTED, "all/1/fan/x/px", 5, NULL},
        {OP_CANCEL, NULL, 6, NULL},
        {OP_OK, "all/1/fan/x/px", 7, "[2]"},
        {OP_COMP_STARTED, "all/1/fan/x/px", 8, NULL},
        {OP_COMP_OK, "all/1/fan/x/px", 9, NULL},
        {OP_COMP_STARTED, "all/0/fan/x/px", 10, NULL},
        {OP_COMP_OK, "all/0/fan/x/px", 11, NULL},
        {OP_COMP_STARTED, "pre", 12, NULL},
        {OP_COMP_OK, "pre", 13, NULL},
    };
    expect_same_replay(REPLAY, "{\"xs\": [\"i0\", \"i1\", \"i2\"]}", ops,
                       sizeof ops / sizeof ops[0], ENGINE_EXEC_CANCELLED);
}

/* A terminate during a failure's saga. */
static void replay_of_a_failure_then_terminate(void **state)
{
    (void)state;
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL},
        {OP_STARTED, "pre", 1, NULL},
        {OP_OK, "pre", 2, "\"P\""},
        {OP_STARTED, "all/0/fan/x/px", 3, NULL},
        {OP_OK, "all/0/fan/x/px", 4, "[1]"},
        {OP_STARTED, "all/1/fan/x/px", 5, NULL},
        {OP_FAIL_NR, "all/1/fan/x/px", 6, "{\"type\": \"T\", \"message\": \"m\"}"},
        {OP_COMP_STARTED, "all/0/fan/x/px", 8, NULL},
        {OP_TERMINATE, NULL, 9, NULL},
    };
    expect_same_replay(REPLAY, "{\"xs\": [\"i0\", \"i1\"]}", ops, sizeof ops / sizeof ops[0],
                       ENGINE_EXEC_TERMINATED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(retry_reruns_only_the_failed_and_stopped_iterations),
        cmocka_unit_test(retry_keeps_the_concurrency),
        cmocka_unit_test(retry_after_a_failed_parallel_branch),
        cmocka_unit_test(retry_is_refused_once_a_compensation_ran),
        cmocka_unit_test(retry_of_a_loop_whose_items_failed_evaluates_them_again),
        cmocka_unit_test(stale_inputs_change_nothing),
        cmocka_unit_test(retry_of_an_inner_loop_whose_items_failed),
        cmocka_unit_test(accepted_attempt_times_out_without_retry_after_a_failure),
        cmocka_unit_test(replay_with_reloads_gives_the_same_effects),
        cmocka_unit_test(replay_of_a_cancel_and_its_saga),
        cmocka_unit_test(replay_of_a_failure_then_terminate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
