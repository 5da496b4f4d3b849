/* The activity-call module on its own, without a definition: one call driven input by input,
 * options given as values (as a step call will give them) or as compiled templates, with a sink
 * that records what the module emits so each test reads like the call's history. */
#include "harness.h"

#include "engine/activity.h"

/* A call under test and everything it borrows. */
struct t {
    struct defn_retry retry;
    struct activity_options opt;
    struct activity_call c;
    struct activity_sink sink;
    json_t *url, *input, *ctx;
    json_t *log; /* what the sink received since the last check */
    json_t *error;
};

static const char *const kinds[] = {"send", "timeout", "heartbeat_timeout"};

static void rec_event(void *arg, const char *type, int attempt, json_t *data)
{
    struct t *t = arg;
    json_array_append_new(t->log, json_pack("[s, s, i, o]", "event", type, attempt, data));
}

static void rec_task(void *arg, enum activity_task_kind kind, int attempt, int64_t due_at_ms,
                     json_t *payload)
{
    struct t *t = arg;
    json_array_append_new(t->log,
                          json_pack("[s, s, i, I, o]", "task", kinds[kind], attempt,
                                    (json_int_t)(due_at_ms - T0), payload ? payload : json_null()));
}

static void rec_cancel(void *arg, enum activity_task_kind kind)
{
    struct t *t = arg;
    json_array_append_new(t->log, json_pack("[s, s]", "cancel", kinds[kind]));
}

/* A call of url with input {"order": 7}: 30s per attempt, 3 attempts from 1s doubling up to 10s,
 * no heartbeat, no schedule_to_close. Tests change the options before activity_start. */
static void t_init(struct t *t, const char *url)
{
    memset(t, 0, sizeof *t);
    t->retry = (struct defn_retry){.max_attempts = 3,
                                   .initial_interval_ms = 1 * SEC,
                                   .backoff_coefficient = 2.0,
                                   .max_interval_ms = 10 * SEC};
    t->url = json_string(url);
    t->input = parse_json("{\"order\": 7}");
    t->ctx = parse_json("{\"input\": {\"id\": \"o-1\"}, \"steps\": {}}");
    t->opt = (struct activity_options){
        .url = t->url, .input = t->input, .timeout_ms = 30 * SEC, .retry = &t->retry};
    t->c = (struct activity_call){.opt = &t->opt, .name = "charge", .ctx = t->ctx};
    t->sink = (struct activity_sink){t, rec_event, rec_task, rec_cancel};
    t->log = json_array();
}

static void t_free(struct t *t)
{
    json_decref(t->url);
    json_decref(t->input);
    json_decref(t->ctx);
    json_decref(t->log);
    json_decref(t->error);
    memset(t, 0, sizeof *t);
}

/* Checks what the sink received since the last check, then forgets it. */
#define expect_log(t, text)                                                                        \
    do {                                                                                           \
        expect_json((t)->log, text, "logs");                                                       \
        json_array_clear((t)->log);                                                                \
    } while (0)

/* Checks the final error of the call, then forgets it. */
#define expect_error(t, text)                                                                      \
    do {                                                                                           \
        expect_json((t)->error, text, "errors");                                                   \
        json_decref((t)->error);                                                                   \
        (t)->error = NULL;                                                                         \
    } while (0)

static void expect_call(const struct t *t, enum activity_status status, int attempt,
                        int64_t started_rel, bool accepted)
{
    assert_int_equal(t->c.status, status);
    assert_int_equal(t->c.attempt, attempt);
    assert_int_equal(t->c.attempt_started_at_ms ? t->c.attempt_started_at_ms - T0 : -1,
                     started_rel);
    assert_int_equal(t->c.accepted, accepted);
}

static void start(struct t *t, int64_t at)
{
    assert_int_equal(activity_start(&t->c, T0 + at, &t->sink, &t->error), ACTIVITY_APPLIED);
    assert_null(t->error);
}

static void started(struct t *t, int attempt, int64_t at)
{
    assert_int_equal(activity_attempt_started(&t->c, attempt, false, T0 + at, &t->sink),
                     ACTIVITY_APPLIED);
}

/* Attempt `attempt` fails at `at` with {"type": type, "message": "m"}. */
static enum activity_result fail_attempt(struct t *t, int attempt, int64_t at, const char *type,
                                         int64_t retry_after)
{
    json_t *err = json_pack("{s:s, s:s}", "type", type, "message", "m");
    enum activity_result res = activity_attempt_failed(&t->c, attempt, err, false, retry_after,
                                                       false, T0 + at, &t->sink, &t->error);
    json_decref(err);
    return res;
}

static void success(void **state)
{
    (void)state;
    struct t t;
    t_init(&t, "https://pay.example/charge");
    start(&t, 0);
    expect_call(&t, ACTIVITY_SCHEDULED, 1, -1, false);
    assert_int_equal(t.c.scheduled_at_ms, T0);
    expect_log(&t, "[[\"task\", \"send\", 1, 0, {\"url\": \"https://pay.example/charge\", "
                   "\"input\": {\"order\": 7}, \"timeout_ms\": 30000}]]");

    /* Nothing about an attempt that is not in flight applies. */
    assert_int_equal(activity_attempt_succeeded(&t.c, 1, T0, &t.sink), ACTIVITY_STALE);
    assert_int_equal(activity_attempt_started(&t.c, 2, false, T0, &t.sink), ACTIVITY_STALE);
    assert_int_equal(activity_heartbeat(&t.c, 1, T0, &t.sink), ACTIVITY_STALE);
    expect_log(&t, "[]");

    started(&t, 1, 5);
    expect_call(&t, ACTIVITY_RUNNING, 1, 5, false);
    expect_log(&t, "[[\"event\", \"attempt_started\", 1, {}]]");
    /* Sent twice without a redelivery: stale. A redelivery restarts the attempt clock. */
    assert_int_equal(activity_attempt_started(&t.c, 1, false, T0 + 6, &t.sink), ACTIVITY_STALE);
    assert_int_equal(activity_attempt_started(&t.c, 1, true, T0 + 9, &t.sink), ACTIVITY_APPLIED);
    expect_call(&t, ACTIVITY_RUNNING, 1, 9, false);
    expect_log(&t, "[[\"event\", \"attempt_started\", 1, {\"redelivery\": true}]]");

    assert_int_equal(activity_attempt_succeeded(&t.c, 2, T0 + 20, &t.sink), ACTIVITY_STALE);
    assert_int_equal(activity_attempt_succeeded(&t.c, 1, T0 + 20, &t.sink), ACTIVITY_SUCCEEDED);
    expect_call(&t, ACTIVITY_IDLE, 1, -1, false);
    expect_log(&t, "[]");
    assert_int_equal(activity_attempt_succeeded(&t.c, 1, T0 + 21, &t.sink), ACTIVITY_STALE);
    t_free(&t);
}

static void retries_with_backoff(void **state)
{
    (void)state;
    struct t t;
    t_init(&t, "http://x");
    start(&t, 0);
    json_array_clear(t.log);

    started(&t, 1, 0);
    assert_int_equal(fail_attempt(&t, 1, 100, "Boom", -1), ACTIVITY_APPLIED);
    expect_call(&t, ACTIVITY_SCHEDULED, 2, -1, false);
    expect_log(&t, "[[\"event\", \"attempt_started\", 1, {}], "
                   "[\"event\", \"attempt_failed\", 1, {\"error\": {\"type\": \"Boom\", "
                   "\"message\": \"m\"}, \"next_attempt_at\": \"2026-01-01T00:00:01.100Z\"}], "
                   "[\"task\", \"send\", 2, 1100, {\"url\": \"http://x\", \"input\": {\"order\": "
                   "7}, \"timeout_ms\": 30000}]]");
    /* The failure of an attempt no longer in flight is stale. */
    assert_int_equal(fail_attempt(&t, 1, 200, "Boom", -1), ACTIVITY_STALE);

    started(&t, 2, 1100);
    assert_int_equal(fail_attempt(&t, 2, 1200, "Boom", -1), ACTIVITY_APPLIED);
    expect_log(&t, "[[\"event\", \"attempt_started\", 2, {}], "
                   "[\"event\", \"attempt_failed\", 2, {\"error\": {\"type\": \"Boom\", "
                   "\"message\": \"m\"}, \"next_attempt_at\": \"2026-01-01T00:00:03.200Z\"}], "
                   "[\"task\", \"send\", 3, 3200, {\"url\": \"http://x\", \"input\": {\"order\": "
                   "7}, \"timeout_ms\": 30000}]]");

    /* max_attempts: the third failure is the call's. An error that is not an object is
     * repaired. */
    started(&t, 3, 3200);
    json_t *junk = json_string("junk");
    assert_int_equal(
        activity_attempt_failed(&t.c, 3, junk, false, -1, false, T0 + 3300, &t.sink, &t.error),
        ACTIVITY_FAILED);
    json_decref(junk);
    expect_call(&t, ACTIVITY_IDLE, 3, -1, false);
    expect_log(&t, "[[\"event\", \"attempt_started\", 3, {}], "
                   "[\"event\", \"attempt_failed\", 3, {\"error\": {\"type\": \"unknown\", "
                   "\"message\": \"\"}, \"next_attempt_at\": null}]]");
    expect_error(&t, "{\"type\": \"unknown\", \"message\": \"\", \"step\": \"charge\", "
                     "\"attempts\": 3}");
    t_free(&t);
}

/* Retry-After lengthens the backoff up to max_interval and never shortens it. */
static void retry_after_capped_by_max_interval(void **state)
{
    (void)state;
    static const struct {
        int64_t retry_after, next_due;
    } cases[] = {{60 * SEC, 10 * SEC}, {500, 1 * SEC}, {5 * SEC, 5 * SEC}, {-1, 1 * SEC}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct t t;
        t_init(&t, "http://x");
        start(&t, 0);
        started(&t, 1, 0);
        json_array_clear(t.log);
        assert_int_equal(fail_attempt(&t, 1, 0, "Busy", cases[i].retry_after), ACTIVITY_APPLIED);
        json_t *task = json_array_get(t.log, 1);
        assert_string_equal(json_string_value(json_array_get(task, 1)), "send");
        assert_int_equal(json_integer_value(json_array_get(task, 3)), cases[i].next_due);
        t_free(&t);
    }
}

static void non_retryable(void **state)
{
    (void)state;
    /* The receiver's flag, the policy's list, and the caller's stop each end the call at once. */
    for (int how = 0; how < 3; how++) {
        struct t t;
        char *types[] = {"Declined"};
        t_init(&t, "http://x");
        t.retry.non_retryable_errors = types;
        t.retry.n_non_retryable_errors = 1;
        start(&t, 0);
        started(&t, 1, 0);
        json_array_clear(t.log);
        json_t *err = json_pack("{s:s, s:s, s:i}", "type", how == 1 ? "Declined" : "Other",
                                "message", "no", "code", 42);
        assert_int_equal(activity_attempt_failed(&t.c, 1, err, how == 0, -1, how == 2, T0 + 10,
                                                 &t.sink, &t.error),
                         ACTIVITY_FAILED);
        json_decref(err);
        expect_call(&t, ACTIVITY_IDLE, 1, -1, false);
        assert_true(json_is_null(
            json_object_get(json_array_get(json_array_get(t.log, 0), 3), "next_attempt_at")));
        json_t *final = t.error;
        assert_string_equal(json_string_value(json_object_get(final, "step")), "charge");
        assert_int_equal(json_integer_value(json_object_get(final, "attempts")), 1);
        assert_int_equal(json_integer_value(json_object_get(final, "code")), 42);
        t_free(&t);
    }
}

/* schedule_to_close caps each attempt's timeout and stops a retry that could not start in it. */
static void schedule_to_close(void **state)
{
    (void)state;
    struct t t;
    t_init(&t, "http://x");
    t.opt.schedule_to_close_ms = 5 * SEC;
    start(&t, 0);
    expect_log(&t, "[[\"task\", \"send\", 1, 0, {\"url\": \"http://x\", \"input\": {\"order\": "
                   "7}, \"timeout_ms\": 5000}]]");
    started(&t, 1, 0);
    assert_int_equal(fail_attempt(&t, 1, 3000, "Boom", -1), ACTIVITY_APPLIED);
    json_t *task = json_array_get(t.log, 2);
    expect_json(task,
                "[\"task\", \"send\", 2, 4000, {\"url\": \"http://x\", \"input\": {\"order\": 7}, "
                "\"timeout_ms\": 1000}]",
                "tasks");
    json_array_clear(t.log);
    started(&t, 2, 4000);
    /* The next attempt would be due at 6.1s, past 5s. */
    assert_int_equal(fail_attempt(&t, 2, 4100, "Boom", -1), ACTIVITY_FAILED);
    expect_error(&t, "{\"type\": \"Boom\", \"message\": \"m\", \"step\": \"charge\", "
                     "\"attempts\": 2}");

    /* An accepted attempt times out when schedule_to_close runs out, and says so. */
    start(&t, 10 * SEC);
    started(&t, 1, 12 * SEC);
    assert_int_equal(activity_attempt_accepted(&t.c, 1, T0 + 12 * SEC, &t.sink), ACTIVITY_APPLIED);
    json_array_clear(t.log);
    assert_int_equal(activity_timed_out(&t.c, 1, false, false, T0 + 15 * SEC, &t.sink, &t.error),
                     ACTIVITY_FAILED);
    expect_log(&t, "[[\"cancel\", \"timeout\"], [\"event\", \"attempt_failed\", 1, {\"error\": "
                   "{\"type\": \"timeout\", \"message\": \"attempt 1 did not complete before "
                   "schedule_to_close (5s) ran out\"}, \"next_attempt_at\": null}]]");
    expect_error(&t, "{\"type\": \"timeout\", \"message\": \"attempt 1 did not complete before "
                     "schedule_to_close (5s) ran out\", \"step\": \"charge\", \"attempts\": 1}");
    t_free(&t);
}

static void accepted_then_heartbeat_timeout(void **state)
{
    (void)state;
    struct t t;
    t_init(&t, "http://x");
    t.opt.timeout_ms = 1 * MIN;
    t.opt.heartbeat_timeout_ms = 10 * SEC;
    start(&t, 0);
    /* A heartbeat before the accept is journaled applies and changes nothing. */
    started(&t, 1, 10);
    assert_int_equal(activity_heartbeat(&t.c, 1, T0 + 15, &t.sink), ACTIVITY_APPLIED);
    json_array_clear(t.log);

    assert_int_equal(activity_attempt_accepted(&t.c, 1, T0 + 20, &t.sink), ACTIVITY_APPLIED);
    expect_call(&t, ACTIVITY_RUNNING, 1, 10, true);
    expect_log(&t, "[[\"event\", \"attempt_accepted\", 1, {\"timeout_at\": "
                   "\"2026-01-01T00:01:00.010Z\", \"heartbeat_timeout_at\": "
                   "\"2026-01-01T00:00:10.020Z\"}], [\"task\", \"timeout\", 1, 60010, null], "
                   "[\"task\", \"heartbeat_timeout\", 1, 10020, null]]");
    assert_int_equal(activity_attempt_accepted(&t.c, 1, T0 + 21, &t.sink), ACTIVITY_STALE);
    /* The receiver has it: a redelivery is stale. */
    assert_int_equal(activity_attempt_started(&t.c, 1, true, T0 + 22, &t.sink), ACTIVITY_STALE);
    expect_log(&t, "[]");

    assert_int_equal(activity_heartbeat(&t.c, 1, T0 + 5 * SEC, &t.sink), ACTIVITY_APPLIED);
    expect_log(&t, "[[\"cancel\", \"heartbeat_timeout\"], "
                   "[\"task\", \"heartbeat_timeout\", 1, 15000, null]]");

    assert_int_equal(activity_timed_out(&t.c, 2, true, false, T0 + 15 * SEC, &t.sink, &t.error),
                     ACTIVITY_STALE);
    assert_int_equal(activity_timed_out(&t.c, 1, true, false, T0 + 15 * SEC, &t.sink, &t.error),
                     ACTIVITY_APPLIED);
    expect_call(&t, ACTIVITY_SCHEDULED, 2, -1, false);
    expect_log(&t, "[[\"cancel\", \"timeout\"], [\"cancel\", \"heartbeat_timeout\"], "
                   "[\"event\", \"attempt_failed\", 1, {\"error\": {\"type\": "
                   "\"heartbeat_timeout\", \"message\": \"attempt 1 sent no heartbeat within "
                   "10s\"}, \"next_attempt_at\": \"2026-01-01T00:00:16.000Z\"}], "
                   "[\"task\", \"send\", 2, 16000, {\"url\": \"http://x\", \"input\": {\"order\": "
                   "7}, \"timeout_ms\": 60000}]]");
    t_free(&t);
}

static void attempt_timeout(void **state)
{
    (void)state;
    struct t t;
    t_init(&t, "http://x");
    t.opt.timeout_ms = 10 * MIN;
    t.retry.max_attempts = 1;
    start(&t, 0);
    started(&t, 1, 5);
    /* Only an accepted attempt times out this way (a synchronous one is the runner's). */
    assert_int_equal(activity_timed_out(&t.c, 1, false, false, T0 + 10 * MIN, &t.sink, &t.error),
                     ACTIVITY_STALE);
    assert_int_equal(activity_attempt_accepted(&t.c, 1, T0 + 6, &t.sink), ACTIVITY_APPLIED);
    /* Without heartbeat_timeout there is no heartbeat task to move or time out. */
    assert_int_equal(activity_heartbeat(&t.c, 1, T0 + 7, &t.sink), ACTIVITY_APPLIED);
    assert_int_equal(activity_timed_out(&t.c, 1, true, false, T0 + 8, &t.sink, &t.error),
                     ACTIVITY_STALE);
    json_array_clear(t.log);
    assert_int_equal(
        activity_timed_out(&t.c, 1, false, false, T0 + 10 * MIN + 5, &t.sink, &t.error),
        ACTIVITY_FAILED);
    expect_log(&t, "[[\"cancel\", \"timeout\"], [\"event\", \"attempt_failed\", 1, {\"error\": "
                   "{\"type\": \"timeout\", \"message\": \"attempt 1 did not complete within "
                   "10m\"}, \"next_attempt_at\": null}]]");
    expect_error(&t, "{\"type\": \"timeout\", \"message\": \"attempt 1 did not complete within "
                     "10m\", \"step\": \"charge\", \"attempts\": 1}");
    t_free(&t);
}

static void compensation_attempts(void **state)
{
    (void)state;
    struct t t;
    t_init(&t, "http://x/refund");
    t.c.compensation = true;
    t.retry.max_attempts = 2;
    t.opt.heartbeat_timeout_ms = 10 * SEC;
    start(&t, 0);
    started(&t, 1, 0);
    assert_int_equal(fail_attempt(&t, 1, 10, "Boom", -1), ACTIVITY_APPLIED);
    expect_log(&t, "[[\"task\", \"send\", 1, 0, {\"url\": \"http://x/refund\", \"input\": "
                   "{\"order\": 7}, \"timeout_ms\": 30000}], "
                   "[\"event\", \"compensation_started\", 1, {}], "
                   "[\"event\", \"attempt_failed\", 1, {\"error\": {\"type\": \"Boom\", "
                   "\"message\": \"m\"}, \"next_attempt_at\": \"2026-01-01T00:00:01.010Z\", "
                   "\"compensation\": true}], "
                   "[\"task\", \"send\", 2, 1010, {\"url\": \"http://x/refund\", \"input\": "
                   "{\"order\": 7}, \"timeout_ms\": 30000}]]");
    started(&t, 2, 1010);
    assert_int_equal(activity_attempt_accepted(&t.c, 2, T0 + 1020, &t.sink), ACTIVITY_APPLIED);
    expect_log(&t, "[[\"event\", \"compensation_started\", 2, {}], "
                   "[\"event\", \"attempt_accepted\", 2, {\"timeout_at\": "
                   "\"2026-01-01T00:00:31.010Z\", \"heartbeat_timeout_at\": "
                   "\"2026-01-01T00:00:11.020Z\", \"compensation\": true}], "
                   "[\"task\", \"timeout\", 2, 31010, null], "
                   "[\"task\", \"heartbeat_timeout\", 2, 11020, null]]");
    assert_int_equal(fail_attempt(&t, 2, 2000, "Boom", -1), ACTIVITY_FAILED);
    expect_log(&t, "[[\"cancel\", \"timeout\"], [\"cancel\", \"heartbeat_timeout\"], "
                   "[\"event\", \"attempt_failed\", 2, {\"error\": {\"type\": \"Boom\", "
                   "\"message\": \"m\"}, \"next_attempt_at\": null, \"compensation\": true}]]");
    expect_error(&t, "{\"type\": \"Boom\", \"message\": \"m\", \"step\": \"charge\", "
                     "\"attempts\": 2, \"compensation\": true}");

    /* Started again (a call is reusable), it can succeed. */
    start(&t, 5 * SEC);
    started(&t, 1, 5 * SEC);
    assert_int_equal(activity_attempt_succeeded(&t.c, 1, T0 + 6 * SEC, &t.sink),
                     ACTIVITY_SUCCEEDED);
    t_free(&t);
}

/* Templates evaluate in the caller's context; what cannot be sent ends the call at its start,
 * with no attempt. */
static void templates_and_bad_urls(void **state)
{
    (void)state;
    struct t t;
    t_init(&t, "http://unused");
    json_t *url_tmpl = json_string("http://x/orders/${input.id}");
    json_t *input_tmpl = parse_json("{\"id\": \"${input.id}\", \"n\": \"${input.nope}\"}");
    struct expr_template *url_expr = expr_compile(url_tmpl, NULL, NULL, NULL, NULL);
    struct expr_template *input_expr = expr_compile(input_tmpl, NULL, NULL, NULL, NULL);
    t.opt.url_expr = url_expr;
    t.opt.pointer = "/steps/3/activity";

    start(&t, 0);
    expect_log(&t, "[[\"task\", \"send\", 1, 0, {\"url\": \"http://x/orders/o-1\", \"input\": "
                   "{\"order\": 7}, \"timeout_ms\": 30000}]]");

    t.opt.input_expr = input_expr;
    assert_int_equal(activity_start(&t.c, T0, &t.sink, &t.error), ACTIVITY_FAILED);
    expect_call(&t, ACTIVITY_IDLE, 0, -1, false);
    expect_log(&t, "[]");
    json_t *pointer = json_object_get(t.error, "pointer");
    assert_string_equal(json_string_value(pointer), "/steps/3/activity/input/n");
    assert_string_equal(json_string_value(json_object_get(t.error, "type")), "expression");
    assert_int_equal(json_integer_value(json_object_get(t.error, "attempts")), 0);
    json_decref(t.error);
    t.error = NULL;

    t.opt.url_expr = NULL;
    t.opt.input_expr = NULL;
    json_decref(t.url);
    t.url = json_string("ftp://x");
    t.opt.url = t.url;
    t.c.compensation = true;
    assert_int_equal(activity_start(&t.c, T0, &t.sink, &t.error), ACTIVITY_FAILED);
    expect_log(&t, "[]");
    expect_error(&t, "{\"type\": \"invalid_url\", \"message\": \"url \\\"ftp://x\\\" is not an "
                     "http:// or https:// URL with a host and no spaces\", \"step\": \"charge\", "
                     "\"attempts\": 0, \"compensation\": true}");

    expr_template_free(url_expr);
    expr_template_free(input_expr);
    json_decref(url_tmpl);
    json_decref(input_tmpl);
    t_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(success),
        cmocka_unit_test(retries_with_backoff),
        cmocka_unit_test(retry_after_capped_by_max_interval),
        cmocka_unit_test(non_retryable),
        cmocka_unit_test(schedule_to_close),
        cmocka_unit_test(accepted_then_heartbeat_timeout),
        cmocka_unit_test(attempt_timeout),
        cmocka_unit_test(compensation_attempts),
        cmocka_unit_test(templates_and_bad_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
