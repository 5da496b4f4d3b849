/* Steps that hold steps: parallel and for_each through the interpreter. Instances are
 * addressed by index in these tests (the top-level steps first, then nested instances in the
 * order they are entered) and their paths are checked where they matter. */
#include "flow_harness.h"

/* ---- parallel ------------------------------------------------------------------------------ */

static const char *const PAR =
    "{\"name\": \"par\", \"steps\": ["
    " {\"id\": \"notify\", \"parallel\": {\"branches\": {"
    "   \"sms\": [{\"id\": \"text\", \"activity\": {\"url\": \"http://svc/sms\"}}],"
    "   \"email\": [{\"id\": \"render\", \"activity\": {\"url\": \"http://svc/render\"}},"
    "             {\"id\": \"send\", \"activity\": {\"url\": \"http://svc/send\", \"input\": "
    "\"${steps.render.output}\"}}]}}},"
    " {\"id\": \"after\", \"activity\": {\"url\": \"http://svc/after\", \"input\": {\"n\": "
    "\"${steps.notify.output}\", \"s\": \"${steps.send.output}\"}}}],"
    " \"output\": \"${steps.after.output}\"}";

static void parallel_runs_every_branch_and_collects_outputs(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, PAR, "{}");
    h_feed(&h, in_start(T0));
    /* Branches in name order: email, then sms; each enters its first step. */
    assert_string_equal(status_of(&h, "notify"), "running");
    assert_string_equal(status_of(&h, "notify/email"), "running");
    assert_string_equal(status_of(&h, "notify/sms"), "running");
    size_t render = at(&h, "notify/email/render"), text = at(&h, "notify/sms/text");
    json_t *tasks = tasks_json(&h.fx);
    assert_int_equal(json_array_size(tasks), 2);
    json_decref(tasks);
    json_t *events = events_json(&h.fx);
    expect_json(json_array_get(events, 1), "[\"step_scheduled\", 0, 0, {\"kind\": \"parallel\"}]",
                "event");
    json_decref(events);

    json_t *o1 = parse_json("\"R\""), *o2 = parse_json("{\"sent\": 1}"), *o3 = parse_json("\"T\"");
    h_feed(&h, in_started(render, 1, T0 + 1));
    h_feed(&h, in_started(text, 1, T0 + 1));
    h_feed(&h, in_succeeded(text, 1, T0 + 2, o3));
    /* sms is done; email goes on. */
    assert_string_equal(status_of(&h, "notify/sms"), "completed");
    assert_string_equal(status_of(&h, "notify"), "running");
    h_feed_reloaded(&h, in_succeeded(render, 1, T0 + 3, o1));
    size_t send = at(&h, "notify/email/send");
    /* send's input is the same branch's render output. */
    expect_tasks(&h, "[[\"activity\", 6, 1, 3, {\"url\": \"http://svc/send\", \"input\": "
                     "\"R\", \"timeout_ms\": 30000}]]");
    assert_int_equal(send, 6);
    h_feed(&h, in_started(send, 1, T0 + 4));
    h_feed_reloaded(&h, in_succeeded(send, 1, T0 + 5, o2));
    assert_string_equal(status_of(&h, "notify"), "completed");
    expect_json(ctx_output(&h, "notify"), "{\"email\": {\"sent\": 1}, \"sms\": \"T\"}", "output");
    /* The next top-level step sees the parallel's output and a branch step's by id. */
    expect_tasks(&h, "[[\"activity\", 1, 1, 5, {\"url\": \"http://svc/after\", \"input\": "
                     "{\"n\": {\"email\": {\"sent\": 1}, \"sms\": \"T\"}, \"s\": {\"sent\": 1}},"
                     " \"timeout_ms\": 30000}]]");
    h_feed(&h, in_started(1, 1, T0 + 6));
    h_feed(&h, in_succeeded(1, 1, T0 + 7, o3));
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    json_decref(o1);
    json_decref(o2);
    json_decref(o3);
    h_free(&h);
}

/* ---- for_each ------------------------------------------------------------------------------ */

static const char *const LOOP =
    "{\"name\": \"loop\", \"steps\": ["
    " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"concurrency\": 2, \"steps\": ["
    "   {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/charge/${index}\", \"input\": "
    "{\"x\": \"${item}\", \"i\": \"${index}\"}}},"
    "   {\"id\": \"note\", \"activity\": {\"url\": \"http://svc/note\", \"input\": "
    "\"${steps.charge.output}\"}}]}}],"
    " \"output\": \"${steps.all.output}\"}";

static void for_each_respects_concurrency_and_keeps_item_order(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, LOOP, "{\"xs\": [\"a\", \"b\", \"c\"]}");
    h_feed(&h, in_start(T0));
    json_t *tasks;
    /* Two iterations at once. */
    assert_string_equal(status_of(&h, "all/0"), "running");
    assert_string_equal(status_of(&h, "all/1"), "running");
    assert_int_equal(engine_state_find(&h.st, "all/2"), -1);
    tasks = tasks_json(&h.fx);
    expect_json(json_array_get(tasks, 1),
                "[\"activity\", 4, 1, 0, {\"url\": \"http://svc/charge/1\", \"input\": {\"x\": "
                "\"b\", \"i\": 1}, \"timeout_ms\": 30000}]",
                "task");
    json_decref(tasks);
    size_t c0 = at(&h, "all/0/charge"), c1 = at(&h, "all/1/charge");
    json_t *out[6];
    for (int k = 0; k < 6; k++) {
        char text[16];
        snprintf(text, sizeof text, "%d", k);
        out[k] = parse_json(text);
    }
    h_feed(&h, in_started(c0, 1, T0 + 1));
    h_feed(&h, in_started(c1, 1, T0 + 1));
    h_feed(&h, in_succeeded(c1, 1, T0 + 2, out[1]));
    size_t n1 = at(&h, "all/1/note");
    /* note reads the same iteration's charge. */
    expect_tasks(&h, "[[\"activity\", 5, 1, 2, {\"url\": \"http://svc/note\", \"input\": 1,"
                     " \"timeout_ms\": 30000}]]");
    h_feed(&h, in_started(n1, 1, T0 + 3));
    h_feed_reloaded(&h, in_succeeded(n1, 1, T0 + 4, out[4]));
    /* Iteration 1 ended: item 2 starts. */
    size_t c2 = at(&h, "all/2/charge");
    h_feed(&h, in_started(c2, 1, T0 + 5));
    h_feed(&h, in_succeeded(c2, 1, T0 + 6, out[2]));
    size_t n2 = at(&h, "all/2/note");
    h_feed(&h, in_started(n2, 1, T0 + 7));
    h_feed(&h, in_succeeded(n2, 1, T0 + 8, out[5]));
    assert_string_equal(status_of(&h, "all"), "running");
    h_feed(&h, in_succeeded(c0, 1, T0 + 9, out[0]));
    size_t n0 = at(&h, "all/0/note");
    h_feed(&h, in_started(n0, 1, T0 + 10));
    h_feed_reloaded(&h, in_succeeded(n0, 1, T0 + 11, out[3]));
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "[3, 4, 5]", "output");
    for (int k = 0; k < 6; k++)
        json_decref(out[k]);
    h_free(&h);
}

static void for_each_over_nothing_completes_at_once(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, LOOP, "{\"xs\": []}");
    h_feed(&h, in_start(T0));
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "[]", "output");
    h_free(&h);
}

/* How many iterations of the for_each at path run now. */
static int running_iterations(struct h *h, const char *loop)
{
    size_t f = at(h, loop);
    int n = 0;
    for (size_t i = 0; i < h->st.n_steps; i++)
        if (h->st.steps[i].parent == f && h->st.steps[i].status == ENGINE_STEP_RUNNING)
            n++;
    return n;
}

/* Concurrency 2 over 6 items completed in a scrambled order: never more than 2 iterations run,
 * each new one starts as soon as one ends (in item order), and the output is in item order. */
static void for_each_never_runs_more_than_its_concurrency(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"cc\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": "
        "\"${input.xs}\", \"concurrency\": 2, \"steps\": [{\"id\": \"one\", \"activity\": "
        "{\"url\": \"http://svc/one\", \"input\": {\"x\": \"${item}\", \"i\": \"${index}\"}}}]}}],"
        " \"output\": \"${steps.all.output}\"}";
    struct h h;
    h_init(&h, D, "{\"xs\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]}");
    h_feed(&h, in_start(T0));
    assert_int_equal(running_iterations(&h, "all"), 2);
    expect_ptasks(&h, "[[\"activity\", \"all/0/one\", 1, 0], [\"activity\", \"all/1/one\", 1, 0]]");
    /* Iteration 1 ends first: item 2 starts; then 2 before 0: item 3; ... */
    static const int finish[] = {1, 2, 0, 4, 5, 3};
    static const int started_next[] = {2, 3, 4, 5, -1, -1};
    for (size_t k = 0; k < 6; k++) {
        char path[32], out[32];
        snprintf(path, sizeof path, "all/%d/one", finish[k]);
        snprintf(out, sizeof out, "\"%c%c\"", 'A' + finish[k], 'A' + finish[k]);
        p_run(&h, path, T0 + 1 + (int64_t)k, out);
        assert_true(running_iterations(&h, "all") <= 2);
        if (started_next[k] >= 0) {
            char want[128];
            snprintf(want, sizeof want, "[[\"activity\", \"all/%d/one\", 1, %d]]", started_next[k],
                     1 + (int)k);
            expect_ptasks(&h, want);
            assert_int_equal(running_iterations(&h, "all"), 2);
            /* ${item} and ${index} of the new iteration. */
            snprintf(want, sizeof want,
                     "{\"url\": \"http://svc/one\", \"input\": {\"x\": \"%c\","
                     " \"i\": %d}, \"timeout_ms\": 30000}",
                     'a' + started_next[k], started_next[k]);
            expect_json(h.fx.tasks[0].payload, want, "payload");
        }
    }
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "[\"AA\", \"BB\", \"CC\", \"DD\", \"EE\", \"FF\"]", "output");
    h_free(&h);
}

/* Loops in loops: ${loops.<outer>.item/.index} from the inner body, ${item}/${index} of the
 * innermost loop, ${steps.<inner loop>.output} of the same outer iteration, and the paths of
 * instances two loops deep. */
static const char *const NEST =
    "{\"name\": \"nest\", \"steps\": ["
    " {\"id\": \"outer\", \"for_each\": {\"items\": \"${input.groups}\", \"concurrency\": 1,"
    "  \"steps\": ["
    "   {\"id\": \"inner\", \"for_each\": {\"items\": \"${loops.outer.item.xs}\", \"concurrency\": "
    "2, \"steps\": ["
    "     {\"id\": \"s\", \"activity\": {\"url\": \"http://svc/s/${loops.outer.index}/${index}\","
    " \"input\": {\"oi\": \"${loops.outer.index}\", \"on\": \"${loops.outer.item.name}\","
    " \"i\": \"${index}\", \"x\": \"${item}\", \"ii\": \"${loops.inner.index}\"}}}]}},"
    "   {\"id\": \"sum\", \"activity\": {\"url\": \"http://svc/sum\", \"input\": {\"all\": "
    "\"${steps.inner.output}\", \"name\": \"${item.name}\", \"first\": "
    "\"${steps.inner.output[0]}\"}}}]}},"
    " {\"id\": \"after\", \"activity\": {\"url\": \"http://svc/after\", \"input\": "
    "\"${steps.outer.output}\"}}],"
    " \"output\": {\"out\": \"${steps.after.output}\", \"loop\": \"${steps.outer.output}\"}}";

static void nested_for_each_sees_its_loops_and_its_own_iteration(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, NEST,
           "{\"groups\": [{\"name\": \"g0\", \"xs\": [\"a\"]}, {\"name\": \"g1\", \"xs\": [\"b\", "
           "\"c\", \"d\"]}]}");
    h_feed(&h, in_start(T0));
    expect_ptasks(&h, "[[\"activity\", \"outer/0/inner/0/s\", 1, 0]]");
    expect_json(h.fx.tasks[0].payload,
                "{\"url\": \"http://svc/s/0/0\", \"input\": {\"oi\": 0, \"on\": \"g0\", \"i\": 0, "
                "\"x\": \"a\", \"ii\": 0}, \"timeout_ms\": 30000}",
                "payload");
    p_run(&h, "outer/0/inner/0/s", T0 + 1, "\"A\"");
    expect_ptasks(&h, "[[\"activity\", \"outer/0/sum\", 1, 1]]");
    expect_json(h.fx.tasks[0].payload,
                "{\"url\": \"http://svc/sum\", \"input\": {\"all\": [\"A\"], \"name\": \"g0\", "
                "\"first\": \"A\"}, \"timeout_ms\": 30000}",
                "payload");
    p_run(&h, "outer/0/sum", T0 + 2, "\"S0\"");
    /* Outer iteration 1: its inner loop runs two at a time. */
    expect_ptasks(&h, "[[\"activity\", \"outer/1/inner/0/s\", 1, 2],"
                      " [\"activity\", \"outer/1/inner/1/s\", 1, 2]]");
    expect_json(h.fx.tasks[1].payload,
                "{\"url\": \"http://svc/s/1/1\", \"input\": {\"oi\": 1, \"on\": \"g1\", \"i\": 1, "
                "\"x\": \"c\", \"ii\": 1}, \"timeout_ms\": 30000}",
                "payload");
    p_run(&h, "outer/1/inner/1/s", T0 + 3, "\"C\"");
    expect_json(h.fx.tasks[0].payload,
                "{\"url\": \"http://svc/s/1/2\", \"input\": {\"oi\": 1, \"on\": \"g1\", \"i\": 2, "
                "\"x\": \"d\", \"ii\": 2}, \"timeout_ms\": 30000}",
                "payload");
    p_run(&h, "outer/1/inner/2/s", T0 + 4, "\"D\"");
    p_run(&h, "outer/1/inner/0/s", T0 + 5, "\"B\"");
    /* sum reads its own outer iteration's inner output, in item order. */
    expect_ptasks(&h, "[[\"activity\", \"outer/1/sum\", 1, 5]]");
    expect_json(h.fx.tasks[0].payload,
                "{\"url\": \"http://svc/sum\", \"input\": {\"all\": [\"B\", \"C\", \"D\"], "
                "\"name\": \"g1\", \"first\": \"B\"}, \"timeout_ms\": 30000}",
                "payload");
    p_run(&h, "outer/1/sum", T0 + 6, "\"S1\"");
    expect_json(h.fx.tasks[0].payload,
                "{\"url\": \"http://svc/after\", \"input\": [\"S0\", \"S1\"], \"timeout_ms\": "
                "30000}",
                "payload");
    /* Each iteration's results are kept by path. */
    expect_json(ctx_output(&h, "outer/0/inner"), "[\"A\"]", "inner 0");
    expect_json(ctx_output(&h, "outer/1/inner"), "[\"B\", \"C\", \"D\"]", "inner 1");
    p_run(&h, "after", T0 + 7, "\"done\"");
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "{\"out\": \"done\", \"loop\": [\"S0\", \"S1\"]}", "output");
    h_free(&h);
}

/* A parallel in each iteration of a for_each, and a for_each in a branch of a parallel. */
static void parallel_in_for_each_and_for_each_in_parallel(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"mix\", \"steps\": ["
        " {\"id\": \"all\", \"for_each\": {\"items\": [\"p\", \"q\"], \"steps\": ["
        "   {\"id\": \"fan\", \"parallel\": {\"branches\": {"
        "     \"x\": [{\"id\": \"px\", \"activity\": {\"url\": \"http://svc/x\", \"input\": "
        "\"${item}\"}}],"
        "     \"y\": [{\"id\": \"py\", \"activity\": {\"url\": \"http://svc/y\", \"input\": "
        "\"${index}\"}}, {\"id\": \"py2\", \"activity\": {\"url\": \"http://svc/y2\", \"input\": "
        "\"${steps.py.output}\"}}]}}}]}},"
        " {\"id\": \"notify\", \"parallel\": {\"branches\": {"
        "   \"email\": [{\"id\": \"send\", \"activity\": {\"url\": \"http://svc/send\"}}],"
        "   \"many\": [{\"id\": \"each\", \"for_each\": {\"items\": \"${steps.all.output}\", "
        "\"steps\": [{\"id\": \"one\", \"activity\": {\"url\": \"http://svc/one\", \"input\": "
        "{\"v\": \"${item}\", \"i\": \"${index}\"}}}]}}]}}}],"
        " \"output\": \"${steps.notify.output}\"}";
    struct h h;
    h_init(&h, D, "{}");
    h_feed(&h, in_start(T0));
    expect_ptasks(&h, "[[\"activity\", \"all/0/fan/x/px\", 1, 0],"
                      " [\"activity\", \"all/0/fan/y/py\", 1, 0],"
                      " [\"activity\", \"all/1/fan/x/px\", 1, 0],"
                      " [\"activity\", \"all/1/fan/y/py\", 1, 0]]");
    expect_json(h.fx.tasks[2].payload,
                "{\"url\": \"http://svc/x\", \"input\": \"q\", \"timeout_ms\": 30000}", "payload");
    p_run(&h, "all/1/fan/y/py", T0 + 1, "10");
    expect_json(h.fx.tasks[0].payload,
                "{\"url\": \"http://svc/y2\", \"input\": 10, \"timeout_ms\": 30000}", "payload");
    p_run(&h, "all/0/fan/y/py", T0 + 2, "0");
    expect_json(h.fx.tasks[0].payload,
                "{\"url\": \"http://svc/y2\", \"input\": 0, \"timeout_ms\": 30000}", "payload");
    p_run(&h, "all/1/fan/x/px", T0 + 3, "\"Q\"");
    p_run(&h, "all/1/fan/y/py2", T0 + 4, "11");
    assert_string_equal(status_of(&h, "all/1"), "completed");
    p_run(&h, "all/0/fan/y/py2", T0 + 5, "1");
    p_run(&h, "all/0/fan/x/px", T0 + 6, "\"P\"");
    expect_json(ctx_output(&h, "all"), "[{\"x\": \"P\", \"y\": 1}, {\"x\": \"Q\", \"y\": 11}]",
                "loop output");
    /* The for_each in branch many iterates over the first loop's output. */
    expect_ptasks(&h, "[[\"activity\", \"notify/email/send\", 1, 6],"
                      " [\"activity\", \"notify/many/each/0/one\", 1, 6],"
                      " [\"activity\", \"notify/many/each/1/one\", 1, 6]]");
    expect_json(h.fx.tasks[2].payload,
                "{\"url\": \"http://svc/one\", \"input\": {\"v\": {\"x\": \"Q\", \"y\": 11}, "
                "\"i\": 1}, \"timeout_ms\": 30000}",
                "payload");
    p_run(&h, "notify/many/each/1/one", T0 + 7, "\"second\"");
    p_run(&h, "notify/email/send", T0 + 8, "\"sent\"");
    assert_string_equal(status_of(&h, "notify"), "running");
    p_run(&h, "notify/many/each/0/one", T0 + 9, "\"first\"");
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "{\"email\": \"sent\", \"many\": [\"first\", \"second\"]}", "output");
    h_free(&h);
}

/* Items that are no array fail the for_each ("invalid_items") before any iteration; the saga
 * still undoes what came before, and the execution fails with that error. */
static void for_each_items_must_be_an_array(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"bad\", \"steps\": [{\"id\": \"pre\", \"activity\": {\"url\": "
        "\"http://svc/pre\"}, \"compensate\": {\"url\": \"http://svc/undo\"}},"
        " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"steps\": ["
        "   {\"id\": \"one\", \"activity\": {\"url\": \"http://svc/one\"}}]}}]}";
    static const char *const inputs[] = {"{\"xs\": 5}", "{\"xs\": {\"a\": 1}}", "{\"xs\": null}",
                                         "{\"xs\": \"[1]\"}"};
    for (size_t k = 0; k < sizeof inputs / sizeof inputs[0]; k++) {
        struct h h;
        h_init(&h, D, inputs[k]);
        h_feed(&h, in_start(T0));
        p_run(&h, "pre", T0 + 1, "1");
        expect_pevents(&h, "[[\"step_completed\", \"pre\", 1], [\"step_scheduled\", \"all\", 0],"
                           " [\"step_failed\", \"all\", 0]]");
        expect_statuses(&h, "{\"pre\": \"completed\", \"all\": \"failed\"}");
        json_t *err = ctx_error_of(&h, "all");
        assert_string_equal(json_string_value(json_object_get(err, "type")), "invalid_items");
        assert_string_equal(json_string_value(json_object_get(err, "step")), "all");
        assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "array"));
        assert_string_equal(compensating(&h), "pre");
        p_compensate(&h, "pre", T0 + 2);
        assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
        assert_true(json_equal(h.fx.error, err));
        h_free(&h);
    }
}

/* Items that do not evaluate fail the for_each with an "expression" error pointing at the
 * items template, at any depth; a nested one's error also says where it ran. */
static void for_each_items_that_do_not_evaluate(void **state)
{
    (void)state;
    static const char *const TOP =
        "{\"name\": \"ex\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": "
        "\"${input.missing}\", \"steps\": [{\"id\": \"one\", \"activity\": {\"url\": "
        "\"http://svc/one\"}}]}}]}";
    struct h h;
    h_init(&h, TOP, "{}");
    h_feed(&h, in_start(T0));
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    expect_pevents(&h, "[[\"execution_started\", \"-\", 0], [\"step_scheduled\", \"all\", 0],"
                       " [\"step_failed\", \"all\", 0], [\"execution_failed\", \"-\", 0]]");
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")), "expression");
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "pointer")),
                        "/steps/0/for_each/items");
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "step")), "all");
    assert_null(json_object_get(h.fx.error, "path"));
    h_free(&h);

    static const char *const DEEP =
        "{\"name\": \"ex2\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
        " \"a\": [{\"id\": \"a1\", \"activity\": {\"url\": \"http://svc/a1\"}}],"
        " \"b\": [{\"id\": \"b0\", \"activity\": {\"url\": \"http://svc/b0\"}},"
        "        {\"id\": \"outer\", \"for_each\": {\"items\": [1, 2], \"steps\": ["
        "          {\"id\": \"inner\", \"for_each\": {\"items\": \"${item.xs}\", \"steps\": ["
        "            {\"id\": \"s\", \"activity\": {\"url\": \"http://svc/s\"}}]}}]}}]}}}]}";
    h_init(&h, DEEP, "{}");
    h_feed(&h, in_start(T0));
    p_started(&h, "p/a/a1", T0 + 1);
    p_run(&h, "p/b/b0", T0 + 1, "0");
    /* ${item.xs} on a number: iteration 0's inner loop fails, iteration 1 never starts a step
     * (it failed the same way, or was stopped). */
    json_t *err = ctx_error_of(&h, "p/b/outer/0/inner");
    assert_non_null(err);
    assert_string_equal(json_string_value(json_object_get(err, "type")), "expression");
    assert_string_equal(json_string_value(json_object_get(err, "pointer")),
                        "/steps/0/parallel/branches/b/1/for_each/steps/0/for_each/items");
    assert_string_equal(json_string_value(json_object_get(err, "step")), "inner");
    assert_string_equal(json_string_value(json_object_get(err, "path")), "p/b/outer/0/inner");
    assert_true(json_equal(ctx_error_of(&h, "p"), err));
    /* a1 in flight finishes; then the execution fails with the first failure. */
    assert_string_equal(status_of(&h, "p"), "running");
    p_succeed(&h, "p/a/a1", T0 + 2, "1");
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "path")),
                        "p/b/outer/0/inner");
    h_free(&h);
}

/* More items than the plan allows fails with "too_many_items"; as many as allowed runs. */
static void for_each_with_too_many_items(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"many\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": "
        "\"${input.xs}\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"1s\"}]}}],"
        " \"output\": \"${steps.all.output}\"}";
    struct h h;
    h_init(&h, D, "{\"xs\": [1, 2, 3]}");
    struct engine_plan *p = engine_plan_build(h.d);
    assert_non_null(p);
    assert_int_equal(p->max_items, ENGINE_PLAN_DEFAULT_MAX_ITEMS);
    p->max_items = 2;
    h_feed_plan(&h, p, in_start(T0));
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")), "too_many_items");
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "step")), "all");
    assert_non_null(strstr(json_string_value(json_object_get(h.fx.error, "message")), "3"));
    assert_false(exists(&h, "all/0"));
    engine_plan_free(p);
    h_free(&h);

    /* As many as allowed run. */
    h_init(&h, D, "{\"xs\": [1, 2, 3]}");
    p = engine_plan_build(h.d);
    assert_non_null(p);
    p->max_items = 3;
    h_feed_plan(&h, p, in_start(T0));
    assert_int_equal(h.st.status, ENGINE_EXEC_RUNNING);
    for (int k = 0; k < 3; k++) {
        char path[16];
        snprintf(path, sizeof path, "all/%d/nap", k);
        h_feed_plan(&h, p, in_timer(at(&h, path), T0 + SEC));
    }
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_json(h.fx.output, "[null, null, null]", "output");
    engine_plan_free(p);
    h_free(&h);
}

/* Instance paths at every depth, and the "path" of a nested step's error in its events. */
static void instance_paths_and_error_paths(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, NEST,
           "{\"groups\": [{\"name\": \"g0\", \"xs\": [\"a\"]}, {\"name\": \"g1\", "
           "\"xs\": [\"b\", \"c\"]}]}");
    h_feed(&h, in_start(T0));
    p_run(&h, "outer/0/inner/0/s", T0 + 1, "\"A\"");
    p_run(&h, "outer/0/sum", T0 + 1, "0");
    static const char *const paths[] = {"outer",
                                        "after",
                                        "outer/0",
                                        "outer/0/inner",
                                        "outer/0/sum",
                                        "outer/1",
                                        "outer/1/inner",
                                        "outer/1/inner/0",
                                        "outer/1/inner/0/s",
                                        "outer/1/inner/1",
                                        "outer/1/inner/1/s"};
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
        size_t i = at(&h, paths[k]);
        assert_string_equal(h.st.steps[i].path, paths[k]);
    }
    json_t *err = parse_json("{\"type\": \"Nope\", \"message\": \"x\"}");
    size_t s1 = at(&h, "outer/1/inner/1/s");
    p_started(&h, "outer/1/inner/0/s", T0 + 2);
    p_started(&h, "outer/1/inner/1/s", T0 + 2);
    struct engine_input in = in_failed(s1, 1, T0 + 3, err);
    in.non_retryable = true;
    h_feed(&h, in);
    json_decref(err);
    expect_json(json_object_get(event_data(&h, "step_failed"), "error"),
                "{\"type\": \"Nope\", \"message\": \"x\", \"step\": \"s\", \"path\": "
                "\"outer/1/inner/1/s\", \"attempts\": 1}",
                "error");
    /* Sequences journal nothing; the loops' step_failed carry the same error. */
    expect_pevents(&h, "[[\"attempt_failed\", \"outer/1/inner/1/s\", 1],"
                       " [\"step_failed\", \"outer/1/inner/1/s\", 1]]");
    assert_string_equal(status_of(&h, "outer/1/inner"), "running"); /* 0 is in flight */
    p_succeed(&h, "outer/1/inner/0/s", T0 + 4, "\"B\"");
    expect_pevents(&h, "[[\"step_completed\", \"outer/1/inner/0/s\", 1],"
                       " [\"step_failed\", \"outer/1/inner\", 0], [\"step_failed\", \"outer\", 0],"
                       " [\"execution_failed\", \"-\", 0]]");
    expect_json(h.fx.error,
                "{\"type\": \"Nope\", \"message\": \"x\", \"step\": \"s\", \"path\": "
                "\"outer/1/inner/1/s\", \"attempts\": 1}",
                "the execution's error");
    expect_statuses(&h, "{\"outer\": \"failed\", \"after\": \"skipped\", \"outer/0\": "
                        "\"completed\", \"outer/0/inner\": \"completed\", \"outer/0/inner/0\": "
                        "\"completed\", \"outer/0/inner/0/s\": \"completed\", \"outer/0/sum\": "
                        "\"completed\", \"outer/1\": \"failed\", \"outer/1/inner\": \"failed\","
                        " \"outer/1/inner/0\": \"skipped\", \"outer/1/inner/0/s\": \"completed\","
                        " \"outer/1/inner/1\": \"failed\", \"outer/1/inner/1/s\": \"failed\"}");
    h_free(&h);
}

/* An empty inner loop completes at once with []; a step after it that reads its first
 * element fails with an expression error pointing into the loop body, with its path. */
static void empty_inner_loop_and_an_expression_error_inside_a_loop(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, NEST,
           "{\"groups\": [{\"name\": \"g0\", \"xs\": []}, {\"name\": \"g1\", \"xs\": "
           "[\"b\"]}]}");
    h_feed(&h, in_start(T0));
    expect_json(ctx_output(&h, "outer/0/inner"), "[]", "empty inner");
    assert_false(exists(&h, "outer/0/inner/0"));
    assert_false(exists(&h, "outer/1"));
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    expect_pevents(&h, "[[\"execution_started\", \"-\", 0], [\"step_scheduled\", \"outer\", 0],"
                       " [\"step_scheduled\", \"outer/0/inner\", 0],"
                       " [\"step_completed\", \"outer/0/inner\", 0],"
                       " [\"step_scheduled\", \"outer/0/sum\", 0],"
                       " [\"step_failed\", \"outer/0/sum\", 0], [\"step_failed\", \"outer\", 0],"
                       " [\"execution_failed\", \"-\", 0]]");
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")), "expression");
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "path")), "outer/0/sum");
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "pointer")),
                        "/steps/0/for_each/steps/1/activity/input/first");
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parallel_runs_every_branch_and_collects_outputs),
        cmocka_unit_test(for_each_respects_concurrency_and_keeps_item_order),
        cmocka_unit_test(for_each_over_nothing_completes_at_once),
        cmocka_unit_test(for_each_never_runs_more_than_its_concurrency),
        cmocka_unit_test(nested_for_each_sees_its_loops_and_its_own_iteration),
        cmocka_unit_test(parallel_in_for_each_and_for_each_in_parallel),
        cmocka_unit_test(for_each_items_must_be_an_array),
        cmocka_unit_test(for_each_items_that_do_not_evaluate),
        cmocka_unit_test(for_each_with_too_many_items),
        cmocka_unit_test(instance_paths_and_error_paths),
        cmocka_unit_test(empty_inner_loop_and_an_expression_error_inside_a_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
