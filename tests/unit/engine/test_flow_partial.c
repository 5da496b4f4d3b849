/* A partial state, as the runner keeps it, behaves exactly like a whole one. Each script runs two
 * ways, input by input:
 *
 *   whole   the state and context stay in memory with every instance (engine_advance_plan
 *           without a loader), as the other flow tests run them;
 *   stored  a store keeps what the runner's tables keep: the header, and per instance path its
 *           own JSON (engine_step_to_json), a for_each's items (written once) and its output
 *           and error. Before each input a new state is built from the rows the runner's first
 *           read brings (STMT_EXEC_LOCKED_READ: every top-level row, the input's instance and its
 *           ancestors, and their children except a for_each's iterations), with a new context
 *           holding only those rows' results, and a loader over the store for the rest. After
 *           it, the rows the runner would write (the changed steps and every instance whose own
 *           JSON changed or is new) go back to the store, with the header.
 *
 * After every input the effects of both ways must agree (instances named by path, since indexes
 * differ: nested instances are appended in load order), and the store must hold what the whole
 * state holds; at the end every row is loaded into one more state and compared per path. */
#include "flow_harness.h"

/* ---- the store ------------------------------------------------------------------------------ */

struct store {
    const struct defn *d;
    json_t *input;  /* the execution's input */
    json_t *header; /* engine_state_header_to_json; NULL until the first write */
    json_t *rows;   /* path -> {"engine", "output", "error", "items", "top", "depth", "position",
                       "iteration"} */
    json_t *loaded; /* path -> its own JSON as read, during one input */
    /* What the loader was asked, over the whole script. */
    int n_load, n_load_all, n_item;
    json_t *asked;  /* {path: true} asked of load */
    json_t *misses; /* {path: true} asked of load, never stored */
};

/* The path minus its last segment (caller frees), or NULL at the top level. */
static char *parent_path(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? strndup(path, (size_t)(slash - path)) : NULL;
}

/* Adds path and each of its prefixes to set ({path: true}). */
static void add_with_ancestors(json_t *set, const char *path)
{
    for (const char *c = path;; c++) {
        if (*c == '/' || *c == '\0') {
            char *prefix = strndup(path, (size_t)(c - path));
            json_object_set_new(set, prefix, json_true());
            free(prefix);
        }
        if (*c == '\0')
            break;
    }
}

struct row_ref {
    const char *path;
    bool top;
    json_int_t depth, position;
};

/* The runner's order (STEP_ROWS_JSON): top-level rows first, then by depth, position, path. */
static int row_order(const void *x, const void *y)
{
    const struct row_ref *a = x, *b = y;
    if (a->top != b->top)
        return a->top ? -1 : 1;
    if (a->depth != b->depth)
        return a->depth < b->depth ? -1 : 1;
    if (a->position != b->position)
        return a->position < b->position ? -1 : 1;
    return strcmp(a->path, b->path);
}

/* Puts the row at path into st and its results into ctx, as the runner's put_rows does: the
 * output of a completed or compensated instance, and an error when there is one. */
static void put_row(struct store *s, struct engine_state *st, json_t *ctx, const char *path)
{
    const json_t *row = json_object_get(s->rows, path);
    const json_t *engine = json_object_get(row, "engine");
    if (engine_state_put(st, path, engine) < 0)
        fail_msg("the stored row %s does not read back", path);
    const char *status = json_string_value(json_object_get(engine, "status"));
    json_t *entry = json_object();
    if (!strcmp(status, "completed") || !strcmp(status, "compensated"))
        json_object_set(entry, "output", json_object_get(row, "output"));
    const json_t *err = json_object_get(row, "error");
    if (!json_is_null(err))
        json_object_set(entry, "error", (json_t *)err);
    json_object_set_new(json_object_get(ctx, "steps"), path, entry);
    json_object_set(s->loaded, path, (json_t *)engine);
}

/* Puts every stored row that want(path, row) accepts and st does not hold yet, in the runner's
 * order. */
static void put_rows_where(struct store *s, struct engine_state *st, json_t *ctx,
                           bool (*want)(const char *path, const json_t *row, const json_t *arg),
                           const json_t *arg)
{
    size_t n = json_object_size(s->rows), k = 0;
    struct row_ref *refs = calloc(n ? n : 1, sizeof *refs);
    const char *path;
    json_t *row;
    json_object_foreach(s->rows, path, row)
    {
        if (engine_state_find(st, path) >= 0 || !want(path, row, arg))
            continue;
        refs[k++] = (struct row_ref){path, json_is_true(json_object_get(row, "top")),
                                     json_integer_value(json_object_get(row, "depth")),
                                     json_integer_value(json_object_get(row, "position"))};
    }
    qsort(refs, k, sizeof *refs, row_order);
    for (size_t i = 0; i < k; i++)
        put_row(s, st, ctx, refs[i].path);
    free(refs);
}

static bool want_any(const char *path, const json_t *row, const json_t *arg)
{
    (void)path, (void)row, (void)arg;
    return true;
}

static bool want_listed(const char *path, const json_t *row, const json_t *set)
{
    (void)row;
    return json_object_get(set, path) != NULL;
}

/* STMT_EXEC_LOCKED_READ: top-level rows, the listed paths, and the children of the listed paths
 * that are not iterations. */
static bool want_first_read(const char *path, const json_t *row, const json_t *set)
{
    if (json_is_true(json_object_get(row, "top")) || json_object_get(set, path))
        return true;
    char *parent = parent_path(path);
    bool yes =
        parent && json_object_get(set, parent) && !json_is_true(json_object_get(row, "iteration"));
    free(parent);
    return yes;
}

static int loader_load(void *arg, struct engine_state *st, json_t *ctx, const char *const *paths,
                       size_t n)
{
    struct store *s = arg;
    json_t *set = json_object();
    s->n_load++;
    for (size_t i = 0; i < n; i++) {
        json_object_set_new(s->asked, paths[i], json_true());
        if (!json_object_get(s->rows, paths[i]))
            json_object_set_new(s->misses, paths[i], json_true());
        add_with_ancestors(set, paths[i]);
    }
    put_rows_where(s, st, ctx, want_listed, set);
    json_decref(set);
    return 0;
}

static int loader_load_all(void *arg, struct engine_state *st, json_t *ctx)
{
    struct store *s = arg;
    s->n_load_all++;
    put_rows_where(s, st, ctx, want_any, NULL);
    return 0;
}

static int loader_item(void *arg, const char *path, size_t index, json_t **out)
{
    struct store *s = arg;
    s->n_item++;
    json_t *item = json_array_get(json_object_get(json_object_get(s->rows, path), "items"), index);
    *out = item ? json_incref(item) : NULL;
    return item ? 0 : -1;
}

/* Writes back what the runner would after one input: the changed steps and every instance whose
 * own JSON differs from what was read (or that is new), with its results from ctx and, when
 * evaluated in this call, a for_each's items; then the header. Returns how many rows a stale
 * input would have written (it must write none). */
static size_t write_back(struct store *s, const struct engine_state *st, const json_t *ctx,
                         const struct engine_effects *fx)
{
    bool *written = calloc(st->n_steps + 1, sizeof *written);
    for (size_t i = 0; i < fx->n_changed_steps; i++)
        written[fx->changed_steps[i]] = true;
    size_t n = 0;
    for (size_t k = 0; k < st->n_steps; k++) {
        const json_t *before = json_object_get(s->loaded, st->steps[k].path);
        json_t *now = engine_step_to_json(st, k);
        if (!before || !json_equal(before, now) || st->steps[k].items_set)
            written[k] = true;
        json_decref(now);
        n += written[k];
    }
    if (fx->stale) {
        free(written);
        return n;
    }
    const json_t *steps = json_object_get(ctx, "steps");
    for (size_t k = 0; k < st->n_steps; k++) {
        if (!written[k])
            continue;
        const struct engine_step *e = &st->steps[k];
        json_t *row = json_object_get(s->rows, e->path);
        if (!row) {
            size_t depth = 1;
            for (const char *c = e->path; *c; c++)
                depth += *c == '/';
            bool iteration = e->node && e->node->kind == ENGINE_NODE_SEQUENCE && e->node->parent &&
                             e->node->parent->kind == ENGINE_NODE_FOR_EACH;
            row = json_pack("{s:b, s:I, s:I, s:b, s:n}", "top", e->parent == ENGINE_NO_PARENT,
                            "depth", (json_int_t)depth, "position", (json_int_t)e->position,
                            "iteration", iteration, "items");
            json_object_set_new(s->rows, e->path, row);
        }
        json_object_set_new(row, "engine", engine_step_to_json(st, k));
        const json_t *c = json_object_get(steps, e->path);
        const json_t *out = json_object_get(c, "output"), *err = json_object_get(c, "error");
        json_object_set_new(row, "output", out ? json_deep_copy(out) : json_null());
        json_object_set_new(row, "error", err ? json_deep_copy(err) : json_null());
        if (e->items_set && e->items)
            json_object_set_new(row, "items", json_deep_copy(e->items));
    }
    json_decref(s->header);
    s->header = engine_state_header_to_json(st);
    free(written);
    return 0;
}

static json_t *new_ctx(const struct store *s)
{
    return json_pack("{s:O, s:{}, s:{s:s, s:s}}", "input", s->input, "steps", "execution", "id",
                     "exec-1", "workflow", s->d->name);
}

/* A new state as the runner starts a transition about path (NULL: an input that names no
 * step): a fresh one before anything is stored, else the header and the first read's rows. */
static void begin_stored(struct store *s, const struct engine_plan *p, struct engine_loader *ld,
                         const char *path, struct engine_state *st, json_t **ctx)
{
    json_object_clear(s->loaded);
    *ctx = new_ctx(s);
    if (!s->header) {
        engine_state_init(st, s->d);
        st->all_loaded = true;
    } else {
        assert_int_equal(engine_state_begin(st, s->header, s->d), 0);
        json_t *set = json_object();
        if (path)
            add_with_ancestors(set, path);
        put_rows_where(s, st, *ctx, want_first_read, set);
        json_decref(set);
        assert_int_equal(engine_state_ready(st), 0);
    }
    st->loader = ld;
    assert_true(engine_state_bind(p, st));
}

/* ---- comparing the two ways --------------------------------------------------------------- */

static const char *path_at(const struct engine_state *st, long i)
{
    return i >= 0 && (size_t)i < st->n_steps ? st->steps[i].path : "-";
}

static int text_order(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The elements of a as compact JSON texts, sorted. New reference; a is stolen. */
static json_t *sorted_dumps(json_t *a)
{
    size_t n = json_array_size(a);
    char **texts = calloc(n ? n : 1, sizeof *texts);
    for (size_t i = 0; i < n; i++)
        texts[i] = dump(json_array_get(a, i));
    qsort(texts, n, sizeof *texts, text_order);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, json_string(texts[i]));
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    json_decref(a);
    return out;
}

/* Everything one input produced, instances named by path. Changed steps and task cancels are
 * sets, kept sorted: the runner writes and deletes them in no particular order, and changed
 * steps come in index order, which differs between the two ways. New reference. */
static json_t *effects_by_path(const struct engine_state *st, const struct engine_effects *fx)
{
    json_t *ev = json_array(), *tasks = json_array(), *cancels = json_array(),
           *changed = json_array(), *children = json_array(), *stops = json_array();
    for (size_t i = 0; i < fx->n_children; i++)
        json_array_append_new(
            children, json_pack("[s, s, s, s, i, O]", path_at(st, (long)fx->children[i].step),
                                fx->children[i].path, fx->children[i].id, fx->children[i].workflow,
                                fx->children[i].version, fx->children[i].input));
    for (size_t i = 0; i < fx->n_child_stops; i++)
        json_array_append_new(
            stops, json_pack("[s, b]", fx->child_stops[i].path, fx->child_stops[i].terminate));
    for (size_t i = 0; i < fx->n_events; i++)
        json_array_append_new(ev, json_pack("[s, s, i, O]", fx->events[i].type,
                                            path_at(st, fx->events[i].step), fx->events[i].attempt,
                                            fx->events[i].data));
    for (size_t i = 0; i < fx->n_tasks; i++) {
        const struct engine_task *t = &fx->tasks[i];
        json_array_append_new(tasks, json_pack("[s, s, i, I, O?]", engine_task_kind_name(t->kind),
                                               path_at(st, (long)t->step), t->attempt,
                                               (json_int_t)(t->due_at_ms - T0), t->payload));
    }
    for (size_t i = 0; i < fx->n_cancels; i++)
        json_array_append_new(cancels,
                              json_pack("[s, s]", engine_task_kind_name(fx->cancels[i].kind),
                                        path_at(st, (long)fx->cancels[i].step)));
    for (size_t i = 0; i < fx->n_changed_steps; i++)
        json_array_append_new(changed, json_string(path_at(st, (long)fx->changed_steps[i])));
    return json_pack("{s:b, s:b, s:o, s:o, s:o, s:o, s:b, s:b, s:b, s:s?, s:O?, s:O?, s:o, s:o}",
                     "stale", fx->stale, "stale_ended", fx->stale_ended, "events", ev, "tasks",
                     tasks, "cancels", sorted_dumps(cancels), "changed", sorted_dumps(changed),
                     "cancel_tasks", fx->cancel_tasks, "ended", fx->ended, "clear_error",
                     fx->clear_error, "wants_signal", fx->wants_signal, "output", fx->output,
                     "error", fx->error, "children", children, "child_stops", stops);
}

/* The row the whole state implies for instance i: its own JSON, its results, its items. */
static json_t *whole_row(const struct h *h, size_t i)
{
    const json_t *c = json_object_get(json_object_get(h->ctx, "steps"), h->st.steps[i].path);
    const json_t *out = json_object_get(c, "output"), *err = json_object_get(c, "error");
    return json_pack("{s:o, s:O, s:O, s:O?}", "engine", engine_step_to_json(&h->st, i), "output",
                     out ? out : json_null(), "error", err ? err : json_null(), "items",
                     h->st.steps[i].items);
}

static json_t *stored_row(const struct store *s, const char *path, bool with_items)
{
    const json_t *row = json_object_get(s->rows, path);
    if (!row)
        return json_null();
    const json_t *items = json_object_get(row, "items");
    return json_pack("{s:O, s:O, s:O, s:O?}", "engine", json_object_get(row, "engine"), "output",
                     json_object_get(row, "output"), "error", json_object_get(row, "error"),
                     "items", with_items && !json_is_null(items) ? items : NULL);
}

static void differ(const char *what, size_t input, const char *op, const json_t *whole,
                   const json_t *stored)
{
    char *a = dump(whole), *b = dump(stored);
    print_error("input %zu (%s): %s differ\n  whole:  %s\n  stored: %s\n", input, op, what, a, b);
    free(a);
    free(b);
    fail();
}

/* The store holds what the whole state holds: its header, and for every instance its row. */
static void compare_store(const struct store *s, const struct h *h, size_t input, const char *op)
{
    json_t *header = engine_state_header_to_json(&h->st);
    if (!json_equal(header, s->header))
        differ("headers", input, op, header, s->header);
    json_decref(header);
    if (json_object_size(s->rows) != h->st.n_steps) {
        json_t *w = statuses_json(h);
        differ("instance sets", input, op, w, s->rows);
    }
    for (size_t i = 0; i < h->st.n_steps; i++) {
        json_t *w = whole_row(h, i);
        json_t *st = stored_row(s, h->st.steps[i].path, h->st.steps[i].items != NULL);
        if (!json_equal(w, st)) {
            char what[256];
            snprintf(what, sizeof what, "rows of %s", h->st.steps[i].path);
            differ(what, input, op, w, st);
        }
        json_decref(w);
        json_decref(st);
    }
}

/* ---- scripts -------------------------------------------------------------------------------- */

enum op_kind {
    OP_START,
    OP_STARTED,     /* the step's current attempt is sent */
    OP_REDELIVERED, /* ... sent again (its lease ran out) */
    OP_OK,          /* ... and succeeds with text */
    OP_FAIL,        /* ... and fails with text */
    OP_FAIL_NR,     /* ... and fails, non-retryable */
    OP_ACCEPT,
    OP_HEARTBEAT,
    OP_HEARTBEAT_TIMEOUT,
    OP_ATTEMPT_TIMEOUT,
    OP_TIMER,
    OP_SIGNAL, /* "go"; text: the payload */
    OP_WAIT_TIMEOUT,
    OP_CANCEL,
    OP_TERMINATE,
    OP_RETRY,
    OP_COMP_STARTED,
    OP_COMP_OK,
    OP_COMP_FAIL_NR,
    OP_STALE_OK,   /* a result with the attempt after the current one */
    OP_CHILD_OK,   /* the workflow step's child completed; text: its output */
    OP_CHILD_FAIL, /* ... failed; text: its error */
};

static const char *const OP_NAMES[] = {
    "start",
    "started",
    "redelivered",
    "ok",
    "fail",
    "fail_nr",
    "accept",
    "heartbeat",
    "heartbeat_timeout",
    "attempt_timeout",
    "timer",
    "signal",
    "wait_timeout",
    "cancel",
    "terminate",
    "retry",
    "comp_started",
    "comp_ok",
    "comp_fail_nr",
    "stale_ok",
    "child_ok",
    "child_fail",
};

struct op {
    enum op_kind kind;
    const char *path; /* the instance the input is about; NULL for the execution */
    int64_t t;        /* the input's time, after T0 */
    const char *text; /* an output, an error or a payload (JSON) */
    bool stale;       /* the input is expected not to apply */
};

/* What the loader was asked over a script. */
struct script_stats {
    int n_load, n_load_all, n_item;
    json_t *asked;  /* {path: true} */
    json_t *misses; /* {path: true} */
};

static void stats_free(struct script_stats *x)
{
    json_decref(x->asked);
    json_decref(x->misses);
    memset(x, 0, sizeof *x);
}

/* The input op o stands for, about instance i (an index in the state it is fed to), with the
 * attempt numbers of the whole way; v is o's parsed text (borrowed). */
static struct engine_input op_input(const struct op *o, size_t i, int attempt, int comp_attempt,
                                    const json_t *v)
{
    int64_t now = T0 + o->t;
    struct engine_input in;
    switch (o->kind) {
    case OP_START:
        return in_start(now);
    case OP_STARTED:
        return in_started(i, attempt, now);
    case OP_REDELIVERED:
        return in_redelivered(i, attempt, now);
    case OP_OK:
        return in_succeeded(i, attempt, now, v);
    case OP_FAIL:
    case OP_FAIL_NR:
        in = in_failed(i, attempt, now, v);
        in.non_retryable = o->kind == OP_FAIL_NR;
        return in;
    case OP_ACCEPT:
        return in_accepted(i, attempt, now);
    case OP_HEARTBEAT:
        return in_heartbeat(i, attempt, now);
    case OP_HEARTBEAT_TIMEOUT:
        return in_heartbeat_timeout(i, attempt, now);
    case OP_ATTEMPT_TIMEOUT:
        return in_attempt_timeout(i, attempt, now);
    case OP_TIMER:
        return in_timer(i, now);
    case OP_SIGNAL:
        return in_signal(i, now, "go", v);
    case OP_WAIT_TIMEOUT:
        return in_wait_timeout(i, now);
    case OP_CANCEL:
        return in_cancel(now);
    case OP_TERMINATE:
        return in_terminate(now);
    case OP_RETRY:
        return in_retry(now);
    case OP_COMP_STARTED:
        return comp(in_started(i, comp_attempt, now));
    case OP_COMP_OK:
        return comp(in_succeeded(i, comp_attempt, now, v));
    case OP_COMP_FAIL_NR:
        in = comp(in_failed(i, comp_attempt, now, v));
        in.non_retryable = true;
        return in;
    case OP_STALE_OK:
        return in_succeeded(i, attempt + 1, now, v);
    case OP_CHILD_OK:
    case OP_CHILD_FAIL:
        return (struct engine_input){.kind = ENGINE_IN_CHILD_ENDED,
                                     .now_ms = now,
                                     .step = i,
                                     .child_status =
                                         o->kind == OP_CHILD_OK ? "completed" : "failed",
                                     .output = o->kind == OP_CHILD_OK ? v : NULL,
                                     .error = o->kind == OP_CHILD_FAIL ? v : NULL,
                                     .retry_after_ms = -1};
    }
    fail();
    return in;
}

/* Runs the script both ways, comparing after every input; the execution must end in final
 * (ENGINE_EXEC_RUNNING: still running). Fills *stats when not NULL (caller frees). */
static void run_both(const char *defn, const char *input, const struct op *ops, size_t n_ops,
                     enum engine_exec_status final, struct script_stats *stats)
{
    struct h h;
    h_init(&h, defn, input);
    struct engine_plan *p = engine_plan_build(h.d);
    assert_non_null(p);
    struct store s = {.d = h.d,
                      .input = json_deep_copy(json_object_get(h.ctx, "input")),
                      .rows = json_object(),
                      .loaded = json_object(),
                      .asked = json_object(),
                      .misses = json_object()};
    struct engine_loader ld = {&s, loader_load, loader_load_all, loader_item, NULL};

    for (size_t k = 0; k < n_ops; k++) {
        const struct op *o = &ops[k];
        char op[160];
        snprintf(op, sizeof op, "%s %s", OP_NAMES[o->kind], o->path ? o->path : "-");
        size_t wi = 0;
        int attempt = 0, comp_attempt = 0;
        if (o->path) {
            long i = engine_state_find(&h.st, o->path);
            if (i < 0)
                fail_msg("input %zu (%s): no instance %s", k, op, o->path);
            wi = (size_t)i;
            attempt = h.st.steps[wi].attempt;
            comp_attempt = h.st.steps[wi].comp.attempt;
        }
        json_t *v = o->text ? parse_json(o->text) : json_null();

        /* The stored way first: its state is built from the store as it was before. */
        struct engine_state st;
        json_t *ctx;
        begin_stored(&s, p, &ld, o->path, &st, &ctx);
        size_t si = 0;
        if (o->path) {
            long i = engine_state_find(&st, o->path);
            if (i < 0)
                fail_msg("input %zu (%s): the first read does not bring %s", k, op, o->path);
            si = (size_t)i;
        }
        struct engine_input sin = op_input(o, si, attempt, comp_attempt, v);
        struct engine_effects sfx = {0};
        if (engine_advance_plan(p, &st, ctx, &sin, &sfx) != 0)
            fail_msg("input %zu (%s): the stored way's call failed", k, op);

        h_feed_plan(&h, p, op_input(o, wi, attempt, comp_attempt, v));
        if (h.fx.stale != o->stale)
            fail_msg("input %zu (%s): stale %d, expected %d", k, op, (int)h.fx.stale,
                     (int)o->stale);

        json_t *we = effects_by_path(&h.st, &h.fx), *se = effects_by_path(&st, &sfx);
        if (!json_equal(we, se))
            differ("effects", k, op, we, se);
        json_decref(we);
        json_decref(se);

        size_t stale_writes = write_back(&s, &st, ctx, &sfx);
        if (stale_writes > 0)
            fail_msg("input %zu (%s): a stale input changed %zu rows of the partial state", k, op,
                     stale_writes);
        compare_store(&s, &h, k, op);

        engine_effects_free(&sfx);
        engine_state_free(&st);
        json_decref(ctx);
        json_decref(v);
    }
    assert_int_equal(h.st.status, final);

    /* Every row, loaded into one more state, is the whole state's instance at the same path. */
    struct engine_state st;
    json_t *ctx;
    begin_stored(&s, p, &ld, NULL, &st, &ctx);
    assert_int_equal(loader_load_all(&s, &st, ctx), 0);
    s.n_load_all--;
    assert_true(engine_state_bind(p, &st));
    assert_int_equal(st.n_steps, h.st.n_steps);
    json_t *wh = engine_state_header_to_json(&h.st), *sh = engine_state_header_to_json(&st);
    if (!json_equal(wh, sh))
        differ("final headers", n_ops, "end", wh, sh);
    json_decref(wh);
    json_decref(sh);
    for (size_t i = 0; i < h.st.n_steps; i++) {
        const char *path = h.st.steps[i].path;
        long j = engine_state_find(&st, path);
        assert_true(j >= 0);
        /* Results as a reader of the rows sees them: the output of what completed. */
        json_t *w = engine_step_to_json(&h.st, i), *x = engine_step_to_json(&st, (size_t)j);
        const char *status = engine_step_status_name(h.st.steps[i].status);
        bool done = !strcmp(status, "completed") || !strcmp(status, "compensated");
        const json_t *wc = json_object_get(json_object_get(h.ctx, "steps"), path);
        const json_t *xc = json_object_get(json_object_get(ctx, "steps"), path);
        const json_t *wo = json_object_get(wc, "output"), *we = json_object_get(wc, "error");
        json_object_set_new(w, "output",
                            done ? json_deep_copy(wo ? wo : json_null()) : json_null());
        json_object_set_new(w, "error", we ? json_deep_copy(we) : json_null());
        const json_t *xo = json_object_get(xc, "output"), *xe = json_object_get(xc, "error");
        json_object_set_new(x, "output", xo ? json_deep_copy(xo) : json_null());
        json_object_set_new(x, "error", xe ? json_deep_copy(xe) : json_null());
        if (strcmp(path_at(&h.st, (long)h.st.steps[i].parent),
                   path_at(&st, (long)st.steps[j].parent)) != 0)
            fail_msg("%s: parents differ", path);
        if (!json_equal(w, x))
            differ(path, n_ops, "end", w, x);
        json_decref(w);
        json_decref(x);
    }
    engine_state_free(&st);
    json_decref(ctx);

    if (stats) {
        *stats = (struct script_stats){s.n_load, s.n_load_all, s.n_item, json_incref(s.asked),
                                       json_incref(s.misses)};
    }
    json_decref(s.input);
    json_decref(s.header);
    json_decref(s.rows);
    json_decref(s.loaded);
    json_decref(s.asked);
    json_decref(s.misses);
    engine_plan_free(p);
    h_free(&h);
}

#define RUN(defn, input, ops, final)                                                               \
    run_both(defn, input, ops, sizeof ops / sizeof ops[0], final, NULL)

/* ---- parallel, and references into it from later steps -------------------------------------- */

/* after and after2 read steps nested in the parallel before them; after retries, so its second
 * attempt starts in a transition that read only the top-level rows. */
static const char *const PAR =
    "{\"name\": \"par\", \"steps\": ["
    " {\"id\": \"notify\", \"parallel\": {\"branches\": {"
    "   \"sms\": [{\"id\": \"text\", \"activity\": {\"url\": \"http://svc/sms\"}}],"
    "   \"email\": [{\"id\": \"render\", \"activity\": {\"url\": \"http://svc/render\"}},"
    "             {\"id\": \"send\", \"activity\": {\"url\": \"http://svc/send\", \"input\": "
    "\"${steps.render.output}\"}}]}}},"
    " {\"id\": \"after\", \"activity\": {\"url\": \"http://svc/after\", \"input\": {\"n\": "
    "\"${steps.notify.output}\", \"s\": \"${steps.send.output}\"}}, \"retry\": "
    "{\"initial_interval\":"
    " \"1s\"}},"
    " {\"id\": \"after2\", \"activity\": {\"url\": \"http://svc/after2/${steps.text.output}\"}}],"
    " \"output\": {\"a\": \"${steps.after2.output}\", \"t\": \"${steps.text.output}\", \"s\": "
    "\"${steps.send.output}\"}}";

static void parallel_and_later_references_into_it(void **state)
{
    (void)state;
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "notify/email/render", 1, NULL, 0},
        {OP_STARTED, "notify/sms/text", 1, NULL, 0},
        {OP_OK, "notify/sms/text", 2, "\"T\"", 0},
        {OP_OK, "notify/email/render", 3, "\"R\"", 0},
        {OP_STARTED, "notify/email/send", 4, NULL, 0},
        {OP_OK, "notify/email/send", 5, "{\"sent\": 1}", 0},
        {OP_STARTED, "after", 6, NULL, 0},
        {OP_FAIL, "after", 7, "{\"type\": \"Busy\", \"message\": \"later\"}", 0},
        {OP_STARTED, "after", 1007, NULL, 0},
        {OP_OK, "after", 1008, "\"A\"", 0},
        {OP_STARTED, "after2", 1009, NULL, 0},
        {OP_OK, "after2", 1010, "\"A2\"", 0},
    };
    struct script_stats x;
    run_both(PAR, "{}", ops, sizeof ops / sizeof ops[0], ENGINE_EXEC_COMPLETED, &x);
    /* The nested steps were loaded on demand (scope_ctx), not with every row. */
    assert_non_null(json_object_get(x.asked, "notify/email/send"));
    assert_non_null(json_object_get(x.asked, "notify/sms/text"));
    stats_free(&x);
}

/* A sleep_until that reads a step nested in an earlier parallel: evaluating its time loads that
 * step, which may move the state's instances in memory. */
static void sleep_until_reads_a_nested_step(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"su\", \"steps\": ["
        " {\"id\": \"p\", \"parallel\": {\"branches\": {"
        "   \"a\": [{\"id\": \"x\", \"activity\": {\"url\": \"http://svc/x\"}}],"
        "   \"b\": [{\"id\": \"y\", \"activity\": {\"url\": \"http://svc/y\"}}]}}},"
        " {\"id\": \"mid\", \"activity\": {\"url\": \"http://svc/mid\"}},"
        " {\"id\": \"nap\", \"sleep_until\": \"${steps.x.output}\"}]}";
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "p/a/x", 1, NULL, 0},
        {OP_OK, "p/a/x", 2, "\"2026-01-01T01:00:00Z\"", 0},
        {OP_STARTED, "p/b/y", 3, NULL, 0},
        {OP_OK, "p/b/y", 4, "1", 0},
        {OP_STARTED, "mid", 5, NULL, 0},
        {OP_OK, "mid", 6, "2", 0},
        {OP_TIMER, "nap", HOUR, NULL, 0},
    };
    struct script_stats x;
    run_both(D, "{}", ops, sizeof ops / sizeof ops[0], ENGINE_EXEC_COMPLETED, &x);
    assert_non_null(json_object_get(x.asked, "p/a/x"));
    stats_free(&x);
}

/* ---- for_each ------------------------------------------------------------------------------- */

/* Concurrency 2 over 6 items completed out of order; every iteration after the first two
 * starts in a later transition and gets its item from the loader. */
static void for_each_out_of_order_with_items_loaded_lazily(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"cc\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": "
        "\"${input.xs}\", \"concurrency\": 2, \"steps\": [{\"id\": \"one\", \"activity\": "
        "{\"url\": \"http://svc/one/${index}\", \"input\": {\"x\": \"${item}\", \"i\": "
        "\"${index}\"}}}]}}, {\"id\": \"after\", \"activity\": {\"url\": \"http://svc/after\", "
        "\"input\": \"${steps.all.output}\"}}], \"output\": \"${steps.after.output}\"}";
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL, 0},          {OP_STARTED, "all/1/one", 1, NULL, 0},
        {OP_OK, "all/1/one", 2, "\"BB\"", 0},  {OP_STARTED, "all/2/one", 3, NULL, 0},
        {OP_OK, "all/2/one", 4, "\"CC\"", 0},  {OP_STARTED, "all/0/one", 5, NULL, 0},
        {OP_OK, "all/0/one", 6, "\"AA\"", 0},  {OP_STARTED, "all/4/one", 7, NULL, 0},
        {OP_STARTED, "all/3/one", 7, NULL, 0}, {OP_OK, "all/4/one", 8, "\"EE\"", 0},
        {OP_STARTED, "all/5/one", 9, NULL, 0}, {OP_OK, "all/5/one", 10, "\"FF\"", 0},
        {OP_OK, "all/3/one", 11, "\"DD\"", 0}, {OP_STARTED, "after", 12, NULL, 0},
        {OP_OK, "after", 13, "\"done\"", 0},
    };
    struct script_stats x;
    run_both(D, "{\"xs\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]}", ops,
             sizeof ops / sizeof ops[0], ENGINE_EXEC_COMPLETED, &x);
    /* Items 2 to 5 came from the loader, one each; a new iteration is never looked for in
     * storage (it cannot be there: its item index is past the loop's next one). */
    assert_int_equal(x.n_item, 4);
    assert_int_equal(json_object_size(x.misses), 0);
    stats_free(&x);
}

/* Concurrency 1: each iteration starts in the transition that ends the one before. */
static void for_each_one_at_a_time(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"one\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": "
        "\"${input.xs}\", \"concurrency\": 1, \"steps\": ["
        "  {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/c\", \"input\": {\"x\": "
        "\"${item}\", \"i\": \"${index}\"}}},"
        "  {\"id\": \"note\", \"activity\": {\"url\": \"http://svc/n\", \"input\": "
        "\"${steps.charge.output}\"}}]}}], \"output\": \"${steps.all.output}\"}";
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "all/0/charge", 1, NULL, 0},
        {OP_OK, "all/0/charge", 2, "\"c0\"", 0},
        {OP_STARTED, "all/0/note", 3, NULL, 0},
        {OP_OK, "all/0/note", 4, "\"n0\"", 0},
        {OP_STARTED, "all/1/charge", 5, NULL, 0},
        {OP_OK, "all/1/charge", 6, "\"c1\"", 0},
        {OP_STARTED, "all/1/note", 7, NULL, 0},
        {OP_OK, "all/1/note", 8, "\"n1\"", 0},
        {OP_STARTED, "all/2/charge", 9, NULL, 0},
        {OP_OK, "all/2/charge", 10, "{\"deep\": [1, 2]}", 0},
        {OP_STARTED, "all/2/note", 11, NULL, 0},
        {OP_OK, "all/2/note", 12, "\"n2\"", 0},
    };
    struct script_stats x;
    run_both(D, "{\"xs\": [{\"v\": 1}, [2], \"three\"]}", ops, sizeof ops / sizeof ops[0],
             ENGINE_EXEC_COMPLETED, &x);
    assert_int_equal(x.n_item, 2);
    assert_int_equal(json_object_size(x.misses), 0);
    stats_free(&x);
}

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

static void nested_loops_with_their_loop_variables(void **state)
{
    (void)state;
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "outer/0/inner/0/s", 1, NULL, 0},
        {OP_OK, "outer/0/inner/0/s", 1, "\"A\"", 0},
        {OP_STARTED, "outer/0/sum", 2, NULL, 0},
        {OP_OK, "outer/0/sum", 2, "\"S0\"", 0},
        {OP_STARTED, "outer/1/inner/1/s", 3, NULL, 0},
        {OP_OK, "outer/1/inner/1/s", 3, "\"C\"", 0},
        {OP_STARTED, "outer/1/inner/2/s", 4, NULL, 0},
        {OP_OK, "outer/1/inner/2/s", 4, "\"D\"", 0},
        {OP_STARTED, "outer/1/inner/0/s", 5, NULL, 0},
        {OP_OK, "outer/1/inner/0/s", 5, "\"B\"", 0},
        {OP_STARTED, "outer/1/sum", 6, NULL, 0},
        {OP_OK, "outer/1/sum", 6, "\"S1\"", 0},
        {OP_STARTED, "after", 7, NULL, 0},
        {OP_OK, "after", 7, "\"done\"", 0},
    };
    RUN(NEST,
        "{\"groups\": [{\"name\": \"g0\", \"xs\": [\"a\"]}, {\"name\": \"g1\", \"xs\": [\"b\", "
        "\"c\", \"d\"]}]}",
        ops, ENGINE_EXEC_COMPLETED);
    /* An empty inner loop, then an expression error inside the loop. */
    static const struct op empty[] = {{OP_START, NULL, 0, NULL, 0}};
    RUN(NEST, "{\"groups\": [{\"name\": \"g0\", \"xs\": []}, {\"name\": \"g1\", \"xs\": [\"b\"]}]}",
        empty, ENGINE_EXEC_FAILED);
    /* A failure two loops deep while a sibling iteration is in flight. */
    static const struct op deep[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "outer/0/inner/0/s", 1, NULL, 0},
        {OP_OK, "outer/0/inner/0/s", 1, "\"A\"", 0},
        {OP_STARTED, "outer/0/sum", 1, NULL, 0},
        {OP_OK, "outer/0/sum", 1, "0", 0},
        {OP_STARTED, "outer/1/inner/0/s", 2, NULL, 0},
        {OP_STARTED, "outer/1/inner/1/s", 2, NULL, 0},
        {OP_FAIL_NR, "outer/1/inner/1/s", 3, "{\"type\": \"Nope\", \"message\": \"x\"}", 0},
        {OP_OK, "outer/1/inner/0/s", 4, "\"B\"", 0},
    };
    RUN(NEST,
        "{\"groups\": [{\"name\": \"g0\", \"xs\": [\"a\"]}, {\"name\": \"g1\", \"xs\": [\"b\", "
        "\"c\"]}]}",
        deep, ENGINE_EXEC_FAILED);
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
        "\"concurrency\": 1, \"steps\": [{\"id\": \"one\", \"activity\": {\"url\": "
        "\"http://svc/one\", \"input\": {\"v\": \"${item}\", \"i\": \"${index}\"}}}]}}]}}}],"
        " \"output\": \"${steps.notify.output}\"}";
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "all/1/fan/y/py", 1, NULL, 0},
        {OP_OK, "all/1/fan/y/py", 1, "10", 0},
        {OP_STARTED, "all/0/fan/y/py", 2, NULL, 0},
        {OP_OK, "all/0/fan/y/py", 2, "0", 0},
        {OP_STARTED, "all/1/fan/x/px", 3, NULL, 0},
        {OP_OK, "all/1/fan/x/px", 3, "\"Q\"", 0},
        {OP_STARTED, "all/1/fan/y/py2", 4, NULL, 0},
        {OP_OK, "all/1/fan/y/py2", 4, "11", 0},
        {OP_STARTED, "all/0/fan/y/py2", 5, NULL, 0},
        {OP_OK, "all/0/fan/y/py2", 5, "1", 0},
        {OP_STARTED, "all/0/fan/x/px", 6, NULL, 0},
        {OP_OK, "all/0/fan/x/px", 6, "\"P\"", 0},
        {OP_STARTED, "notify/many/each/0/one", 7, NULL, 0},
        {OP_OK, "notify/many/each/0/one", 7, "\"first\"", 0},
        {OP_STARTED, "notify/email/send", 8, NULL, 0},
        {OP_OK, "notify/email/send", 8, "\"sent\"", 0},
        {OP_STARTED, "notify/many/each/1/one", 9, NULL, 0},
        {OP_OK, "notify/many/each/1/one", 9, "\"second\"", 0},
    };
    RUN(D, "{}", ops, ENGINE_EXEC_COMPLETED);
}

/* ---- fail-fast and the saga ------------------------------------------------------------------ */

/* Eight branches, each caught in a different state when branch a fails for good. */
static const char *const FF =
    "{\"name\": \"ff\", \"steps\": ["
    " {\"id\": \"notify\", \"parallel\": {\"branches\": {"
    "  \"a\": [{\"id\": \"a1\", \"activity\": {\"url\": \"http://svc/a1\"}, \"retry\": "
    "{\"max_attempts\": 1}}],"
    "  \"b\": [{\"id\": \"b1\", \"activity\": {\"url\": \"http://svc/b1\"}, \"compensate\": "
    "{\"url\": \"http://svc/undo/b1\"}}, {\"id\": \"b2\", \"activity\": {\"url\": "
    "\"http://svc/b2\"}}],"
    "  \"c\": [{\"id\": \"c1\", \"sleep\": \"1h\"}],"
    "  \"d\": [{\"id\": \"d1\", \"wait\": {\"signal\": \"go\", \"timeout\": \"1h\"}}],"
    "  \"e\": [{\"id\": \"e1\", \"activity\": {\"url\": \"http://svc/e1\"}}],"
    "  \"f\": [{\"id\": \"f1\", \"activity\": {\"url\": \"http://svc/f1\"}}],"
    "  \"g\": [{\"id\": \"g1\", \"activity\": {\"url\": \"http://svc/g1\"}}],"
    "  \"h\": [{\"id\": \"h1\", \"activity\": {\"url\": \"http://svc/h1\"}, \"compensate\": "
    "{\"url\": \"http://svc/undo/h1\", \"input\": \"${steps.h1.output}\"}}]}}},"
    " {\"id\": \"after\", \"activity\": {\"url\": \"http://svc/after\"}}]}";

static void parallel_fail_fast_and_its_saga(void **state)
{
    (void)state;
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "notify/h/h1", 1, NULL, 0},
        {OP_OK, "notify/h/h1", 1, "\"H\"", 0},
        {OP_STARTED, "notify/b/b1", 2, NULL, 0},
        {OP_STARTED, "notify/g/g1", 2, NULL, 0},
        {OP_STARTED, "notify/f/f1", 3, NULL, 0},
        {OP_FAIL, "notify/f/f1", 3, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_STARTED, "notify/a/a1", 4, NULL, 0},
        {OP_FAIL, "notify/a/a1", 5, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        /* What was stopped is stale. */
        {OP_TIMER, "notify/c/c1", 6, NULL, 1},
        {OP_SIGNAL, "notify/d/d1", 6, "{}", 1},
        {OP_WAIT_TIMEOUT, "notify/d/d1", 6, NULL, 1},
        {OP_STARTED, "notify/e/e1", 6, NULL, 1},
        {OP_STARTED, "notify/f/f1", 6, NULL, 1},
        {OP_STALE_OK, "notify/b/b1", 6, "1", 1},
        {OP_OK, "notify/b/b1", 7, "\"B\"", 0},
        {OP_FAIL, "notify/g/g1", 8, "{\"type\": \"Other\", \"message\": \"later\"}", 0},
        {OP_COMP_STARTED, "notify/b/b1", 9, NULL, 0},
        {OP_COMP_OK, "notify/b/b1", 9, "null", 0},
        {OP_COMP_STARTED, "notify/h/h1", 10, NULL, 0},
        {OP_COMP_OK, "notify/h/h1", 10, "null", 0},
        {OP_RETRY, NULL, 11, NULL, 1},
    };
    RUN(FF, "{}", ops, ENGINE_EXEC_FAILED);
}

/* A branch or an iteration that fails the moment it is entered. */
static void failure_on_entry(void **state)
{
    (void)state;
    static const struct op start[] = {{OP_START, NULL, 0, NULL, 0}};
    RUN("{\"name\": \"fe\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
        " \"a\": [{\"id\": \"a1\", \"activity\": {\"url\": \"http://svc/a\"}}],"
        " \"b\": [{\"id\": \"b1\", \"activity\": {\"url\": \"http://svc/b\", \"input\": "
        "\"${input.nope}\"}}],"
        " \"c\": [{\"id\": \"c1\", \"activity\": {\"url\": \"http://svc/c\"}}]}}}]}",
        "{}", start, ENGINE_EXEC_FAILED);
    RUN("{\"name\": \"fl\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": [{\"v\": 1}, "
        "2, {\"v\": 3}], \"concurrency\": 3, \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": "
        "\"http://svc/s/${item.v}\"}}]}}]}",
        "{}", start, ENGINE_EXEC_FAILED);
    /* An iteration started in a later transition fails on entry. */
    static const struct op later[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "all/0/s", 1, NULL, 0},
        {OP_OK, "all/0/s", 2, "0", 0},
    };
    RUN("{\"name\": \"fl2\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": [{\"v\": 1}, "
        "2], \"concurrency\": 1, \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": "
        "\"http://svc/s/${item.v}\"}, \"compensate\": {\"url\": \"http://svc/u\"}}]}}]}",
        "{}", later, ENGINE_EXEC_RUNNING);
}

static const char *const LOOP_FF =
    "{\"name\": \"lf\", \"steps\": ["
    " {\"id\": \"first\", \"activity\": {\"url\": \"http://svc/first\"}, \"compensate\": "
    "{\"url\": \"http://svc/undo/first\"}},"
    " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"concurrency\": 3, \"steps\": ["
    "   {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/charge\", \"input\": "
    "\"${item}\"}, \"retry\": {\"max_attempts\": 2, \"initial_interval\": \"1s\"}, "
    "\"compensate\": {\"url\": \"http://svc/refund\", \"input\": \"${steps.charge.output}\"}},"
    "   {\"id\": \"pause\", \"sleep\": \"1m\"}]}},"
    " {\"id\": \"last\", \"activity\": {\"url\": \"http://svc/last\"}}]}";

/* A failing iteration stops the others; the saga undoes every completed charge of every
 * iteration in reverse order of completion, each with its own iteration's output. */
static void for_each_fail_fast_and_its_saga(void **state)
{
    (void)state;
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "first", 1, NULL, 0},
        {OP_OK, "first", 1, "\"F\"", 0},
        {OP_STARTED, "all/1/charge", 2, NULL, 0},
        {OP_OK, "all/1/charge", 2, "\"c1\"", 0},
        {OP_STARTED, "all/2/charge", 3, NULL, 0},
        {OP_OK, "all/2/charge", 3, "\"c2\"", 0},
        {OP_STARTED, "all/0/charge", 4, NULL, 0},
        {OP_FAIL, "all/0/charge", 4, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_STARTED, "all/0/charge", 2000, NULL, 0},
        {OP_FAIL, "all/0/charge", 2000, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_TIMER, "all/1/pause", MIN, NULL, 1},
        {OP_COMP_STARTED, "all/2/charge", 2001, NULL, 0},
        {OP_COMP_OK, "all/2/charge", 2001, "null", 0},
        {OP_COMP_STARTED, "all/1/charge", 2002, NULL, 0},
        {OP_COMP_OK, "all/1/charge", 2002, "null", 0},
        {OP_COMP_STARTED, "first", 2003, NULL, 0},
        {OP_COMP_OK, "first", 2003, "null", 0},
    };
    RUN(LOOP_FF, "{\"xs\": [10, 20, 30, 40, 50]}", ops, ENGINE_EXEC_FAILED);

    /* An iteration in flight when another fails finishes, and is compensated first; a
     * compensation that fails is reported with the execution's error. */
    static const struct op flight[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "first", 1, NULL, 0},
        {OP_OK, "first", 1, "\"F\"", 0},
        {OP_STARTED, "all/0/charge", 2, NULL, 0},
        {OP_STARTED, "all/1/charge", 2, NULL, 0},
        {OP_FAIL_NR, "all/1/charge", 3, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_OK, "all/0/charge", 4, "\"late\"", 0},
        {OP_COMP_STARTED, "all/0/charge", 5, NULL, 0},
        {OP_COMP_FAIL_NR, "all/0/charge", 5, "{\"type\": \"Gone\", \"message\": \"refund\"}", 0},
        {OP_COMP_STARTED, "first", 6, NULL, 0},
        {OP_COMP_OK, "first", 6, "null", 0},
    };
    RUN(LOOP_FF, "{\"xs\": [10, 20]}", flight, ENGINE_EXEC_FAILED);
}

/* Completion order across two branches and a loop inside one of them. */
static void saga_order_across_branches_and_iterations(void **state)
{
    (void)state;
    static const char *const D =
        "{\"name\": \"co\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
        " \"l\": [{\"id\": \"l1\", \"activity\": {\"url\": \"http://svc/l1\"}, \"compensate\": "
        "{\"url\": \"http://svc/u\"}},"
        "        {\"id\": \"loop\", \"for_each\": {\"items\": [1, 2], \"steps\": ["
        "          {\"id\": \"it\", \"activity\": {\"url\": \"http://svc/it\"}, \"compensate\": "
        "{\"url\": \"http://svc/u/${index}\", \"input\": {\"mine\": \"${steps.it.output}\", "
        "\"l1\": \"${steps.l1.output}\"}}}]}}],"
        " \"r\": [{\"id\": \"r1\", \"activity\": {\"url\": \"http://svc/r1\"}, \"compensate\": "
        "{\"url\": \"http://svc/u\"}},"
        "        {\"id\": \"r2\", \"activity\": {\"url\": \"http://svc/r2\"}, \"compensate\": "
        "{\"url\": \"http://svc/u\", \"input\": \"${steps.r1.output}\"}},"
        "        {\"id\": \"r3\", \"activity\": {\"url\": \"http://svc/r3\"}, \"retry\": "
        "{\"max_attempts\": 1}}]}}}]}";
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "p/r/r1", 1, NULL, 0},
        {OP_OK, "p/r/r1", 1, "1", 0},
        {OP_STARTED, "p/l/l1", 2, NULL, 0},
        {OP_OK, "p/l/l1", 2, "2", 0},
        {OP_STARTED, "p/l/loop/1/it", 3, NULL, 0},
        {OP_OK, "p/l/loop/1/it", 3, "3", 0},
        {OP_STARTED, "p/r/r2", 4, NULL, 0},
        {OP_OK, "p/r/r2", 4, "4", 0},
        {OP_STARTED, "p/l/loop/0/it", 5, NULL, 0},
        {OP_STARTED, "p/r/r3", 6, NULL, 0},
        {OP_FAIL, "p/r/r3", 6, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_OK, "p/l/loop/0/it", 7, "5", 0},
        {OP_COMP_STARTED, "p/l/loop/0/it", 10, NULL, 0},
        {OP_COMP_OK, "p/l/loop/0/it", 10, "null", 0},
        {OP_COMP_STARTED, "p/r/r2", 11, NULL, 0},
        {OP_COMP_FAIL_NR, "p/r/r2", 11, "{\"type\": \"Gone\", \"message\": \"r2\"}", 0},
        {OP_COMP_STARTED, "p/l/loop/1/it", 12, NULL, 0},
        {OP_COMP_OK, "p/l/loop/1/it", 12, "null", 0},
        {OP_COMP_STARTED, "p/l/l1", 13, NULL, 0},
        {OP_COMP_FAIL_NR, "p/l/l1", 13, "{\"type\": \"Gone\", \"message\": \"l1\"}", 0},
        {OP_COMP_STARTED, "p/r/r1", 14, NULL, 0},
        {OP_COMP_OK, "p/r/r1", 14, "null", 0},
    };
    RUN(D, "{}", ops, ENGINE_EXEC_FAILED);
}

/* ---- cancel and terminate inside containers ------------------------------------------------- */

static const char *const CANCEL_PAR =
    "{\"name\": \"cp\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
    " \"a\": [{\"id\": \"a1\", \"activity\": {\"url\": \"http://svc/a1\"}, \"compensate\": "
    "{\"url\": \"http://svc/u\"}}],"
    " \"b\": [{\"id\": \"b1\", \"wait\": {\"signal\": \"go\", \"timeout\": \"1h\"}}],"
    " \"c\": [{\"id\": \"c1\", \"sleep\": \"1h\"}],"
    " \"d\": [{\"id\": \"d1\", \"activity\": {\"url\": \"http://svc/d1\"}, \"compensate\": "
    "{\"url\": \"http://svc/u\"}}, {\"id\": \"d2\", \"activity\": {\"url\": \"http://svc/d2\"}}]"
    "}}}, {\"id\": \"after\", \"activity\": {\"url\": \"http://svc/after\"}}]}";

static const char *const CANCEL_LOOP =
    "{\"name\": \"cl\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\","
    " \"concurrency\": 2, \"steps\": ["
    "  {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/c\"}, \"compensate\": {\"url\": "
    "\"http://svc/u\"}},"
    "  {\"id\": \"hold\", \"wait\": {\"signal\": \"go\"}}]}}]}";

static void cancel_inside_containers(void **state)
{
    (void)state;
    static const struct op par[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "p/a/a1", 1, NULL, 0},
        {OP_STARTED, "p/d/d1", 1, NULL, 0},
        {OP_OK, "p/d/d1", 1, "\"D\"", 0},
        {OP_STARTED, "p/d/d2", 2, NULL, 0},
        {OP_CANCEL, NULL, 3, NULL, 0},
        {OP_SIGNAL, "p/b/b1", 4, "1", 1},
        {OP_TIMER, "p/c/c1", 4, NULL, 1},
        {OP_CANCEL, NULL, 4, NULL, 1},
        {OP_FAIL, "p/d/d2", 5, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_OK, "p/a/a1", 6, "\"A\"", 0},
        {OP_COMP_STARTED, "p/a/a1", 7, NULL, 0},
        {OP_COMP_OK, "p/a/a1", 7, "null", 0},
        {OP_COMP_STARTED, "p/d/d1", 8, NULL, 0},
        {OP_COMP_OK, "p/d/d1", 8, "null", 0},
    };
    RUN(CANCEL_PAR, "{}", par, ENGINE_EXEC_CANCELLED);

    static const struct op loop[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "all/0/charge", 1, NULL, 0},
        {OP_OK, "all/0/charge", 1, "0", 0},
        {OP_STARTED, "all/1/charge", 2, NULL, 0},
        {OP_CANCEL, NULL, 3, NULL, 0},
        {OP_SIGNAL, "all/0/hold", 3, "1", 1},
        {OP_OK, "all/1/charge", 4, "1", 0},
        {OP_COMP_STARTED, "all/1/charge", 5, NULL, 0},
        {OP_COMP_OK, "all/1/charge", 5, "null", 0},
        {OP_COMP_STARTED, "all/0/charge", 6, NULL, 0},
        {OP_COMP_FAIL_NR, "all/0/charge", 6, "{\"type\": \"Gone\", \"message\": \"x\"}", 0},
    };
    RUN(CANCEL_LOOP, "{\"xs\": [1, 2, 3, 4]}", loop, ENGINE_EXEC_CANCELLED);

    /* Every leaf can stop at once: cancelled in the same call. */
    static const struct op naps[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_TIMER, "all/1/nap", SEC, NULL, 0},
        {OP_CANCEL, NULL, SEC + 1, NULL, 0},
        {OP_TIMER, "all/2/nap", HOUR, NULL, 1},
    };
    RUN("{\"name\": \"cw\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": [1, 2, 3, 4],"
        " \"concurrency\": 3, \"steps\": [{\"id\": \"nap\", \"sleep\": \"1s\"}]}}]}",
        "{}", naps, ENGINE_EXEC_CANCELLED);
}

static void terminate_inside_containers(void **state)
{
    (void)state;
    static const struct op par[] = {
        {OP_START, NULL, 0, NULL, 0},       {OP_STARTED, "p/a/a1", 1, NULL, 0},
        {OP_STARTED, "p/d/d1", 1, NULL, 0}, {OP_OK, "p/d/d1", 1, "\"D\"", 0},
        {OP_TERMINATE, NULL, 2, NULL, 0},   {OP_OK, "p/a/a1", 3, "1", 1},
        {OP_RETRY, NULL, 4, NULL, 1},
    };
    RUN(CANCEL_PAR, "{}", par, ENGINE_EXEC_TERMINATED);

    static const struct op loop[] = {
        {OP_START, NULL, 0, NULL, 0},       {OP_STARTED, "all/0/charge", 1, NULL, 0},
        {OP_OK, "all/0/charge", 1, "0", 0}, {OP_STARTED, "all/1/charge", 2, NULL, 0},
        {OP_TERMINATE, NULL, 3, NULL, 0},   {OP_CANCEL, NULL, 4, NULL, 1},
    };
    RUN(CANCEL_LOOP, "{\"xs\": [1, 2, 3]}", loop, ENGINE_EXEC_TERMINATED);

    /* During the saga of a loop's failure: the compensation under way is interrupted. */
    static const struct op saga[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "all/0/charge", 1, NULL, 0},
        {OP_OK, "all/0/charge", 1, "0", 0},
        {OP_STARTED, "all/1/charge", 2, NULL, 0},
        {OP_FAIL_NR, "all/1/charge", 3, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_COMP_STARTED, "all/0/charge", 4, NULL, 0},
        {OP_TERMINATE, NULL, 5, NULL, 0},
        {OP_COMP_OK, "all/0/charge", 6, "null", 1},
    };
    RUN(CANCEL_LOOP, "{\"xs\": [1, 2]}", saga, ENGINE_EXEC_TERMINATED);
}

/* ---- redrive -------------------------------------------------------------------------------- */

static const char *const RLOOP =
    "{\"name\": \"rl\", \"steps\": ["
    " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"concurrency\": 2, \"steps\": ["
    "   {\"id\": \"charge\", \"activity\": {\"url\": \"http://svc/charge\", \"input\": "
    "\"${item}\"}, \"retry\": {\"max_attempts\": 2, \"initial_interval\": \"1s\"}},"
    "   {\"id\": \"note\", \"activity\": {\"url\": \"http://svc/note\", \"input\": "
    "\"${steps.charge.output}\"}}]}},"
    " {\"id\": \"after\", \"activity\": {\"url\": \"http://svc/after\", \"input\": "
    "\"${steps.all.output}\"}}],"
    " \"output\": \"${steps.after.output}\"}";

/* Iteration 1 fails for good, 2 is stopped after its charge; the retry runs 1 again, goes on
 * with 2 after its kept charge, and starts 3 and 4 (items from the loader) as room allows. */
static void redrive_of_a_failed_iteration(void **state)
{
    (void)state;
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "all/0/charge", 1, NULL, 0},
        {OP_OK, "all/0/charge", 1, "\"A\"", 0},
        {OP_STARTED, "all/0/note", 2, NULL, 0},
        {OP_OK, "all/0/note", 2, "\"n0\"", 0},
        {OP_STARTED, "all/2/charge", 3, NULL, 0},
        {OP_STARTED, "all/1/charge", 4, NULL, 0},
        {OP_FAIL, "all/1/charge", 4, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_STARTED, "all/1/charge", 2000, NULL, 0},
        {OP_FAIL, "all/1/charge", 2000, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_OK, "all/2/charge", 2001, "\"C\"", 0},
        {OP_RETRY, NULL, MIN, NULL, 0},
        {OP_STARTED, "all/2/note", MIN + 1, NULL, 0},
        {OP_OK, "all/2/note", MIN + 1, "\"n2\"", 0},
        {OP_STARTED, "all/1/charge", MIN + 2, NULL, 0},
        {OP_OK, "all/1/charge", MIN + 2, "\"B\"", 0},
        {OP_STARTED, "all/3/charge", MIN + 3, NULL, 0},
        {OP_OK, "all/3/charge", MIN + 3, "\"D\"", 0},
        {OP_STARTED, "all/3/note", MIN + 4, NULL, 0},
        {OP_OK, "all/3/note", MIN + 4, "\"n3\"", 0},
        {OP_STARTED, "all/1/note", MIN + 5, NULL, 0},
        {OP_OK, "all/1/note", MIN + 5, "\"n1\"", 0},
        {OP_STARTED, "all/4/charge", MIN + 6, NULL, 0},
        {OP_OK, "all/4/charge", MIN + 6, "\"E\"", 0},
        {OP_STARTED, "all/4/note", MIN + 7, NULL, 0},
        {OP_OK, "all/4/note", MIN + 7, "\"n4\"", 0},
        {OP_STARTED, "after", MIN + 8, NULL, 0},
        {OP_OK, "after", MIN + 8, "\"ok\"", 0},
    };
    struct script_stats x;
    run_both(RLOOP, "{\"xs\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", ops,
             sizeof ops / sizeof ops[0], ENGINE_EXEC_COMPLETED, &x);
    assert_true(x.n_item >= 2);
    assert_int_equal(json_object_size(x.misses), 0);
    stats_free(&x);

    /* More iterations to redo than the concurrency. */
    static const struct op cc[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "all/0/s", 1, NULL, 0},
        {OP_STARTED, "all/1/s", 1, NULL, 0},
        {OP_STARTED, "all/2/s", 2, NULL, 0},
        {OP_FAIL, "all/2/s", 2, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_FAIL, "all/1/s", 3, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_FAIL, "all/0/s", 4, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_RETRY, NULL, 5, NULL, 0},
        {OP_STARTED, "all/1/s", 6, NULL, 0},
        {OP_OK, "all/1/s", 6, "1", 0},
        {OP_STARTED, "all/3/s", 7, NULL, 0},
        {OP_OK, "all/3/s", 7, "3", 0},
        {OP_STARTED, "all/0/s", 8, NULL, 0},
        {OP_OK, "all/0/s", 8, "0", 0},
        {OP_STARTED, "all/2/s", 9, NULL, 0},
        {OP_OK, "all/2/s", 9, "2", 0},
    };
    RUN("{\"name\": \"rc\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": [0, 1, 2, 3],"
        " \"concurrency\": 3, \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": "
        "\"http://svc/s\"}, \"retry\": {\"max_attempts\": 1}}]}}], \"output\": "
        "\"${steps.all.output}\"}",
        "{}", cc, ENGINE_EXEC_COMPLETED);
}

static void redrive_of_a_failed_branch(void **state)
{
    (void)state;
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "p/b/b1", 1, NULL, 0},
        {OP_OK, "p/b/b1", 1, "\"B\"", 0},
        {OP_STARTED, "p/a/a1", 2, NULL, 0},
        {OP_FAIL, "p/a/a1", 2, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_RETRY, NULL, 3, NULL, 0},
        {OP_STARTED, "p/a/a1", 4, NULL, 0},
        {OP_OK, "p/a/a1", 4, "\"A\"", 0},
        {OP_STARTED, "p/a/a2", 5, NULL, 0},
        {OP_OK, "p/a/a2", 5, "\"A2\"", 0},
        {OP_SIGNAL, "p/c/c1", 6, "{\"ok\": true}", 0},
        {OP_STARTED, "after", 7, NULL, 0},
        {OP_OK, "after", 7, "\"done\"", 0},
    };
    RUN("{\"name\": \"rp\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
        " \"a\": [{\"id\": \"a1\", \"activity\": {\"url\": \"http://svc/a1\"}, \"retry\": "
        "{\"max_attempts\": 1}}, {\"id\": \"a2\", \"activity\": {\"url\": \"http://svc/a2\", "
        "\"input\": \"${steps.a1.output}\"}}],"
        " \"b\": [{\"id\": \"b1\", \"activity\": {\"url\": \"http://svc/b1\"}}],"
        " \"c\": [{\"id\": \"c1\", \"wait\": {\"signal\": \"go\"}}]}}},"
        " {\"id\": \"after\", \"activity\": {\"url\": \"http://svc/after\", \"input\": "
        "{\"b\": \"${steps.b1.output}\", \"p\": \"${steps.p.output}\"}}}],"
        " \"output\": \"${steps.after.output}\"}",
        "{}", ops, ENGINE_EXEC_COMPLETED);

    /* A retry is refused once a compensation ran. */
    static const struct op refused[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_RETRY, NULL, 1, NULL, 1},
        {OP_STARTED, "all/0/s", 1, NULL, 0},
        {OP_OK, "all/0/s", 1, "0", 0},
        {OP_STARTED, "all/1/s", 2, NULL, 0},
        {OP_FAIL, "all/1/s", 2, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_RETRY, NULL, 3, NULL, 1},
        {OP_COMP_STARTED, "all/0/s", 4, NULL, 0},
        {OP_COMP_OK, "all/0/s", 4, "null", 0},
        {OP_RETRY, NULL, 5, NULL, 1},
    };
    RUN("{\"name\": \"rr\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": [1, 2],"
        " \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://svc/s\"}, \"retry\": "
        "{\"max_attempts\": 1}, \"compensate\": {\"url\": \"http://svc/undo\"}}]}}]}",
        "{}", refused, ENGINE_EXEC_FAILED);

    /* An inner loop whose items failed is evaluated again (and fails again). */
    static const struct op inner[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "outer/0/inner/0/s", 1, NULL, 0},
        {OP_OK, "outer/0/inner/0/s", 1, "\"S\"", 0},
        {OP_RETRY, NULL, 2, NULL, 0},
    };
    RUN("{\"name\": \"rn\", \"steps\": [{\"id\": \"outer\", \"for_each\": {\"items\": "
        "\"${input.gs}\", \"concurrency\": 1, \"steps\": [{\"id\": \"inner\", \"for_each\": "
        "{\"items\": \"${item.xs}\", \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": "
        "\"http://svc/s\"}}]}}]}}], \"output\": \"${steps.outer.output}\"}",
        "{\"gs\": [{\"xs\": [1]}, {\"xs\": \"no\"}]}", inner, ENGINE_EXEC_FAILED);
}

/* ---- set and fail ---------------------------------------------------------------------------- */

/* A set in each iteration reads the same iteration's activity and the loop's index; a set after
 * the loop reads its output; a fail in one branch of a parallel reads that, and stops the
 * other branch. */
static void set_and_fail_from_stored_rows(void **state)
{
    (void)state;
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL, 0},          {OP_STARTED, "all/0/get", 1, NULL, 0},
        {OP_STARTED, "all/1/get", 1, NULL, 0}, {OP_OK, "all/0/get", 2, "\"A\"", 0},
        {OP_STARTED, "all/2/get", 3, NULL, 0}, {OP_OK, "all/1/get", 4, "\"B\"", 0},
        {OP_OK, "all/2/get", 5, "\"C\"", 0},
    };
    RUN("{\"name\": \"sf\", \"steps\": ["
        " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"concurrency\": 2, "
        "\"steps\": ["
        "   {\"id\": \"get\", \"activity\": {\"url\": \"http://svc/get\", \"input\": \"${item}\"}},"
        "   {\"id\": \"pack\", \"set\": {\"got\": \"${steps.get.output}\", \"i\": "
        "\"${index}\"}}]}},"
        " {\"id\": \"sum\", \"set\": \"${steps.all.output}\"},"
        " {\"id\": \"p\", \"parallel\": {\"branches\": {"
        "   \"a\": [{\"id\": \"wa\", \"wait\": {\"signal\": \"go\"}}],"
        "   \"b\": [{\"id\": \"no\", \"fail\": {\"type\": \"No\", \"message\": "
        "\"${steps.sum.output}\"}}]}}}]}",
        "{\"xs\": [1, 2, 3]}", ops, ENGINE_EXEC_FAILED);
}

/* ---- if ------------------------------------------------------------------------------------- */

/* Each iteration takes its own branch of an if, and a step after the loop reads a step of a
 * branch (loaded from its row); an if at the top reads a step nested in the loop's if. A retry
 * resumes the branch taken, read back from the stored rows; a cancel stops a waiting branch. */
static const char *const IFS =
    "{\"name\": \"ifs\", \"steps\": ["
    " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"concurrency\": 2, "
    "\"steps\": ["
    "   {\"id\": \"pick\", \"if\": \"${item}\", \"then\": ["
    "     {\"id\": \"get\", \"activity\": {\"url\": \"http://svc/get\", \"input\": "
    "\"${index}\"}},"
    "     {\"id\": \"pack\", \"set\": {\"got\": \"${steps.get.output}\"}}],"
    "    \"else\": [{\"id\": \"skip\", \"set\": \"none\"}]}]}},"
    " {\"id\": \"top\", \"if\": \"${steps.all.output}\", \"then\": [{\"id\": \"x\", \"set\": 1}]},"
    " {\"id\": \"gate\", \"if\": \"${input.wait}\", \"then\": ["
    "   {\"id\": \"pay\", \"activity\": {\"url\": \"http://svc/pay\"}, \"retry\": "
    "{\"max_attempts\": 1}},"
    "   {\"id\": \"hold\", \"wait\": {\"signal\": \"go\"}}],"
    "  \"else\": [{\"id\": \"no\", \"set\": \"${steps.all.output}\"}]}],"
    " \"output\": [\"${steps.all.output}\", \"${steps.gate.output}\"]}";

static void if_from_stored_rows(void **state)
{
    (void)state;
    /* top's condition is the loop's output, an array: no boolean, so the execution fails. */
    static const struct op fails[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "all/0/pick/then/get", 1, NULL, 0},
        {OP_OK, "all/0/pick/then/get", 2, "\"A\"", 0},
        {OP_STARTED, "all/2/pick/then/get", 3, NULL, 0},
        {OP_OK, "all/2/pick/then/get", 4, "\"C\"", 0},
    };
    RUN(IFS, "{\"xs\": [true, false, true], \"wait\": true}", fails, ENGINE_EXEC_FAILED);

    static const char *const ok =
        "{\"name\": \"ifs\", \"steps\": ["
        " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"concurrency\": 2, "
        "\"steps\": ["
        "   {\"id\": \"pick\", \"if\": \"${item}\", \"then\": ["
        "     {\"id\": \"get\", \"activity\": {\"url\": \"http://svc/get\", \"input\": "
        "\"${index}\"}}],"
        "    \"else\": [{\"id\": \"skip\", \"set\": \"none\"}]}]}},"
        " {\"id\": \"gate\", \"if\": \"${input.wait}\", \"then\": ["
        "   {\"id\": \"pay\", \"activity\": {\"url\": \"http://svc/pay\", \"input\": "
        "\"${steps.all.output}\"}, \"retry\": {\"max_attempts\": 1}},"
        "   {\"id\": \"hold\", \"wait\": {\"signal\": \"go\"}}],"
        "  \"else\": [{\"id\": \"no\", \"set\": \"${steps.all.output}\"}]},"
        " {\"id\": \"after\", \"set\": \"${steps.gate.output}\"}],"
        " \"output\": [\"${steps.all.output}\", \"${steps.after.output}\"]}";
    static const struct op retried[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "all/0/pick/then/get", 1, NULL, 0},
        {OP_OK, "all/0/pick/then/get", 2, "\"A\"", 0},
        {OP_STARTED, "gate/then/pay", 3, NULL, 0},
        {OP_FAIL, "gate/then/pay", 4, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_RETRY, NULL, 5, NULL, 0},
        {OP_STARTED, "gate/then/pay", 6, NULL, 0},
        {OP_OK, "gate/then/pay", 7, "\"P\"", 0},
        {OP_SIGNAL, "gate/then/hold", 8, "{\"by\": \"ann\"}", 0},
    };
    RUN(ok, "{\"xs\": [true, false], \"wait\": true}", retried, ENGINE_EXEC_COMPLETED);

    static const struct op cancelled[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "all/0/pick/then/get", 1, NULL, 0},
        {OP_OK, "all/0/pick/then/get", 2, "\"A\"", 0},
        {OP_STARTED, "gate/then/pay", 3, NULL, 0},
        {OP_OK, "gate/then/pay", 4, "\"P\"", 0},
        {OP_CANCEL, NULL, 5, NULL, 0},
        {OP_SIGNAL, "gate/then/hold", 6, "1", 1},
    };
    RUN(ok, "{\"xs\": [true], \"wait\": true}", cancelled, ENGINE_EXEC_CANCELLED);

    static const struct op other_way[] = {
        {OP_START, NULL, 0, NULL, 0},
    };
    RUN(ok, "{\"xs\": [false, false, false], \"wait\": false}", other_way, ENGINE_EXEC_COMPLETED);
}

/* ---- child workflows --------------------------------------------------------------------------
 */

/* Children in a loop and in an if, from stored rows: each iteration's child ends out of order,
 * a step after the loop reads them; one fails, the loop stops and a retry asks for the same
 * children again (the completed ones are kept); a cancel stops the one still waiting. */
static const char *const KIDS =
    "{\"name\": \"kids\", \"steps\": ["
    " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"concurrency\": 2, "
    "\"steps\": ["
    "   {\"id\": \"ship\", \"workflow\": {\"name\": \"shipping\", \"input\": {\"x\": "
    "\"${item}\", \"i\": \"${index}\"}}}]}},"
    " {\"id\": \"gate\", \"if\": \"${input.more}\", \"then\": ["
    "   {\"id\": \"audit\", \"workflow\": {\"name\": \"audit\", \"version\": 2, \"input\": "
    "\"${steps.all.output}\"}}]}],"
    " \"output\": [\"${steps.all.output}\", \"${steps.gate.output}\"]}";

static void children_from_stored_rows(void **state)
{
    (void)state;
    static const struct op ok[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_CHILD_OK, "all/1/ship", 1, "\"B\"", 0},
        {OP_CHILD_OK, "all/1/ship", 2, "\"B\"", 1},
        {OP_CHILD_OK, "all/0/ship", 3, "\"A\"", 0},
        {OP_CHILD_OK, "all/2/ship", 4, "\"C\"", 0},
        {OP_CHILD_OK, "gate/then/audit", 5, "{\"ok\": true}", 0},
    };
    RUN(KIDS, "{\"xs\": [1, 2, 3], \"more\": true}", ok, ENGINE_EXEC_COMPLETED);

    static const struct op retried[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_CHILD_OK, "all/0/ship", 1, "\"A\"", 0},
        {OP_CHILD_FAIL, "all/1/ship", 2, "{\"type\": \"NoStock\", \"message\": \"none\"}", 0},
        {OP_RETRY, NULL, 3, NULL, 0},
        {OP_CHILD_OK, "all/1/ship", 4, "\"B\"", 0},
        {OP_CHILD_OK, "all/2/ship", 5, "\"C\"", 0},
        {OP_CANCEL, NULL, 6, NULL, 0},
        {OP_CHILD_OK, "gate/then/audit", 7, "1", 1},
    };
    RUN(KIDS, "{\"xs\": [1, 2, 3], \"more\": true}", retried, ENGINE_EXEC_CANCELLED);
}

/* ---- stale inputs, 202s and timeouts -------------------------------------------------------- */

static const char *const STALE =
    "{\"name\": \"st\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
    " \"a\": [{\"id\": \"a1\", \"activity\": {\"url\": \"http://svc/a1\"}, \"retry\": "
    "{\"max_attempts\": 1}}],"
    " \"b\": [{\"id\": \"b1\", \"activity\": {\"url\": \"http://svc/b1\"}}],"
    " \"c\": [{\"id\": \"c1\", \"activity\": {\"url\": \"http://svc/c1\"}, \"heartbeat_timeout\": "
    "\"10s\"}],"
    " \"d\": [{\"id\": \"d1\", \"sleep\": \"1h\"}],"
    " \"e\": [{\"id\": \"e1\", \"wait\": {\"signal\": \"go\", \"timeout\": \"1h\"}}],"
    " \"f\": [{\"id\": \"f1\", \"activity\": {\"url\": \"http://svc/f1\"}}]}}}]}";

static void stale_inputs_and_accepted_attempts(void **state)
{
    (void)state;
    static const struct op ops[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "p/b/b1", 1, NULL, 0},
        {OP_REDELIVERED, "p/b/b1", 1, NULL, 0},
        {OP_STALE_OK, "p/b/b1", 2, "1", 1},
        {OP_OK, "p/f/f1", 2, "1", 1},
        {OP_TIMER, "p/f/f1", 2, NULL, 1},
        {OP_SIGNAL, "p/d/d1", 2, "{}", 1},
        {OP_STARTED, "p", 2, NULL, 1},
        {OP_OK, "p/a", 2, "1", 1},
        {OP_TIMER, "p/d", 2, NULL, 1},
        {OP_STARTED, "p/c/c1", 3, NULL, 0},
        {OP_ACCEPT, "p/c/c1", 3, NULL, 0},
        {OP_STARTED, "p/a/a1", 4, NULL, 0},
        {OP_FAIL, "p/a/a1", 4, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_STARTED, "p/f/f1", 5, NULL, 1},
        {OP_TIMER, "p/d/d1", HOUR, NULL, 1},
        {OP_SIGNAL, "p/e/e1", 5, "{}", 1},
        {OP_WAIT_TIMEOUT, "p/e/e1", HOUR, NULL, 1},
        {OP_HEARTBEAT, "p/f/f1", 5, NULL, 1},
        {OP_HEARTBEAT, "p/c/c1", 6, NULL, 0},
        {OP_OK, "p/b/b1", 7, "\"B\"", 0},
        {OP_OK, "p/c/c1", 9, "1", 0},
        {OP_OK, "p/c/c1", 10, "1", 1},
        {OP_CANCEL, NULL, 10, NULL, 1},
    };
    RUN(STALE, "{}", ops, ENGINE_EXEC_FAILED);

    static const struct op hb[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "p/c/c1", 1, NULL, 0},
        {OP_ACCEPT, "p/c/c1", 1, NULL, 0},
        {OP_STARTED, "p/b/b1", 1, NULL, 0},
        {OP_STARTED, "p/a/a1", 2, NULL, 0},
        {OP_FAIL, "p/a/a1", 2, "{\"type\": \"Boom\", \"message\": \"no\"}", 0},
        {OP_HEARTBEAT_TIMEOUT, "p/c/c1", 10 * SEC + 1, NULL, 0},
        {OP_OK, "p/b/b1", 11 * SEC, "1", 0},
    };
    RUN(STALE, "{}", hb, ENGINE_EXEC_FAILED);

    /* An accepted attempt's own timeout, with a retry, inside a loop. */
    static const struct op at[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "all/0/s", 1, NULL, 0},
        {OP_ACCEPT, "all/0/s", 1, NULL, 0},
        {OP_ATTEMPT_TIMEOUT, "all/0/s", 5 * SEC + 1, NULL, 0},
        {OP_STARTED, "all/0/s", 7 * SEC, NULL, 0},
        {OP_OK, "all/0/s", 7 * SEC, "\"x\"", 0},
        {OP_STARTED, "all/1/s", 8 * SEC, NULL, 0},
        {OP_OK, "all/1/s", 8 * SEC, "\"y\"", 0},
    };
    RUN("{\"name\": \"at\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": [1, 2], "
        "\"concurrency\": 1, \"steps\": [{\"id\": \"s\", \"activity\": {\"url\": \"http://svc/s\"},"
        " \"timeout\": \"5s\", \"retry\": {\"initial_interval\": \"1s\"}}]}}],"
        " \"output\": \"${steps.all.output}\"}",
        "{}", at, ENGINE_EXEC_COMPLETED);
}

/* ---- the replay scripts of test_flow_redrive.c ---------------------------------------------- */

#define REPLAY_DEFN(COMP_PRE, COMP_PX)                                                             \
    "{\"name\": \"rp\", \"steps\": ["                                                              \
    " {\"id\": \"pre\", \"activity\": {\"url\": \"http://svc/pre\"}" COMP_PRE "},"                 \
    " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.xs}\", \"concurrency\": 2, "           \
    "\"steps\": ["                                                                                 \
    "   {\"id\": \"fan\", \"parallel\": {\"branches\": {"                                          \
    "     \"x\": [{\"id\": \"px\", \"activity\": {\"url\": \"http://svc/x/${index}\", "            \
    "\"input\": \"${item}\"}, \"retry\": {\"max_attempts\": 2, \"initial_interval\": \"1s\"}, "    \
    "\"heartbeat_timeout\": \"1m\"" COMP_PX "}],"                                                  \
    "     \"y\": [{\"id\": \"nap\", \"sleep\": \"1m\"}, {\"id\": \"hold\", \"wait\": "             \
    "{\"signal\": \"go\", \"timeout\": \"1h\"}, \"on_timeout\": \"continue\"}]}}},"                \
    "   {\"id\": \"inner\", \"for_each\": {\"items\": \"${steps.fan.output.x}\", \"steps\": ["     \
    "     {\"id\": \"leaf\", \"activity\": {\"url\": \"http://svc/leaf\", \"input\": {\"o\": "     \
    "\"${loops.all.index}\", \"i\": \"${item}\"}}}]}}]}},"                                         \
    " {\"id\": \"post\", \"activity\": {\"url\": \"http://svc/post\", \"input\": "                 \
    "\"${steps.all.output}\"}}],"                                                                  \
    " \"output\": {\"all\": \"${steps.all.output}\", \"post\": \"${steps.post.output}\"}}"

static const char *const REPLAY = REPLAY_DEFN(
    ", \"compensate\": {\"url\": \"http://svc/undo/pre\"}",
    ", \"compensate\": {\"url\": \"http://svc/undo/x\", \"input\": \"${steps.px.output}\"}");
static const char *const REPLAY_NO_UNDO = REPLAY_DEFN("", "");

static void replay_scripts(void **state)
{
    (void)state;
    static const struct op ok[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "pre", 1, NULL, 0},
        {OP_OK, "pre", 2, "\"P\"", 0},
        {OP_STARTED, "all/0/fan/x/px", 3, NULL, 0},
        {OP_ACCEPT, "all/0/fan/x/px", 3, NULL, 0},
        {OP_HEARTBEAT, "all/0/fan/x/px", 4, NULL, 0},
        {OP_STARTED, "all/1/fan/x/px", 5, NULL, 0},
        {OP_FAIL, "all/1/fan/x/px", 6, "{\"type\": \"T\", \"message\": \"m\"}", 0},
        {OP_STALE_OK, "all/1/fan/x/px", 7, "1", 1},
        {OP_TIMER, "all/0/fan/y/nap", MIN, NULL, 0},
        {OP_TIMER, "all/1/fan/y/nap", MIN, NULL, 0},
        {OP_SIGNAL, "all/0/fan/y/hold", MIN + 1, "{\"s\": 0}", 0},
        {OP_OK, "all/0/fan/x/px", MIN + 2, "[\"a\", \"b\"]", 0},
        {OP_STARTED, "all/0/inner/1/leaf", MIN + 3, NULL, 0},
        {OP_OK, "all/0/inner/1/leaf", MIN + 4, "\"L01\"", 0},
        {OP_STARTED, "all/0/inner/0/leaf", MIN + 5, NULL, 0},
        {OP_STARTED, "all/1/fan/x/px", MIN + 5, NULL, 0},
        {OP_FAIL, "all/1/fan/x/px", MIN + 6, "{\"type\": \"T\", \"message\": \"again\"}", 0},
        {OP_OK, "all/0/inner/0/leaf", MIN + 8, "\"L00\"", 0},
        {OP_RETRY, NULL, HOUR, NULL, 0},
        {OP_STARTED, "all/1/fan/x/px", HOUR + 1, NULL, 0},
        {OP_OK, "all/1/fan/x/px", HOUR + 2, "[\"c\"]", 0},
        {OP_WAIT_TIMEOUT, "all/1/fan/y/hold", 2 * HOUR + MIN, NULL, 0},
        {OP_STARTED, "all/1/inner/0/leaf", 3 * HOUR, NULL, 0},
        {OP_OK, "all/1/inner/0/leaf", 3 * HOUR + 1, "\"L10\"", 0},
        {OP_STARTED, "all/2/fan/x/px", 3 * HOUR + 2, NULL, 0},
        {OP_OK, "all/2/fan/x/px", 3 * HOUR + 3, "[]", 0},
        {OP_TIMER, "all/2/fan/y/nap", 3 * HOUR + MIN, NULL, 0},
        {OP_SIGNAL, "all/2/fan/y/hold", 3 * HOUR + MIN, "2", 0},
        {OP_STARTED, "post", 4 * HOUR, NULL, 0},
        {OP_OK, "post", 4 * HOUR + 1, "\"done\"", 0},
    };
    RUN(REPLAY_NO_UNDO, "{\"xs\": [\"i0\", \"i1\", \"i2\"]}", ok, ENGINE_EXEC_COMPLETED);

    static const struct op cancel[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "pre", 1, NULL, 0},
        {OP_OK, "pre", 2, "\"P\"", 0},
        {OP_STARTED, "all/0/fan/x/px", 3, NULL, 0},
        {OP_OK, "all/0/fan/x/px", 4, "[1]", 0},
        {OP_STARTED, "all/1/fan/x/px", 5, NULL, 0},
        {OP_CANCEL, NULL, 6, NULL, 0},
        {OP_OK, "all/1/fan/x/px", 7, "[2]", 0},
        {OP_COMP_STARTED, "all/1/fan/x/px", 8, NULL, 0},
        {OP_COMP_OK, "all/1/fan/x/px", 9, NULL, 0},
        {OP_COMP_STARTED, "all/0/fan/x/px", 10, NULL, 0},
        {OP_COMP_OK, "all/0/fan/x/px", 11, NULL, 0},
        {OP_COMP_STARTED, "pre", 12, NULL, 0},
        {OP_COMP_OK, "pre", 13, NULL, 0},
    };
    RUN(REPLAY, "{\"xs\": [\"i0\", \"i1\", \"i2\"]}", cancel, ENGINE_EXEC_CANCELLED);

    static const struct op terminate[] = {
        {OP_START, NULL, 0, NULL, 0},
        {OP_STARTED, "pre", 1, NULL, 0},
        {OP_OK, "pre", 2, "\"P\"", 0},
        {OP_STARTED, "all/0/fan/x/px", 3, NULL, 0},
        {OP_OK, "all/0/fan/x/px", 4, "[1]", 0},
        {OP_STARTED, "all/1/fan/x/px", 5, NULL, 0},
        {OP_FAIL_NR, "all/1/fan/x/px", 6, "{\"type\": \"T\", \"message\": \"m\"}", 0},
        {OP_COMP_STARTED, "all/0/fan/x/px", 8, NULL, 0},
        {OP_TERMINATE, NULL, 9, NULL, 0},
    };
    RUN(REPLAY, "{\"xs\": [\"i0\", \"i1\"]}", terminate, ENGINE_EXEC_TERMINATED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parallel_and_later_references_into_it),
        cmocka_unit_test(if_from_stored_rows),
        cmocka_unit_test(children_from_stored_rows),
        cmocka_unit_test(sleep_until_reads_a_nested_step),
        cmocka_unit_test(for_each_out_of_order_with_items_loaded_lazily),
        cmocka_unit_test(for_each_one_at_a_time),
        cmocka_unit_test(nested_loops_with_their_loop_variables),
        cmocka_unit_test(parallel_in_for_each_and_for_each_in_parallel),
        cmocka_unit_test(parallel_fail_fast_and_its_saga),
        cmocka_unit_test(failure_on_entry),
        cmocka_unit_test(for_each_fail_fast_and_its_saga),
        cmocka_unit_test(saga_order_across_branches_and_iterations),
        cmocka_unit_test(cancel_inside_containers),
        cmocka_unit_test(terminate_inside_containers),
        cmocka_unit_test(redrive_of_a_failed_iteration),
        cmocka_unit_test(redrive_of_a_failed_branch),
        cmocka_unit_test(set_and_fail_from_stored_rows),
        cmocka_unit_test(stale_inputs_and_accepted_attempts),
        cmocka_unit_test(replay_scripts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
