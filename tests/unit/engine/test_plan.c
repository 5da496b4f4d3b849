/* The plan tree (shape, parents, sibling order, paths) and the control flow through it:
 * child_ended on a sequence, reached through engine.c's statics. */
#include "harness.h"

#include "engine/engine.c"
#include "engine/plan.h"

static const char *const FOUR_KINDS =
    "{\"name\": \"orders\", \"steps\": ["
    " {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/charge\"}},"
    " {\"id\": \"pause\", \"sleep\": \"5s\"},"
    " {\"id\": \"until\", \"sleep_until\": \"2030-01-01T00:00:00Z\"},"
    " {\"id\": \"approve\", \"wait\": {\"signal\": \"ok\"}}]}";

/* ---- the tree ---------------------------------------------------------------------------- */

static void shape_parents_and_order(void **state)
{
    (void)state;
    struct defn *d = parse_defn(FOUR_KINDS);
    struct engine_plan *p = engine_plan_build(d);
    assert_non_null(p);
    assert_ptr_equal(p->d, d);
    assert_int_equal(p->n_nodes, 5);

    const struct engine_plan_node *root = p->root;
    assert_int_equal(root->kind, ENGINE_NODE_SEQUENCE);
    assert_true(engine_node_is_container(root->kind));
    assert_null(root->parent);
    assert_null(root->id);
    assert_null(root->step);
    assert_int_equal(root->n_children, 4);

    static const enum engine_node_kind kinds[] = {ENGINE_NODE_ACTIVITY, ENGINE_NODE_SLEEP,
                                                  ENGINE_NODE_SLEEP_UNTIL, ENGINE_NODE_WAIT};
    static const char *const names[] = {"activity", "sleep", "sleep_until", "wait"};
    for (size_t i = 0; i < 4; i++) {
        const struct engine_plan_node *n = &root->children[i];
        assert_int_equal(n->kind, kinds[i]);
        assert_string_equal(engine_node_kind_name(n->kind), names[i]);
        assert_false(engine_node_is_container(n->kind));
        assert_ptr_equal(n->parent, root);
        assert_int_equal(n->index, i);
        assert_ptr_equal(n->step, &d->steps[i]);
        assert_string_equal(n->id, d->steps[i].id);
        assert_int_equal(n->step_index, i);
        assert_int_equal(n->n_children, 0);
        assert_null(n->children);
        assert_ptr_equal(engine_plan_step_node(p, i), n);
    }
    assert_null(engine_plan_step_node(p, 4));
    assert_null(engine_plan_step_node(NULL, 0));
    assert_string_equal(engine_node_kind_name(ENGINE_NODE_SEQUENCE), "sequence");

    engine_plan_free(p);
    defn_free(d);
}

static void paths(void **state)
{
    (void)state;
    struct defn *d = parse_defn(FOUR_KINDS);
    struct engine_plan *p = engine_plan_build(d);
    assert_non_null(p);

    static const char *const ids[] = {"charge", "pause", "until", "approve"};
    for (size_t i = 0; i < 4; i++) {
        char *path = engine_plan_step_path(p, i);
        assert_string_equal(path, ids[i]);
        free(path);
        path = engine_plan_path(engine_plan_step_node(p, i), NULL, 0);
        assert_string_equal(path, ids[i]);
        free(path);
    }
    char *path = engine_plan_path(p->root, NULL, 0);
    assert_string_equal(path, "");
    free(path);

    /* No loop encloses a step yet: loop indexes are a caller's mistake. */
    size_t idx[] = {3};
    assert_null(engine_plan_path(engine_plan_step_node(p, 0), idx, 1));
    assert_null(engine_plan_path(NULL, NULL, 0));
    assert_null(engine_plan_step_path(p, 4));

    engine_plan_free(p);
    defn_free(d);
}

/* Hand-built nodes show how segments join below the root: a step adds its id, a branch its
 * name, so a step in a parallel's branch is "notify/email/send". */
static void nested_path_segments(void **state)
{
    (void)state;
    struct engine_plan_node root = {.kind = ENGINE_NODE_SEQUENCE};
    struct engine_plan_node notify = {
        .kind = ENGINE_NODE_PARALLEL, .id = "notify", .parent = &root};
    struct engine_plan_node email = {
        .kind = ENGINE_NODE_SEQUENCE, .branch = "email", .parent = &notify};
    struct engine_plan_node send = {.kind = ENGINE_NODE_ACTIVITY, .id = "send", .parent = &email};
    char *path = engine_plan_path(&send, NULL, 0);
    assert_string_equal(path, "notify/email/send");
    free(path);
}

static void build_refuses(void **state)
{
    (void)state;
    assert_null(engine_plan_build(NULL));
}

/* ---- child_ended on a sequence ------------------------------------------------------------- */

/* One engine_advance call's worth of context around h, so the control-flow statics can be
 * called directly. */
struct fixture {
    struct h h;
    struct engine_plan *p;
    struct engine_input in;
    struct run r;
};

static void fixture_init(struct fixture *f, const char *defn_text)
{
    memset(f, 0, sizeof *f);
    h_init(&f->h, defn_text, "{}");
    f->p = engine_plan_build(f->h.d);
    assert_non_null(f->p);
    f->in = (struct engine_input){.kind = ENGINE_IN_START, .now_ms = T0};
    f->r = (struct run){.p = f->p,
                        .d = f->h.d,
                        .st = &f->h.st,
                        .ctx = f->h.ctx,
                        .in = &f->in,
                        .fx = &f->h.fx,
                        .now = T0,
                        .retired = json_array()};
    assert_true(bind(f->p, &f->h.st));
}

/* Clears the effects between calls, as a new engine_advance would. */
static void fixture_next(struct fixture *f)
{
    engine_effects_free(&f->h.fx);
    f->r.cap_events = f->r.cap_tasks = f->r.cap_cancels = 0;
    if (f->r.changed)
        memset(f->r.changed, 0, f->r.cap_changed * sizeof *f->r.changed);
}

static void fixture_free(struct fixture *f)
{
    free(f->r.changed);
    json_decref(f->r.scope);
    json_decref(f->r.retired);
    engine_plan_free(f->p);
    h_free(&f->h);
}

static const char *const TWO_SLEEPS = "{\"name\": \"naps\", \"steps\": ["
                                      " {\"id\": \"a\", \"sleep\": \"1s\"},"
                                      " {\"id\": \"b\", \"sleep\": \"2s\"}]}";

static void sequence_enters_next_then_completes(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, TWO_SLEEPS);
    enter_node(&f.r, 0);
    assert_int_equal(f.h.st.current, 0);
    assert_true(instance_active(&f.r, 0));
    assert_false(instance_active(&f.r, 1));
    expect_events(&f.h, "[[\"step_scheduled\", 0, 0, {\"kind\": \"sleep\"}],"
                        " [\"timer_started\", 0, 0, {\"due_at\": \"2026-01-01T00:00:01.000Z\"}]]");

    /* The first child ended: the sequence enters the second. */
    fixture_next(&f);
    f.h.st.steps[0].status = ENGINE_STEP_COMPLETED;
    node_ended(&f.r, 0, ENGINE_OUTCOME_COMPLETED);
    assert_int_equal(f.h.st.current, 1);
    assert_true(instance_active(&f.r, 1));
    assert_int_equal(f.h.st.status, ENGINE_EXEC_RUNNING);
    expect_events(&f.h, "[[\"step_scheduled\", 1, 0, {\"kind\": \"sleep\"}],"
                        " [\"timer_started\", 1, 0, {\"due_at\": \"2026-01-01T00:00:02.000Z\"}]]");
    expect_tasks(&f.h, "[[\"timer\", 1, 0, 2000, null]]");

    /* The last child ended: the root sequence ends, and with it the execution. */
    fixture_next(&f);
    f.h.st.steps[1].status = ENGINE_STEP_COMPLETED;
    node_ended(&f.r, 1, ENGINE_OUTCOME_COMPLETED);
    assert_int_equal(f.h.st.status, ENGINE_EXEC_COMPLETED);
    assert_int_equal(f.h.st.current, 2);
    assert_false(instance_active(&f.r, 1));
    assert_true(f.h.fx.ended);
    expect_events(&f.h, "[[\"execution_completed\", -1, 0, {\"output\": null}]]");

    fixture_free(&f);
}

static void sequence_failure_starts_saga(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, TWO_SLEEPS);
    enter_node(&f.r, 0);
    fixture_next(&f);
    /* fail_node would have put the error in the context; the saga's end reads it from there. */
    f.h.st.steps[0].status = ENGINE_STEP_FAILED;
    json_object_set_new(json_object_get(json_object_get(f.h.ctx, "steps"), "a"), "error",
                        json_pack("{s:s, s:s, s:s}", "type", "boom", "message", "m", "step", "a"));
    node_ended(&f.r, 0, ENGINE_OUTCOME_FAILED);
    /* The next child is never entered: it is skipped, and the execution fails. */
    assert_int_equal(f.h.st.current, 0);
    assert_int_equal(f.h.st.steps[1].status, ENGINE_STEP_SKIPPED);
    assert_int_equal(f.h.st.status, ENGINE_EXEC_FAILED);
    assert_true(f.h.fx.ended);
    expect_events(&f.h,
                  "[[\"execution_failed\", -1, 0,"
                  " {\"error\": {\"type\": \"boom\", \"message\": \"m\", \"step\": \"a\"}}]]");

    fixture_free(&f);
}

static void sequence_completed_child_with_cancel_requested_ends_cancelled(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, TWO_SLEEPS);
    enter_node(&f.r, 0);
    fixture_next(&f);
    f.h.st.cancel_requested = true;
    f.h.st.steps[0].status = ENGINE_STEP_COMPLETED;
    node_ended(&f.r, 0, ENGINE_OUTCOME_COMPLETED);
    /* A cancel waited for this safe point: no next child, the saga ends the execution. */
    assert_int_equal(f.h.st.steps[1].status, ENGINE_STEP_SKIPPED);
    assert_int_equal(f.h.st.status, ENGINE_EXEC_CANCELLED);
    expect_events(&f.h, "[[\"execution_cancelled\", -1, 0, {\"error\": null}]]");
    expect_tasks(&f.h, "[]");

    fixture_free(&f);
}

/* Through engine_advance_plan: one plan serves every call, and gives what engine_advance gives. */
static void advance_with_a_built_plan(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, TWO_SLEEPS, "{}");
    struct engine_plan *p = engine_plan_build(h.d);
    assert_non_null(p);

    struct engine_input in = {.kind = ENGINE_IN_START, .now_ms = T0};
    assert_int_equal(engine_advance_plan(p, &h.st, h.ctx, &in, &h.fx), 0);
    expect_events(&h, "[[\"execution_started\", -1, 0, {}],"
                      " [\"step_scheduled\", 0, 0, {\"kind\": \"sleep\"}],"
                      " [\"timer_started\", 0, 0, {\"due_at\": \"2026-01-01T00:00:01.000Z\"}]]");
    engine_effects_free(&h.fx);

    in = (struct engine_input){.kind = ENGINE_IN_TIMER_FIRED, .step = 0, .now_ms = T0 + SEC};
    assert_int_equal(engine_advance_plan(p, &h.st, h.ctx, &in, &h.fx), 0);
    expect_events(&h, "[[\"timer_fired\", 0, 0, {}],"
                      " [\"step_completed\", 0, 0, {\"output\": null}],"
                      " [\"step_scheduled\", 1, 0, {\"kind\": \"sleep\"}],"
                      " [\"timer_started\", 1, 0, {\"due_at\": \"2026-01-01T00:00:03.000Z\"}]]");
    engine_effects_free(&h.fx);

    assert_int_equal(engine_advance_plan(NULL, &h.st, h.ctx, &in, &h.fx), -1);
    engine_plan_free(p);
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shape_parents_and_order),
        cmocka_unit_test(paths),
        cmocka_unit_test(nested_path_segments),
        cmocka_unit_test(build_refuses),
        cmocka_unit_test(sequence_enters_next_then_completes),
        cmocka_unit_test(sequence_failure_starts_saga),
        cmocka_unit_test(sequence_completed_child_with_cancel_requested_ends_cancelled),
        cmocka_unit_test(advance_with_a_built_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
