/* A wait for any of several signals: the first of its names to come ends it, with output
 * {"signal", "payload"}; another name is stale and stays stored; its timeout names them all;
 * inside a parallel, each branch's wait takes what it accepts. */
#include "flow_harness.h"

static const char *const REVIEW =
    "{\"name\": \"review\", \"steps\": ["
    " {\"id\": \"decide\", \"wait\": {\"any\": [\"approve\", \"reject\"], \"timeout\": \"1h\"}},"
    " {\"id\": \"after\", \"activity\": {\"url\": \"http://svc/after\", \"input\": "
    "\"${steps.decide.output}\"}}],"
    " \"output\": \"${steps.decide.output.signal}\"}";

static void the_first_accepted_name_ends_it(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, REVIEW, "{}");
    h_feed(&h, in_start(T0));
    assert_string_equal(status_of(&h, "decide"), "waiting");
    expect_json(
        event_data(&h, "wait_started"),
        "{\"any\": [\"approve\", \"reject\"], \"timeout_at\": \"2026-01-01T01:00:00.000Z\"}",
        "wait_started");
    assert_string_equal(h.fx.wants_signal, "approve");
    json_t *payload = parse_json("{\"by\": \"ann\"}");
    /* A name it does not accept is stale (the runner keeps the signal stored). */
    expect_stale(&h, in_signal(at(&h, "decide"), T0 + 1, "approved", payload));
    h_feed(&h, in_signal(at(&h, "decide"), T0 + 2, "reject", payload));
    assert_false(h.fx.stale);
    expect_json(ctx_output(&h, "decide"),
                "{\"signal\": \"reject\", \"payload\": {\"by\": \"ann\"}}", "the wait's output");
    expect_json(event_data(&h, "signal_consumed"),
                "{\"payload\": {\"by\": \"ann\"}, \"signal\": \"reject\"}", "signal_consumed");
    expect_json(json_object_get(h.fx.tasks[0].payload, "input"),
                "{\"signal\": \"reject\", \"payload\": {\"by\": \"ann\"}}", "after's input");
    /* Once ended, the other name is stale too. */
    expect_stale(&h, in_signal(at(&h, "decide"), T0 + 3, "approve", payload));
    json_decref(payload);
    p_run(&h, "after", T0 + 4, "null");
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "\"reject\"", "output");
    h_free(&h);
}

static void its_timeout_names_every_signal(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"t\", \"steps\": [{\"id\": \"decide\", \"wait\": {\"any\": [\"a\", \"b\", "
           "\"c\"], \"timeout\": \"1s\"}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_wait_timeout(at(&h, "decide"), T0 + SEC));
    expect_json(event_data(&h, "wait_timed_out"), "{\"any\": [\"a\", \"b\", \"c\"]}",
                "wait_timed_out");
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "message")),
                        "no signal \"a\", \"b\" or \"c\" arrived within 1s");
    h_free(&h);
}

/* Two branches wait, for different names: a signal goes to the branch that accepts it. */
static void branches_take_what_they_accept(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"p\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
           " \"x\": [{\"id\": \"wx\", \"wait\": {\"any\": [\"go\", \"x-only\"]}}],"
           " \"y\": [{\"id\": \"wy\", \"wait\": {\"signal\": \"y-only\"}}]}}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    json_t *payload = parse_json("1");
    expect_stale(&h, in_signal(at(&h, "p/x/wx"), T0 + 1, "y-only", payload));
    h_feed(&h, in_signal(at(&h, "p/y/wy"), T0 + 1, "y-only", payload));
    assert_string_equal(status_of(&h, "p/y/wy"), "completed");
    expect_json(ctx_output(&h, "p/y/wy"), "1", "a single-signal wait's output is the payload");
    h_feed(&h, in_signal(at(&h, "p/x/wx"), T0 + 2, "x-only", payload));
    json_decref(payload);
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(ctx_output(&h, "p"), "{\"x\": {\"signal\": \"x-only\", \"payload\": 1}, \"y\": 1}",
                "the parallel");
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_first_accepted_name_ends_it),
        cmocka_unit_test(its_timeout_names_every_signal),
        cmocka_unit_test(branches_take_what_they_accept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
