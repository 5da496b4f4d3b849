/* Step calls through the interpreter (issue 10): a code execution's program calls keys, each a
 * step of one kind (output, sleep, sleep_until, wait) created under the root "" at the next
 * position from the call's request, which is data and never a template. A key that exists is
 * a replay (stale: answered from its row, nothing written); a later call with another request
 * is journaled once; cancel, terminate, fail and retry treat the keys as a definition's steps.
 * Every feed also checks that the state, calls included, survives its JSON form. */
#include "flow_harness.h"

#include "util/alloc.h"
#include "util/timeutil.h"

static struct engine_input in_call(int64_t now, const char *key, const json_t *request)
{
    return (struct engine_input){.kind = ENGINE_IN_STEP_CALL,
                                 .now_ms = now,
                                 .key = key,
                                 .request = request,
                                 .retry_after_ms = -1};
}

static struct engine_input in_differs(int64_t now, const char *key, const json_t *request)
{
    struct engine_input in = in_call(now, key, request);
    in.kind = ENGINE_IN_REQUEST_DIFFERS;
    return in;
}

/* Feeds a step call whose body is given as JSON text. */
static void call(struct h *h, int64_t now, const char *key, const char *request_text, bool reload)
{
    json_t *req = parse_json(request_text);
    if (reload)
        h_feed_reloaded(h, in_call(now, key, req));
    else
        h_feed(h, in_call(now, key, req));
    json_decref(req);
}

static void started(struct h *h)
{
    h_init_code(h, "{\"order\": 7}");
    h_feed(h, in_start(T0));
}

/* An output completes at once with the value as sent: "${...}" in it is text, not a template.
 * The same key again is a replay: stale, whatever its request. */
static void output_is_journaled_once_and_literal(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    call(&h, T0 + 1, "charge", "{\"output\": {\"id\": \"${input.order}\", \"cost\": \"$$5\"}}",
         true);
    expect_pevents(&h,
                   "[[\"step_scheduled\", \"charge\", 0], [\"step_completed\", \"charge\", 0]]");
    expect_json(event_data(&h, "step_scheduled"),
                "{\"kind\": \"output\", \"request\": {\"output\": {\"id\": \"${input.order}\", "
                "\"cost\": \"$$5\"}}}",
                "scheduled");
    expect_json(ctx_output(&h, "charge"), "{\"id\": \"${input.order}\", \"cost\": \"$$5\"}",
                "output");
    assert_string_equal(status_of(&h, "charge"), "completed");
    assert_int_equal(h.st.steps[at(&h, "charge")].parent, 0);
    assert_int_equal(h.st.steps[at(&h, "charge")].position, 0);
    assert_int_equal(h.st.next_position, 1);
    /* Replays are stale, reloaded or not, with the same or another request. */
    call(&h, T0 + 2, "charge", "{\"output\": 1}", true);
    assert_true(h.fx.stale);
    call(&h, T0 + 2, "charge", "{\"sleep\": \"1s\"}", false);
    assert_true(h.fx.stale);
    assert_string_equal(status_of(&h, ""), "running");
    h_free(&h);
}

/* Keys take positions in the order of their first calls; every kind's instance hangs under the
 * root, and survives a reload with its request. */
static void keys_keep_first_call_order(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    call(&h, T0 + 1, "b", "{\"output\": 2}", false);
    call(&h, T0 + 2, "a:1@x", "{\"output\": 1}", true);
    call(&h, T0 + 3, "nap", "{\"sleep\": \"10s\"}", true);
    assert_int_equal(h.st.steps[at(&h, "b")].position, 0);
    assert_int_equal(h.st.steps[at(&h, "a:1@x")].position, 1);
    assert_int_equal(h.st.steps[at(&h, "nap")].position, 2);
    assert_int_equal(h.st.next_position, 3);
    json_t *j = engine_state_to_json(&h.st);
    expect_json(json_object_get(j, "next_position"), "3", "next_position");
    json_t *steps = json_object_get(j, "steps");
    expect_json(json_object_get(json_array_get(steps, 2), "request"), "{\"output\": 1}",
                "the request in the whole state");
    json_decref(j);
    /* Its own JSON, as a row stores it, leaves the request out (the row holds it apart). */
    json_t *own = engine_step_to_json(&h.st, at(&h, "nap"));
    assert_null(json_object_get(own, "request"));
    expect_json(json_object_get(own, "pos"), "2", "pos");
    json_decref(own);
    h_free(&h);
}

/* A sleep starts its timer; the timer completes it with null. sleep_until is a literal time. */
static void sleeps_run_on_timers(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    call(&h, T0 + 1, "nap", "{\"sleep\": \"10s\"}", true);
    expect_ptasks(&h, "[[\"timer\", \"nap\", 0, 10001]]");
    assert_string_equal(status_of(&h, "nap"), "scheduled");
    assert_string_equal(public_status(&h, "nap"), "sleeping");
    h_feed_reloaded(&h, in_timer(at(&h, "nap"), T0 + 10001));
    expect_pevents(&h, "[[\"timer_fired\", \"nap\", 0], [\"step_completed\", \"nap\", 0]]");
    assert_string_equal(status_of(&h, "nap"), "completed");
    char until[32];
    time_format_rfc3339(T0 + 60000, until);
    char *body = xasprintf("{\"sleep_until\": \"%s\"}", until);
    call(&h, T0 + 2, "later", body, true);
    free(body);
    expect_ptasks(&h, "[[\"timer\", \"later\", 0, 60000]]");
    h_free(&h);
}

/* A wait takes a signal; with on_timeout continue its timeout completes it. */
static void waits_take_signals(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    call(&h, T0 + 1, "approval", "{\"wait\": {\"signal\": \"approve\", \"timeout\": \"1h\"}}",
         true);
    assert_string_equal(status_of(&h, "approval"), "waiting");
    assert_non_null(h.fx.wants_signal);
    assert_string_equal(h.fx.wants_signal, "approve");
    expect_ptasks(&h, "[[\"wait_timeout\", \"approval\", 0, 3600001]]");
    json_t *payload = parse_json("{\"by\": \"ann\"}");
    h_feed_reloaded(&h, in_signal(at(&h, "approval"), T0 + 5, "approve", payload));
    json_decref(payload);
    assert_string_equal(status_of(&h, "approval"), "completed");
    expect_json(ctx_output(&h, "approval"), "{\"by\": \"ann\"}", "the signal's payload");

    call(&h, T0 + 6, "maybe",
         "{\"wait\": {\"any\": [\"yes\", \"no\"], \"timeout\": \"1s\"}, \"on_timeout\": "
         "\"continue\"}",
         false);
    h_feed_reloaded(&h, in_wait_timeout(at(&h, "maybe"), T0 + 1006));
    assert_string_equal(status_of(&h, "maybe"), "completed");
    h_free(&h);
}

/* After a cancel no key starts; a waiting one stops at once; the program's complete ends it
 * cancelled. */
static void cancel_stops_keys(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    call(&h, T0 + 1, "approval", "{\"wait\": {\"signal\": \"approve\"}}", false);
    h_feed_reloaded(&h, in_cancel(T0 + 2));
    assert_string_equal(status_of(&h, "approval"), "skipped");
    expect_pcancels(&h, "[[\"activity\", \"approval\"], [\"timer\", \"approval\"], "
                        "[\"wait_timeout\", \"approval\"]]");
    call(&h, T0 + 3, "next", "{\"output\": 1}", true);
    assert_true(h.fx.stale);
    assert_false(exists(&h, "next"));
    h_feed(&h, (struct engine_input){.kind = ENGINE_IN_COMPLETE,
                                     .now_ms = T0 + 4,
                                     .output = json_null(),
                                     .retry_after_ms = -1});
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    h_free(&h);
}

/* Terminate skips the keys under way; every later call is stale. */
static void terminate_skips_keys(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    call(&h, T0 + 1, "done", "{\"output\": true}", false);
    call(&h, T0 + 2, "nap", "{\"sleep\": \"1h\"}", true);
    h_feed_reloaded(&h, in_terminate(T0 + 3));
    assert_int_equal(h.st.status, ENGINE_EXEC_TERMINATED);
    assert_string_equal(status_of(&h, "nap"), "skipped");
    assert_string_equal(status_of(&h, "done"), "completed");
    call(&h, T0 + 4, "more", "{\"output\": 1}", false);
    assert_true(h.fx.stale);
    h_free(&h);
}

/* The program completes while a key still sleeps: the key stops, its timer goes. */
static void ending_stops_keys_under_way(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    call(&h, T0 + 1, "nap", "{\"sleep\": \"1h\"}", false);
    json_t *out = parse_json("42");
    h_feed_reloaded(
        &h, (struct engine_input){
                .kind = ENGINE_IN_COMPLETE, .now_ms = T0 + 2, .output = out, .retry_after_ms = -1});
    json_decref(out);
    assert_int_equal(h.st.status, ENGINE_EXEC_COMPLETED);
    assert_string_equal(status_of(&h, "nap"), "skipped");
    assert_true(h.fx.cancel_tasks);
    h_feed(&h, in_timer(at(&h, "nap"), T0 + 3600001));
    assert_true(h.fx.stale);
    h_free(&h);
}

/* A key that failed for good (a wait's timeout) runs again after the execution's retry, with
 * the request it was created with; completed keys stay completed (replays stay stale). */
static void retry_runs_failed_keys_again(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    call(&h, T0 + 1, "charge", "{\"output\": {\"paid\": true}}", false);
    call(&h, T0 + 2, "approval", "{\"wait\": {\"signal\": \"approve\", \"timeout\": \"1s\"}}",
         true);
    h_feed_reloaded(&h, in_wait_timeout(at(&h, "approval"), T0 + 1002));
    assert_string_equal(status_of(&h, "approval"), "failed");
    assert_int_equal(h.st.status, ENGINE_EXEC_RUNNING); /* the program decides */
    json_t *err = parse_json("{\"type\": \"NotApproved\"}");
    h_feed_reloaded(
        &h, (struct engine_input){
                .kind = ENGINE_IN_FAIL, .now_ms = T0 + 1003, .error = err, .retry_after_ms = -1});
    json_decref(err);
    assert_int_equal(h.st.status, ENGINE_EXEC_FAILED);
    h_feed_reloaded(&h, in_retry(T0 + 2000));
    assert_int_equal(h.st.status, ENGINE_EXEC_RUNNING);
    assert_string_equal(status_of(&h, "approval"), "pending");
    assert_string_equal(status_of(&h, "charge"), "completed");
    assert_null(ctx_error_of(&h, "approval"));
    call(&h, T0 + 2001, "charge", "{\"output\": {\"paid\": true}}", true);
    assert_true(h.fx.stale);
    call(&h, T0 + 2002, "approval", "{\"wait\": {\"signal\": \"approve\", \"timeout\": \"1s\"}}",
         true);
    assert_false(h.fx.stale);
    assert_string_equal(status_of(&h, "approval"), "waiting");
    assert_int_equal(h.st.steps[at(&h, "approval")].position, 1);
    assert_int_equal(h.st.next_position, 2);
    h_free(&h);
}

/* Another request for a journaled key is journaled once, and only while running. */
static void a_differing_request_is_journaled_once(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    call(&h, T0 + 1, "charge", "{\"output\": 1}", false);
    json_t *other = parse_json("{\"output\": 2}");
    h_feed(&h, in_differs(T0 + 2, "nope", other));
    assert_true(h.fx.stale);
    h_feed_reloaded(&h, in_differs(T0 + 2, "charge", other));
    expect_pevents(&h, "[[\"request_differs\", \"charge\", 0]]");
    expect_json(event_data(&h, "request_differs"), "{\"request\": {\"output\": 2}}", "data");
    assert_true(h.st.steps[at(&h, "charge")].call->differs);
    h_feed_reloaded(&h, in_differs(T0 + 3, "charge", other));
    assert_true(h.fx.stale);
    json_decref(other);
    h_free(&h);
}

/* Step calls are a code execution's: for a definition's execution, and for a request that is
 * not a valid step call, they are stale. */
static void what_does_not_fit_is_stale(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"sleep\": \"1s\"}]}", "{}");
    h_feed(&h, in_start(T0));
    call(&h, T0 + 1, "x", "{\"output\": 1}", false);
    assert_true(h.fx.stale);
    h_free(&h);
    started(&h);
    call(&h, T0 + 1, "x", "{\"output\": 1, \"sleep\": \"1s\"}", false);
    assert_true(h.fx.stale);
    call(&h, T0 + 1, "a/b", "{\"output\": 1}", false);
    assert_true(h.fx.stale);
    call(&h, T0 + 1, "", "{\"output\": 1}", false);
    assert_true(h.fx.stale);
    h_free(&h);
}

/* An activity key whose webhook answered, then a cancel its program never answers: the
 * deadline starts the saga, which compensates the key (its compensate call's task, keyed by
 * the key's path), and the execution ends cancelled once it completed. */
static void the_deadline_compensates_keys(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    call(&h, T0 + 1, "charge",
         "{\"activity\": {\"url\": \"http://pay/charge\"}, \"compensate\": {\"url\": "
         "\"http://pay/refund\", \"input\": {\"why\": \"${cancel}\"}}}",
         true);
    expect_ptasks(&h, "[[\"activity\", \"charge\", 1, 1]]");
    h_feed_reloaded(&h, in_started(at(&h, "charge"), 1, T0 + 2));
    json_t *out = parse_json("{\"id\": \"ch_1\"}");
    h_feed_reloaded(&h, in_succeeded(at(&h, "charge"), 1, T0 + 3, out));
    json_decref(out);
    assert_string_equal(status_of(&h, "charge"), "completed");
    h_feed_reloaded(&h, in_cancel(T0 + 4));
    h_feed_reloaded(&h, (struct engine_input){.kind = ENGINE_IN_CANCEL_DEADLINE,
                                              .now_ms = T0 + 4 + ENGINE_CODE_CANCEL_DEADLINE_MS,
                                              .retry_after_ms = -1});
    assert_int_equal(h.st.status, ENGINE_EXEC_RUNNING);
    assert_true(h.st.compensating);
    assert_int_equal(h.fx.n_tasks, 1);
    assert_int_equal(h.fx.tasks[0].kind, ENGINE_TASK_COMPENSATION);
    /* The compensation's input is the body's, as sent. */
    expect_json(json_object_get(h.fx.tasks[0].payload, "input"), "{\"why\": \"${cancel}\"}",
                "compensation input");
    size_t i = at(&h, "charge");
    int64_t now = T0 + 5 + ENGINE_CODE_CANCEL_DEADLINE_MS;
    h_feed_reloaded(&h, (struct engine_input){.kind = ENGINE_IN_ATTEMPT_STARTED,
                                              .now_ms = now,
                                              .step = i,
                                              .attempt = 1,
                                              .compensation = true,
                                              .retry_after_ms = -1});
    h_feed_reloaded(&h, (struct engine_input){.kind = ENGINE_IN_ATTEMPT_SUCCEEDED,
                                              .now_ms = now + 1,
                                              .step = i,
                                              .attempt = 1,
                                              .compensation = true,
                                              .output = json_null(),
                                              .retry_after_ms = -1});
    assert_int_equal(h.st.status, ENGINE_EXEC_CANCELLED);
    assert_string_equal(status_of(&h, "charge"), "compensated");
    h_free(&h);
}

/* The state rebuilt as the runner rebuilds it from rows (the header, then each instance's own
 * JSON with a key's request put back beside it) is the same state. */
static void rows_rebuild_the_state(void **state)
{
    (void)state;
    struct h h;
    started(&h);
    call(&h, T0 + 1, "one", "{\"output\": 1}", false);
    call(&h, T0 + 2, "nap", "{\"sleep\": \"1h\"}", false);
    json_t *header = engine_state_header_to_json(&h.st);
    struct engine_state back;
    assert_int_equal(engine_state_begin(&back, header, h.d), 0);
    for (size_t i = 0; i < h.st.n_steps; i++) {
        json_t *own = engine_step_to_json(&h.st, i);
        if (h.st.steps[i].call)
            json_object_set(own, "request", h.st.steps[i].call->request);
        if (engine_state_put(&back, h.st.steps[i].path, own) < 0)
            fail_msg("%s does not put back: %s", h.st.steps[i].path, json_dumps(own, 0));
        json_decref(own);
    }
    assert_int_equal(engine_state_ready(&back), 0);
    struct engine_plan *p = engine_plan_build(h.d);
    assert_true(engine_state_bind(p, &back));
    json_t *a = engine_state_to_json(&h.st), *b = engine_state_to_json(&back);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    json_decref(header);
    engine_state_free(&back);
    engine_plan_free(p);
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(output_is_journaled_once_and_literal),
        cmocka_unit_test(keys_keep_first_call_order),
        cmocka_unit_test(sleeps_run_on_timers),
        cmocka_unit_test(waits_take_signals),
        cmocka_unit_test(cancel_stops_keys),
        cmocka_unit_test(terminate_skips_keys),
        cmocka_unit_test(ending_stops_keys_under_way),
        cmocka_unit_test(retry_runs_failed_keys_again),
        cmocka_unit_test(a_differing_request_is_journaled_once),
        cmocka_unit_test(what_does_not_fit_is_stale),
        cmocka_unit_test(rows_rebuild_the_state),
        cmocka_unit_test(the_deadline_compensates_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
