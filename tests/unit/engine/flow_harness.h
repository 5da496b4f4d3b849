/* Helpers for the tests of steps that hold steps (test_flow*.c): instances named by path
 * instead of index, inputs fed by path, and views of the state and effects keyed by path, so a
 * test reads like the tree it drives. Built on harness.h (every feed still checks its
 * invariants). */
#ifndef KEEL_TESTS_ENGINE_FLOW_HARNESS_H
#define KEEL_TESTS_ENGINE_FLOW_HARNESS_H

#include "harness.h"

#include "engine/plan.h"

/* The index of the instance at path, failing the test when there is none. */
UNUSED static size_t at(struct h *h, const char *path)
{
    long i = engine_state_find(&h->st, path);
    if (i < 0)
        fail_msg("no instance %s", path);
    return (size_t)i;
}

UNUSED static const char *status_of(struct h *h, const char *path)
{
    return engine_step_status_name(h->st.steps[at(h, path)].status);
}

UNUSED static bool exists(struct h *h, const char *path)
{
    return engine_state_find(&h->st, path) >= 0;
}

UNUSED static json_t *ctx_output(struct h *h, const char *path)
{
    return json_object_get(json_object_get(json_object_get(h->ctx, "steps"), path), "output");
}

UNUSED static json_t *ctx_error_of(struct h *h, const char *path)
{
    return json_object_get(json_object_get(json_object_get(h->ctx, "steps"), path), "error");
}

UNUSED static const char *path_of(const struct h *h, long i)
{
    return i >= 0 && (size_t)i < h->st.n_steps ? h->st.steps[i].path : "-";
}

/* The status readers see for the instance at path (engine_step_public_status), with the
 * instances bound to a plan of the definition for the call. */
UNUSED static const char *public_status(struct h *h, const char *path)
{
    struct engine_plan *p = engine_plan_build(h->d);
    assert_non_null(p);
    assert_true(engine_state_bind(p, &h->st));
    const char *s = engine_step_public_status(h->d, &h->st, at(h, path));
    for (size_t i = 0; i < h->st.n_steps; i++)
        h->st.steps[i].node = NULL;
    engine_plan_free(p);
    return s;
}

/* {"<path>": "<status>", ...} of every instance. New reference. */
UNUSED static json_t *statuses_json(const struct h *h)
{
    json_t *o = json_object();
    for (size_t i = 0; i < h->st.n_steps; i++)
        json_object_set_new(o, h->st.steps[i].path,
                            json_string(engine_step_status_name(h->st.steps[i].status)));
    return o;
}

#define expect_statuses(h, text)                                                                   \
    do {                                                                                           \
        json_t *st_ = statuses_json(h);                                                            \
        expect_json(st_, text, "statuses");                                                        \
        json_decref(st_);                                                                          \
    } while (0)

/* The events as [[type, path, attempt], ...] ("-" for the execution). New reference. */
UNUSED static json_t *events_by_path(const struct h *h)
{
    json_t *a = json_array();
    for (size_t i = 0; i < h->fx.n_events; i++) {
        const struct engine_event *e = &h->fx.events[i];
        json_array_append_new(a, json_pack("[s, s, i]", e->type, path_of(h, e->step), e->attempt));
    }
    return a;
}

#define expect_pevents(h, text)                                                                    \
    do {                                                                                           \
        json_t *ev_ = events_by_path(h);                                                           \
        expect_json(ev_, text, "events");                                                          \
        json_decref(ev_);                                                                          \
    } while (0)

/* The data of the first event of this type in the last effects (NULL when none). Borrowed. */
UNUSED static json_t *event_data(const struct h *h, const char *type)
{
    for (size_t i = 0; i < h->fx.n_events; i++)
        if (strcmp(h->fx.events[i].type, type) == 0)
            return h->fx.events[i].data;
    return NULL;
}

/* The tasks as [[kind, path, attempt, due - T0], ...]. New reference. */
UNUSED static json_t *tasks_by_path(const struct h *h)
{
    json_t *a = json_array();
    for (size_t i = 0; i < h->fx.n_tasks; i++) {
        const struct engine_task *t = &h->fx.tasks[i];
        json_array_append_new(a, json_pack("[s, s, i, I]", engine_task_kind_name(t->kind),
                                           path_of(h, (long)t->step), t->attempt,
                                           (json_int_t)(t->due_at_ms - T0)));
    }
    return a;
}

#define expect_ptasks(h, text)                                                                     \
    do {                                                                                           \
        json_t *tk_ = tasks_by_path(h);                                                            \
        expect_json(tk_, text, "tasks");                                                           \
        json_decref(tk_);                                                                          \
    } while (0)

/* The precise task cancels as [[kind, path], ...]. New reference. */
UNUSED static json_t *cancels_by_path(const struct h *h)
{
    json_t *a = json_array();
    for (size_t i = 0; i < h->fx.n_cancels; i++)
        json_array_append_new(a, json_pack("[s, s]", engine_task_kind_name(h->fx.cancels[i].kind),
                                           path_of(h, (long)h->fx.cancels[i].step)));
    return a;
}

#define expect_pcancels(h, text)                                                                   \
    do {                                                                                           \
        json_t *cn_ = cancels_by_path(h);                                                          \
        expect_json(cn_, text, "task cancels");                                                    \
        json_decref(cn_);                                                                          \
    } while (0)

/* ---- inputs by path ------------------------------------------------------------------------- */

/* The attempt of path that the runner would send now (the step's current attempt). */
UNUSED static int attempt_of(struct h *h, const char *path)
{
    return h->st.steps[at(h, path)].attempt;
}

UNUSED static void p_started(struct h *h, const char *path, int64_t now)
{
    h_feed(h, in_started(at(h, path), attempt_of(h, path), now));
    assert_false(h->fx.stale);
}

UNUSED static void p_succeed(struct h *h, const char *path, int64_t now, const char *output)
{
    h_succeed(h, at(h, path), attempt_of(h, path), now, output);
    assert_false(h->fx.stale);
}

UNUSED static void p_fail(struct h *h, const char *path, int64_t now, const char *error)
{
    h_fail(h, at(h, path), attempt_of(h, path), now, error);
    assert_false(h->fx.stale);
}

/* The attempt is sent and succeeds. */
UNUSED static void p_run(struct h *h, const char *path, int64_t now, const char *output)
{
    p_started(h, path, now);
    p_succeed(h, path, now, output);
}

/* The attempt is sent and fails with error. */
UNUSED static void p_run_fail(struct h *h, const char *path, int64_t now, const char *error)
{
    p_started(h, path, now);
    p_fail(h, path, now, error);
}

/* The pending compensation of path runs and completes. */
UNUSED static void p_compensate(struct h *h, const char *path, int64_t now)
{
    size_t i = at(h, path);
    int a = h->st.steps[i].comp.attempt;
    h_feed(h, comp(in_started(i, a, now)));
    assert_false(h->fx.stale);
    json_t *out = json_null();
    h_feed(h, comp(in_succeeded(i, a, now, out)));
    assert_false(h->fx.stale);
}

/* The step whose compensation the saga runs now, or NULL. */
UNUSED static const char *compensating(const struct h *h)
{
    for (size_t i = 0; i < h->st.n_steps; i++)
        if (h->st.steps[i].comp.status == ENGINE_COMP_SCHEDULED ||
            h->st.steps[i].comp.status == ENGINE_COMP_RUNNING)
            return h->st.steps[i].path;
    return NULL;
}

/* Feeds in and checks that it was stale (the harness checks that it changed nothing). */
UNUSED static void expect_stale(struct h *h, struct engine_input in)
{
    h_feed(h, in);
    assert_true(h->fx.stale);
}

/* Like h_feed, but with a plan the test built (its max_items set, say). */
UNUSED static void h_feed_plan(struct h *h, const struct engine_plan *p, struct engine_input in)
{
    engine_effects_free(&h->fx);
    json_t *s = engine_state_to_json(&h->st);
    char *state_before = dump(s);
    json_decref(s);
    char *ctx_before = dump(h->ctx);
    assert_int_equal(engine_advance_plan(p, &h->st, h->ctx, &in, &h->fx), 0);
    check_invariants(h, in.kind, state_before, ctx_before);
    free(state_before);
    free(ctx_before);
}

#endif
