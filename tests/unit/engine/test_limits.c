/* Limits the interpreter enforces on what evaluating templates may build (issue 8, point 2),
 * and the status readers see for a step (point 14). */
#include "harness.h"

#include "util/buf.h"

/* {"x": "<n bytes of 'a'>"}, as JSON text (caller frees). */
static char *input_with_x(size_t n)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"x\": \"");
    for (size_t i = 0; i < n; i++)
        buf_putc(&b, 'a');
    buf_puts(&b, "\"}");
    return buf_steal(&b);
}

/* A definition whose step "fan" has input {"copies": [<copies> x "${input.x}"]}. */
static char *fan_defn(size_t copies, const char *output)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"name\": \"fan\", \"steps\": [{\"id\": \"first\", \"activity\": {\"url\": "
                 "\"http://x/a\"}}, {\"id\": \"fan\", \"activity\": {\"url\": \"http://x/b\", "
                 "\"input\": {\"copies\": [");
    for (size_t i = 0; i < copies; i++)
        buf_puts(&b, i ? ", \"${input.x}\"" : "\"${input.x}\"");
    buf_puts(&b, "]}}}]");
    if (output)
        buf_printf(&b, ", \"output\": %s", output);
    buf_putc(&b, '}');
    return buf_steal(&b);
}

/* Runs step "first" to success, so that step "fan" is entered with the context as it is. */
static void run_first(struct h *h)
{
    h_feed(h, in_start(T0));
    h_feed(h, in_started(0, 1, T0));
    h_succeed(h, 0, 1, T0 + 10, "{}");
}

/* The probe: a 40 KB definition whose step input holds thousands of copies of a 400 KB
 * input value would expand to gigabytes. The step fails with an expression error that names the
 * limit, without building the expansion; nothing is sent. */
static void amplification_fails_the_step(void **state)
{
    (void)state;
    static const size_t copies[] = {4000, 2500, 3};
    for (size_t k = 0; k < sizeof copies / sizeof copies[0]; k++) {
        char *defn = fan_defn(copies[k], NULL);
        char *input = input_with_x(400 * 1024);
        struct h h;
        h_init(&h, defn, input);
        run_first(&h);
        assert_true(h.fx.ended);
        assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
        assert_int_equal(h.st.steps[1].status, ENGINE_STEP_FAILED);
        assert_int_equal(h.fx.n_tasks, 0);
        const json_t *err = h.fx.error;
        assert_string_equal(json_string_value(json_object_get(err, "type")), "expression");
        assert_string_equal(json_string_value(json_object_get(err, "step")), "fan");
        const char *msg = json_string_value(json_object_get(err, "message"));
        if (!strstr(msg, "limit of 1048576 bytes"))
            fail_msg("message: %s", msg);
        /* The pointer says where the budget ran out: the third copy of 400 KB. */
        assert_string_equal(json_string_value(json_object_get(err, "pointer")),
                            "/steps/1/activity/input/copies/2");
        h_free(&h);
        free(defn);
        free(input);
    }
}

/* Just under the limit is fine; the same template over it is not. */
static void budget_boundary(void **state)
{
    (void)state;
    char *defn = fan_defn(2, NULL);
    /* {"copies":["<x>","<x>"]}: 13 bytes around, 2 x (n + 2) for the strings and 1 comma. */
    size_t n = (ENGINE_MAX_PAYLOAD_BYTES - 13 - 4 - 1) / 2;
    for (int over = 0; over <= 1; over++) {
        char *input = input_with_x(n + (size_t)over);
        struct h h;
        h_init(&h, defn, input);
        run_first(&h);
        if (over) {
            assert_int_equal(h.st.steps[1].status, ENGINE_STEP_FAILED);
        } else {
            /* Exactly at the limit: the attempt is scheduled with the whole input. */
            assert_int_equal(h.st.steps[1].status, ENGINE_STEP_SCHEDULED);
            assert_int_equal(h.fx.n_tasks, 1);
            char *text = json_dumps(json_object_get(h.fx.tasks[0].payload, "input"), JSON_COMPACT);
            assert_non_null(text);
            assert_int_equal(strlen(text), ENGINE_MAX_PAYLOAD_BYTES);
            free(text);
        }
        h_free(&h);
        free(input);
    }
    free(defn);
}

/* The definition's output template has the same budget; its failure fails the execution (as any
 * output error does) without a saga. */
static void output_template_budget(void **state)
{
    (void)state;
    const char *defn = "{\"name\": \"out\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": "
                       "\"http://x\"}}], \"output\": [\"${input.x}\", \"${input.x}\", "
                       "\"${input.x}\"]}";
    char *input = input_with_x(400 * 1024);
    struct h h;
    h_init(&h, defn, input);
    h_feed(&h, in_start(T0));
    h_feed(&h, in_started(0, 1, T0));
    h_succeed(&h, 0, 1, T0 + 10, "{}");
    assert_true(h.fx.ended);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")), "expression");
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "pointer")), "/output/2");
    assert_non_null(strstr(json_string_value(json_object_get(h.fx.error, "message")),
                           "limit of 1048576 bytes"));
    h_free(&h);
    free(input);
}

/* Interpolation counts as it grows: "${input.x}${input.x}..." fails the same way. */
static void interpolation_budget(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"name\": \"cat\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": "
                 "\"http://x\", \"input\": \"");
    for (int i = 0; i < 1000; i++)
        buf_puts(&b, "${input.x}");
    buf_puts(&b, "\"}}]}");
    char *input = input_with_x(100 * 1024);
    struct h h;
    h_init(&h, b.data, input);
    h_feed(&h, in_start(T0));
    assert_true(h.fx.ended);
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "type")), "expression");
    assert_string_equal(json_string_value(json_object_get(h.fx.error, "pointer")),
                        "/steps/0/activity/input");
    h_free(&h);
    free(input);
    buf_free(&b);
}

/* "scheduled" means due now; a backoff is "retrying" and a timer "sleeping". */
static void public_status(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}}, "
           "{\"id\": \"nap\", \"sleep\": \"1h\"}, {\"id\": \"until\", \"sleep_until\": "
           "\"2030-01-01T00:00:00Z\"}, {\"id\": \"w\", \"wait\": {\"signal\": \"go\"}}]}",
           "{}");
    h_feed(&h, in_start(T0));
    assert_string_equal(engine_step_public_status(h.d, &h.st, 0), "scheduled");
    assert_string_equal(engine_step_public_status(h.d, &h.st, 1), "pending");
    h_feed(&h, in_started(0, 1, T0));
    assert_string_equal(engine_step_public_status(h.d, &h.st, 0), "running");
    h_fail(&h, 0, 1, T0 + 10, "{\"type\": \"http_5xx\", \"message\": \"HTTP 503\"}");
    assert_string_equal(engine_step_public_status(h.d, &h.st, 0), "retrying");
    h_feed(&h, in_started(0, 2, T0 + 1010));
    assert_string_equal(engine_step_public_status(h.d, &h.st, 0), "running");
    h_succeed(&h, 0, 2, T0 + 1020, "{}");
    assert_string_equal(engine_step_public_status(h.d, &h.st, 0), "completed");
    assert_string_equal(engine_step_public_status(h.d, &h.st, 1), "sleeping");
    h_feed(&h, in_timer(1, T0 + HOUR));
    assert_string_equal(engine_step_public_status(h.d, &h.st, 2), "sleeping");
    h_feed(&h, in_timer(2, T0 + HOUR));
    assert_string_equal(engine_step_public_status(h.d, &h.st, 3), "waiting");
    assert_string_equal(engine_step_public_status(h.d, &h.st, 4), "unknown");
    assert_string_equal(engine_step_public_status(NULL, &h.st, 0), "unknown");
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(amplification_fails_the_step),
        cmocka_unit_test(budget_boundary),
        cmocka_unit_test(output_template_budget),
        cmocka_unit_test(interpolation_budget),
        cmocka_unit_test(public_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
