/* The interpreter, input by input: every event, task, step row and context change of the happy
 * path, expressions, URLs, sleeps, waits, the output template, stale inputs, redelivery and
 * replay. Retries are in test_retry.c, the state's JSON in test_state.c. */
#include "harness.h"

#include "util/buf.h"

/* ---- the happy path ---------------------------------------------------------------------- */

static const char *const THREE_STEPS =
    "{\"name\": \"orders\", \"steps\": ["
    " {\"id\": \"a\", \"activity\": {\"url\": \"http://svc/a\", \"input\": {\"order\": "
    "\"${input.order}\"}}},"
    " {\"id\": \"b\", \"timeout\": \"10s\", \"activity\": {\"url\": "
    "\"https://svc/b/${steps.a.output.id}\","
    "   \"input\": {\"charge\": \"${steps.a.output}\", \"n\": \"${input.order}\", \"text\": "
    "\"order ${input.order} by ${execution.id}\"}}},"
    " {\"id\": \"c\", \"activity\": {\"url\": \"http://svc/c\"}}],"
    " \"output\": {\"a\": \"${steps.a.output.id}\", \"c\": \"${steps.c.output}\", \"wf\": "
    "\"${execution.workflow}\"}}";

static void happy_path_three_steps(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, THREE_STEPS, "{\"order\": 42}");

    h_feed(&h, in_start(T0));
    expect_events(&h, "[[\"execution_started\", -1, 0, {}],"
                      " [\"step_scheduled\", 0, 0, {\"kind\": \"activity\"}]]");
    expect_tasks(&h, "[[\"activity\", 0, 1, 0, {\"url\": \"http://svc/a\", \"input\": {\"order\": "
                     "42}, \"timeout_ms\": 30000}]]");
    expect_changed(&h, "[0]");
    expect_state(&h,
                 "{\"v\": 1, \"status\": \"running\", \"current\": 0, \"completions\": 0,"
                 " \"steps\": [{\"status\": \"scheduled\", \"attempt\": 1, \"scheduled_at\": 0},"
                 " {\"status\": \"pending\"}, {\"status\": \"pending\"}]}");
    assert_false(h.fx.ended);
    assert_false(h.fx.cancel_tasks);
    assert_null(h.fx.wants_signal);

    h_feed(&h, in_started(0, 1, T0 + 10));
    expect_events(&h, "[[\"attempt_started\", 0, 1, {}]]");
    expect_tasks(&h, "[]");
    expect_changed(&h, "[0]");
    expect_state(&h,
                 "{\"v\": 1, \"status\": \"running\", \"current\": 0, \"completions\": 0,"
                 " \"steps\": [{\"status\": \"running\", \"attempt\": 1, \"scheduled_at\": 0,"
                 " \"started_at\": 10}, {\"status\": \"pending\"}, {\"status\": \"pending\"}]}");

    h_succeed(&h, 0, 1, T0 + 100, "{\"id\": \"ch_1\", \"amount\": 5}");
    expect_events(&h,
                  "[[\"step_completed\", 0, 1, {\"output\": {\"id\": \"ch_1\", \"amount\": 5}}],"
                  " [\"step_scheduled\", 1, 0, {\"kind\": \"activity\"}]]");
    expect_tasks(&h, "[[\"activity\", 1, 1, 100, {\"url\": \"https://svc/b/ch_1\", \"input\":"
                     " {\"charge\": {\"id\": \"ch_1\", \"amount\": 5}, \"n\": 42, \"text\": "
                     "\"order 42 by exec-1\"}, \"timeout_ms\": 10000}]]");
    expect_changed(&h, "[0, 1]");
    expect_ctx(&h, "{\"input\": {\"order\": 42}, \"steps\": {\"a\": {\"output\": {\"id\": "
                   "\"ch_1\", \"amount\": 5}}, \"b\": {}},"
                   " \"execution\": {\"id\": \"exec-1\", \"workflow\": \"orders\"}}");

    h_feed(&h, in_started(1, 1, T0 + 110));
    expect_events(&h, "[[\"attempt_started\", 1, 1, {}]]");
    expect_changed(&h, "[1]");

    h_succeed(&h, 1, 1, T0 + 200, "\"ok\"");
    expect_events(&h, "[[\"step_completed\", 1, 1, {\"output\": \"ok\"}],"
                      " [\"step_scheduled\", 2, 0, {\"kind\": \"activity\"}]]");
    expect_tasks(&h, "[[\"activity\", 2, 1, 200, {\"url\": \"http://svc/c\", \"input\": null, "
                     "\"timeout_ms\": 30000}]]");
    expect_changed(&h, "[1, 2]");

    h_feed(&h, in_started(2, 1, T0 + 210));
    expect_events(&h, "[[\"attempt_started\", 2, 1, {}]]");

    h_succeed(&h, 2, 1, T0 + 300, "[1, 2]");
    expect_events(&h, "[[\"step_completed\", 2, 1, {\"output\": [1, 2]}],"
                      " [\"execution_completed\", -1, 0, {\"output\": {\"a\": \"ch_1\", \"c\": "
                      "[1, 2], \"wf\": \"orders\"}}]]");
    expect_tasks(&h, "[]");
    expect_changed(&h, "[2]");
    assert_true(h.fx.ended);
    assert_true(h.fx.cancel_tasks);
    expect_json(h.fx.output, "{\"a\": \"ch_1\", \"c\": [1, 2], \"wf\": \"orders\"}", "outputs");
    assert_null(h.fx.error);
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    expect_state(&h, "{\"v\": 1, \"status\": \"completed\", \"current\": 3, \"completions\": 3,"
                     " \"steps\": ["
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 0, "
                     "\"started_at\": 10, \"completed_at\": 100, \"order\": 1},"
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 100, "
                     "\"started_at\": 110, \"completed_at\": 200, \"order\": 2},"
                     "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 200, "
                     "\"started_at\": 210, \"completed_at\": 300, \"order\": 3}]}");
    expect_ctx(&h, "{\"input\": {\"order\": 42}, \"steps\": {"
                   "\"a\": {\"output\": {\"id\": \"ch_1\", \"amount\": 5}},"
                   "\"b\": {\"output\": \"ok\"}, \"c\": {\"output\": [1, 2]}},"
                   " \"execution\": {\"id\": \"exec-1\", \"workflow\": \"orders\"}}");
    h_free(&h);
}

/* A definition without an output ends with output null; a null result is a value. */
static void no_output_template_gives_null(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}}]}",
           "null");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_feed(&h, in_succeeded(0, 1, T0 + 1, NULL));
    expect_events(&h, "[[\"step_completed\", 0, 1, {\"output\": null}],"
                      " [\"execution_completed\", -1, 0, {\"output\": null}]]");
    assert_true(h.fx.ended);
    expect_json(h.fx.output, "null", "outputs");
    expect_ctx(&h, "{\"input\": null, \"steps\": {\"a\": {\"output\": null}}, \"execution\": "
                   "{\"id\": \"exec-1\", \"workflow\": \"w\"}}");
    h_free(&h);
}

/* ---- expression errors ------------------------------------------------------------------- */

/* Each definition fails at the step that START or a success reaches. */
static const struct {
    const char *name;
    const char *defn;
    const char *input;
    const char *first_output; /* step 0's output, or NULL when step 0 is the failing one */
    const char *error;        /* the step's error */
} expression_cases[] = {
    {"missing input field",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\", "
     "\"input\": {\"o\": \"${input.order.id}\"}}}]}",
     "{\"order\": {\"no\": 1}}", NULL,
     "{\"type\": \"expression\", \"message\": \"${input.order.id}: \\\"input.order\\\" has no "
     "field \\\"id\\\"\", \"step\": \"a\", \"attempts\": 0, \"pointer\": "
     "\"/steps/0/activity/input/o\"}"},
    {"missing field of the previous step's output",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}},"
     " {\"id\": \"b\", \"activity\": {\"url\": \"http://x\", \"input\": [1, {\"k\": "
     "\"${steps.a.output.nope}\"}]}}]}",
     "{}", "{\"id\": 1}",
     "{\"type\": \"expression\", \"message\": \"${steps.a.output.nope}: \\\"steps.a.output\\\" "
     "has no field \\\"nope\\\"\", \"step\": \"b\", \"attempts\": 0, \"pointer\": "
     "\"/steps/1/activity/input/1/k\"}"},
    {"index out of range in an interpolated url",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": "
     "\"http://x/${input.ids[2]}\"}}]}",
     "{\"ids\": [1, 2]}", NULL,
     "{\"type\": \"expression\", \"message\": \"${input.ids[2]}: \\\"input.ids\\\": index 2 out "
     "of range (array of 2)\", \"step\": \"a\", \"attempts\": 0, \"pointer\": "
     "\"/steps/0/activity/url\"}"},
    {"field of a string",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}},"
     " {\"id\": \"b\", \"activity\": {\"url\": \"http://x\", \"input\": "
     "\"${steps.a.output.x}\"}}]}",
     "{}", "\"text\"",
     "{\"type\": \"expression\", \"message\": \"${steps.a.output.x}: \\\"steps.a.output\\\" is a "
     "string, not an object, so it has no field \\\"x\\\"\", \"step\": \"b\", \"attempts\": 0, "
     "\"pointer\": \"/steps/1/activity/input\"}"},
    {"sleep_until from a missing field",
     "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"sleep_until\": \"${input.at}\"}]}", "{}",
     NULL,
     "{\"type\": \"expression\", \"message\": \"${input.at}: \\\"input\\\" has no field "
     "\\\"at\\\"\", \"step\": \"a\", \"attempts\": 0, \"pointer\": \"/steps/0/sleep_until\"}"},
};

static void expression_errors_fail_the_step(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof expression_cases / sizeof expression_cases[0]; c++) {
        print_message("case: %s\n", expression_cases[c].name);
        struct h h;
        h_init(&h, expression_cases[c].defn, expression_cases[c].input);
        h_feed(&h, in_start(T0));
        size_t failing = 0;
        if (expression_cases[c].first_output) {
            h_feed(&h, in_started(0, 1, T0 + 1));
            h_succeed(&h, 0, 1, T0 + 2, expression_cases[c].first_output);
            failing = 1;
        }
        assert_true(h.fx.ended);
        assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
        assert_int_equal(h.fx.n_tasks, 0);
        assert_true(h.fx.cancel_tasks);
        expect_json(h.fx.error, expression_cases[c].error, "errors");
        /* The last three events: the step is scheduled, fails, and so does the execution. */
        assert_true(h.fx.n_events >= 3);
        struct engine_event *e = &h.fx.events[h.fx.n_events - 3];
        assert_string_equal(e[0].type, "step_scheduled");
        assert_string_equal(e[1].type, "step_failed");
        assert_int_equal(e[1].step, (long)failing);
        assert_int_equal(e[1].attempt, 0);
        expect_json(json_object_get(e[1].data, "error"), expression_cases[c].error, "errors");
        assert_string_equal(e[2].type, "execution_failed");
        assert_int_equal(e[2].step, -1);
        expect_json(json_object_get(e[2].data, "error"), expression_cases[c].error, "errors");
        /* The error is in the context, for a later compensation to read. */
        expect_json(
            json_object_get(
                json_object_get(json_object_get(h.ctx, "steps"), h.d->steps[failing].id), "error"),
            expression_cases[c].error, "context errors");
        assert_int_equal(h.st.steps[failing].status, ENGINE_STEP_FAILED);
        assert_int_equal(h.st.steps[failing].completed_at_ms, T0 + (failing ? 2 : 0));
        assert_int_equal(h.st.current, failing);
        h_free(&h);
    }
}

/* A failing step skips the rest; every changed row is listed once. */
static void failure_skips_remaining_steps(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}},"
           " {\"id\": \"b\", \"activity\": {\"url\": \"${input.u}\"}}, {\"id\": \"c\", \"sleep\": "
           "\"1s\"}, {\"id\": \"d\", \"wait\": {\"signal\": \"s\"}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_succeed(&h, 0, 1, T0 + 5, "1");
    expect_events(&h,
                  "[[\"step_completed\", 0, 1, {\"output\": 1}],"
                  " [\"step_scheduled\", 1, 0, {\"kind\": \"activity\"}],"
                  " [\"step_failed\", 1, 0, {\"error\": {\"type\": \"expression\", \"message\": "
                  "\"${input.u}: \\\"input\\\" has no field \\\"u\\\"\", \"step\": \"b\", "
                  "\"attempts\": 0, \"pointer\": \"/steps/1/activity/url\"}}],"
                  " [\"execution_failed\", -1, 0, {\"error\": {\"type\": \"expression\", "
                  "\"message\": \"${input.u}: \\\"input\\\" has no field \\\"u\\\"\", "
                  "\"step\": \"b\", \"attempts\": 0, \"pointer\": "
                  "\"/steps/1/activity/url\"}}]]");
    expect_changed(&h, "[0, 1, 2, 3]");
    expect_state(&h, "{\"v\": 1, \"status\": \"failed\", \"current\": 1, \"completions\": 1,"
                     " \"steps\": [{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 0,"
                     " \"started_at\": 0, \"completed_at\": 5, \"order\": 1},"
                     " {\"status\": \"failed\", \"scheduled_at\": 5, \"completed_at\": 5},"
                     " {\"status\": \"skipped\"}, {\"status\": \"skipped\"}]}");
    h_free(&h);
}

/* ---- URLs -------------------------------------------------------------------------------- */

static const struct {
    const char *input; /* {"u": ...} */
    const char *message;
} bad_urls[] = {
    {"{\"u\": \"ftp://host/x\"}",
     "url \"ftp://host/x\" is not an http:// or https:// URL with a host and no spaces"},
    {"{\"u\": \"http://\"}",
     "url \"http://\" is not an http:// or https:// URL with a host and no spaces"},
    {"{\"u\": \"https:///path\"}",
     "url \"https:///path\" is not an http:// or https:// URL with a host and no spaces"},
    {"{\"u\": \"http://a b\"}",
     "url \"http://a b\" is not an http:// or https:// URL with a host and no spaces"},
    {"{\"u\": \"http://a\\nb\"}",
     "url \"http://a\\nb\" is not an http:// or https:// URL with a host and no spaces"},
    {"{\"u\": \"http://a\\u0000b\"}",
     "url \"http://a\\u0000b\" is not an http:// or https:// URL with a host and no spaces"},
    {"{\"u\": \"\"}", "url \"\" is not an http:// or https:// URL with a host and no spaces"},
    {"{\"u\": 42}", "url 42 is not an http:// or https:// URL with a host and no spaces"},
    {"{\"u\": null}", "url null is not an http:// or https:// URL with a host and no spaces"},
    {"{\"u\": {\"a\": 1}}",
     "url {\"a\":1} is not an http:// or https:// URL with a host and no spaces"},
};

static void bad_urls_fail_the_step(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof bad_urls / sizeof bad_urls[0]; c++) {
        print_message("case: %s\n", bad_urls[c].input);
        struct h h;
        h_init(&h,
               "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": "
               "\"${input.u}\"}}, {\"id\": \"b\", \"sleep\": 0}]}",
               bad_urls[c].input);
        h_feed(&h, in_start(T0));
        json_t *want = json_pack("{s:s, s:s, s:s, s:i}", "type", "invalid_url", "message",
                                 bad_urls[c].message, "step", "a", "attempts", 0);
        assert_true(h.fx.ended);
        assert_int_equal(h.fx.n_tasks, 0);
        assert_true(json_equal(h.fx.error, want));
        assert_int_equal(h.fx.n_events, 4);
        assert_string_equal(h.fx.events[2].type, "step_failed");
        assert_true(json_equal(json_object_get(h.fx.events[2].data, "error"), want));
        expect_changed(&h, "[0, 1]");
        json_decref(want);
        h_free(&h);
    }
}

/* A huge value is quoted only in part, cut at a character boundary. */
static void long_bad_url_is_cut_in_the_message(void **state)
{
    (void)state;
    static const struct {
        const char *unit; /* repeated after "ftp://" */
        size_t repeat, kept;
    } cases[] = {{"a", 300, 193}, {"\xc3\xa9", 150, 96}};
    for (size_t c = 0; c < 2; c++) {
        struct buf url = BUF_INIT, want = BUF_INIT;
        buf_puts(&url, "ftp://");
        for (size_t i = 0; i < cases[c].repeat; i++)
            buf_puts(&url, cases[c].unit);
        buf_puts(&want, "url \"ftp://");
        for (size_t i = 0; i < cases[c].kept; i++)
            buf_puts(&want, cases[c].unit);
        buf_puts(&want, "... is not an http:// or https:// URL with a host and no spaces");
        json_t *input = json_pack("{s:s}", "u", url.data);
        char *text = dump(input);
        struct h h;
        h_init(&h,
               "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": "
               "\"${input.u}\"}}]}",
               text);
        h_feed(&h, in_start(T0));
        assert_string_equal(json_string_value(json_object_get(h.fx.error, "message")), want.data);
        h_free(&h);
        free(text);
        json_decref(input);
        buf_free(&url);
        buf_free(&want);
    }
}

static void good_urls_are_sent(void **state)
{
    (void)state;
    static const char *const urls[] = {"http://a", "HTTPS://Example.com:8443/p?q=1#f",
                                       "Http://10.0.0.1/x", "https://[::1]:9/"};
    for (size_t c = 0; c < sizeof urls / sizeof urls[0]; c++) {
        struct h h;
        json_t *input = json_pack("{s:s}", "u", urls[c]);
        char *text = dump(input);
        h_init(&h,
               "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": "
               "\"${input.u}\"}}]}",
               text);
        h_feed(&h, in_start(T0));
        assert_false(h.fx.ended);
        assert_int_equal(h.fx.n_tasks, 1);
        assert_string_equal(json_string_value(json_object_get(h.fx.tasks[0].payload, "url")),
                            urls[c]);
        free(text);
        json_decref(input);
        h_free(&h);
    }
}

/* ---- sleep and sleep_until --------------------------------------------------------------- */

static void sleep_step(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"90m\"},"
           " {\"id\": \"z\", \"sleep\": 0}]}",
           "{}");
    h_feed(&h, in_start(T0));
    expect_events(&h, "[[\"execution_started\", -1, 0, {}],"
                      " [\"step_scheduled\", 0, 0, {\"kind\": \"sleep\"}],"
                      " [\"timer_started\", 0, 0, {\"due_at\": \"2026-01-01T01:30:00.000Z\"}]]");
    expect_tasks(&h, "[[\"timer\", 0, 0, 5400000, null]]");
    expect_changed(&h, "[0]");
    expect_state(&h, "{\"v\": 1, \"status\": \"running\", \"current\": 0, \"completions\": 0,"
                     " \"steps\": [{\"status\": \"scheduled\", \"scheduled_at\": 0, "
                     "\"started_at\": 0}, {\"status\": \"pending\"}]}");

    /* Attempts and signals do not apply to a sleep. */
    h_feed(&h, in_started(0, 0, T0 + 1));
    assert_true(h.fx.stale);
    h_feed(&h, in_started(0, 1, T0 + 1));
    assert_true(h.fx.stale);
    h_feed(&h, in_wait_timeout(0, T0 + 1));
    assert_true(h.fx.stale);
    h_feed(&h, in_signal(0, T0 + 1, "x", NULL));
    assert_true(h.fx.stale);
    h_feed(&h, in_timer(1, T0 + 1));
    assert_true(h.fx.stale);

    h_feed(&h, in_timer(0, T0 + 90 * MIN + 3));
    expect_events(&h, "[[\"timer_fired\", 0, 0, {}],"
                      " [\"step_completed\", 0, 0, {\"output\": null}],"
                      " [\"step_scheduled\", 1, 0, {\"kind\": \"sleep\"}],"
                      " [\"timer_started\", 1, 0, {\"due_at\": \"2026-01-01T01:30:00.003Z\"}]]");
    expect_tasks(&h, "[[\"timer\", 1, 0, 5400003, null]]");
    expect_changed(&h, "[0, 1]");

    h_feed(&h, in_timer(0, T0 + 90 * MIN + 4)); /* the first timer again */
    assert_true(h.fx.stale);
    h_feed(&h, in_timer(1, T0 + 90 * MIN + 4));
    expect_events(&h, "[[\"timer_fired\", 1, 0, {}],"
                      " [\"step_completed\", 1, 0, {\"output\": null}],"
                      " [\"execution_completed\", -1, 0, {\"output\": null}]]");
    expect_state(&h, "{\"v\": 1, \"status\": \"completed\", \"current\": 2, \"completions\": 2,"
                     " \"steps\": [{\"status\": \"completed\", \"scheduled_at\": 0, "
                     "\"started_at\": 0, \"completed_at\": 5400003, \"order\": 1},"
                     " {\"status\": \"completed\", \"scheduled_at\": 5400003, \"started_at\": "
                     "5400003, \"completed_at\": 5400004, \"order\": 2}]}");
    h_free(&h);
}

static const struct {
    const char *name;
    const char *until; /* the sleep_until value in the definition */
    const char *input;
    int64_t due;           /* relative to T0, when the timer starts */
    const char *due_at;    /* timer_started's due_at */
    const char *error_msg; /* NULL: the timer starts */
    const char *error_type;
} sleep_until_cases[] = {
    {"future literal", "2026-01-02T00:00:00Z", "{}", DAY, "2026-01-02T00:00:00.000Z", NULL, NULL},
    {"future from input, with an offset", "${input.at}", "{\"at\": \"2026-01-01T03:00:00+02:00\"}",
     HOUR, "2026-01-01T01:00:00.000Z", NULL, NULL},
    {"past literal fires at once", "2020-01-01T00:00:00Z", "{}", 0, "2026-01-01T00:00:00.000Z",
     NULL, NULL},
    {"exactly now", "${input.at}", "{\"at\": \"2026-01-01T00:00:00.000Z\"}", 0,
     "2026-01-01T00:00:00.000Z", NULL, NULL},
    {"interpolated", "2026-01-01T00:00:${input.s}Z", "{\"s\": \"30.5\"}", 30500,
     "2026-01-01T00:00:30.500Z", NULL, NULL},
    {"not a time", "${input.at}", "{\"at\": \"tomorrow\"}", 0, NULL,
     "sleep_until \"tomorrow\" is not an RFC 3339 time such as \"2030-01-31T09:00:00Z\"",
     "invalid_time"},
    {"a number", "${input.at}", "{\"at\": 1767225600000}", 0, NULL,
     "sleep_until 1767225600000 is not an RFC 3339 time such as \"2030-01-31T09:00:00Z\"",
     "invalid_time"},
    {"null", "${input.at}", "{\"at\": null}", 0, NULL,
     "sleep_until null is not an RFC 3339 time such as \"2030-01-31T09:00:00Z\"", "invalid_time"},
    {"no zone", "${input.at}", "{\"at\": \"2026-01-02T00:00:00\"}", 0, NULL,
     "sleep_until \"2026-01-02T00:00:00\" is not an RFC 3339 time such as "
     "\"2030-01-31T09:00:00Z\"",
     "invalid_time"},
    {"missing field", "${input.at}", "{}", 0, NULL, "${input.at}: \"input\" has no field \"at\"",
     "expression"},
};

static void sleep_until_step(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof sleep_until_cases / sizeof sleep_until_cases[0]; c++) {
        print_message("case: %s\n", sleep_until_cases[c].name);
        json_t *doc = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}}]}", "name", "w", "steps", "id",
                                "until", "sleep_until", sleep_until_cases[c].until, "id", "next",
                                "activity", "url", "http://n");
        char *text = dump(doc);
        struct h h;
        h_init(&h, text, sleep_until_cases[c].input);
        h_feed(&h, in_start(T0));
        if (sleep_until_cases[c].error_msg) {
            assert_true(h.fx.ended);
            assert_int_equal(h.fx.n_tasks, 0);
            assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")),
                                sleep_until_cases[c].error_type);
            assert_string_equal(json_string_value(json_object_get(h.fx.error, "message")),
                                sleep_until_cases[c].error_msg);
            assert_string_equal(h.fx.events[2].type, "step_failed");
            assert_int_equal(h.st.steps[1].status, ENGINE_STEP_SKIPPED);
        } else {
            json_t *want =
                json_pack("[[s, i, i, {}], [s, i, i, {s:s}], [s, i, i, {s:s}]]",
                          "execution_started", -1, 0, "step_scheduled", 0, 0, "kind", "sleep_until",
                          "timer_started", 0, 0, "due_at", sleep_until_cases[c].due_at);
            json_t *got = events_json(&h.fx);
            assert_true(json_equal(want, got));
            json_decref(want);
            json_decref(got);
            assert_int_equal(h.fx.n_tasks, 1);
            assert_int_equal(h.fx.tasks[0].kind, ENGINE_TASK_TIMER);
            assert_int_equal(h.fx.tasks[0].due_at_ms, T0 + sleep_until_cases[c].due);
            assert_int_equal(h.st.steps[0].status, ENGINE_STEP_SCHEDULED);
            h_feed(&h, in_timer(0, T0 + sleep_until_cases[c].due));
            expect_events(&h, "[[\"timer_fired\", 0, 0, {}],"
                              " [\"step_completed\", 0, 0, {\"output\": null}],"
                              " [\"step_scheduled\", 1, 0, {\"kind\": \"activity\"}]]");
        }
        free(text);
        json_decref(doc);
        h_free(&h);
    }
}

/* ---- wait -------------------------------------------------------------------------------- */

static const char *const WAIT_DEFN =
    "{\"name\": \"w\", \"steps\": [{\"id\": \"approval\", \"wait\": {\"signal\": \"approve\", "
    "\"timeout\": \"72h\"}, \"on_timeout\": \"%s\"},"
    " {\"id\": \"after\", \"activity\": {\"url\": \"http://x\", \"input\": "
    "\"${steps.approval.output.user}\"}}],"
    " \"output\": \"${steps.approval.output}\"}";

static void h_init_wait(struct h *h, const char *on_timeout)
{
    char text[1024];
    snprintf(text, sizeof text, WAIT_DEFN, on_timeout);
    h_init(h, text, "{}");
}

static void wait_consumes_its_signal(void **state)
{
    (void)state;
    struct h h;
    h_init_wait(&h, "fail");
    h_feed(&h, in_start(T0));
    expect_events(&h, "[[\"execution_started\", -1, 0, {}],"
                      " [\"step_scheduled\", 0, 0, {\"kind\": \"wait\"}],"
                      " [\"wait_started\", 0, 0, {\"signal\": \"approve\", \"timeout_at\": "
                      "\"2026-01-04T00:00:00.000Z\"}]]");
    expect_tasks(&h, "[[\"wait_timeout\", 0, 0, 259200000, null]]");
    expect_changed(&h, "[0]");
    assert_non_null(h.fx.wants_signal);
    assert_string_equal(h.fx.wants_signal, "approve");
    expect_state(&h, "{\"v\": 1, \"status\": \"running\", \"current\": 0, \"completions\": 0,"
                     " \"steps\": [{\"status\": \"waiting\", \"scheduled_at\": 0, "
                     "\"started_at\": 0}, {\"status\": \"pending\"}]}");

    /* Another signal's name, a timer or an attempt: stale, and the signal stays stored. */
    json_t *payload = parse_json("{\"user\": \"ann\"}");
    h_feed(&h, in_signal(0, T0 + 5, "approved", payload));
    assert_true(h.fx.stale);
    h_feed(&h, in_signal(0, T0 + 5, "APPROVE", payload));
    assert_true(h.fx.stale);
    h_feed(&h, in_signal(1, T0 + 5, "approve", payload));
    assert_true(h.fx.stale);
    h_feed(&h, in_signal(0, T0 + 5, NULL, payload));
    assert_true(h.fx.stale);
    h_feed(&h, in_timer(0, T0 + 5));
    assert_true(h.fx.stale);
    h_feed(&h, in_started(0, 0, T0 + 5));
    assert_true(h.fx.stale);

    h_feed(&h, in_signal(0, T0 + 5, "approve", payload));
    json_decref(payload);
    expect_events(&h, "[[\"signal_consumed\", 0, 0, {\"signal\": \"approve\", \"payload\": "
                      "{\"user\": \"ann\"}}],"
                      " [\"step_completed\", 0, 0, {\"output\": {\"user\": \"ann\"}}],"
                      " [\"step_scheduled\", 1, 0, {\"kind\": \"activity\"}]]");
    expect_tasks(&h, "[[\"activity\", 1, 1, 5, {\"url\": \"http://x\", \"input\": \"ann\", "
                     "\"timeout_ms\": 30000}]]");
    assert_true(h.fx.cancel_tasks);
    assert_null(h.fx.wants_signal);
    expect_changed(&h, "[0, 1]");

    /* The timeout that the runner failed to delete in time is stale. */
    h_feed(&h, in_wait_timeout(0, T0 + 72 * HOUR));
    assert_true(h.fx.stale);

    h_feed(&h, in_started(1, 1, T0 + 6));
    h_succeed(&h, 1, 1, T0 + 7, "true");
    expect_json(h.fx.output, "{\"user\": \"ann\"}", "outputs");
    h_free(&h);
}

/* A wait without timeout has no task; a null (or absent) payload is the step's output. */
static void wait_without_timeout(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"sleep\": \"1s\"}, {\"id\": \"w\", "
           "\"wait\": {\"signal\": \"go.now:1\"}}], \"output\": {\"p\": \"${steps.w.output}\"}}",
           "{}");
    h_feed(&h, in_start(T0));
    assert_null(h.fx.wants_signal);
    h_feed(&h, in_wait_timeout(0, T0 + 1));
    assert_true(h.fx.stale);
    h_feed(&h, in_timer(0, T0 + SEC));
    expect_events(&h, "[[\"timer_fired\", 0, 0, {}],"
                      " [\"step_completed\", 0, 0, {\"output\": null}],"
                      " [\"step_scheduled\", 1, 0, {\"kind\": \"wait\"}],"
                      " [\"wait_started\", 1, 0, {\"signal\": \"go.now:1\", \"timeout_at\": "
                      "null}]]");
    expect_tasks(&h, "[]");
    assert_string_equal(h.fx.wants_signal, "go.now:1");
    h_feed(&h, in_wait_timeout(1, T0 + 2 * SEC));
    assert_true(h.fx.stale);
    h_feed(&h, in_signal(1, T0 + 3 * SEC, "go.now:1", NULL));
    expect_events(&h, "[[\"signal_consumed\", 1, 0, {\"signal\": \"go.now:1\", \"payload\": "
                      "null}],"
                      " [\"step_completed\", 1, 0, {\"output\": null}],"
                      " [\"execution_completed\", -1, 0, {\"output\": {\"p\": null}}]]");
    assert_true(h.fx.ended);
    /* Once ended, the same signal again is stale. */
    h_feed(&h, in_signal(1, T0 + 4 * SEC, "go.now:1", NULL));
    assert_true(h.fx.stale);
    h_free(&h);
}

static void wait_timeout_fails(void **state)
{
    (void)state;
    struct h h;
    h_init_wait(&h, "fail");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_wait_timeout(1, T0 + 72 * HOUR)); /* wrong step */
    assert_true(h.fx.stale);
    h_feed(&h, in_wait_timeout(0, T0 + 72 * HOUR));
    expect_events(&h,
                  "[[\"wait_timed_out\", 0, 0, {\"signal\": \"approve\"}],"
                  " [\"step_failed\", 0, 0, {\"error\": {\"type\": \"timeout\", \"message\": "
                  "\"no signal \\\"approve\\\" arrived within 3d\", \"step\": \"approval\", "
                  "\"attempts\": 0}}],"
                  " [\"execution_failed\", -1, 0, {\"error\": {\"type\": \"timeout\", \"message\": "
                  "\"no signal \\\"approve\\\" arrived within 3d\", \"step\": \"approval\", "
                  "\"attempts\": 0}}]]");
    expect_tasks(&h, "[]");
    expect_changed(&h, "[0, 1]");
    assert_true(h.fx.ended);
    expect_json(h.fx.error,
                "{\"type\": \"timeout\", \"message\": \"no signal \\\"approve\\\" arrived within "
                "3d\", \"step\": \"approval\", \"attempts\": 0}",
                "errors");
    expect_state(&h, "{\"v\": 1, \"status\": \"failed\", \"current\": 0, \"completions\": 0,"
                     " \"steps\": [{\"status\": \"failed\", \"scheduled_at\": 0, \"started_at\": 0,"
                     " \"completed_at\": 259200000}, {\"status\": \"skipped\"}]}");
    /* The signal arriving after the timeout is stale. */
    h_feed(&h, in_signal(0, T0 + 73 * HOUR, "approve", NULL));
    assert_true(h.fx.stale);
    h_free(&h);
}

static void wait_timeout_continues(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"approval\", \"wait\": {\"signal\": "
           "\"approve\", \"timeout\": \"10s\"}, \"on_timeout\": \"continue\"},"
           " {\"id\": \"after\", \"activity\": {\"url\": \"http://x\", \"input\": "
           "\"${steps.approval.output}\"}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_wait_timeout(0, T0 + 10 * SEC));
    expect_events(&h, "[[\"wait_timed_out\", 0, 0, {\"signal\": \"approve\"}],"
                      " [\"step_completed\", 0, 0, {\"output\": null}],"
                      " [\"step_scheduled\", 1, 0, {\"kind\": \"activity\"}]]");
    expect_tasks(&h, "[[\"activity\", 1, 1, 10000, {\"url\": \"http://x\", \"input\": null, "
                     "\"timeout_ms\": 30000}]]");
    assert_false(h.fx.ended);
    assert_false(h.fx.cancel_tasks);
    h_feed(&h, in_signal(0, T0 + 11 * SEC, "approve", NULL));
    assert_true(h.fx.stale);
    h_free(&h);
}

/* ---- the output template ----------------------------------------------------------------- */

static void output_template_error_fails_execution(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}}],"
           " \"output\": {\"x\": [\"${steps.a.output.missing}\"]}}",
           "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_succeed(&h, 0, 1, T0 + 9, "{\"present\": 1}");
    const char *err = "{\"type\": \"expression\", \"message\": \"${steps.a.output.missing}: "
                      "\\\"steps.a.output\\\" has no field \\\"missing\\\"\", \"pointer\": "
                      "\"/output/x/0\"}";
    expect_events(&h, "[[\"step_completed\", 0, 1, {\"output\": {\"present\": 1}}],"
                      " [\"execution_failed\", -1, 0, {\"error\": {\"type\": \"expression\", "
                      "\"message\": \"${steps.a.output.missing}: \\\"steps.a.output\\\" has no "
                      "field \\\"missing\\\"\", \"pointer\": \"/output/x/0\"}}]]");
    assert_true(h.fx.ended);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    expect_json(h.fx.error, err, "errors");
    assert_null(h.fx.output);
    expect_changed(&h, "[0]");
    expect_state(&h, "{\"v\": 1, \"status\": \"failed\", \"current\": 1, \"completions\": 1,"
                     " \"steps\": [{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 0,"
                     " \"started_at\": 0, \"completed_at\": 9, \"order\": 1}]}");
    h_free(&h);
}

/* ---- stale inputs ------------------------------------------------------------------------ */

static const char *const TWO_ACTIVITIES =
    "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}, "
    "\"retry\": {\"max_attempts\": 3}},"
    " {\"id\": \"b\", \"activity\": {\"url\": \"http://y\"}}]}";

/* Inputs that must not apply while step 0's attempt 2 is in flight. */
static void stale_inputs_change_nothing(void **state)
{
    (void)state;
    struct h h;
    json_t *out = json_true(), *err = parse_json("{\"type\": \"http_5xx\", \"message\": \"m\"}");
    h_init(&h, TWO_ACTIVITIES, "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_feed(&h, in_failed(0, 1, T0 + 1, err));
    h_feed(&h, in_started(0, 2, T0 + SEC + 1));
    assert_false(h.fx.stale);

    const struct engine_input stale[] = {
        in_start(T0 + 2 * SEC),
        in_started(0, 2, T0 + 2 * SEC), /* already running, not a redelivery */
        in_started(0, 1, T0 + 2 * SEC), /* the old attempt */
        in_redelivered(0, 1, T0 + 2 * SEC),
        in_started(0, 3, T0 + 2 * SEC), /* not scheduled yet */
        in_started(1, 1, T0 + 2 * SEC), /* wrong step */
        in_started(7, 1, T0 + 2 * SEC), /* no such step */
        in_succeeded(0, 1, T0 + 2 * SEC, out),
        in_succeeded(0, 3, T0 + 2 * SEC, out),
        in_succeeded(1, 2, T0 + 2 * SEC, out),
        in_succeeded(99, 2, T0 + 2 * SEC, out),
        in_failed(0, 1, T0 + 2 * SEC, err),
        in_failed(1, 2, T0 + 2 * SEC, err),
        in_timer(0, T0 + 2 * SEC),
        in_signal(0, T0 + 2 * SEC, "s", out),
        in_wait_timeout(0, T0 + 2 * SEC),
    };
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
        print_message("stale input %zu\n", i);
        h_feed(&h, stale[i]); /* h_feed checks that nothing changed */
        assert_true(h.fx.stale);
    }

    /* The live attempt succeeds once; the same success again is stale. */
    h_feed(&h, in_succeeded(0, 2, T0 + 3 * SEC, out));
    assert_false(h.fx.stale);
    h_feed(&h, in_succeeded(0, 2, T0 + 3 * SEC, out));
    assert_true(h.fx.stale);
    h_feed(&h, in_failed(0, 2, T0 + 3 * SEC, err));
    assert_true(h.fx.stale);
    /* A success for the scheduled but not started attempt is stale too. */
    h_feed(&h, in_succeeded(1, 1, T0 + 3 * SEC, out));
    assert_true(h.fx.stale);

    h_feed(&h, in_started(1, 1, T0 + 4 * SEC));
    h_feed(&h, in_succeeded(1, 1, T0 + 5 * SEC, out));
    assert_true(h.fx.ended);

    /* After the end every input is stale. */
    const struct engine_input after_end[] = {
        in_start(T0 + 6 * SEC),
        in_started(1, 1, T0 + 6 * SEC),
        in_redelivered(1, 1, T0 + 6 * SEC),
        in_started(1, 2, T0 + 6 * SEC),
        in_succeeded(1, 1, T0 + 6 * SEC, out),
        in_failed(1, 1, T0 + 6 * SEC, err),
        in_timer(1, T0 + 6 * SEC),
        in_signal(1, T0 + 6 * SEC, "s", out),
        in_wait_timeout(1, T0 + 6 * SEC),
    };
    for (size_t i = 0; i < sizeof after_end / sizeof after_end[0]; i++) {
        print_message("after-end input %zu\n", i);
        h_feed(&h, after_end[i]);
        assert_true(h.fx.stale);
    }
    json_decref(out);
    json_decref(err);
    h_free(&h);
}

/* Inputs on a failed execution are stale too. */
static void inputs_after_failure_are_stale(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, TWO_ACTIVITIES, "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    json_t *err = parse_json("{\"type\": \"gone\", \"message\": \"410\"}");
    struct engine_input in = in_failed(0, 1, T0 + 1, err);
    in.non_retryable = true;
    h_feed(&h, in);
    assert_true(h.fx.ended);
    h_feed(&h, in_failed(0, 1, T0 + 2, err));
    assert_true(h.fx.stale);
    h_feed(&h, in_started(0, 2, T0 + 2));
    assert_true(h.fx.stale);
    h_feed(&h, in_start(T0 + 2));
    assert_true(h.fx.stale);
    json_decref(err);
    h_free(&h);
}

/* A programming error (an input kind that does not exist, a missing argument) is -1 and
 * changes nothing. */
static void programming_errors(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, TWO_ACTIVITIES, "{}");
    struct engine_input in = in_start(T0);
    in.kind = (enum engine_input_kind)42;
    assert_int_equal(engine_advance(h.d, &h.st, h.ctx, &in, &h.fx), -1);
    in = in_start(T0);
    assert_int_equal(engine_advance(NULL, &h.st, h.ctx, &in, &h.fx), -1);
    assert_int_equal(engine_advance(h.d, NULL, h.ctx, &in, &h.fx), -1);
    assert_int_equal(engine_advance(h.d, &h.st, NULL, &in, &h.fx), -1);
    assert_int_equal(engine_advance(h.d, &h.st, h.ctx, NULL, &h.fx), -1);
    assert_int_equal(engine_advance(h.d, &h.st, h.ctx, &in, NULL), -1);
    assert_false(h.fx.stale);
    assert_int_equal(h.fx.n_events, 0);
    assert_int_equal(h.st.steps[0].status, ENGINE_STEP_PENDING);
    h_free(&h);
}

/* ---- redelivery -------------------------------------------------------------------------- */

static void redelivery_of_a_running_attempt(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, TWO_ACTIVITIES, "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0 + 10));
    /* The lease expired and the runner sends attempt 1 again. */
    h_feed(&h, in_redelivered(0, 1, T0 + 60 * SEC));
    expect_events(&h, "[[\"attempt_started\", 0, 1, {\"redelivery\": true}]]");
    expect_tasks(&h, "[]");
    expect_changed(&h, "[]");
    assert_int_equal(h.st.steps[0].status, ENGINE_STEP_RUNNING);
    assert_int_equal(h.st.steps[0].started_at_ms, T0 + 10);
    assert_int_equal(h.st.steps[0].attempt, 1);
    /* And again. */
    h_feed(&h, in_redelivered(0, 1, T0 + 120 * SEC));
    expect_events(&h, "[[\"attempt_started\", 0, 1, {\"redelivery\": true}]]");
    /* A redelivery of an attempt that was never started counts as its start. */
    h_succeed(&h, 0, 1, T0 + 121 * SEC, "1");
    h_feed(&h, in_redelivered(1, 1, T0 + 122 * SEC));
    expect_events(&h, "[[\"attempt_started\", 1, 1, {\"redelivery\": true}]]");
    expect_changed(&h, "[1]");
    assert_int_equal(h.st.steps[1].started_at_ms, T0 + 122 * SEC);
    h_succeed(&h, 1, 1, T0 + 123 * SEC, "2");
    assert_true(h.fx.ended);
    h_free(&h);
}

/* A retry's first start sets no new started_at: it is the step's first attempt start. */
static void started_at_is_the_first_attempt(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, TWO_ACTIVITIES, "{}");
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0 + 10));
    h_fail(&h, 0, 1, T0 + 20, "{\"type\": \"http_5xx\", \"message\": \"503\"}");
    h_feed(&h, in_started(0, 2, T0 + 2000));
    expect_events(&h, "[[\"attempt_started\", 0, 2, {}]]");
    /* The retry's own start is kept apart (asynchronous attempts time out from it). */
    expect_state(&h,
                 "{\"v\": 1, \"status\": \"running\", \"current\": 0, \"completions\": 0,"
                 " \"steps\": [{\"status\": \"running\", \"attempt\": 2, \"scheduled_at\": 0,"
                 " \"started_at\": 10, \"attempt_started_at\": 2000}, {\"status\": \"pending\"}]}");
    h_free(&h);
}

/* ---- replay ------------------------------------------------------------------------------ */

static const char *const MIXED =
    "{\"name\": \"mixed\", \"steps\": ["
    " {\"id\": \"charge\", \"activity\": {\"url\": \"http://pay/charge\", \"input\": {\"o\": "
    "\"${input.o}\"}}, \"retry\": {\"max_attempts\": 4, \"initial_interval\": \"1s\"}},"
    " {\"id\": \"nap\", \"sleep\": \"5m\"},"
    " {\"id\": \"until\", \"sleep_until\": \"${input.at}\"},"
    " {\"id\": \"approve\", \"wait\": {\"signal\": \"ok\", \"timeout\": \"1h\"}, \"on_timeout\": "
    "\"continue\"},"
    " {\"id\": \"again\", \"wait\": {\"signal\": \"ok2\"}},"
    " {\"id\": \"ship\", \"activity\": {\"url\": \"http://ship/${steps.charge.output.id}\", "
    "\"input\": \"${steps.again.output}\"}}],"
    " \"output\": [\"${steps.charge.output}\", \"${steps.ship.output}\"]}";

/* The whole history of one execution of MIXED. */
static void run_mixed(void (*feed)(struct h *, struct engine_input), struct h *h, json_t *log)
{
    json_t *e503 = parse_json("{\"type\": \"http_5xx\", \"message\": \"503\", \"status\": 503}");
    json_t *e429 = parse_json("{\"type\": \"rate_limited\", \"message\": \"429\"}");
    json_t *charge = parse_json("{\"id\": \"c9\"}");
    json_t *sig = parse_json("{\"by\": \"me\"}");
    json_t *shipped = parse_json("\"shipped\"");
    struct engine_input ins[32];
    size_t n = 0;
    ins[n++] = in_start(T0);
    ins[n++] = in_started(0, 1, T0 + 1);
    ins[n++] = in_failed(0, 1, T0 + 2, e503);
    ins[n++] = in_started(0, 1, T0 + 3); /* stale */
    ins[n++] = in_started(0, 2, T0 + 1002);
    ins[n] = in_failed(0, 2, T0 + 1003, e429);
    ins[n++].retry_after_ms = 7000;
    ins[n++] = in_started(0, 3, T0 + 8003);
    ins[n++] = in_redelivered(0, 3, T0 + 9000);
    ins[n++] = in_succeeded(0, 3, T0 + 9001, charge);
    ins[n++] = in_succeeded(0, 3, T0 + 9002, charge); /* stale */
    ins[n++] = in_timer(1, T0 + 9001 + 5 * MIN);
    ins[n++] = in_timer(2, T0 + DAY);
    ins[n++] = in_signal(3, T0 + DAY + 1, "ok2", sig); /* stale */
    ins[n++] = in_wait_timeout(3, T0 + DAY + HOUR);
    ins[n++] = in_signal(4, T0 + DAY + HOUR + 1, "ok2", sig);
    ins[n++] = in_started(5, 1, T0 + DAY + HOUR + 2);
    ins[n++] = in_succeeded(5, 1, T0 + DAY + HOUR + 3, shipped);
    for (size_t i = 0; i < n; i++) {
        feed(h, ins[i]);
        json_t *entry = json_pack(
            "{s:b, s:o, s:o, s:o, s:b, s:b, s:s?, s:O?, s:O?, s:o, s:o}", "stale", h->fx.stale,
            "events", events_json(&h->fx), "tasks", tasks_json(&h->fx), "changed",
            changed_json(&h->fx), "ended", h->fx.ended, "cancel", h->fx.cancel_tasks, "wants",
            h->fx.wants_signal, "output", h->fx.output, "error", h->fx.error, "state",
            engine_state_to_json(&h->st), "ctx", json_deep_copy(h->ctx));
        json_array_append_new(log, entry);
    }
    json_decref(e503);
    json_decref(e429);
    json_decref(charge);
    json_decref(sig);
    json_decref(shipped);
}

static void replay_is_deterministic(void **state)
{
    (void)state;
    struct h a, b, c;
    json_t *log_a = json_array(), *log_b = json_array(), *log_c = json_array();
    h_init(&a, MIXED, "{\"o\": 7, \"at\": \"2026-01-02T00:00:00Z\"}");
    h_init(&b, MIXED, "{\"o\": 7, \"at\": \"2026-01-02T00:00:00Z\"}");
    h_init(&c, MIXED, "{\"o\": 7, \"at\": \"2026-01-02T00:00:00Z\"}");
    run_mixed(h_feed, &a, log_a);
    run_mixed(h_feed, &b, log_b);
    run_mixed(h_feed_reloaded, &c, log_c);
    char *ta = dump(log_a), *tb = dump(log_b), *tc = dump(log_c);
    assert_string_equal(ta, tb);
    assert_string_equal(ta, tc);

    /* Spot checks that the history is the one intended. */
    json_t *last = json_array_get(log_a, json_array_size(log_a) - 1);
    assert_true(json_is_true(json_object_get(last, "ended")));
    expect_json(json_object_get(last, "output"), "[{\"id\": \"c9\"}, \"shipped\"]", "outputs");
    expect_json(json_object_get(json_array_get(log_a, 5), "events"),
                "[[\"attempt_failed\", 0, 2, {\"error\": {\"type\": \"rate_limited\", "
                "\"message\": \"429\"}, \"next_attempt_at\": \"2026-01-01T00:00:08.003Z\"}]]",
                "events");
    assert_true(json_is_true(json_object_get(json_array_get(log_a, 3), "stale")));
    assert_true(json_is_true(json_object_get(json_array_get(log_a, 9), "stale")));
    assert_true(json_is_true(json_object_get(json_array_get(log_a, 12), "stale")));
    expect_json(json_object_get(json_array_get(log_a, 14), "tasks"),
                "[[\"activity\", 5, 1, 90000001, {\"url\": \"http://ship/c9\", \"input\": "
                "{\"by\": \"me\"}, \"timeout_ms\": 30000}]]",
                "tasks");
    expect_json(json_object_get(last, "state"),
                "{\"v\": 1, \"status\": \"completed\", \"current\": 6, \"completions\": 6, "
                "\"steps\": ["
                "{\"status\": \"completed\", \"attempt\": 3, \"scheduled_at\": 1767225600000, "
                "\"started_at\": 1767225600001, \"completed_at\": 1767225609001, \"order\": 1},"
                "{\"status\": \"completed\", \"scheduled_at\": 1767225609001, \"started_at\": "
                "1767225609001, \"completed_at\": 1767225909001, \"order\": 2},"
                "{\"status\": \"completed\", \"scheduled_at\": 1767225909001, \"started_at\": "
                "1767225909001, \"completed_at\": 1767312000000, \"order\": 3},"
                "{\"status\": \"completed\", \"scheduled_at\": 1767312000000, \"started_at\": "
                "1767312000000, \"completed_at\": 1767315600000, \"order\": 4},"
                "{\"status\": \"completed\", \"scheduled_at\": 1767315600000, \"started_at\": "
                "1767315600000, \"completed_at\": 1767315600001, \"order\": 5},"
                "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 1767315600001, "
                "\"started_at\": 1767315600002, \"completed_at\": 1767315600003, \"order\": 6}]}",
                "states");
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

/* ---- names ------------------------------------------------------------------------------- */

static void names(void **state)
{
    (void)state;
    static const char *const exec[] = {"running", "completed", "failed", "cancelled", "terminated"};
    static const char *const step[] = {"pending",   "scheduled", "running", "waiting",
                                       "completed", "failed",    "skipped", "compensated"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(engine_exec_status_name((enum engine_exec_status)i), exec[i]);
    for (int i = 0; i < 8; i++)
        assert_string_equal(engine_step_status_name((enum engine_step_status)i), step[i]);
    assert_string_equal(engine_task_kind_name(ENGINE_TASK_ACTIVITY), "activity");
    assert_string_equal(engine_task_kind_name(ENGINE_TASK_TIMER), "timer");
    assert_string_equal(engine_task_kind_name(ENGINE_TASK_WAIT_TIMEOUT), "wait_timeout");
    assert_string_equal(engine_exec_status_name((enum engine_exec_status)99), "unknown");
    assert_string_equal(engine_step_status_name((enum engine_step_status)99), "unknown");
    assert_string_equal(engine_task_kind_name((enum engine_task_kind)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(happy_path_three_steps),
        cmocka_unit_test(no_output_template_gives_null),
        cmocka_unit_test(expression_errors_fail_the_step),
        cmocka_unit_test(failure_skips_remaining_steps),
        cmocka_unit_test(bad_urls_fail_the_step),
        cmocka_unit_test(long_bad_url_is_cut_in_the_message),
        cmocka_unit_test(good_urls_are_sent),
        cmocka_unit_test(sleep_step),
        cmocka_unit_test(sleep_until_step),
        cmocka_unit_test(wait_consumes_its_signal),
        cmocka_unit_test(wait_without_timeout),
        cmocka_unit_test(wait_timeout_fails),
        cmocka_unit_test(wait_timeout_continues),
        cmocka_unit_test(output_template_error_fails_execution),
        cmocka_unit_test(stale_inputs_change_nothing),
        cmocka_unit_test(inputs_after_failure_are_stale),
        cmocka_unit_test(programming_errors),
        cmocka_unit_test(redelivery_of_a_running_attempt),
        cmocka_unit_test(started_at_is_the_first_attempt),
        cmocka_unit_test(replay_is_deterministic),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
