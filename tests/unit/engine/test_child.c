/* workflow steps (child executions) through the interpreter: entering one asks for its child
 * (a stable id derived from the execution and the step's path, the evaluated input), the step
 * waits without any task, and the child's end completes or fails it; stopping the step (cancel,
 * terminate, a failure elsewhere) stops the child; a retry of the parent asks for the same
 * child again. */
#include "flow_harness.h"

static const char *const ORDER =
    "{\"name\": \"order\", \"steps\": ["
    " {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/charge\"}, \"compensate\": "
    "{\"url\": \"http://svc/refund\"}},"
    " {\"id\": \"ship\", \"workflow\": {\"name\": \"shipping\", \"input\": {\"order\": "
    "\"${input.order}\", \"charge\": \"${steps.charge.output}\"}}},"
    " {\"id\": \"done\", \"set\": \"${steps.ship.output.tracking}\"}],"
    " \"output\": \"${steps.done.output}\"}";

static struct engine_input in_child_ended(size_t step, int64_t now, const char *status,
                                          const json_t *output, const json_t *error)
{
    return (struct engine_input){.kind = ENGINE_IN_CHILD_ENDED,
                                 .now_ms = now,
                                 .step = step,
                                 .child_status = status,
                                 .output = output,
                                 .error = error,
                                 .retry_after_ms = -1};
}

/* Entered: a child is asked for, and the step waits for it (no task: the child's end comes
 * as an input). */
static void enter_asks_for_the_child(struct h *h)
{
    h_init(h, ORDER, "{\"order\": \"o-7\"}");
    h_feed(h, in_start(T0));
    p_run(h, "charge", T0 + 1, "\"ch_1\"");
    expect_pevents(h, "[[\"step_completed\", \"charge\", 1], [\"step_scheduled\", \"ship\", 0]]");
    expect_json(event_data(h, "step_scheduled"),
                "{\"kind\": \"workflow\", \"workflow\": \"shipping\", \"version\": null}",
                "the step's event names its workflow");
    assert_int_equal(h->fx.n_children, 1);
    assert_string_equal(h->fx.children[0].id, "exec-1:ship");
    assert_string_equal(h->fx.children[0].workflow, "shipping");
    assert_int_equal(h->fx.children[0].version, 0);
    assert_string_equal(path_of(h, (long)h->fx.children[0].step), "ship");
    expect_json(h->fx.children[0].input, "{\"order\": \"o-7\", \"charge\": \"ch_1\"}",
                "the child's input");
    assert_string_equal(status_of(h, "ship"), "waiting");
    assert_int_equal(h->fx.n_tasks, 0);
}

static void child_output_completes_the_step(void **state)
{
    (void)state;
    struct h h;
    enter_asks_for_the_child(&h);
    json_t *out = parse_json("{\"tracking\": \"TRK-1\"}");
    h_feed_reloaded(&h, in_child_ended(at(&h, "ship"), T0 + 2, "completed", out, NULL));
    json_decref(out);
    expect_pevents(&h, "[[\"step_completed\", \"ship\", 0], [\"step_scheduled\", \"done\", 0],"
                       " [\"step_completed\", \"done\", 0], [\"execution_completed\", \"-\", 0]]");
    expect_json(h.fx.output, "\"TRK-1\"", "output");
    /* The same end again (a report repeated after a retry of the child's start) is stale. */
    out = parse_json("{\"tracking\": \"TRK-1\"}");
    h_feed(&h, in_child_ended(at(&h, "ship"), T0 + 3, "completed", out, NULL));
    json_decref(out);
    assert_true(h.fx.stale);
    h_free(&h);
}

/* A child that failed fails the step with child_failed, its error inside; the saga refunds. */
static void child_failure_fails_the_step(void **state)
{
    (void)state;
    struct h h;
    enter_asks_for_the_child(&h);
    json_t *err = parse_json("{\"type\": \"NoStock\", \"message\": \"out of stock\", \"step\": "
                             "\"pick\", \"attempts\": 1}");
    h_feed(&h, in_child_ended(at(&h, "ship"), T0 + 2, "failed", NULL, err));
    json_decref(err);
    expect_json(ctx_error_of(&h, "ship"),
                "{\"type\": \"child_failed\", \"message\": \"child execution exec-1:ship (workflow "
                "shipping) ended failed: out of stock\", \"step\": \"ship\", \"attempts\": 0, "
                "\"child\": {\"id\": \"exec-1:ship\", \"status\": \"failed\", \"error\": "
                "{\"type\": \"NoStock\", \"message\": \"out of stock\", \"step\": \"pick\", "
                "\"attempts\": 1}}}",
                "the step's error");
    assert_string_equal(compensating(&h), "charge");
    p_compensate(&h, "charge", T0 + 3);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")), "child_failed");
    h_free(&h);

    /* A child terminated: the same, with its status and no error; the message names the
     * child the runner reports (a replacement after a retry has its own id). */
    enter_asks_for_the_child(&h);
    struct engine_input in = in_child_ended(at(&h, "ship"), T0 + 2, "terminated", NULL, NULL);
    in.child_id = "exec-1:ship:2";
    h_feed(&h, in);
    assert_string_equal(json_string_value(json_object_get(ctx_error_of(&h, "ship"), "message")),
                        "child execution exec-1:ship:2 (workflow shipping) ended terminated");
    h_free(&h);
}

/* A child that could not start (no such workflow version, the depth limit, its id taken by
 * another execution) fails the step with that reason as its type. */
static void child_that_never_started(void **state)
{
    (void)state;
    struct h h;
    enter_asks_for_the_child(&h);
    json_t *err = parse_json("{\"type\": \"child_not_found\", \"message\": \"workflow "
                             "\\\"shipping\\\" has no version 3\"}");
    h_feed(&h, in_child_ended(at(&h, "ship"), T0 + 2, "not_started", NULL, err));
    json_decref(err);
    expect_json(ctx_error_of(&h, "ship"),
                "{\"type\": \"child_not_found\", \"message\": \"workflow \\\"shipping\\\" has no "
                "version 3\", \"step\": \"ship\", \"attempts\": 0}",
                "the step's error");
    h_free(&h);
}

/* Cancel while the child runs: the step stops at once and the child is cancelled (it runs its
 * own saga); the parent's saga refunds. Terminate terminates the child. A late end of the
 * child is stale. */
static void cancel_and_terminate_reach_the_child(void **state)
{
    (void)state;
    struct h h;
    enter_asks_for_the_child(&h);
    h_feed_reloaded(&h, in_cancel(T0 + 2));
    assert_int_equal(h.fx.n_child_stops, 1);
    assert_string_equal(h.fx.child_stops[0].path, "ship");
    assert_false(h.fx.child_stops[0].terminate);
    assert_string_equal(status_of(&h, "ship"), "skipped");
    p_compensate(&h, "charge", T0 + 3);
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    h_feed(&h, in_child_ended(at(&h, "ship"), T0 + 4, "cancelled", NULL, NULL));
    assert_true(h.fx.stale);
    h_free(&h);

    enter_asks_for_the_child(&h);
    h_feed(&h, in_terminate(T0 + 2));
    assert_int_equal(h.fx.n_child_stops, 1);
    assert_string_equal(h.fx.child_stops[0].path, "ship");
    assert_true(h.fx.child_stops[0].terminate);
    assert_int_equal(h.st.status, ENGINE_EXEC_TERMINATED);
    h_free(&h);
}

/* In a loop and in a parallel: each iteration has its own child; a branch that fails stops
 * the others' children. */
static void children_in_containers(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"many\", \"steps\": ["
           " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"steps\": ["
           "   {\"id\": \"ship\", \"workflow\": {\"name\": \"shipping\", \"version\": 2, "
           "\"input\": \"${item}\"}}]}},"
           " {\"id\": \"p\", \"parallel\": {\"branches\": {"
           "   \"a\": [{\"id\": \"kid\", \"workflow\": {\"name\": \"audit\"}}],"
           "   \"b\": [{\"id\": \"no\", \"fail\": {\"type\": \"No\"}}]}}}],"
           " \"output\": \"${steps.all.output}\"}",
           "{\"xs\": [\"a\", \"b\"]}");
    h_feed(&h, in_start(T0));
    assert_int_equal(h.fx.n_children, 2);
    assert_string_equal(h.fx.children[0].id, "exec-1:all:0:ship");
    assert_string_equal(h.fx.children[1].id, "exec-1:all:1:ship");
    assert_int_equal(h.fx.children[1].version, 2);
    expect_json(h.fx.children[1].input, "\"b\"", "the second child's input");
    json_t *one = parse_json("1"), *two = parse_json("2");
    h_feed(&h, in_child_ended(at(&h, "all/1/ship"), T0 + 1, "completed", two, NULL));
    h_feed_reloaded(&h, in_child_ended(at(&h, "all/0/ship"), T0 + 2, "completed", one, NULL));
    json_decref(one);
    json_decref(two);
    /* The loop completed; the parallel's kid asked for its child, then b failed at once and
     * stopped it. */
    expect_json(ctx_output(&h, "all"), "[1, 2]", "the loop's output");
    assert_int_equal(h.fx.n_children, 1);
    assert_string_equal(h.fx.children[0].id, "exec-1:p:a:kid");
    assert_int_equal(h.fx.n_child_stops, 1);
    assert_string_equal(h.fx.child_stops[0].path, "p/a/kid");
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    h_free(&h);
}

/* A retry of the parent after its child failed asks for the same child again (the runner then
 * runs the failed child again); an input that does not evaluate fails the step without asking
 * for a child. */
static void retry_asks_for_the_same_child(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"r\", \"steps\": [{\"id\": \"ship\", \"workflow\": {\"name\": \"shipping\","
           " \"input\": \"${input.order}\"}}], \"output\": \"${steps.ship.output}\"}",
           "{\"order\": 1}");
    h_feed(&h, in_start(T0));
    assert_int_equal(h.fx.n_children, 1);
    json_t *err = parse_json("{\"type\": \"Boom\", \"message\": \"no\"}");
    h_feed(&h, in_child_ended(at(&h, "ship"), T0 + 1, "failed", NULL, err));
    json_decref(err);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    h_feed_reloaded(&h, in_retry(T0 + 2));
    assert_int_equal(h.fx.n_children, 1);
    assert_string_equal(h.fx.children[0].id, "exec-1:ship");
    json_t *out = parse_json("\"ok\"");
    h_feed(&h, in_child_ended(at(&h, "ship"), T0 + 3, "completed", out, NULL));
    json_decref(out);
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "\"ok\"", "output");
    h_free(&h);

    h_init(&h,
           "{\"name\": \"r\", \"steps\": [{\"id\": \"ship\", \"workflow\": {\"name\": \"shipping\","
           " \"input\": \"${input.nope}\"}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    assert_int_equal(h.fx.n_children, 0);
    json_t *e = ctx_error_of(&h, "ship");
    assert_string_equal(json_string_value(json_object_get(e, "type")), "expression");
    assert_string_equal(json_string_value(json_object_get(e, "pointer")),
                        "/steps/0/workflow/input");
    h_free(&h);
}

/* Ids: readable when short, bounded and distinct when long. */
static void child_ids(void **state)
{
    (void)state;
    char *id = engine_child_id("order-1", "all/3/ship");
    assert_string_equal(id, "order-1:all:3:ship");
    free(id);
    char parent[129];
    memset(parent, 'p', 128);
    parent[128] = '\0';
    char *a = engine_child_id(parent, "ship"), *b = engine_child_id(parent, "shop");
    char *a2 = engine_child_id(parent, "ship");
    assert_int_equal(strlen(a), 128);
    assert_string_equal(a, a2);
    assert_string_not_equal(a, b);
    assert_memory_equal(a, parent, 111);
    assert_int_equal(a[111], ':');
    free(a);
    free(a2);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(child_output_completes_the_step),
        cmocka_unit_test(child_failure_fails_the_step),
        cmocka_unit_test(child_that_never_started),
        cmocka_unit_test(cancel_and_terminate_reach_the_child),
        cmocka_unit_test(children_in_containers),
        cmocka_unit_test(retry_asks_for_the_same_child),
        cmocka_unit_test(child_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
