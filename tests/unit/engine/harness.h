/* Shared helpers for the engine's unit tests: a definition, a state and a context driven input by
 * input, with expectations written as JSON text so each test reads like the history it checks.
 *
 * Every h_feed also checks what must hold after any input: the state survives a JSON round
 * trip, changed_steps is ascending without repeats, a stale input sets nothing else and changes
 * neither the state nor the context, and an ended execution says how it ended. */
#ifndef KEEL_TESTS_ENGINE_HARNESS_H
#define KEEL_TESTS_ENGINE_HARNESS_H

#include "defn/defn.h"
#include "engine/engine.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* 2026-01-01T00:00:00.000Z: every test's time starts here. */
#define T0   INT64_C(1767225600000)
#define SEC  INT64_C(1000)
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

#define UNUSED __attribute__((unused))

struct h {
    struct defn *d;
    struct engine_state st;
    json_t *ctx;
    struct engine_effects fx;
};

UNUSED static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!j)
        fail_msg("bad JSON in test (%s at %d): %s", e.text, e.position, text);
    return j;
}

UNUSED static char *dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    return s ? s : strdup("(null)");
}

/* Asserts that actual equals the JSON in expected_text, printing both when not. */
UNUSED static void expect_json_at(const json_t *actual, const char *expected_text, const char *what,
                                  const char *file, int line)
{
    json_t *expected = parse_json(expected_text);
    if (!actual || !json_equal(actual, expected)) {
        char *a = dump(actual), *e = dump(expected);
        print_error("%s:%d: %s differ\n  expected: %s\n  actual:   %s\n", file, line, what, e, a);
        free(a);
        free(e);
        json_decref(expected);
        _fail(file, line);
    }
    json_decref(expected);
}
#define expect_json(actual, text, what) expect_json_at(actual, text, what, __FILE__, __LINE__)

UNUSED static struct defn *parse_defn(const char *text)
{
    json_t *doc = parse_json(text);
    struct defn *d = NULL;
    json_t *errors = NULL;
    if (defn_parse(doc, &d, &errors) != 0) {
        char *e = dump(errors);
        print_error("definition rejected: %s\n", e);
        free(e);
        json_decref(errors);
        json_decref(doc);
        fail();
    }
    json_decref(doc);
    return d;
}

UNUSED static void h_init(struct h *h, const char *defn_text, const char *input_text)
{
    memset(h, 0, sizeof *h);
    h->d = parse_defn(defn_text);
    engine_state_init(&h->st, h->d);
    h->ctx = json_pack("{s:o, s:{}, s:{s:s, s:s}}", "input", parse_json(input_text), "steps",
                       "execution", "id", "exec-1", "workflow", h->d->name);
}

/* A code execution (defn_code): no definition, driven by its program's calls. */
UNUSED static void h_init_code(struct h *h, const char *input_text)
{
    memset(h, 0, sizeof *h);
    h->d = (struct defn *)defn_code(); /* defn_free leaves it alone */
    engine_state_init(&h->st, h->d);
    h->ctx = json_pack("{s:o, s:{}, s:{s:s, s:s}}", "input", parse_json(input_text), "steps",
                       "execution", "id", "exec-1", "workflow", "order");
}

UNUSED static void h_free(struct h *h)
{
    engine_effects_free(&h->fx);
    engine_state_free(&h->st);
    json_decref(h->ctx);
    defn_free(h->d);
    memset(h, 0, sizeof *h);
}

/* The state as JSON with every time member made relative to T0, so expectations stay short. */
UNUSED static json_t *state_rel(const struct engine_state *st)
{
    json_t *j = engine_state_to_json(st);
    static const char *const times[] = {"scheduled_at", "started_at", "completed_at",
                                        "attempt_started_at"};
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(j, "steps"), i, s)
    {
        for (size_t k = 0; k < sizeof times / sizeof times[0]; k++) {
            json_t *v = json_object_get(s, times[k]);
            if (v)
                json_integer_set(v, json_integer_value(v) - T0);
        }
        json_t *v = json_object_get(json_object_get(s, "comp"), "started_at");
        if (v)
            json_integer_set(v, json_integer_value(v) - T0);
    }
    return j;
}

#define expect_state(h, text)                                                                      \
    do {                                                                                           \
        json_t *state_ = state_rel(&(h)->st);                                                      \
        expect_json(state_, text, "states");                                                       \
        json_decref(state_);                                                                       \
    } while (0)

/* The events as [[type, step, attempt, data], ...]. New reference. */
UNUSED static json_t *events_json(const struct engine_effects *fx)
{
    json_t *a = json_array();
    for (size_t i = 0; i < fx->n_events; i++) {
        const struct engine_event *e = &fx->events[i];
        json_array_append_new(
            a, json_pack("[s, I, i, O]", e->type, (json_int_t)e->step, e->attempt, e->data));
    }
    return a;
}

/* The tasks as [[kind, step, attempt, due - T0, payload], ...]. New reference. */
UNUSED static json_t *tasks_json(const struct engine_effects *fx)
{
    json_t *a = json_array();
    for (size_t i = 0; i < fx->n_tasks; i++) {
        const struct engine_task *t = &fx->tasks[i];
        json_array_append_new(a, json_pack("[s, I, i, I, O?]", engine_task_kind_name(t->kind),
                                           (json_int_t)t->step, t->attempt,
                                           (json_int_t)(t->due_at_ms - T0), t->payload));
    }
    return a;
}

/* The precise task cancels as [[kind, step], ...]. New reference. */
UNUSED static json_t *cancels_json(const struct engine_effects *fx)
{
    json_t *a = json_array();
    for (size_t i = 0; i < fx->n_cancels; i++)
        json_array_append_new(a, json_pack("[s, I]", engine_task_kind_name(fx->cancels[i].kind),
                                           (json_int_t)fx->cancels[i].step));
    return a;
}

UNUSED static json_t *changed_json(const struct engine_effects *fx)
{
    json_t *a = json_array();
    for (size_t i = 0; i < fx->n_changed_steps; i++)
        json_array_append_new(a, json_integer((json_int_t)fx->changed_steps[i]));
    return a;
}

#define expect_events(h, text)                                                                     \
    do {                                                                                           \
        json_t *ev_ = events_json(&(h)->fx);                                                       \
        expect_json(ev_, text, "events");                                                          \
        json_decref(ev_);                                                                          \
    } while (0)

#define expect_tasks(h, text)                                                                      \
    do {                                                                                           \
        json_t *tasks_ = tasks_json(&(h)->fx);                                                     \
        expect_json(tasks_, text, "tasks");                                                        \
        json_decref(tasks_);                                                                       \
    } while (0)

#define expect_changed(h, text)                                                                    \
    do {                                                                                           \
        json_t *ch_ = changed_json(&(h)->fx);                                                      \
        expect_json(ch_, text, "changed steps");                                                   \
        json_decref(ch_);                                                                          \
    } while (0)

#define expect_cancels(h, text)                                                                    \
    do {                                                                                           \
        json_t *cn_ = cancels_json(&(h)->fx);                                                      \
        expect_json(cn_, text, "task cancels");                                                    \
        json_decref(cn_);                                                                          \
    } while (0)

#define expect_ctx(h, text) expect_json((h)->ctx, text, "contexts")

/* The checks that hold after every input; see the top of this file. */
UNUSED static void check_invariants(struct h *h, enum engine_input_kind kind,
                                    const char *state_before, const char *ctx_before)
{
    const struct engine_effects *fx = &h->fx;
    char *state_after = NULL, *ctx_after = NULL;
    json_t *j = engine_state_to_json(&h->st);
    char *text = json_dumps(j, JSON_COMPACT);
    json_t *reparsed = parse_json(text);
    struct engine_state back;
    assert_int_equal(engine_state_from_json(reparsed, h->d, &back), 0);
    json_t *j2 = engine_state_to_json(&back);
    assert_true(json_equal(j, j2));
    engine_state_free(&back);
    json_decref(j2);
    json_decref(reparsed);
    free(text);
    json_decref(j);

    for (size_t i = 1; i < fx->n_changed_steps; i++)
        assert_true(fx->changed_steps[i - 1] < fx->changed_steps[i]);
    for (size_t i = 0; i < fx->n_changed_steps; i++)
        assert_true(fx->changed_steps[i] < h->st.n_steps);
    for (size_t i = 0; i < fx->n_events; i++) {
        assert_true(fx->events[i].step >= -1 && fx->events[i].step < (long)h->st.n_steps);
        assert_true(json_is_object(fx->events[i].data));
    }
    for (size_t i = 0; i < fx->n_tasks; i++) {
        assert_true(fx->tasks[i].step < h->st.n_steps);
        /* Tasks that send carry what to send; the others carry nothing. */
        assert_true((fx->tasks[i].payload != NULL) == engine_task_sends(fx->tasks[i].kind));
    }
    for (size_t i = 0; i < fx->n_cancels; i++)
        assert_true(fx->cancels[i].step < h->st.n_steps);
    for (size_t i = 0; i < fx->n_children; i++) {
        assert_true(fx->children[i].step < h->st.n_steps);
        assert_non_null(fx->children[i].id);
        assert_true(strlen(fx->children[i].id) <= ENGINE_CHILD_ID_MAX);
        assert_non_null(fx->children[i].input);
    }

    if (fx->stale) {
        assert_int_equal(fx->n_events, 0);
        assert_int_equal(fx->n_tasks, 0);
        assert_int_equal(fx->n_changed_steps, 0);
        assert_false(fx->ended);
        assert_false(fx->cancel_tasks);
        assert_null(fx->wants_signal);
        assert_null(fx->output);
        assert_null(fx->error);
        assert_int_equal(fx->n_cancels, 0);
        assert_int_equal(fx->n_children, 0);
        assert_int_equal(fx->n_child_stops, 0);
        assert_false(fx->clear_error);
        assert_true(fx->stale_ended == (h->st.status != ENGINE_EXEC_RUNNING));
        json_t *s = engine_state_to_json(&h->st);
        state_after = dump(s);
        json_decref(s);
        ctx_after = dump(h->ctx);
        assert_string_equal(state_before, state_after);
        assert_string_equal(ctx_before, ctx_after);
    } else {
        /* Heartbeats and resends are the inputs that apply without an event; a resend only
         * asks for its attempt to be sent again, changing nothing. */
        assert_true(fx->n_events > 0 || kind == ENGINE_IN_HEARTBEAT || kind == ENGINE_IN_RESEND);
        if (kind == ENGINE_IN_RESEND) {
            assert_int_equal(fx->n_tasks, 1);
            assert_int_equal(fx->n_changed_steps, 0);
            assert_int_equal(fx->n_cancels, 0);
            assert_false(fx->cancel_tasks);
            json_t *s = engine_state_to_json(&h->st);
            state_after = dump(s);
            json_decref(s);
            assert_string_equal(state_before, state_after);
        }
        assert_false(fx->stale_ended);
    }
    if (fx->ended) {
        assert_int_not_equal(h->st.status, ENGINE_EXEC_RUNNING);
        assert_true((fx->output != NULL) == (h->st.status == ENGINE_EXEC_COMPLETED));
        /* Failed always says why; cancelled does when compensations failed. */
        if (h->st.status == ENGINE_EXEC_FAILED)
            assert_non_null(fx->error);
        if (fx->error)
            assert_true(h->st.status == ENGINE_EXEC_FAILED ||
                        h->st.status == ENGINE_EXEC_CANCELLED);
    } else {
        if (!fx->stale)
            assert_int_equal(h->st.status, ENGINE_EXEC_RUNNING);
        assert_null(fx->output);
        assert_null(fx->error);
    }
    free(state_after);
    free(ctx_after);
}

/* Applies one input; the effects stay in h->fx until the next h_feed. */
UNUSED static void h_feed(struct h *h, struct engine_input in)
{
    engine_effects_free(&h->fx);
    json_t *s = engine_state_to_json(&h->st);
    char *state_before = dump(s);
    json_decref(s);
    char *ctx_before = dump(h->ctx);
    assert_int_equal(engine_advance(h->d, &h->st, h->ctx, &in, &h->fx), 0);
    check_invariants(h, in.kind, state_before, ctx_before);
    free(state_before);
    free(ctx_before);
}

/* ---- inputs ------------------------------------------------------------------------------ */

UNUSED static struct engine_input in_start(int64_t now)
{
    return (struct engine_input){.kind = ENGINE_IN_START, .now_ms = now, .retry_after_ms = -1};
}

UNUSED static struct engine_input in_started(size_t step, int attempt, int64_t now)
{
    return (struct engine_input){.kind = ENGINE_IN_ATTEMPT_STARTED,
                                 .now_ms = now,
                                 .step = step,
                                 .attempt = attempt,
                                 .retry_after_ms = -1};
}

UNUSED static struct engine_input in_resend(size_t step, int attempt, int64_t now)
{
    return (struct engine_input){.kind = ENGINE_IN_RESEND,
                                 .now_ms = now,
                                 .step = step,
                                 .attempt = attempt,
                                 .retry_after_ms = -1};
}

UNUSED static struct engine_input in_redelivered(size_t step, int attempt, int64_t now)
{
    struct engine_input in = in_started(step, attempt, now);
    in.redelivery = true;
    return in;
}

/* output is borrowed: keep it alive across the h_feed. */
UNUSED static struct engine_input in_succeeded(size_t step, int attempt, int64_t now,
                                               const json_t *output)
{
    return (struct engine_input){.kind = ENGINE_IN_ATTEMPT_SUCCEEDED,
                                 .now_ms = now,
                                 .step = step,
                                 .attempt = attempt,
                                 .output = output,
                                 .retry_after_ms = -1};
}

UNUSED static struct engine_input in_failed(size_t step, int attempt, int64_t now,
                                            const json_t *error)
{
    return (struct engine_input){.kind = ENGINE_IN_ATTEMPT_FAILED,
                                 .now_ms = now,
                                 .step = step,
                                 .attempt = attempt,
                                 .error = error,
                                 .retry_after_ms = -1};
}

UNUSED static struct engine_input in_timer(size_t step, int64_t now)
{
    return (struct engine_input){
        .kind = ENGINE_IN_TIMER_FIRED, .now_ms = now, .step = step, .retry_after_ms = -1};
}

UNUSED static struct engine_input in_signal(size_t step, int64_t now, const char *name,
                                            const json_t *payload)
{
    return (struct engine_input){.kind = ENGINE_IN_SIGNAL,
                                 .now_ms = now,
                                 .step = step,
                                 .signal = name,
                                 .payload = payload,
                                 .retry_after_ms = -1};
}

UNUSED static struct engine_input in_wait_timeout(size_t step, int64_t now)
{
    return (struct engine_input){
        .kind = ENGINE_IN_WAIT_TIMED_OUT, .now_ms = now, .step = step, .retry_after_ms = -1};
}

/* Like h_feed, but the state and context come back from their stored JSON text before the
 * input, as they do when the runner loads them from the database. */
UNUSED static void h_feed_reloaded(struct h *h, struct engine_input in)
{
    json_t *j = engine_state_to_json(&h->st);
    char *state_text = json_dumps(j, JSON_COMPACT);
    char *ctx_text = json_dumps(h->ctx, JSON_COMPACT);
    json_decref(j);
    engine_state_free(&h->st);
    json_decref(h->ctx);
    j = parse_json(state_text);
    assert_int_equal(engine_state_from_json(j, h->d, &h->st), 0);
    json_decref(j);
    h->ctx = parse_json(ctx_text);
    free(state_text);
    free(ctx_text);
    h_feed(h, in);
}

UNUSED static struct engine_input in_cancel(int64_t now)
{
    return (struct engine_input){.kind = ENGINE_IN_CANCEL, .now_ms = now, .retry_after_ms = -1};
}

UNUSED static struct engine_input in_terminate(int64_t now)
{
    return (struct engine_input){.kind = ENGINE_IN_TERMINATE, .now_ms = now, .retry_after_ms = -1};
}

UNUSED static struct engine_input in_retry(int64_t now)
{
    return (struct engine_input){.kind = ENGINE_IN_RETRY, .now_ms = now, .retry_after_ms = -1};
}

UNUSED static struct engine_input in_accepted(size_t step, int attempt, int64_t now)
{
    return (struct engine_input){.kind = ENGINE_IN_ATTEMPT_ACCEPTED,
                                 .now_ms = now,
                                 .step = step,
                                 .attempt = attempt,
                                 .retry_after_ms = -1};
}

UNUSED static struct engine_input in_heartbeat(size_t step, int attempt, int64_t now)
{
    return (struct engine_input){.kind = ENGINE_IN_HEARTBEAT,
                                 .now_ms = now,
                                 .step = step,
                                 .attempt = attempt,
                                 .retry_after_ms = -1};
}

UNUSED static struct engine_input in_heartbeat_timeout(size_t step, int attempt, int64_t now)
{
    return (struct engine_input){.kind = ENGINE_IN_HEARTBEAT_TIMED_OUT,
                                 .now_ms = now,
                                 .step = step,
                                 .attempt = attempt,
                                 .retry_after_ms = -1};
}

UNUSED static struct engine_input in_attempt_timeout(size_t step, int attempt, int64_t now)
{
    return (struct engine_input){.kind = ENGINE_IN_ATTEMPT_TIMED_OUT,
                                 .now_ms = now,
                                 .step = step,
                                 .attempt = attempt,
                                 .retry_after_ms = -1};
}

/* The same input about the step's compensation instead of its own attempt. */
UNUSED static struct engine_input comp(struct engine_input in)
{
    in.compensation = true;
    return in;
}

/* Feeds a JSON output given as text. */
UNUSED static void h_succeed(struct h *h, size_t step, int attempt, int64_t now,
                             const char *output_text)
{
    json_t *out = parse_json(output_text);
    h_feed(h, in_succeeded(step, attempt, now, out));
    json_decref(out);
}

UNUSED static void h_fail(struct h *h, size_t step, int attempt, int64_t now,
                          const char *error_text)
{
    json_t *err = parse_json(error_text);
    h_feed(h, in_failed(step, attempt, now, err));
    json_decref(err);
}

#endif
