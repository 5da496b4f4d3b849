/* Code executions (issue 10, step calls) through the interpreter, before any step call: the
 * root of defn_code() runs from the start until its program completes it (with its output) or
 * fails it (with its error); a cancel waits for the program's next complete or fail, or for
 * the deadline, and ends it cancelled; terminate ends it at once; a retry after a failure lets
 * the program run again. Inputs that do not fit are stale; so are complete and fail for an
 * execution with a definition. */
#include "flow_harness.h"

static struct engine_input in_complete(int64_t now, const json_t *output)
{
    return (struct engine_input){
        .kind = ENGINE_IN_COMPLETE, .now_ms = now, .output = output, .retry_after_ms = -1};
}

static struct engine_input in_fail(int64_t now, const json_t *error)
{
    return (struct engine_input){
        .kind = ENGINE_IN_FAIL, .now_ms = now, .error = error, .retry_after_ms = -1};
}

static struct engine_input in_deadline(int64_t now)
{
    return (struct engine_input){
        .kind = ENGINE_IN_CANCEL_DEADLINE, .now_ms = now, .retry_after_ms = -1};
}

static void started(struct h *h)
{
    h_init_code(h, "{\"order\": 7}");
    h_feed(h, in_start(T0));
    expect_pevents(h, "[[\"execution_started\", \"-\", 0]]");
    assert_int_equal(h->st.status, ENGINE_EXEC_RUNNING);
    assert_int_equal(h->st.n_steps, 1);
    assert_string_equal(h->st.steps[0].path, "");
    assert_string_equal(status_of(h, ""), "running");
    assert_int_equal(h->fx.n_tasks, 0);
}

static void complete_with_the_programs_output(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    json_t *out = parse_json("{\"shipped\": true}");
    h_feed_reloaded(&h, in_complete(T0 + 5, out));
    json_decref(out);
    expect_pevents(&h, "[[\"complete_requested\", \"-\", 0], [\"execution_completed\", \"-\", 0]]");
    assert_true(h.fx.ended);
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "{\"shipped\": true}", "the execution's output");
    assert_string_equal(status_of(&h, ""), "completed");
    /* Ended: complete, fail and cancel again are stale. */
    h_feed(&h, in_complete(T0 + 6, json_null()));
    assert_true(h.fx.stale);
    h_feed(&h, in_fail(T0 + 6, json_null()));
    assert_true(h.fx.stale);
    h_feed(&h, in_cancel(T0 + 6));
    assert_true(h.fx.stale);
    h_free(&h);
}

static void fail_with_the_programs_error(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    json_t *err = parse_json("{\"type\": \"OutOfStock\", \"message\": \"no more\"}");
    h_feed_reloaded(&h, in_fail(T0 + 5, err));
    json_decref(err);
    expect_pevents(&h, "[[\"fail_requested\", \"-\", 0], [\"execution_failed\", \"-\", 0]]");
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    expect_json(h.fx.error, "{\"type\": \"OutOfStock\", \"message\": \"no more\"}",
                "the execution's error");
    /* A retry lets the program run again; this time it completes. */
    h_feed_reloaded(&h, in_retry(T0 + 6));
    assert_false(h.fx.stale);
    assert_true(h.fx.clear_error);
    assert_int_equal(h.st.status, ENGINE_EXEC_RUNNING);
    assert_string_equal(status_of(&h, ""), "running");
    h_feed(&h, in_complete(T0 + 7, json_null()));
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "null", "output");
    h_free(&h);
}

/* A cancel schedules the deadline; the program's next complete or fail ends it cancelled (never
 * completed or failed: the cancel was asked first). */
static void cancel_waits_for_the_program(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    h_feed_reloaded(&h, in_cancel(T0 + 1));
    expect_pevents(&h, "[[\"cancel_requested\", \"-\", 0]]");
    assert_int_equal(h.st.status, ENGINE_EXEC_RUNNING);
    assert_true(h.st.cancel_requested);
    expect_ptasks(&h, "[[\"cancel_deadline\", \"\", 0, 300001]]");
    /* A second cancel is stale. */
    h_feed(&h, in_cancel(T0 + 2));
    assert_true(h.fx.stale);
    json_t *out = parse_json("\"done anyway\"");
    h_feed_reloaded(&h, in_complete(T0 + 3, out));
    json_decref(out);
    expect_pevents(&h, "[[\"complete_requested\", \"-\", 0], [\"execution_cancelled\", \"-\", 0]]");
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    assert_true(h.fx.cancel_tasks);
    assert_null(h.fx.output);
    /* The deadline, late, is stale. */
    h_feed(&h, in_deadline(T0 + 300001));
    assert_true(h.fx.stale);
    h_free(&h);

    started(&h);
    h_feed(&h, in_cancel(T0 + 1));
    json_t *err = parse_json("{\"type\": \"Stopped\", \"message\": \"as asked\"}");
    h_feed(&h, in_fail(T0 + 2, err));
    json_decref(err);
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    h_free(&h);
}

/* The program never comes back: the deadline ends it cancelled. Without a cancel, a deadline
 * is stale. */
static void the_deadline_ends_it(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    h_feed(&h, in_deadline(T0 + 1));
    assert_true(h.fx.stale);
    h_feed(&h, in_cancel(T0 + 2));
    h_feed_reloaded(&h, in_deadline(T0 + 2 + ENGINE_CODE_CANCEL_DEADLINE_MS));
    expect_pevents(&h,
                   "[[\"cancel_deadline_passed\", \"-\", 0], [\"execution_cancelled\", \"-\", 0]]");
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    assert_string_equal(status_of(&h, ""), "skipped");
    h_free(&h);
}

static void terminate_ends_it_at_once(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    h_feed(&h, in_cancel(T0 + 1));
    h_feed_reloaded(&h, in_terminate(T0 + 2));
    assert_int_equal(h.st.status, ENGINE_EXEC_TERMINATED);
    assert_true(h.fx.cancel_tasks);
    h_feed(&h, in_complete(T0 + 3, json_null()));
    assert_true(h.fx.stale);
    h_free(&h);
}

/* complete, fail and a deadline mean nothing to an execution with a definition. */
static void not_for_definitions(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, "{\"name\": \"w\", \"steps\": [{\"id\": \"w\", \"wait\": {\"signal\": \"go\"}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_complete(T0 + 1, json_null()));
    assert_true(h.fx.stale);
    h_feed(&h, in_fail(T0 + 1, json_null()));
    assert_true(h.fx.stale);
    h_feed(&h, in_deadline(T0 + 1));
    assert_true(h.fx.stale);
    /* A cancel ends a definition's wait at once, as before: no deadline. */
    h_feed(&h, in_cancel(T0 + 2));
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    h_free(&h);
}

/* The code definition and its plan: one root, id "", whose paths below are the keys. */
static void the_code_plan(void **state)
{
    (void)state;
    const struct defn *d = defn_code();
    assert_ptr_equal(d, defn_code());
    assert_int_equal(d->n_steps, 1);
    assert_int_equal(d->steps[0].kind, DEFN_STEP_CODE);
    struct engine_plan *p = engine_plan_build(d);
    assert_non_null(p);
    assert_true(p->code);
    const struct engine_plan_node *root = engine_plan_step_node(p, 0);
    assert_int_equal(root->kind, ENGINE_NODE_CODE);
    assert_true(engine_node_is_container(root->kind));
    assert_string_equal(engine_node_kind_name(root->kind), "code");
    char *path = engine_plan_path(root, NULL, 0);
    assert_string_equal(path, "");
    free(path);
    engine_plan_free(p);
    defn_free((struct defn *)d); /* a no-op */
    assert_int_equal(defn_code()->n_steps, 1);
    struct defn *w = parse_defn("{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"sleep\": 1}]}");
    p = engine_plan_build(w);
    assert_false(p->code);
    engine_plan_free(p);
    defn_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(complete_with_the_programs_output),
        cmocka_unit_test(fail_with_the_programs_error),
        cmocka_unit_test(cancel_waits_for_the_program),
        cmocka_unit_test(the_deadline_ends_it),
        cmocka_unit_test(terminate_ends_it_at_once),
        cmocka_unit_test(not_for_definitions),
        cmocka_unit_test(the_code_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
