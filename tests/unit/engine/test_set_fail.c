/* set and fail steps through the interpreter: a set's output is its evaluated template, a fail
 * fails there with its own error (the saga runs as for any failure), both at the top and
 * inside parallel and for_each, and both again after a retry of the execution. */
#include "flow_harness.h"

static const char *const ORDER =
    "{\"name\": \"order\", \"steps\": ["
    " {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/charge\"}, \"compensate\": "
    "{\"url\": \"http://svc/refund\"}},"
    " {\"id\": \"totals\", \"set\": {\"sum\": \"${steps.charge.output.n}\", \"of\": "
    "\"${input.who}\", \"k\": [1, null]}},"
    " {\"id\": \"after\", \"activity\": {\"url\": \"http://svc/after\", \"input\": "
    "\"${steps.totals.output}\"}}],"
    " \"output\": \"${steps.totals.output.sum}\"}";

static void set_is_its_evaluated_template(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, ORDER, "{\"who\": \"ann\"}");
    h_feed(&h, in_start(T0));
    p_run(&h, "charge", T0 + 1, "{\"n\": 5}");
    /* totals completes in the same transition as charge, and after starts. */
    expect_pevents(&h, "[[\"step_completed\", \"charge\", 1], [\"step_scheduled\", \"totals\", 0],"
                       " [\"step_completed\", \"totals\", 0], [\"step_scheduled\", \"after\", 0]]");
    expect_json(json_object_get(event_data(&h, "step_scheduled"), "kind"), "\"set\"", "kind");
    expect_json(ctx_output(&h, "totals"), "{\"sum\": 5, \"of\": \"ann\", \"k\": [1, null]}",
                "output");
    assert_string_equal(status_of(&h, "totals"), "completed");
    expect_ptasks(&h, "[[\"activity\", \"after\", 1, 1]]");
    expect_json(json_object_get(h.fx.tasks[0].payload, "input"),
                "{\"sum\": 5, \"of\": \"ann\", \"k\": [1, null]}", "after's input");
    p_run(&h, "after", T0 + 2, "null");
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "5", "the execution's output");
    h_free(&h);
}

/* A set whose template does not evaluate fails the step like any expression error, naming the
 * template's place in the definition; the saga undoes charge. */
static void set_that_does_not_evaluate(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, ORDER, "{}");
    h_feed(&h, in_start(T0));
    p_run(&h, "charge", T0 + 1, "{\"n\": 5}");
    assert_string_equal(status_of(&h, "totals"), "failed");
    json_t *err = ctx_error_of(&h, "totals");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "expression");
    assert_string_equal(json_string_value(json_object_get(err, "pointer")), "/steps/1/set/of");
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "${input.who}"));
    assert_string_equal(compensating(&h), "charge");
    p_compensate(&h, "charge", T0 + 2);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(status_of(&h, "after"), "skipped");
    h_free(&h);
}

static const char *const REJECT =
    "{\"name\": \"reject\", \"steps\": ["
    " {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/charge\"}, \"compensate\": "
    "{\"url\": \"http://svc/refund\"}},"
    " {\"id\": \"no\", \"fail\": {\"type\": \"Rejected\", \"message\": \"total ${input.total} "
    "is over the limit\"}},"
    " {\"id\": \"never\", \"activity\": {\"url\": \"http://svc/never\"}}]}";

static void fail_fails_there_and_the_saga_runs(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, REJECT, "{\"total\": 1200}");
    h_feed(&h, in_start(T0));
    p_run(&h, "charge", T0 + 1, "\"ch_1\"");
    expect_pevents(&h, "[[\"step_completed\", \"charge\", 1], [\"step_scheduled\", \"no\", 0],"
                       " [\"step_failed\", \"no\", 0]]");
    expect_json(ctx_error_of(&h, "no"),
                "{\"type\": \"Rejected\", \"message\": \"total 1200 is over the limit\", "
                "\"step\": \"no\", \"attempts\": 0}",
                "the fail step's error");
    /* Nothing after it starts; the saga undoes charge, then the execution fails with it. */
    assert_string_equal(status_of(&h, "never"), "skipped");
    assert_string_equal(compensating(&h), "charge");
    p_compensate(&h, "charge", T0 + 2);
    assert_true(h.fx.ended);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    expect_json(h.fx.error,
                "{\"type\": \"Rejected\", \"message\": \"total 1200 is over the limit\", "
                "\"step\": \"no\", \"attempts\": 0}",
                "the execution's error");
    h_free(&h);
}

/* Without a message, the error says which step failed the execution. A retry of the execution
 * runs the fail step again, which fails again. */
static void fail_without_message_and_after_a_retry(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"f\", \"steps\": [{\"id\": \"w\", \"wait\": {\"signal\": \"go\"}},"
           " {\"id\": \"stop\", \"fail\": {\"type\": \"Stop\"}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    json_t *payload = parse_json("{}");
    h_feed(&h, in_signal(at(&h, "w"), T0 + 1, "go", payload));
    json_decref(payload);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    expect_json(h.fx.error,
                "{\"type\": \"Stop\", \"message\": \"step \\\"stop\\\" fails the execution\", "
                "\"step\": \"stop\", \"attempts\": 0}",
                "the execution's error");
    struct engine_input retry = {.kind = ENGINE_IN_RETRY, .now_ms = T0 + 2, .retry_after_ms = -1};
    h_feed(&h, retry);
    assert_false(h.fx.stale);
    expect_pevents(&h, "[[\"execution_retried\", \"-\", 0], [\"step_scheduled\", \"stop\", 0],"
                       " [\"step_failed\", \"stop\", 0], [\"execution_failed\", \"-\", 0]]");
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    h_free(&h);
}

/* Inside a parallel, a fail in one branch stops the others at their safe point and fails the
 * parallel with its error; inside a for_each, a set is evaluated per iteration. */
static void set_and_fail_nested(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"n\", \"steps\": ["
           " {\"id\": \"each\", \"for_each\": {\"items\": \"${input.xs}\", \"steps\": ["
           "   {\"id\": \"double\", \"set\": {\"i\": \"${index}\", \"x\": \"${item}\"}}]}},"
           " {\"id\": \"p\", \"parallel\": {\"branches\": {"
           "   \"a\": [{\"id\": \"slow\", \"activity\": {\"url\": \"http://svc/slow\"}}],"
           "   \"b\": [{\"id\": \"bad\", \"fail\": {\"type\": \"Bad\", \"message\": "
           "\"${steps.each.output}\"}}]}}}]}",
           "{\"xs\": [\"p\", \"q\"]}");
    h_feed(&h, in_start(T0));
    expect_json(ctx_output(&h, "each"), "[{\"i\": 0, \"x\": \"p\"}, {\"i\": 1, \"x\": \"q\"}]",
                "the for_each's output");
    /* Branch a's activity was scheduled before b failed; it is stopped before it is sent. */
    assert_string_equal(status_of(&h, "p/b/bad"), "failed");
    assert_string_equal(status_of(&h, "p"), "failed");
    assert_string_equal(status_of(&h, "p/a/slow"), "skipped");
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")), "Bad");
    /* A message that is an expression of something else than a string is its JSON text. */
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "message")),
                        "[{\"i\":0,\"x\":\"p\"},{\"i\":1,\"x\":\"q\"}]");
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "path")), "p/b/bad");
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_is_its_evaluated_template),
        cmocka_unit_test(set_that_does_not_evaluate),
        cmocka_unit_test(fail_fails_there_and_the_saga_runs),
        cmocka_unit_test(fail_without_message_and_after_a_retry),
        cmocka_unit_test(set_and_fail_nested),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
