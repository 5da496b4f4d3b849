/* The interpreter's state: names, lifetime, and its versioned JSON form for executions.state.
 *
 * The JSON (version 1) is
 *   {"v": 1, "status": "running", "current": 1, "completions": 1,
 *    "steps": [{"status": "completed", "attempt": 2, "scheduled_at": ..., "started_at": ...,
 *               "completed_at": ..., "order": 1}, {"status": "scheduled", ...}]}
 * with "steps" parallel to the definition's steps and every member of a step that is zero left
 * out. The version number is there so that a later shape (sub-steps of parallel branches and
 * for_each bodies) can be read next to this one. Reading checks every type, range and name and
 * the invariants the interpreter keeps, so a damaged or hand-edited state is refused rather than
 * run.
 *
 * Sagas and asynchronous activities added members to version 1 rather than making a version 2,
 * each left out when unused, so a state that does not use them is written exactly as before
 * (and an older keeld still reads it), while one that does is refused by an older keeld:
 *   top level: "cancel_requested": true, "compensating": true;
 *   step: "attempt_started_at" (while running, and only when it differs from started_at, i.e.
 *         for a retry or a redelivery; absent, it reads as started_at), "accepted": true,
 *         "comp": {"status": "scheduled" | "running" | "failed" | "interrupted", "attempt": n,
 *                  "started_at": t (while running), "accepted": true}
 *         (absent: no compensation has run, or it completed and the step is "compensated").
 *
 * The tree (parallel, for_each) added the same way: "steps" holds the top-level steps first,
 * in definition order, then the nested instances in the order they were entered, each with
 * its "path" (a top-level step's path is its id, so it is not written). Container members,
 * each left out when zero: "cursor", "running", "failed", "cancelled", "stopping", "next",
 * "n_items", "redo", "items", and an iteration's "item". A state without nested instances is
 * written exactly as before.
 *
 * Step calls added a code execution's keys (instances under the root "" whose paths have no
 * '/') with "pos" (their first-call position), "differs": true, and "request" (the body that
 * created them, which the rows store apart); and "next_position" at the top level. */
#include "engine/engine.h"

#include "engine/plan.h"

#include "util/alloc.h"

#include <limits.h>
#include <string.h>

#define STATE_VERSION 1

/* ---- names ------------------------------------------------------------------------------- */

static const char *const EXEC_NAMES[] = {"running", "completed", "failed", "cancelled",
                                         "terminated"};
static const char *const STEP_NAMES[] = {"pending",   "scheduled", "running", "waiting",
                                         "completed", "failed",    "skipped", "compensated"};
static const char *const COMP_NAMES[] = {"none", "scheduled", "running", "failed", "interrupted"};
#define N_EXEC_NAMES (sizeof EXEC_NAMES / sizeof EXEC_NAMES[0])
#define N_STEP_NAMES (sizeof STEP_NAMES / sizeof STEP_NAMES[0])
#define N_COMP_NAMES (sizeof COMP_NAMES / sizeof COMP_NAMES[0])

const char *engine_exec_status_name(enum engine_exec_status s)
{
    return (size_t)s < N_EXEC_NAMES ? EXEC_NAMES[s] : "unknown";
}

const char *engine_step_status_name(enum engine_step_status s)
{
    return (size_t)s < N_STEP_NAMES ? STEP_NAMES[s] : "unknown";
}

const char *engine_comp_status_name(enum engine_comp_status s)
{
    return (size_t)s < N_COMP_NAMES ? COMP_NAMES[s] : "unknown";
}

/* The index of name in names[n], or -1. */
static int name_index(const char *const *names, size_t n, const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

long engine_state_find(const struct engine_state *st, const char *path)
{
    if (!st || !path || !st->by_path)
        return -1;
    const json_t *i = json_object_get(st->by_path, path);
    return i ? (long)json_integer_value(i) : -1;
}

/* Room for n instances, zeroed past the used ones. */
static void reserve_steps(struct engine_state *st, size_t n)
{
    void *p = st->steps;
    xgrow_zeroed(&p, &st->cap_steps, n, sizeof *st->steps);
    st->steps = p;
}

/* A code execution's definition (defn_code): its keys are the root's children. */
static bool is_code(const struct defn *d)
{
    return d && d->n_steps == 1 && d->steps[0].kind == DEFN_STEP_CODE;
}

void engine_call_free(struct engine_call *c)
{
    if (!c)
        return;
    json_decref(c->request);
    defn_step_free(c->step);
    free(c->node);
    free(c);
}

struct engine_call *engine_call_new(const char *key, const json_t *request)
{
    struct defn_step *step = NULL;
    json_t *errors = NULL;
    if (!key || !request || defn_parse_step_call(request, key, &step, &errors) != 0) {
        json_decref(errors);
        return NULL;
    }
    struct engine_plan_node *node = xcalloc(1, sizeof *node);
    if (!engine_plan_call_node(step, node)) {
        defn_step_free(step);
        free(node);
        return NULL;
    }
    struct engine_call *c = xcalloc(1, sizeof *c);
    c->request = json_deep_copy(request);
    c->step = step;
    c->node = node;
    return c;
}

/* A code execution's key: a path of one segment under the root "". */
static bool is_key(const struct engine_state *st, const char *path)
{
    return st->code && *path && !strchr(path, '/');
}

/* Appends an instance with this path (copied) and no progress; returns its index. */
static size_t add_instance(struct engine_state *st, const char *path, size_t parent)
{
    reserve_steps(st, st->n_steps + 1);
    size_t i = st->n_steps++;
    struct engine_step *s = &st->steps[i];
    memset(s, 0, sizeof *s);
    s->path = xstrdup(path);
    s->parent = parent;
    json_object_set_new(st->by_path, path, json_integer((json_int_t)i));
    return i;
}

size_t engine_state_add(struct engine_state *st, const char *path, size_t parent)
{
    return add_instance(st, path, parent);
}

void engine_state_init(struct engine_state *st, const struct defn *d)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    st->status = ENGINE_EXEC_RUNNING;
    st->by_path = json_object();
    size_t n = d ? d->n_steps : 0;
    reserve_steps(st, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        size_t k = add_instance(st, d->steps[i].id, ENGINE_NO_PARENT);
        st->steps[k].position = i;
    }
    st->n_top = n;
    st->code = is_code(d);
}

void engine_state_free(struct engine_state *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_steps; i++) {
        free(st->steps[i].path);
        json_decref(st->steps[i].items);
        json_decref(st->steps[i].item);
        engine_call_free(st->steps[i].call);
    }
    free(st->steps);
    json_decref(st->by_path);
    memset(st, 0, sizeof *st);
}

/* ---- to JSON ----------------------------------------------------------------------------- */

static void set_nonzero(json_t *obj, const char *key, int64_t v)
{
    if (v != 0)
        json_object_set_new(obj, key, json_integer((json_int_t)v));
}

/* Instance i's members (not its path); a for_each's items only when with_items. */
static json_t *step_json(const struct engine_state *st, size_t i, bool with_items)
{
    const struct engine_step *s = &st->steps[i];
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(engine_step_status_name(s->status)));
    set_nonzero(o, "attempt", s->attempt);
    set_nonzero(o, "scheduled_at", s->scheduled_at_ms);
    set_nonzero(o, "started_at", s->started_at_ms);
    set_nonzero(o, "completed_at", s->completed_at_ms);
    set_nonzero(o, "order", s->completion_order);
    /* Read back as started_at when absent; a running container, which has no attempt, says 0
     * instead. */
    if (s->attempt_started_at_ms != s->started_at_ms &&
        (s->attempt_started_at_ms != 0 || s->status == ENGINE_STEP_RUNNING))
        json_object_set_new(o, "attempt_started_at",
                            json_integer((json_int_t)s->attempt_started_at_ms));
    if (s->accepted)
        json_object_set_new(o, "accepted", json_true());
    if (s->comp.status != ENGINE_COMP_NONE) {
        json_t *c = json_object();
        json_object_set_new(c, "status", json_string(engine_comp_status_name(s->comp.status)));
        set_nonzero(c, "attempt", s->comp.attempt);
        set_nonzero(c, "started_at", s->comp.attempt_started_at_ms);
        if (s->comp.accepted)
            json_object_set_new(c, "accepted", json_true());
        json_object_set_new(o, "comp", c);
    }
    set_nonzero(o, "cursor", (int64_t)s->cursor);
    set_nonzero(o, "running", s->running);
    set_nonzero(o, "failed", s->failed);
    set_nonzero(o, "cancelled", s->cancelled);
    if (s->stopping)
        json_object_set_new(o, "stopping", json_true());
    set_nonzero(o, "next", (int64_t)s->next_item);
    set_nonzero(o, "n_items", (int64_t)s->n_items);
    set_nonzero(o, "redo", (int64_t)s->redo);
    if (s->items && with_items)
        json_object_set(o, "items", s->items);
    if (s->item)
        json_object_set(o, "item", s->item);
    if (s->call) {
        json_object_set_new(o, "pos", json_integer((json_int_t)s->position));
        if (s->call->differs)
            json_object_set_new(o, "differs", json_true());
        if (with_items)
            json_object_set(o, "request", s->call->request);
    }
    return o;
}

json_t *engine_step_to_json(const struct engine_state *st, size_t i)
{
    return st && i < st->n_steps ? step_json(st, i, false) : NULL;
}

json_t *engine_state_header_to_json(const struct engine_state *st)
{
    if (!st)
        return NULL;
    json_t *j = json_object();
    json_object_set_new(j, "v", json_integer(2));
    json_object_set_new(j, "status", json_string(engine_exec_status_name(st->status)));
    json_object_set_new(j, "current", json_integer((json_int_t)st->current));
    json_object_set_new(j, "completions", json_integer(st->completions));
    if (st->cancel_requested)
        json_object_set_new(j, "cancel_requested", json_true());
    if (st->compensating)
        json_object_set_new(j, "compensating", json_true());
    if (st->next_position > 0)
        json_object_set_new(j, "next_position", json_integer((json_int_t)st->next_position));
    return j;
}

json_t *engine_state_to_json(const struct engine_state *st)
{
    if (!st)
        return NULL;
    json_t *steps = json_array();
    for (size_t i = 0; i < st->n_steps; i++) {
        json_t *o = step_json(st, i, true);
        if (i >= st->n_top)
            json_object_set_new(o, "path", json_string(st->steps[i].path ? st->steps[i].path : ""));
        json_array_append_new(steps, o);
    }
    json_t *j = engine_state_header_to_json(st);
    json_object_set_new(j, "v", json_integer(STATE_VERSION));
    json_object_set_new(j, "steps", steps);
    return j;
}

/* ---- from JSON --------------------------------------------------------------------------- */

/* True when every key of obj is in allowed (NULL-terminated). */
static bool only_keys(const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = strcmp(allowed[i], key) == 0;
        if (!known)
            return false;
    }
    return true;
}

/* Reads obj[key] as an integer in [min, max]; an absent key reads as 0 when optional. */
static bool get_int(const json_t *obj, const char *key, bool optional, int64_t min, int64_t max,
                    int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = 0;
        return optional && min <= 0 && 0 <= max;
    }
    if (!json_is_integer(v))
        return false;
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return false;
    *out = (int64_t)x;
    return true;
}

/* Reads obj[key] as a boolean; an absent key reads as false. */
static bool get_bool(const json_t *obj, const char *key, bool *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = json_is_true(v);
    return !v || json_is_boolean(v);
}

static bool read_comp(const json_t *o, struct engine_compensation *c)
{
    static const char *const keys[] = {"status", "attempt", "started_at", "accepted", NULL};
    int64_t attempt;
    if (!o) {
        memset(c, 0, sizeof *c);
        return true;
    }
    if (!json_is_object(o) || !only_keys(o, keys))
        return false;
    /* "none" is never written: the member is left out instead. */
    int status = name_index(COMP_NAMES, N_COMP_NAMES, json_object_get(o, "status"));
    if (status <= 0)
        return false;
    if (!get_int(o, "attempt", true, 0, INT_MAX, &attempt) ||
        !get_int(o, "started_at", true, INT64_MIN, INT64_MAX, &c->attempt_started_at_ms) ||
        !get_bool(o, "accepted", &c->accepted))
        return false;
    c->status = (enum engine_comp_status)status;
    c->attempt = (int)attempt;
    return true;
}

/* Reads instance JSON into s; key is the instance's path when it is a code execution's key
 * (which must carry its request), else NULL (which must not). */
static bool read_step(const json_t *o, size_t n_steps, struct engine_step *s, const char *key)
{
    static const char *const keys[] = {
        "path",       "status",       "attempt",  "scheduled_at",
        "started_at", "completed_at", "order",    "attempt_started_at",
        "accepted",   "comp",         "cursor",   "running",
        "failed",     "cancelled",    "stopping", "next",
        "n_items",    "redo",         "items",    "item",
        "pos",        "differs",      "request",  NULL};
    int64_t attempt, order, cursor, running, failed, cancelled, next, n_items, redo;
    if (!json_is_object(o) || !only_keys(o, keys))
        return false;
    int status = name_index(STEP_NAMES, N_STEP_NAMES, json_object_get(o, "status"));
    if (status < 0)
        return false;
    if (!get_int(o, "attempt", true, 0, INT_MAX, &attempt) ||
        !get_int(o, "scheduled_at", true, INT64_MIN, INT64_MAX, &s->scheduled_at_ms) ||
        !get_int(o, "started_at", true, INT64_MIN, INT64_MAX, &s->started_at_ms) ||
        !get_int(o, "completed_at", true, INT64_MIN, INT64_MAX, &s->completed_at_ms) ||
        !get_int(o, "order", true, 0, (int64_t)n_steps, &order) ||
        !get_int(o, "attempt_started_at", true, INT64_MIN, INT64_MAX, &s->attempt_started_at_ms) ||
        !get_bool(o, "accepted", &s->accepted) ||
        !read_comp(json_object_get(o, "comp"), &s->comp) ||
        !get_int(o, "cursor", true, 0, INT_MAX, &cursor) ||
        !get_int(o, "running", true, 0, INT_MAX, &running) ||
        !get_int(o, "failed", true, 0, INT_MAX, &failed) ||
        !get_int(o, "cancelled", true, 0, INT_MAX, &cancelled) ||
        !get_bool(o, "stopping", &s->stopping) || !get_int(o, "next", true, 0, INT_MAX, &next) ||
        !get_int(o, "n_items", true, 0, INT_MAX, &n_items) ||
        !get_int(o, "redo", true, 0, INT_MAX, &redo))
        return false;
    const json_t *items = json_object_get(o, "items");
    if (items && (!json_is_array(items) || json_array_size(items) != (size_t)n_items))
        return false;
    if (next > n_items || redo > next)
        return false;
    s->items = items ? json_incref((json_t *)items) : NULL;
    const json_t *item = json_object_get(o, "item");
    s->item = item ? json_incref((json_t *)item) : NULL;
    s->cursor = (size_t)cursor;
    s->running = (int)running;
    s->failed = (int)failed;
    s->cancelled = (int)cancelled;
    s->next_item = (size_t)next;
    s->n_items = (size_t)n_items;
    s->redo = (size_t)redo;
    /* Left out when equal to started_at, and in states written before it existed. */
    if (!json_object_get(o, "attempt_started_at") && status == ENGINE_STEP_RUNNING)
        s->attempt_started_at_ms = s->started_at_ms;
    s->status = (enum engine_step_status)status;
    s->attempt = (int)attempt;
    s->completion_order = (int)order;
    const json_t *request = json_object_get(o, "request");
    int64_t pos;
    bool differs;
    if (!get_int(o, "pos", true, 0, INT_MAX, &pos) || !get_bool(o, "differs", &differs))
        return false;
    if (!key)
        return !request && !json_object_get(o, "pos") && !differs;
    s->call = engine_call_new(key, request);
    if (!s->call)
        return false;
    s->call->differs = differs;
    s->position = (size_t)pos;
    return true;
}

/* The invariants of one step that the interpreter keeps, given its definition (NULL for a
 * nested instance, whose kind is only known once bound to the plan: the checks that need the
 * kind are then left to engine_advance_plan's binding). */
static bool step_consistent(const struct engine_step *s, const struct defn_step *ds)
{
    if (!ds) {
        if ((s->accepted || s->attempt_started_at_ms != 0) && s->status != ENGINE_STEP_RUNNING)
            return false;
        if (s->comp.status != ENGINE_COMP_NONE && s->status != ENGINE_STEP_COMPLETED)
            return false;
        return s->status == ENGINE_STEP_COMPLETED || s->status == ENGINE_STEP_COMPENSATED
                   ? s->completion_order >= 1
                   : s->completion_order == 0;
    }
    bool container = ds->kind == DEFN_STEP_PARALLEL || ds->kind == DEFN_STEP_FOR_EACH ||
                     ds->kind == DEFN_STEP_IF || ds->kind == DEFN_STEP_CODE;
    if (container) {
        if (s->attempt != 0 || s->accepted || s->attempt_started_at_ms != 0 ||
            s->comp.status != ENGINE_COMP_NONE)
            return false;
        switch (s->status) {
        case ENGINE_STEP_PENDING:
            return s->completion_order == 0 && s->started_at_ms == 0;
        case ENGINE_STEP_RUNNING:
        case ENGINE_STEP_FAILED:
        case ENGINE_STEP_SKIPPED:
            return s->completion_order == 0;
        case ENGINE_STEP_COMPLETED:
            return s->completion_order >= 1;
        default:
            return false;
        }
    }
    if (s->items || s->running || s->failed || s->cancelled || s->stopping || s->n_items ||
        s->cursor)
        return false;
    bool activity = ds->kind == DEFN_STEP_ACTIVITY;
    bool timer = ds->kind == DEFN_STEP_SLEEP || ds->kind == DEFN_STEP_SLEEP_UNTIL;
    bool untouched = s->attempt == 0 && s->scheduled_at_ms == 0 && s->started_at_ms == 0 &&
                     s->completed_at_ms == 0 && s->completion_order == 0;
    const struct engine_compensation *c = &s->comp;
    if (s->attempt > 0 && !activity)
        return false;
    /* An attempt's start and its accept exist only while it is in flight. */
    if ((s->accepted || s->attempt_started_at_ms != 0) && s->status != ENGINE_STEP_RUNNING)
        return false;
    /* A compensation belongs to a completed step that has one (a completed compensation leaves
     * only the step's "compensated" behind). */
    if (c->status == ENGINE_COMP_NONE) {
        if (c->attempt != 0 || c->attempt_started_at_ms != 0 || c->accepted)
            return false;
    } else if (!ds->compensate || s->status != ENGINE_STEP_COMPLETED) {
        return false;
    }
    if (c->status != ENGINE_COMP_NONE && c->status != ENGINE_COMP_FAILED && c->attempt < 1)
        return false;
    if ((c->accepted || c->attempt_started_at_ms != 0) && c->status != ENGINE_COMP_RUNNING)
        return false;
    switch (s->status) {
    case ENGINE_STEP_PENDING:
        return untouched;
    case ENGINE_STEP_SKIPPED:
        /* A step interrupted by a cancel keeps its attempts and times; it never ended. */
        return s->completed_at_ms == 0 && s->completion_order == 0;
    case ENGINE_STEP_SCHEDULED:
        return ((activity && s->attempt >= 1) || timer) && s->completed_at_ms == 0 &&
               s->completion_order == 0;
    case ENGINE_STEP_RUNNING:
        return activity && s->attempt >= 1 && s->completed_at_ms == 0 && s->completion_order == 0;
    case ENGINE_STEP_WAITING:
        return (ds->kind == DEFN_STEP_WAIT || ds->kind == DEFN_STEP_WORKFLOW) &&
               s->completed_at_ms == 0 && s->completion_order == 0;
    case ENGINE_STEP_COMPLETED:
    case ENGINE_STEP_COMPENSATED:
        return s->completion_order >= 1;
    case ENGINE_STEP_FAILED:
        return s->completion_order == 0;
    }
    return false;
}

/* The invariants across steps: completion orders are exactly 1..completions, and the steps
 * before, at and after `current` are in the statuses the execution's status allows. */
static bool state_consistent(const struct engine_state *st, const struct defn *d)
{
    bool ok = true;
    bool *seen = xcalloc(st->n_steps + 1, sizeof *seen);
    int orders = 0;
    for (size_t i = 0; i < st->n_steps && ok; i++) {
        const struct engine_step *s = &st->steps[i];
        ok = step_consistent(s, i < st->n_top ? &d->steps[i] : NULL);
        if (ok && s->completion_order > 0) {
            ok = s->completion_order <= st->completions && !seen[s->completion_order];
            seen[s->completion_order] = true;
            orders++;
        }
    }
    free(seen);
    if (!ok || orders != st->completions)
        return false;

    /* The saga: one compensation at a time, and only while it runs. */
    size_t active = 0;
    bool undone = false; /* a compensation ran or runs */
    for (size_t i = 0; i < st->n_steps; i++) {
        const struct engine_step *s = &st->steps[i];
        active += s->comp.status == ENGINE_COMP_SCHEDULED || s->comp.status == ENGINE_COMP_RUNNING;
        undone |= s->comp.status != ENGINE_COMP_NONE || s->status == ENGINE_STEP_COMPENSATED;
    }
    bool running = st->status == ENGINE_EXEC_RUNNING;
    if (active != (st->compensating ? 1u : 0u) || (st->compensating && !running))
        return false;
    if (st->cancel_requested && st->status != ENGINE_EXEC_RUNNING &&
        st->status != ENGINE_EXEC_CANCELLED && st->status != ENGINE_EXEC_TERMINATED)
        return false;

    size_t cur = st->current;
    for (size_t i = 0; i < st->n_top; i++) {
        enum engine_step_status s = st->steps[i].status;
        switch (st->status) {
        case ENGINE_EXEC_RUNNING:
            if (st->compensating) {
                /* Before the current step: done (or undone); the current one: how it ended
                 * (failed, or, after a cancel, whatever the cancel left); after it: never. */
                if (i < cur)
                    ok = s == ENGINE_STEP_COMPLETED || s == ENGINE_STEP_COMPENSATED;
                else if (i == cur)
                    ok = s == ENGINE_STEP_FAILED ||
                         (st->cancel_requested &&
                          (s == ENGINE_STEP_COMPLETED || s == ENGINE_STEP_COMPENSATED ||
                           s == ENGINE_STEP_SKIPPED));
                else
                    ok = s == ENGINE_STEP_SKIPPED;
                break;
            }
            /* Before the current step: done; the current one: in progress (or not yet entered
             * when the execution has not started; only an attempt in flight while a cancel
             * waits for it); after it: not reached. */
            if (i < cur)
                ok = s == ENGINE_STEP_COMPLETED;
            else if (i == cur)
                ok = st->cancel_requested
                         ? s == ENGINE_STEP_RUNNING
                         : s == ENGINE_STEP_SCHEDULED || s == ENGINE_STEP_RUNNING ||
                               s == ENGINE_STEP_WAITING ||
                               (s == ENGINE_STEP_PENDING && st->completions == 0);
            else
                ok = s == ENGINE_STEP_PENDING;
            ok = ok && !undone;
            break;
        case ENGINE_EXEC_COMPLETED:
            ok = s == ENGINE_STEP_COMPLETED && !undone;
            break;
        case ENGINE_EXEC_FAILED:
            /* A failed step is the current one; without one (the output template failed),
             * every step completed and current is past the end. */
            if (i < cur)
                ok = s == ENGINE_STEP_COMPLETED || s == ENGINE_STEP_COMPENSATED;
            else if (i == cur)
                ok = s == ENGINE_STEP_FAILED;
            else
                ok = s == ENGINE_STEP_SKIPPED;
            break;
        case ENGINE_EXEC_CANCELLED:
        case ENGINE_EXEC_TERMINATED:
            /* Not produced by this version of the interpreter; each step was checked above. */
            ok = s != ENGINE_STEP_SCHEDULED && s != ENGINE_STEP_RUNNING && s != ENGINE_STEP_WAITING;
            break;
        }
        if (!ok)
            return false;
    }
    if (st->status == ENGINE_EXEC_RUNNING)
        return cur < st->n_top;
    if (st->status == ENGINE_EXEC_COMPLETED)
        return cur == st->n_top;
    return true;
}

/* next_position of a header (code executions only), and the code flag. */
static bool read_next_position(const json_t *j, const struct defn *d, struct engine_state *st)
{
    int64_t next;
    st->code = is_code(d);
    if (!get_int(j, "next_position", true, 0, INT_MAX, &next) || (next > 0 && !st->code))
        return false;
    st->next_position = (size_t)next;
    return true;
}

/* The index of the instance whose path is path minus its last segment (a code execution's key:
 * the root ""), or -1. */
static long parent_of(const struct engine_state *st, const char *path)
{
    if (is_key(st, path))
        return engine_state_find(st, "");
    const char *slash = strrchr(path, '/');
    if (!slash)
        return -1;
    char *prefix = xstrndup(path, (size_t)(slash - path));
    long i = engine_state_find(st, prefix);
    free(prefix);
    return i;
}

int engine_state_from_json(const json_t *j, const struct defn *d, struct engine_state *st)
{
    static const char *const keys[] = {"v",
                                       "status",
                                       "current",
                                       "completions",
                                       "cancel_requested",
                                       "compensating",
                                       "next_position",
                                       "steps",
                                       NULL};
    int64_t v, current, completions;
    if (!st)
        return -1;
    memset(st, 0, sizeof *st);
    if (!j || !d || !json_is_object(j) || !only_keys(j, keys))
        return -1;
    const json_t *steps = json_object_get(j, "steps");
    size_t n = json_array_size(steps);
    int status = name_index(EXEC_NAMES, N_EXEC_NAMES, json_object_get(j, "status"));
    if (!get_int(j, "v", false, STATE_VERSION, STATE_VERSION, &v) || status < 0 ||
        !get_int(j, "current", false, 0, (int64_t)d->n_steps, &current) ||
        !get_int(j, "completions", false, 0, (int64_t)n, &completions) || !json_is_array(steps) ||
        n < d->n_steps || !get_bool(j, "cancel_requested", &st->cancel_requested) ||
        !get_bool(j, "compensating", &st->compensating) || !read_next_position(j, d, st))
        goto Fail;

    st->status = (enum engine_exec_status)status;
    st->current = (size_t)current;
    st->completions = (int)completions;
    st->by_path = json_object();
    reserve_steps(st, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(steps, i);
        const char *path;
        long parent = -1;
        if (i < d->n_steps) {
            path = d->steps[i].id;
            if (json_object_get(o, "path"))
                goto Fail;
        } else {
            /* A nested instance comes after its parent, and its path is new. */
            path = json_string_value(json_object_get(o, "path"));
            if (!path || engine_state_find(st, path) >= 0 || (parent = parent_of(st, path)) < 0)
                goto Fail;
        }
        size_t k = add_instance(st, path, parent < 0 ? ENGINE_NO_PARENT : (size_t)parent);
        if (i < d->n_steps)
            st->steps[k].position = i;
        char *kept = st->steps[k].path;
        if (!read_step(o, n, &st->steps[k], is_key(st, path) ? path : NULL))
            goto Fail;
        st->steps[k].path = kept;
    }
    st->n_top = d->n_steps;
    if (!state_consistent(st, d))
        goto Fail;
    return 0;

Fail:
    engine_state_free(st);
    return -1;
}

/* ---- partial states (one row per instance) ------------------------------------------------ */

int engine_state_begin(struct engine_state *st, const json_t *header, const struct defn *d)
{
    static const char *const keys[] = {"v",
                                       "status",
                                       "current",
                                       "completions",
                                       "cancel_requested",
                                       "compensating",
                                       "next_position",
                                       NULL};
    int64_t v, current, completions;
    if (!st)
        return -1;
    memset(st, 0, sizeof *st);
    if (!header || !d || !json_is_object(header) || !only_keys(header, keys))
        return -1;
    int status = name_index(EXEC_NAMES, N_EXEC_NAMES, json_object_get(header, "status"));
    if (!get_int(header, "v", false, 2, 2, &v) || status < 0 ||
        !get_int(header, "current", false, 0, (int64_t)d->n_steps, &current) ||
        !get_int(header, "completions", false, 0, INT_MAX, &completions) ||
        !get_bool(header, "cancel_requested", &st->cancel_requested) ||
        !get_bool(header, "compensating", &st->compensating) || !read_next_position(header, d, st))
        goto Fail;
    st->status = (enum engine_exec_status)status;
    st->current = (size_t)current;
    st->completions = (int)completions;
    st->n_top = d->n_steps;
    st->by_path = json_object();
    reserve_steps(st, d->n_steps ? d->n_steps : 1);
    return 0;
Fail:
    engine_state_free(st);
    return -1;
}

long engine_state_put(struct engine_state *st, const char *path, const json_t *step)
{
    /* "" is a path: a code execution's root (defn_code) has it. */
    if (!st || !st->by_path || !path || engine_state_find(st, path) >= 0)
        return -1;
    long parent = -1;
    bool key = is_key(st, path);
    if (strchr(path, '/') || key) {
        parent = parent_of(st, path);
        if (parent < 0)
            return -1;
    } else if (st->n_steps >= st->n_top) {
        return -1; /* the top-level steps come first, all of them */
    }
    struct engine_step s = {0};
    if (!read_step(step, (size_t)INT_MAX, &s, key ? path : NULL) ||
        s.completion_order > st->completions) {
        json_decref(s.items);
        json_decref(s.item);
        engine_call_free(s.call);
        return -1;
    }
    size_t k = add_instance(st, path, parent < 0 ? ENGINE_NO_PARENT : (size_t)parent);
    char *kept = st->steps[k].path;
    st->steps[k] = s;
    st->steps[k].path = kept;
    st->steps[k].parent = parent < 0 ? ENGINE_NO_PARENT : (size_t)parent;
    if (parent < 0)
        st->steps[k].position = k;
    return (long)k;
}

int engine_state_ready(struct engine_state *st)
{
    if (!st || st->n_steps < st->n_top)
        return -1;
    for (size_t i = 0; i < st->n_top; i++)
        if (strchr(st->steps[i].path, '/'))
            return -1;
    return 0;
}
