/* Takeover: the attempts in flight that a new owner must send again (engine_attempts_to_resend)
 * and the RESEND input that asks for one with the same url and input, for a step's attempt, a
 * compensation's and the iterations of a for_each; an accepted, scheduled or ended attempt is
 * not sent again. */
#include "flow_harness.h"

/* The attempts to send again in h's state, as [[path, attempt, compensation], ...]. */
static json_t *to_resend(struct h *h)
{
    struct engine_plan *p = engine_plan_build(h->d);
    assert_non_null(p);
    assert_true(engine_state_bind(p, &h->st));
    struct engine_attempt_ref *refs = NULL;
    size_t n = engine_attempts_to_resend(&h->st, &refs);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("[s, i, b]", h->st.steps[refs[i].step].path,
                                           refs[i].attempt, refs[i].compensation));
    free(refs);
    for (size_t i = 0; i < h->st.n_steps; i++)
        h->st.steps[i].node = NULL;
    engine_plan_free(p);
    return a;
}

#define expect_resend(h, text)                                                                     \
    do {                                                                                           \
        json_t *r_ = to_resend(h);                                                                 \
        expect_json(r_, text, "attempts to resend");                                               \
        json_decref(r_);                                                                           \
    } while (0)

static const char *const TWO =
    "{\"name\": \"w\", \"steps\": ["
    " {\"id\": \"a\", \"activity\": {\"url\": \"http://svc/a/${input.n}\", \"input\": "
    "{\"n\": \"${input.n}\"}}, \"timeout\": \"10s\", \"retry\": {\"max_attempts\": 3, "
    "\"initial_interval\": \"1s\"}, \"compensate\": {\"url\": \"http://svc/undo-a\", \"input\": "
    "\"${steps.a.output}\"}},"
    " {\"id\": \"b\", \"activity\": {\"url\": \"http://svc/b\"}, \"retry\": {\"max_attempts\": 1}}"
    "]}";

static void resend_of_the_attempt_in_flight(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, TWO, "{\"n\": 7}");
    h_feed(&h, in_start(T0));
    /* Scheduled, not sent yet: the task that schedules it is still there. */
    expect_resend(&h, "[]");
    h_feed(&h, in_resend(0, 1, T0));
    assert_true(h.fx.stale);
    h_feed(&h, in_started(0, 1, T0 + 1));
    expect_resend(&h, "[[\"a\", 1, false]]");
    /* The same url and input, evaluated again; due at the time of the resend. */
    h_feed(&h, in_resend(0, 1, T0 + 5 * SEC));
    expect_tasks(&h, "[[\"activity\", 0, 1, 5000, {\"url\": \"http://svc/a/7\", \"input\": "
                     "{\"n\": 7}, \"timeout_ms\": 10000}]]");
    expect_events(&h, "[]");
    /* Another attempt number, or a compensation, is stale. */
    h_feed(&h, in_resend(0, 2, T0 + 5 * SEC));
    assert_true(h.fx.stale);
    struct engine_input comp = in_resend(0, 1, T0 + 5 * SEC);
    comp.compensation = true;
    h_feed(&h, comp);
    assert_true(h.fx.stale);
    /* The runner journals the resend as a redelivery. */
    h_feed(&h, in_redelivered(0, 1, T0 + 5 * SEC));
    expect_events(&h, "[[\"attempt_started\", 0, 1, {\"redelivery\": true}]]");
    expect_resend(&h, "[[\"a\", 1, false]]");

    /* Failed, waiting for its backoff: nothing in flight. */
    json_t *err = parse_json("{\"type\": \"http_500\", \"message\": \"boom\"}");
    h_feed(&h, in_failed(0, 1, T0 + 6 * SEC, err));
    expect_resend(&h, "[]");
    h_feed(&h, in_resend(0, 1, T0 + 6 * SEC));
    assert_true(h.fx.stale);
    h_feed(&h, in_started(0, 2, T0 + 7 * SEC));
    expect_resend(&h, "[[\"a\", 2, false]]");
    /* Accepted: the receiver has it; its timeouts are tasks of their own. */
    h_feed(&h, in_accepted(0, 2, T0 + 8 * SEC));
    expect_resend(&h, "[]");
    h_feed(&h, in_resend(0, 2, T0 + 8 * SEC));
    assert_true(h.fx.stale);
    json_t *out = parse_json("{\"id\": \"A\"}");
    h_feed(&h, in_succeeded(0, 2, T0 + 9 * SEC, out));
    expect_resend(&h, "[]");

    /* b fails for good: a's compensation runs; in flight, it is sent again as itself. */
    h_feed(&h, in_started(1, 1, T0 + 10 * SEC));
    expect_resend(&h, "[[\"b\", 1, false]]");
    h_feed(&h, in_failed(1, 1, T0 + 11 * SEC, err));
    expect_resend(&h, "[]");
    struct engine_input cs = in_started(0, 1, T0 + 12 * SEC);
    cs.compensation = true;
    h_feed(&h, cs);
    expect_resend(&h, "[[\"a\", 1, true]]");
    h_feed(&h, comp);
    expect_tasks(&h, "[[\"compensation\", 0, 1, 5000, {\"url\": \"http://svc/undo-a\", \"input\": "
                     "{\"id\": \"A\"}, \"timeout_ms\": 30000}]]");
    /* The step's own attempt is over. */
    h_feed(&h, in_resend(0, 2, T0 + 12 * SEC));
    assert_true(h.fx.stale);
    json_decref(err);
    json_decref(out);
    h_free(&h);
}

static const char *const LOOP =
    "{\"name\": \"loop\", \"steps\": ["
    " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"concurrency\": 2, \"steps\": ["
    "   {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/charge/${index}\", \"input\": "
    "\"${item}\"}}]}}]}";

static void resend_inside_a_for_each(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, LOOP, "{\"xs\": [\"p\", \"q\", \"r\"]}");
    h_feed(&h, in_start(T0));
    size_t c0 = at(&h, "all/0/charge"), c1 = at(&h, "all/1/charge");
    h_feed(&h, in_started(c0, 1, T0 + 1));
    expect_resend(&h, "[[\"all/0/charge\", 1, false]]");
    h_feed(&h, in_started(c1, 1, T0 + 1));
    expect_resend(&h, "[[\"all/0/charge\", 1, false], [\"all/1/charge\", 1, false]]");
    h_feed(&h, in_resend(c1, 1, T0 + 2));
    expect_ptasks(&h, "[[\"activity\", \"all/1/charge\", 1, 2]]");
    expect_json(h.fx.tasks[0].payload,
                "{\"url\": \"http://svc/charge/1\", \"input\": \"q\", \"timeout_ms\": 30000}",
                "payload");
    /* Cancelled: the attempts in flight are abandoned, none is sent again. */
    h_feed(&h, (struct engine_input){
                   .kind = ENGINE_IN_TERMINATE, .now_ms = T0 + 3, .retry_after_ms = -1});
    expect_resend(&h, "[]");
    h_feed(&h, in_resend(c0, 1, T0 + 4));
    assert_true(h.fx.stale);
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resend_of_the_attempt_in_flight),
        cmocka_unit_test(resend_inside_a_for_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
