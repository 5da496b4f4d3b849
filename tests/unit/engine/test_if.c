/* if steps through the interpreter: the condition chooses then or else (or nothing: false
 * without an else), the if's output is the last step output of the branch taken, a condition
 * that fails or is not a boolean fails the step, failures and cancels inside a branch go up as
 * from any container, and a retry resumes the branch taken without evaluating the condition
 * again. Every input also goes through the stored JSON of the state (h_feed_reloaded) where
 * that matters: the branch taken must survive it. */
#include "flow_harness.h"

static const char *const ORDER =
    "{\"name\": \"order\", \"steps\": ["
    " {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/charge\"}, \"compensate\": "
    "{\"url\": \"http://svc/refund\"}},"
    " {\"id\": \"big\", \"if\": \"${steps.charge.output.big}\", \"then\": ["
    "   {\"id\": \"review\", \"activity\": {\"url\": \"http://svc/review\"}},"
    "   {\"id\": \"note\", \"set\": {\"reviewed\": \"${steps.review.output}\"}}],"
    "  \"else\": [{\"id\": \"auto\", \"set\": \"auto\"}]},"
    " {\"id\": \"ship\", \"activity\": {\"url\": \"http://svc/ship\", \"input\": "
    "\"${steps.big.output}\"}}],"
    " \"output\": {\"big\": \"${steps.big.output}\", \"ship\": \"${steps.ship.output}\"}}";

static void then_taken_output_is_its_last_step(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, ORDER, "{}");
    h_feed(&h, in_start(T0));
    p_run(&h, "charge", T0 + 1, "{\"big\": true}");
    expect_pevents(&h, "[[\"step_completed\", \"charge\", 1], [\"step_scheduled\", \"big\", 0],"
                       " [\"step_scheduled\", \"big/then/review\", 0]]");
    expect_json(event_data(&h, "step_scheduled"),
                "{\"kind\": \"if\", \"condition\": true, \"branch\": \"then\"}", "if's event");
    assert_string_equal(status_of(&h, "big"), "running");
    assert_false(exists(&h, "big/else"));
    assert_false(exists(&h, "big/else/auto"));
    expect_ptasks(&h, "[[\"activity\", \"big/then/review\", 1, 1]]");

    /* Through the stored state: the branch taken is remembered. */
    int a = attempt_of(&h, "big/then/review");
    h_feed_reloaded(&h, in_started(at(&h, "big/then/review"), a, T0 + 2));
    json_t *out = parse_json("\"ok by ann\"");
    h_feed_reloaded(&h, in_succeeded(at(&h, "big/then/review"), a, T0 + 2, out));
    json_decref(out);
    expect_pevents(&h, "[[\"step_completed\", \"big/then/review\", 1],"
                       " [\"step_scheduled\", \"big/then/note\", 0],"
                       " [\"step_completed\", \"big/then/note\", 0],"
                       " [\"step_completed\", \"big\", 0], [\"step_scheduled\", \"ship\", 0]]");
    expect_json(ctx_output(&h, "big"), "{\"reviewed\": \"ok by ann\"}", "the if's output");
    expect_json(h.fx.tasks[0].payload ? json_object_get(h.fx.tasks[0].payload, "input") : NULL,
                "{\"reviewed\": \"ok by ann\"}", "ship's input");
    p_run(&h, "ship", T0 + 3, "\"shipped\"");
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "{\"big\": {\"reviewed\": \"ok by ann\"}, \"ship\": \"shipped\"}",
                "output");
    expect_statuses(&h, "{\"charge\": \"completed\", \"big\": \"completed\", \"ship\": "
                        "\"completed\", \"big/then\": \"completed\", \"big/then/review\": "
                        "\"completed\", \"big/then/note\": \"completed\"}");
    h_free(&h);
}

static void else_taken(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, ORDER, "{}");
    h_feed(&h, in_start(T0));
    p_run(&h, "charge", T0 + 1, "{\"big\": false}");
    expect_pevents(&h, "[[\"step_completed\", \"charge\", 1], [\"step_scheduled\", \"big\", 0],"
                       " [\"step_scheduled\", \"big/else/auto\", 0],"
                       " [\"step_completed\", \"big/else/auto\", 0],"
                       " [\"step_completed\", \"big\", 0], [\"step_scheduled\", \"ship\", 0]]");
    expect_json(event_data(&h, "step_scheduled"),
                "{\"kind\": \"if\", \"condition\": false, \"branch\": \"else\"}", "if's event");
    assert_false(exists(&h, "big/then"));
    expect_json(ctx_output(&h, "big"), "\"auto\"", "the if's output");
    p_run(&h, "ship", T0 + 2, "1");
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "{\"big\": \"auto\", \"ship\": 1}", "output");
    h_free(&h);
}

/* False without an else: the if completes at once with null, and nothing of then exists. */
static void false_without_else(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"n\", \"steps\": ["
           " {\"id\": \"b\", \"if\": \"${input.go}\", \"then\": [{\"id\": \"t\", \"sleep\": "
           "\"1h\"}]},"
           " {\"id\": \"after\", \"set\": \"${steps.b.output}\"}],"
           " \"output\": \"${steps.after.output}\"}",
           "{\"go\": false}");
    h_feed(&h, in_start(T0));
    expect_pevents(&h, "[[\"execution_started\", \"-\", 0], [\"step_scheduled\", \"b\", 0],"
                       " [\"step_completed\", \"b\", 0], [\"step_scheduled\", \"after\", 0],"
                       " [\"step_completed\", \"after\", 0], [\"execution_completed\", \"-\", 0]]");
    expect_json(event_data(&h, "step_scheduled"),
                "{\"kind\": \"if\", \"condition\": false, \"branch\": null}", "if's event");
    assert_false(exists(&h, "b/then"));
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "null", "output");
    assert_int_equal(h.fx.n_tasks, 0);
    h_free(&h);
}

/* No truthiness: a condition that is not a boolean fails the step, naming what it was; the saga
 * undoes charge. A condition that does not evaluate fails with an expression error at
 * /steps/1/if. */
static void condition_must_be_a_boolean(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, ORDER, "{}");
    h_feed(&h, in_start(T0));
    p_run(&h, "charge", T0 + 1, "{\"big\": \"yes\"}");
    expect_pevents(&h, "[[\"step_completed\", \"charge\", 1], [\"step_scheduled\", \"big\", 0],"
                       " [\"step_failed\", \"big\", 0]]");
    expect_json(ctx_error_of(&h, "big"),
                "{\"type\": \"invalid_condition\", \"message\": \"the condition "
                "${steps.charge.output.big} must be true or false, but evaluated to \\\"yes\\\"\","
                " \"step\": \"big\", \"attempts\": 0}",
                "the if's error");
    assert_false(exists(&h, "big/then"));
    assert_string_equal(compensating(&h), "charge");
    p_compensate(&h, "charge", T0 + 2);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")),
                        "invalid_condition");
    h_free(&h);

    h_init(&h, ORDER, "{}");
    h_feed(&h, in_start(T0));
    p_run(&h, "charge", T0 + 1, "{\"small\": 1}");
    json_t *err = ctx_error_of(&h, "big");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "expression");
    assert_string_equal(json_string_value(json_object_get(err, "pointer")), "/steps/1/if");
    assert_non_null(
        strstr(json_string_value(json_object_get(err, "message")), "${steps.charge.output.big}"));
    h_free(&h);
}

/* A step failing for good inside the branch fails the if with its error (with its path), and
 * the saga runs over what completed, inside the branch too. */
static const char *const INSIDE =
    "{\"name\": \"in\", \"steps\": ["
    " {\"id\": \"b\", \"if\": \"${input.go}\", \"then\": ["
    "   {\"id\": \"one\", \"activity\": {\"url\": \"http://svc/one\"}, \"compensate\": "
    "{\"url\": \"http://svc/undo-one\"}},"
    "   {\"id\": \"two\", \"activity\": {\"url\": \"http://svc/two\"}, \"retry\": "
    "{\"max_attempts\": 1}},"
    "   {\"id\": \"w\", \"wait\": {\"signal\": \"go\"}}]},"
    " {\"id\": \"after\", \"set\": \"${steps.b.output}\"}],"
    " \"output\": \"${steps.after.output}\"}";

static void failure_inside_a_branch(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, INSIDE, "{\"go\": true}");
    h_feed(&h, in_start(T0));
    p_run(&h, "b/then/one", T0 + 1, "1");
    p_run_fail(&h, "b/then/two", T0 + 2, "{\"type\": \"Boom\", \"message\": \"no\"}");
    assert_string_equal(status_of(&h, "b/then/two"), "failed");
    assert_string_equal(status_of(&h, "b/then"), "failed");
    assert_string_equal(status_of(&h, "b"), "failed");
    assert_string_equal(json_string_value(json_object_get(ctx_error_of(&h, "b"), "path")),
                        "b/then/two");
    assert_string_equal(compensating(&h), "b/then/one");
    p_compensate(&h, "b/then/one", T0 + 3);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")), "Boom");
    assert_string_equal(status_of(&h, "after"), "skipped");
    h_free(&h);
}

/* As INSIDE, without a compensation (a retry is refused once one ran). */
static const char *const INSIDE_NO_SAGA =
    "{\"name\": \"in\", \"steps\": ["
    " {\"id\": \"b\", \"if\": \"${input.go}\", \"then\": ["
    "   {\"id\": \"one\", \"activity\": {\"url\": \"http://svc/one\"}},"
    "   {\"id\": \"two\", \"activity\": {\"url\": \"http://svc/two\"}, \"retry\": "
    "{\"max_attempts\": 1}},"
    "   {\"id\": \"w\", \"wait\": {\"signal\": \"go\"}}]},"
    " {\"id\": \"after\", \"set\": \"${steps.b.output}\"}],"
    " \"output\": \"${steps.after.output}\"}";

/* A retry resumes the branch taken: two runs again, one stays done, and the condition is not
 * evaluated again (its value is no boolean by then: a new evaluation would fail). */
static void retry_resumes_the_branch_taken(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, INSIDE_NO_SAGA, "{\"go\": true}");
    h_feed(&h, in_start(T0));
    p_run(&h, "b/then/one", T0 + 1, "1");
    p_run_fail(&h, "b/then/two", T0 + 2, "{\"type\": \"Boom\", \"message\": \"no\"}");
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    json_object_set_new(h.ctx, "input", json_pack("{s:s}", "go", "not a boolean any more"));
    h_feed_reloaded(&h, in_retry(T0 + 3));
    assert_false(h.fx.stale);
    expect_pevents(&h, "[[\"execution_retried\", \"-\", 0], [\"step_scheduled\", \"b\", 0],"
                       " [\"step_scheduled\", \"b/then/two\", 0]]");
    expect_json(event_data(&h, "step_scheduled"),
                "{\"kind\": \"if\", \"resumed\": true, \"branch\": \"then\"}", "the if resumes");
    assert_string_equal(status_of(&h, "b/then/one"), "completed");
    p_run(&h, "b/then/two", T0 + 4, "2");
    json_t *payload = parse_json("{\"ok\": 1}");
    h_feed_reloaded(&h, in_signal(at(&h, "b/then/w"), T0 + 5, "go", payload));
    json_decref(payload);
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "{\"ok\": 1}", "output: the branch's last step");
    h_free(&h);
}

/* A retry after the condition itself failed evaluates it again. */
static void retry_after_the_condition_failed(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, INSIDE, "{\"go\": 1}");
    h_feed(&h, in_start(T0));
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")),
                        "invalid_condition");
    json_object_set_new(h.ctx, "input", json_pack("{s:b}", "go", 0));
    h_feed_reloaded(&h, in_retry(T0 + 1));
    expect_pevents(&h, "[[\"execution_retried\", \"-\", 0], [\"step_scheduled\", \"b\", 0],"
                       " [\"step_completed\", \"b\", 0], [\"step_scheduled\", \"after\", 0],"
                       " [\"step_completed\", \"after\", 0], [\"execution_completed\", \"-\", 0]]");
    expect_json(event_data(&h, "step_scheduled"),
                "{\"kind\": \"if\", \"condition\": false, \"branch\": null}", "evaluated again");
    h_free(&h);
}

/* Cancel while a branch waits: the wait stops at once, the branch and the if are skipped, and
 * the saga undoes what completed in the branch. Terminate while a branch's attempt is in
 * flight ends everything at once. */
static void cancel_and_terminate_inside_a_branch(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, INSIDE, "{\"go\": true}");
    h_feed(&h, in_start(T0));
    p_run(&h, "b/then/one", T0 + 1, "1");
    p_run(&h, "b/then/two", T0 + 2, "2");
    assert_string_equal(status_of(&h, "b/then/w"), "waiting");
    h_feed_reloaded(&h, in_cancel(T0 + 3));
    assert_string_equal(status_of(&h, "b/then/w"), "skipped");
    assert_string_equal(status_of(&h, "b/then"), "skipped");
    assert_string_equal(status_of(&h, "b"), "skipped");
    assert_string_equal(compensating(&h), "b/then/one");
    p_compensate(&h, "b/then/one", T0 + 4);
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    h_free(&h);

    h_init(&h, INSIDE, "{\"go\": true}");
    h_feed(&h, in_start(T0));
    p_started(&h, "b/then/one", T0 + 1);
    h_feed_reloaded(&h, in_terminate(T0 + 2));
    assert_int_equal(h.st.status, ENGINE_EXEC_TERMINATED);
    assert_string_equal(status_of(&h, "b/then/one"), "skipped");
    /* The attempt's result, arriving late, is stale. */
    json_t *out = json_null();
    h_feed(&h, in_succeeded(at(&h, "b/then/one"), 1, T0 + 3, out));
    assert_true(h.fx.stale);
    h_free(&h);
}

/* ifs nest, and sit in loops: each iteration takes its own branch, and the loop's output is
 * each iteration's if output. */
static void nested_and_in_a_loop(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"n\", \"steps\": ["
           " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"steps\": ["
           "   {\"id\": \"pos\", \"if\": \"${item.pos}\", \"then\": ["
           "     {\"id\": \"big\", \"if\": \"${item.big}\", \"then\": [{\"id\": \"b\", \"set\": "
           "\"big\"}],"
           "      \"else\": [{\"id\": \"s\", \"set\": \"small\"}]}],"
           "    \"else\": [{\"id\": \"neg\", \"set\": \"${index}\"}]}]}}],"
           " \"output\": \"${steps.all.output}\"}",
           "{\"xs\": [{\"pos\": true, \"big\": true}, {\"pos\": false}, {\"pos\": true, \"big\": "
           "false}]}");
    h_feed(&h, in_start(T0));
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "[\"big\", 1, \"small\"]", "the loop's output");
    assert_string_equal(status_of(&h, "all/0/pos/then/big/then/b"), "completed");
    assert_false(exists(&h, "all/0/pos/then/big/else"));
    assert_string_equal(status_of(&h, "all/1/pos/else/neg"), "completed");
    assert_false(exists(&h, "all/1/pos/then"));
    assert_string_equal(status_of(&h, "all/2/pos/then/big/else/s"), "completed");
    h_free(&h);
}

/* Conditions with operators: a comparison chooses the branch; comparing a number with a string
 * fails the step with an expression error naming the part, never a silent false. */
static void conditions_with_operators(void **state)
{
    (void)state;
    static const char *const DEF =
        "{\"name\": \"ops\", \"steps\": ["
        " {\"id\": \"big\", \"if\": \"${input.total > 1000 && input.country == 'DE'}\","
        "  \"then\": [{\"id\": \"review\", \"set\": \"review\"}],"
        "  \"else\": [{\"id\": \"auto\", \"set\": \"${len(input.items) + 1}\"}]}],"
        " \"output\": \"${steps.big.output}\"}";
    struct h h;
    h_init(&h, DEF, "{\"total\": 1200, \"country\": \"DE\", \"items\": []}");
    h_feed(&h, in_start(T0));
    expect_json(h.fx.output, "\"review\"", "then");
    h_free(&h);
    h_init(&h, DEF, "{\"total\": 1200, \"country\": \"FR\", \"items\": [1, 2]}");
    h_feed(&h, in_start(T0));
    expect_json(h.fx.output, "3", "else");
    h_free(&h);
    h_init(&h, DEF, "{\"total\": \"1200\", \"country\": \"DE\", \"items\": []}");
    h_feed(&h, in_start(T0));
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    json_t *err = ctx_error_of(&h, "big");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "expression");
    assert_string_equal(json_string_value(json_object_get(err, "pointer")), "/steps/0/if");
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")),
                           "cannot compare string with number"));
    h_free(&h);
}

/* The plan: an if's branches are sequences named then and else, paths resolve through them, and
 * the if reads what its condition reads. */
static void plan_of_an_if(void **state)
{
    (void)state;
    struct defn *d = parse_defn(ORDER);
    struct engine_plan *p = engine_plan_build(d);
    assert_non_null(p);
    const struct engine_plan_node *big = engine_plan_find(p, "big");
    assert_int_equal(big->kind, ENGINE_NODE_IF);
    assert_true(engine_node_is_container(big->kind));
    assert_string_equal(engine_node_kind_name(big->kind), "if");
    assert_int_equal(big->n_children, 2);
    assert_string_equal(big->children[0].branch, "then");
    assert_string_equal(big->children[1].branch, "else");
    assert_int_equal(big->n_refs, 1);
    assert_string_equal(big->refs[0]->id, "charge");
    size_t idx[4], n_loops;
    const struct engine_plan_node *note = engine_plan_resolve(p, "big/then/note", idx, 4, &n_loops);
    assert_ptr_equal(note, engine_plan_find(p, "note"));
    char *path = engine_plan_path(engine_plan_find(p, "auto"), NULL, 0);
    assert_string_equal(path, "big/else/auto");
    free(path);
    assert_null(engine_plan_resolve(p, "big/maybe/note", idx, 4, &n_loops));
    assert_null(engine_plan_resolve(p, "big/else/note", idx, 4, &n_loops));
    engine_plan_free(p);
    defn_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(then_taken_output_is_its_last_step),
        cmocka_unit_test(else_taken),
        cmocka_unit_test(false_without_else),
        cmocka_unit_test(condition_must_be_a_boolean),
        cmocka_unit_test(failure_inside_a_branch),
        cmocka_unit_test(retry_resumes_the_branch_taken),
        cmocka_unit_test(retry_after_the_condition_failed),
        cmocka_unit_test(cancel_and_terminate_inside_a_branch),
        cmocka_unit_test(nested_and_in_a_loop),
        cmocka_unit_test(conditions_with_operators),
        cmocka_unit_test(plan_of_an_if),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
