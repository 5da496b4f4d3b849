/* The interpreter: engine_advance and the step transitions it is made of.
 *
 * One call applies one input. It first decides, without touching anything, whether the input
 * applies (the step it names is the current one, in the status and attempt it expects); if not
 * it only sets fx->stale. Otherwise it moves the state through a small set of transitions:
 *
 *   enter_node      a plan node starts: a sequence enters its first child, a leaf enter_step
 *   enter_step      a step becomes current: schedules its attempt, timer or wait
 *   complete_node   a step (or container) has its output; it ends, and its parent is told
 *                   (node_ended)
 *   fail_node       it failed for good; it ends the same way with a failure
 *   node_ended      hands a node's outcome to its parent container (child_ended), or, for the
 *                   root, ends the execution (completed) or starts the saga (failed, cancelled)
 *   child_ended     the routing point of a container: a sequence enters its next child or ends
 *
 *   begin_saga      a step failed for good or a cancel reached its safe point: the saga starts
 *   saga_next       the next compensation in reverse completion order, or end_saga
 *   end_saga        the execution ends failed or cancelled
 *
 * An activity call in progress — a step's attempt or a compensation's — is run by activity.c
 * (attempts, retries and backoff, timeouts, heartbeats, 202 + task tokens). This file decides
 * which call an input is about (input_call), copies that call's state in and out of the step
 * (load_call, store_call), maps what the module emits to the step's events and tasks, and
 * decides what the end of a call means (the step completes or fails, the saga goes on).
 *
 * Control flow goes through the plan tree (plan.h): an instance that ends hands its outcome to
 * its parent (node_ended): the root sequence (st->current), a branch's or an iteration's
 * sequence (its cursor), a parallel or a for_each (container_child_ended, container_check).
 * The state may be partial: instances not in it come through the loader (engine.h).
 *
 * Choices the contract leaves open:
 *   - A sleep or sleep_until step is "scheduled" while its timer runs; a wait step is "waiting".
 *   - A step's attempt counts the attempt scheduled or in flight, so a retry scheduled after
 *     attempt 1 failed shows attempt 2 while it waits.
 *   - Events about the whole execution have step -1. attempt_started and attempt_failed carry
 *     their attempt; step_completed and step_failed carry the step's last attempt (0 for kinds
 *     without attempts); the rest carry 0.
 *   - The error of a failed step is the attempt's error (type and message kept, other members
 *     too) plus "step" (its id) and "attempts"; Keel's own errors are built the same way, and an
 *     expression error adds "pointer", the JSON Pointer of the failing string in the
 *     definition.
 *   - Whenever the execution ends, when a signal completes a wait, and when a cancel interrupts
 *     a step, fx->cancel_tasks is set; the runner deletes the other pending tasks before
 *     inserting fx->tasks. Timeouts of an accepted attempt are dropped precisely instead
 *     (fx->cancels), since other tasks may be pending then.
 *   - The choices about one activity call (redeliveries, when timeouts apply) are activity.h's. */
#include "engine/engine.h"

#include "engine/activity.h"
#include "engine/plan.h"

#include "defn/duration.h"
#include "defn/expr.h"
#include "util/alloc.h"
#include "util/jsontext.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

/* The budget of a step's url and input is the module's; engine.h promises the same one. */
_Static_assert(ENGINE_MAX_PAYLOAD_BYTES == ACTIVITY_MAX_PAYLOAD_BYTES,
               "one budget for every evaluated template");

/* Everything one engine_advance call works with. */
struct run {
    const struct engine_plan *p; /* the tree control flow goes through */
    const struct defn *d;        /* p->d */
    struct engine_state *st;
    json_t *ctx;
    const struct engine_input *in;
    struct engine_effects *fx;
    int64_t now;
    bool *changed; /* per instance: its row must be written */
    size_t cap_changed;
    size_t cap_events, cap_tasks, cap_cancels;
    json_t *scope;    /* the evaluation context of instance scope_of (nested plans only) */
    long scope_of;    /* -1: the root's */
    json_t *retired;  /* scopes replaced during this call: a call may still borrow one */
    bool load_failed; /* the loader failed: the call's effects are void (returns -1) */
};

/* ---- instances not loaded yet ------------------------------------------------------------ */

static bool bind_from(const struct engine_plan *p, struct engine_state *st, size_t first);

/* Forgets the cached evaluation scope (loading added results it does not hold); a call that
 * still borrows it keeps it alive until the end of the engine call. */
static void drop_scope(struct run *r)
{
    if (r->scope)
        json_array_append_new(r->retired, r->scope);
    r->scope = NULL;
}

/* Makes sure every instance of the execution is in the state (the saga, terminate, stopping a
 * container, a redrive and a container's output look at many). */
static void need_all(struct run *r)
{
    struct engine_state *st = r->st;
    if (!st->loader || st->all_loaded)
        return;
    size_t before = st->n_steps;
    if (st->loader->load_all(st->loader->arg, st, r->ctx) != 0 || !bind_from(r->p, st, before))
        r->load_failed = true;
    st->all_loaded = true;
    drop_scope(r);
}

/* Loads the instances at these paths that exist and are not in the state. */
static void need_paths(struct run *r, const char *const *paths, size_t n)
{
    struct engine_state *st = r->st;
    if (n == 0 || !st->loader || st->all_loaded)
        return;
    size_t before = st->n_steps;
    if (st->loader->load(st->loader->arg, st, r->ctx, paths, n) != 0 ||
        !bind_from(r->p, st, before))
        r->load_failed = true;
    drop_scope(r);
}

/* The instance at path, loaded when it exists but is not in the state; -1 when none. */
static long find_instance(struct run *r, const char *path)
{
    long i = engine_state_find(r->st, path);
    if (i < 0 && r->st->loader && !r->st->all_loaded) {
        need_paths(r, &path, 1);
        i = engine_state_find(r->st, path);
    }
    return i;
}

static struct engine_step *S(const struct run *r, size_t i)
{
    return &r->st->steps[i];
}

static const struct engine_plan_node *N(const struct run *r, size_t i)
{
    return r->st->steps[i].node;
}

/* A branch's or an iteration's sequence: an instance with no step of its own. */
static bool is_sequence(const struct run *r, size_t i)
{
    return N(r, i)->kind == ENGINE_NODE_SEQUENCE;
}

/* ---- effects ----------------------------------------------------------------------------- */

const char *engine_task_kind_name(enum engine_task_kind k)
{
    switch (k) {
    case ENGINE_TASK_ACTIVITY:
        return "activity";
    case ENGINE_TASK_TIMER:
        return "timer";
    case ENGINE_TASK_WAIT_TIMEOUT:
        return "wait_timeout";
    case ENGINE_TASK_COMPENSATION:
        return "compensation";
    case ENGINE_TASK_ATTEMPT_TIMEOUT:
        return "attempt_timeout";
    case ENGINE_TASK_HEARTBEAT_TIMEOUT:
        return "heartbeat_timeout";
    case ENGINE_TASK_COMPENSATION_TIMEOUT:
        return "compensation_timeout";
    case ENGINE_TASK_COMPENSATION_HEARTBEAT_TIMEOUT:
        return "compensation_heartbeat_timeout";
    case ENGINE_TASK_CANCEL_DEADLINE:
        return "cancel_deadline";
    }
    return "unknown";
}

#define LAST_TASK_KIND ENGINE_TASK_CANCEL_DEADLINE

int engine_task_kind_from_name(const char *name, enum engine_task_kind *out)
{
    if (!name || !out)
        return -1;
    for (int k = 0; k <= (int)LAST_TASK_KIND; k++) {
        if (strcmp(name, engine_task_kind_name((enum engine_task_kind)k)) == 0) {
            *out = (enum engine_task_kind)k;
            return 0;
        }
    }
    return -1;
}

bool engine_task_sends(enum engine_task_kind k)
{
    return k == ENGINE_TASK_ACTIVITY || k == ENGINE_TASK_COMPENSATION;
}

int engine_input_for_task(enum engine_task_kind k, struct engine_input *in)
{
    if (!in)
        return -1;
    enum engine_input_kind kind;
    bool compensation = false;
    switch (k) {
    case ENGINE_TASK_COMPENSATION:
        compensation = true;
        /* fall through */
    case ENGINE_TASK_ACTIVITY:
        kind = ENGINE_IN_ATTEMPT_STARTED;
        break;
    case ENGINE_TASK_TIMER:
        kind = ENGINE_IN_TIMER_FIRED;
        break;
    case ENGINE_TASK_WAIT_TIMEOUT:
        kind = ENGINE_IN_WAIT_TIMED_OUT;
        break;
    case ENGINE_TASK_COMPENSATION_TIMEOUT:
        compensation = true;
        /* fall through */
    case ENGINE_TASK_ATTEMPT_TIMEOUT:
        kind = ENGINE_IN_ATTEMPT_TIMED_OUT;
        break;
    case ENGINE_TASK_COMPENSATION_HEARTBEAT_TIMEOUT:
        compensation = true;
        /* fall through */
    case ENGINE_TASK_HEARTBEAT_TIMEOUT:
        kind = ENGINE_IN_HEARTBEAT_TIMED_OUT;
        break;
    case ENGINE_TASK_CANCEL_DEADLINE:
        kind = ENGINE_IN_CANCEL_DEADLINE;
        break;
    default:
        return -1;
    }
    in->kind = kind;
    in->compensation = compensation;
    return 0;
}

char *engine_child_id(const char *execution_id, const char *path)
{
    const char *e = execution_id ? execution_id : "";
    char *id = xasprintf("%s:%s", e, path ? path : "");
    for (char *c = id + strlen(e) + 1; *c; c++)
        if (*c == '/')
            *c = ':';
    size_t len = strlen(id);
    if (len <= ENGINE_CHILD_ID_MAX)
        return id;
    /* FNV-1a: ids need to be distinct, not secret (the runner refuses to adopt an execution
     * that is not this step's child). */
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t k = 0; k < len; k++) {
        h ^= (unsigned char)id[k];
        h *= UINT64_C(1099511628211);
    }
    char *shortened = xasprintf("%.111s:%016llx", id, (unsigned long long)h);
    free(id);
    return shortened;
}

void engine_effects_free(struct engine_effects *fx)
{
    if (!fx)
        return;
    for (size_t i = 0; i < fx->n_events; i++)
        json_decref(fx->events[i].data);
    free(fx->events);
    for (size_t i = 0; i < fx->n_tasks; i++)
        json_decref(fx->tasks[i].payload);
    free(fx->tasks);
    free(fx->changed_steps);
    free(fx->cancels);
    for (size_t i = 0; i < fx->n_children; i++) {
        free(fx->children[i].id);
        free(fx->children[i].path);
        json_decref(fx->children[i].input);
    }
    free(fx->children);
    for (size_t i = 0; i < fx->n_child_stops; i++)
        free(fx->child_stops[i].path);
    free(fx->child_stops);
    json_decref(fx->output);
    json_decref(fx->error);
    memset(fx, 0, sizeof *fx);
}

/* Appends an event; data is stolen (NULL stands for {}). */
static void emit(struct run *r, const char *type, long step, int attempt, json_t *data)
{
    struct engine_effects *fx = r->fx;
    if (fx->n_events == r->cap_events) {
        r->cap_events = r->cap_events ? 2 * r->cap_events : 8;
        fx->events = xrealloc(fx->events, r->cap_events * sizeof *fx->events);
    }
    fx->events[fx->n_events++] =
        (struct engine_event){type, step, attempt, data ? data : json_object()};
}

/* Appends a task; payload is stolen. */
static void add_task(struct run *r, enum engine_task_kind kind, size_t step, int attempt,
                     int64_t due_at_ms, json_t *payload)
{
    struct engine_effects *fx = r->fx;
    if (fx->n_tasks == r->cap_tasks) {
        r->cap_tasks = r->cap_tasks ? 2 * r->cap_tasks : 4;
        fx->tasks = xrealloc(fx->tasks, r->cap_tasks * sizeof *fx->tasks);
    }
    fx->tasks[fx->n_tasks++] = (struct engine_task){kind, step, attempt, due_at_ms, payload};
}

/* Asks the runner to delete the pending tasks of kind for step. */
static void cancel_kind(struct run *r, enum engine_task_kind kind, size_t step)
{
    struct engine_effects *fx = r->fx;
    for (size_t i = 0; i < fx->n_cancels; i++)
        if (fx->cancels[i].kind == kind && fx->cancels[i].step == step)
            return;
    if (fx->n_cancels == r->cap_cancels) {
        r->cap_cancels = r->cap_cancels ? 2 * r->cap_cancels : 4;
        fx->cancels = xrealloc(fx->cancels, r->cap_cancels * sizeof *fx->cancels);
    }
    fx->cancels[fx->n_cancels++] = (struct engine_task_cancel){kind, step};
}

/* Drops the tasks this call added for instance i, which stopped in the same call: the runner
 * inserts fx->tasks after applying fx->cancels, so a cancel would not reach them. */
static void drop_new_tasks(struct run *r, size_t i)
{
    struct engine_effects *fx = r->fx;
    size_t k = 0;
    for (size_t j = 0; j < fx->n_tasks; j++) {
        if (fx->tasks[j].step == i)
            json_decref(fx->tasks[j].payload);
        else
            fx->tasks[k++] = fx->tasks[j];
    }
    fx->n_tasks = k;
}

static void mark_changed(struct run *r, size_t i)
{
    void *p = r->changed;
    xgrow_zeroed(&p, &r->cap_changed, i + 1, sizeof *r->changed);
    r->changed = p;
    r->changed[i] = true;
}

/* {key: a copy of v}: events, the context and fx share no value, so none can change another. */
static json_t *wrap(const char *key, const json_t *v)
{
    json_t *o = json_object();
    json_object_set_new(o, key, json_deep_copy(v));
    return o;
}

static json_t *time_json(int64_t ms)
{
    char text[32];
    time_format_rfc3339(ms, text);
    return json_string(text);
}

/* ---- the expression context -------------------------------------------------------------- */

/* ctx.steps.<path of instance i>, created when missing. Borrowed. Outputs and errors are
 * keyed by path, which is the step's id at the top level. */
static json_t *ctx_step(struct run *r, size_t i)
{
    json_t *steps = json_object_get(r->ctx, "steps");
    if (!json_is_object(steps)) {
        steps = json_object();
        json_object_set_new(r->ctx, "steps", steps);
    }
    const char *path = S(r, i)->path;
    json_t *entry = json_object_get(steps, path);
    if (!json_is_object(entry)) {
        entry = json_object();
        json_object_set_new(steps, path, entry);
        /* A cached scope holds the entries that existed when it was built. */
        if (r->scope) {
            json_array_append_new(r->retired, r->scope);
            r->scope = NULL;
        }
    }
    return entry;
}

/* The item indexes of the loops around instance i (-1: the root, none), outermost first, and
 * the iteration instances they come from. Returns how many. */
static size_t loops_of(const struct run *r, long i, size_t *idx, size_t *iters, size_t max)
{
    size_t n = 0;
    for (size_t a = (size_t)i; i >= 0 && a != ENGINE_NO_PARENT; a = S(r, a)->parent) {
        const struct engine_plan_node *node = N(r, a);
        if (node->kind == ENGINE_NODE_SEQUENCE && node->parent &&
            node->parent->kind == ENGINE_NODE_FOR_EACH && n < max) {
            idx[n] = S(r, a)->position;
            iters[n] = a;
            n++;
        }
    }
    for (size_t k = 0; k < n / 2; k++) {
        size_t t = idx[k];
        idx[k] = idx[n - 1 - k];
        idx[n - 1 - k] = t;
        t = iters[k];
        iters[k] = iters[n - 1 - k];
        iters[n - 1 - k] = t;
    }
    return n;
}

#define MAX_LOOPS 64

/* The context templates of instance i (-1: the definition's output) are evaluated in. A flat
 * definition uses ctx as it is (paths are ids). In a nested one, "steps" maps each step id to
 * the result of the instance of that step the template can see: the same iteration's for a
 * step inside the loops around i, the only one for a step outside every loop; and "item",
 * "index" and "loops" describe the loops around i. Borrowed; valid until the call ends. */
/* Reads the execution's input into ctx when the templates of instance i (-1: the output) may
 * use it and it is not there yet. */
static void need_input(struct run *r, long i)
{
    const struct engine_loader *l = r->st->loader;
    if (!l || !l->input || json_object_get(r->ctx, "input"))
        return;
    if (!(i < 0 ? r->p->output_reads_input : N(r, (size_t)i)->reads_input))
        return;
    json_t *input = NULL;
    if (l->input(l->arg, &input) != 0 || !input) {
        r->load_failed = true;
        input = json_null();
    }
    json_object_set_new(r->ctx, "input", input);
    drop_scope(r);
}

static const json_t *scope_ctx(struct run *r, long i)
{
    need_input(r, i);
    if (!r->p->nested)
        return r->ctx;
    if (r->scope && r->scope_of == i)
        return r->scope;
    size_t idx[MAX_LOOPS], iters[MAX_LOOPS];
    size_t n = loops_of(r, i, idx, iters, MAX_LOOPS);
    const struct engine_plan_node *loops[MAX_LOOPS];
    for (size_t k = 0; k < n; k++)
        loops[k] = N(r, iters[k])->parent;

    /* Only the steps the templates read: each at the instance this scope sees. */
    const struct engine_plan_node *const *refs = i < 0 ? r->p->output_refs : N(r, (size_t)i)->refs;
    size_t n_refs = i < 0 ? r->p->n_output_refs : N(r, (size_t)i)->n_refs;
    char **paths = xcalloc(n_refs ? n_refs : 1, sizeof *paths);
    const char **missing = xcalloc(n_refs ? n_refs : 1, sizeof *missing);
    size_t n_missing = 0;
    json_t *all = json_object_get(r->ctx, "steps");
    for (size_t k = 0; k < n_refs; k++) {
        const struct engine_plan_node *node = refs[k];
        if (node->loop_depth > n ||
            node->loop != (node->loop_depth ? loops[node->loop_depth - 1] : NULL))
            continue;
        paths[k] = engine_plan_path(node, idx, node->loop_depth);
        if (paths[k] && !json_object_get(all, paths[k]) && engine_state_find(r->st, paths[k]) < 0)
            missing[n_missing++] = paths[k];
    }
    need_paths(r, missing, n_missing);
    if (r->scope)
        json_array_append_new(r->retired, r->scope);
    r->scope = NULL;

    json_t *view = json_object();
    json_object_set(view, "input", json_object_get(r->ctx, "input"));
    json_object_set(view, "execution", json_object_get(r->ctx, "execution"));
    all = json_object_get(r->ctx, "steps");
    json_t *steps = json_object();
    for (size_t k = 0; k < n_refs; k++) {
        json_t *e = paths[k] ? json_object_get(all, paths[k]) : NULL;
        if (e)
            json_object_set(steps, refs[k]->id, e);
        free(paths[k]);
    }
    free(paths);
    free(missing);
    json_object_set_new(view, "steps", steps);
    if (n > 0) {
        json_t *named = json_object();
        for (size_t k = 0; k < n; k++) {
            json_t *item = S(r, iters[k])->item;
            json_object_set_new(
                named, loops[k]->id,
                json_pack("{s:O?, s:I}", "item", item, "index", (json_int_t)idx[k]));
            if (k == n - 1) {
                json_object_set(view, "item", item ? item : json_null());
                json_object_set_new(view, "index", json_integer((json_int_t)idx[k]));
            }
        }
        json_object_set_new(view, "loops", named);
    }
    r->scope = view;
    r->scope_of = i;
    return view;
}

/* The JSON Pointer of plan node n in the definition ("/steps/1/parallel/branches/email/0"),
 * written to buf. */
static void node_pointer(const struct engine_plan_node *n, char *buf, size_t size)
{
    if (!n->parent) {
        snprintf(buf, size, "/steps");
        return;
    }
    node_pointer(n->parent, buf, size);
    size_t len = strlen(buf);
    if (n->kind == ENGINE_NODE_SEQUENCE && n->branch)
        snprintf(buf + len, size - len, "/parallel/branches/%s", n->branch);
    else if (n->kind == ENGINE_NODE_SEQUENCE)
        snprintf(buf + len, size - len, "/for_each/steps");
    else
        snprintf(buf + len, size - len, "/%zu", n->index);
}

/* ---- errors ------------------------------------------------------------------------------ */

/* {"type", "message", "step", "attempts"} for an error Keel itself finds in a step. */
static json_t *step_error(struct run *r, size_t i, const char *type, const char *message)
{
    return json_pack("{s:s, s:s, s:s, s:i}", "type", type, "message", message, "step",
                     N(r, i)->id ? N(r, i)->id : S(r, i)->path, "attempts", S(r, i)->attempt);
}

/* An expression error of step i (or of the definition's output when step is -1); base is the
 * JSON Pointer of the template in the definition. */
static json_t *expression_error(struct run *r, long step, const char *base,
                                const struct expr_error *e)
{
    json_t *err = step >= 0 ? step_error(r, (size_t)step, "expression", e->message)
                            : json_pack("{s:s, s:s}", "type", "expression", "message", e->message);
    char *pointer = xasprintf("%s%s", base, e->pointer);
    json_object_set_new(err, "pointer", json_string(pointer));
    free(pointer);
    return err;
}

/* ---- activity calls ---------------------------------------------------------------------- */

/* Makes err (an error of step i built by step_error) an error of the step's compensation: its
 * attempts are the compensation's, and it says so. */
static void as_compensation_error(struct run *r, size_t i, json_t *err)
{
    json_object_set_new(err, "attempts", json_integer(S(r, i)->comp.attempt));
    json_object_set_new(err, "compensation", json_true());
}

/* One activity call of a step, its own attempt or its compensation's, as activity.c sees it:
 * load_call copies the call's state out of the engine state, the module applies the input,
 * store_call copies the state back, and the sink maps what the module emits to the step. The
 * struct points into itself (ac.opt, sink.arg): set it up with load_call and never copy it. */
struct call {
    struct run *r;
    size_t step;
    bool compensation;
    char pointer[1024]; /* "/steps/<i>/activity", ".../compensate", deeper for nested steps */
    struct activity_options opt;
    struct activity_call ac;
    struct activity_sink sink;
};

static enum engine_task_kind call_task_kind(const struct call *c, enum activity_task_kind k)
{
    switch (k) {
    case ACTIVITY_TASK_SEND:
        return c->compensation ? ENGINE_TASK_COMPENSATION : ENGINE_TASK_ACTIVITY;
    case ACTIVITY_TASK_TIMEOUT:
        return c->compensation ? ENGINE_TASK_COMPENSATION_TIMEOUT : ENGINE_TASK_ATTEMPT_TIMEOUT;
    case ACTIVITY_TASK_HEARTBEAT_TIMEOUT:
        break;
    }
    return c->compensation ? ENGINE_TASK_COMPENSATION_HEARTBEAT_TIMEOUT
                           : ENGINE_TASK_HEARTBEAT_TIMEOUT;
}

static void call_event(void *arg, const char *type, int attempt, json_t *data)
{
    struct call *c = arg;
    emit(c->r, type, (long)c->step, attempt, data);
}

static void call_task(void *arg, enum activity_task_kind kind, int attempt, int64_t due_at_ms,
                      json_t *payload)
{
    struct call *c = arg;
    add_task(c->r, call_task_kind(c, kind), c->step, attempt, due_at_ms, payload);
}

static void call_cancel(void *arg, enum activity_task_kind kind)
{
    struct call *c = arg;
    cancel_kind(c->r, call_task_kind(c, kind), c->step);
}

static enum activity_status comp_call_status(enum engine_comp_status s)
{
    return s == ENGINE_COMP_SCHEDULED ? ACTIVITY_SCHEDULED
           : s == ENGINE_COMP_RUNNING ? ACTIVITY_RUNNING
                                      : ACTIVITY_IDLE;
}

static enum activity_status step_call_status(enum engine_step_status s)
{
    return s == ENGINE_STEP_SCHEDULED ? ACTIVITY_SCHEDULED
           : s == ENGINE_STEP_RUNNING ? ACTIVITY_RUNNING
                                      : ACTIVITY_IDLE;
}

/* The context the call's templates are evaluated in, built when first needed. */
static const json_t *call_scope(void *arg)
{
    const struct call *c = arg;
    return scope_ctx(c->r, (long)c->step);
}

/* Sets c up for step i's own call or, with compensation, its compensation (which the step must
 * have), with the state found in r->st. */
static void load_call(struct run *r, size_t i, bool compensation, struct call *c)
{
    const struct defn_step *ds = N(r, i)->step;
    memset(c, 0, sizeof *c);
    c->r = r;
    c->step = i;
    c->compensation = compensation;
    node_pointer(N(r, i), c->pointer, sizeof c->pointer - 16);
    strcat(c->pointer, compensation ? "/compensate" : "/activity");
    activity_options_from_defn(&c->opt, compensation ? ds->compensate : &ds->activity, c->pointer);
    c->ac.opt = &c->opt;
    c->ac.name = ds->id;
    c->ac.compensation = compensation;
    c->ac.ctx = NULL;
    c->ac.ctx_fn = call_scope;
    c->ac.ctx_arg = c;
    const struct engine_step *s = S(r, i);
    /* A compensation has no schedule_to_close (the parser never sets one), so the step's own
     * scheduling time serves it as well and the state needs no field for it. */
    c->ac.scheduled_at_ms = s->scheduled_at_ms;
    if (compensation) {
        c->ac.status = comp_call_status(s->comp.status);
        c->ac.attempt = s->comp.attempt;
        c->ac.attempt_started_at_ms = s->comp.attempt_started_at_ms;
        c->ac.accepted = s->comp.accepted;
    } else {
        c->ac.status = step_call_status(s->status);
        c->ac.attempt = s->attempt;
        c->ac.attempt_started_at_ms = s->attempt_started_at_ms;
        c->ac.accepted = s->accepted;
    }
    c->sink = (struct activity_sink){c, call_event, call_task, call_cancel};
}

/* Copies c's state back into r->st. The status only while the call is under way: when it has
 * ended, the transition that follows (complete_node, fail_node, compensation_completed or
 * compensation_failed) sets the step's. */
static void store_call(const struct call *c)
{
    struct engine_step *s = &c->r->st->steps[c->step];
    bool under_way = c->ac.status != ACTIVITY_IDLE;
    bool running = c->ac.status == ACTIVITY_RUNNING;
    if (c->compensation) {
        if (under_way)
            s->comp.status = running ? ENGINE_COMP_RUNNING : ENGINE_COMP_SCHEDULED;
        s->comp.attempt = c->ac.attempt;
        s->comp.attempt_started_at_ms = c->ac.attempt_started_at_ms;
        s->comp.accepted = c->ac.accepted;
    } else {
        if (under_way)
            s->status = running ? ENGINE_STEP_RUNNING : ENGINE_STEP_SCHEDULED;
        s->attempt = c->ac.attempt;
        s->scheduled_at_ms = c->ac.scheduled_at_ms;
        s->attempt_started_at_ms = c->ac.attempt_started_at_ms;
        s->accepted = c->ac.accepted;
    }
}

/* True when instance i is where its parent runs now: the top-level step at st->current, or a
 * child of a running container (for a sequence, the child at its cursor). An input about an
 * instance that is not active is stale. */
static bool instance_active(const struct run *r, size_t i)
{
    const struct engine_step *s = S(r, i);
    if (s->parent == ENGINE_NO_PARENT)
        return i == r->st->current;
    const struct engine_step *par = S(r, s->parent);
    if (par->status != ENGINE_STEP_RUNNING)
        return false;
    return N(r, s->parent)->kind != ENGINE_NODE_SEQUENCE || par->cursor == N(r, i)->index;
}

/* True when no new work may start at or below instance i: a cancel was requested, or a
 * container around i (or i itself) stops because one of its children failed. */
static bool halted(const struct run *r, size_t i)
{
    if (r->st->cancel_requested)
        return true;
    for (size_t a = i; a != ENGINE_NO_PARENT; a = S(r, a)->parent)
        if (S(r, a)->stopping)
            return true;
    return false;
}

/* The call the input names when it is under way in a running execution: an active step's
 * attempt outside the saga, or the compensation of the step during it. False otherwise. Whether
 * the input fits the call's attempt is activity.c's to say. */
static bool input_call(struct run *r, struct call *c)
{
    struct engine_state *st = r->st;
    size_t i = r->in->step;
    if (st->status != ENGINE_EXEC_RUNNING || i >= st->n_steps)
        return false;
    const struct defn_step *ds = N(r, i)->step;
    if (!ds)
        return false;
    if (r->in->compensation) {
        if (!st->compensating || !ds->compensate)
            return false;
    } else {
        if (st->compensating || !instance_active(r, i) || ds->kind != DEFN_STEP_ACTIVITY)
            return false;
    }
    load_call(r, i, r->in->compensation, c);
    return c->ac.status != ACTIVITY_IDLE;
}

/* ---- transitions ------------------------------------------------------------------------- */

static void enter_step(struct run *r, size_t i);
static void enter_node(struct run *r, size_t i);
static void node_ended(struct run *r, size_t i, enum engine_outcome outcome);
static void root_ended(struct run *r, enum engine_outcome outcome);
static void container_check(struct run *r, size_t c);
static void resume_node(struct run *r, size_t i);
static void begin_saga(struct run *r);
static void saga_next(struct run *r);
static void compensation_failed(struct run *r, size_t i, json_t *err);

static void complete_execution(struct run *r)
{
    struct engine_state *st = r->st;
    json_t *output;
    st->current = st->n_top;
    r->fx->ended = true;
    r->fx->cancel_tasks = true;
    if (r->p->code) {
        /* What the program completed it with. */
        const json_t *o = json_object_get(ctx_step(r, 0), "output");
        output = o ? json_deep_copy(o) : json_null();
    } else if (r->d->output_expr) {
        struct expr_error e;
        output =
            expr_template_eval(r->d->output_expr, scope_ctx(r, -1), ENGINE_MAX_PAYLOAD_BYTES, &e);
        if (!output) {
            /* Not a step's failure: no saga (see engine.h). */
            json_t *err = expression_error(r, -1, "/output", &e);
            st->status = ENGINE_EXEC_FAILED;
            emit(r, "execution_failed", -1, 0, wrap("error", err));
            r->fx->error = err;
            return;
        }
    } else {
        output = json_null();
    }
    st->status = ENGINE_EXEC_COMPLETED;
    emit(r, "execution_completed", -1, 0, wrap("output", output));
    r->fx->output = output;
}

/* Instance i failed for good with error (stolen): its parent is told. A nested step's error
 * says where it ran ("path"). A branch's or an iteration's sequence journals no event: its
 * failed step did. */
static void fail_node(struct run *r, size_t i, json_t *error)
{
    struct engine_step *s = S(r, i);
    s->status = ENGINE_STEP_FAILED;
    s->completed_at_ms = r->now;
    if (s->parent != ENGINE_NO_PARENT && json_is_object(error) && !json_object_get(error, "path") &&
        !is_sequence(r, i))
        json_object_set_new(error, "path", json_string(s->path));
    json_object_set_new(ctx_step(r, i), "error", json_deep_copy(error));
    mark_changed(r, i);
    if (!is_sequence(r, i))
        emit(r, "step_failed", (long)i, s->attempt, wrap("error", error));
    json_decref(error);
    node_ended(r, i, ENGINE_OUTCOME_FAILED);
}

/* Instance i completed with output (stolen; NULL for a sequence, whose output is its last
 * step's and is not stored twice). */
static void complete_node(struct run *r, size_t i, json_t *output)
{
    struct engine_step *s = S(r, i);
    s->status = ENGINE_STEP_COMPLETED;
    s->completed_at_ms = r->now;
    s->completion_order = ++r->st->completions;
    mark_changed(r, i);
    if (output) {
        json_object_set_new(ctx_step(r, i), "output", json_deep_copy(output));
        emit(r, "step_completed", (long)i, s->attempt, wrap("output", output));
        json_decref(output);
    }
    node_ended(r, i, ENGINE_OUTCOME_COMPLETED);
}

/* The execution's id, from the expression context. */
static const char *execution_id_of(const struct run *r)
{
    const char *id = json_string_value(json_object_get(json_object_get(r->ctx, "execution"), "id"));
    return id ? id : "";
}

/* Instance i stopped without ending (a cancel, or a failure elsewhere in its container):
 * "skipped", keeping its attempts and times. */
static void skip_node(struct run *r, size_t i)
{
    struct engine_step *s = S(r, i);
    if (N(r, i)->kind == ENGINE_NODE_WORKFLOW && s->status == ENGINE_STEP_WAITING) {
        /* Its child stops too: cancelled (it runs its own saga), or terminated with the
         * parent. */
        struct engine_effects *fx = r->fx;
        fx->child_stops =
            xrealloc(fx->child_stops, (fx->n_child_stops + 1) * sizeof *fx->child_stops);
        fx->child_stops[fx->n_child_stops++] =
            (struct engine_child_stop){xstrdup(s->path), r->in->kind == ENGINE_IN_TERMINATE};
        s = S(r, i);
    }
    s->status = ENGINE_STEP_SKIPPED;
    s->accepted = false;
    s->attempt_started_at_ms = 0;
    mark_changed(r, i);
}

/* Instance s starts afresh with status: no progress, its identity kept (path, plan node,
 * parent, position, a step call's request, and whether it was entered in this call). */
static void reset_instance(struct engine_step *s, enum engine_step_status status)
{
    *s = (struct engine_step){.status = status,
                              .path = s->path,
                              .node = s->node,
                              .parent = s->parent,
                              .position = s->position,
                              .call = s->call,
                              .fresh = s->fresh};
}

/* Instance i's result (output, error) is forgotten, and its row written. */
static void clear_result(struct run *r, size_t i)
{
    json_t *entry = ctx_step(r, i);
    json_object_del(entry, "output");
    json_object_del(entry, "error");
    mark_changed(r, i);
}

/* ---- control flow through the plan ------------------------------------------------------- */

/* The instance of plan node child under instance parent (ENGINE_NO_PARENT: the root) at
 * position, created when it does not exist yet. Top-level instances always exist. */
static size_t child_instance(struct run *r, size_t parent, const struct engine_plan_node *child,
                             size_t position)
{
    if (parent == ENGINE_NO_PARENT)
        return child->step_index;
    char num[24];
    const char *seg = child->id ? child->id : child->branch;
    if (!seg) {
        snprintf(num, sizeof num, "%zu", position);
        seg = num;
    }
    char *path = xasprintf("%s/%s", S(r, parent)->path, seg);
    /* A child that was never entered is in no storage: a container entered during this call,
     * a sequence's child after its cursor, an iteration at or after the next item. Only the
     * others (a redrive resuming what ran before) may need loading. */
    const struct engine_step *ps = S(r, parent);
    bool never = ps->fresh ||
                 (N(r, parent)->kind == ENGINE_NODE_SEQUENCE && child->index > ps->cursor) ||
                 (N(r, parent)->kind == ENGINE_NODE_FOR_EACH && position >= ps->next_item);
    long found = never ? engine_state_find(r->st, path) : find_instance(r, path);
    size_t k;
    if (found >= 0) {
        k = (size_t)found;
    } else {
        k = engine_state_add(r->st, path, parent);
        S(r, k)->node = child;
        S(r, k)->position = position;
    }
    free(path);
    mark_changed(r, k);
    return k;
}

/* A container starts (again) from nothing: no counters, no items, no result. */
static void reset_container(struct run *r, size_t i)
{
    struct engine_step *s = S(r, i);
    json_decref(s->items);
    size_t parent = s->parent, position = s->position;
    char *path = s->path;
    const struct engine_plan_node *node = s->node;
    json_t *item = s->item;
    memset(s, 0, sizeof *s);
    s->path = path;
    s->node = node;
    s->parent = parent;
    s->position = position;
    s->item = item;
    s->fresh = true;
    s->status = ENGINE_STEP_RUNNING;
    s->scheduled_at_ms = r->now;
    s->started_at_ms = r->now;
    clear_result(r, i);
}

/* Records that instance i runs now in its parent (the root's or a sequence's cursor). */
static void set_active(struct run *r, size_t i)
{
    struct engine_step *s = S(r, i);
    if (s->parent == ENGINE_NO_PARENT)
        r->st->current = i;
    else if (N(r, s->parent)->kind == ENGINE_NODE_SEQUENCE)
        S(r, s->parent)->cursor = N(r, i)->index;
}

/* Evaluates a for_each's items and checks them; NULL with *error set when they are no array or
 * too many. */
static json_t *for_each_items(struct run *r, size_t i, json_t **error)
{
    const struct defn_step *ds = N(r, i)->step;
    struct expr_error e;
    json_t *v =
        expr_template_eval(ds->items_expr, scope_ctx(r, (long)i), ENGINE_MAX_PAYLOAD_BYTES, &e);
    if (!v) {
        char base[1024];
        node_pointer(N(r, i), base, sizeof base - 32);
        strcat(base, "/for_each/items");
        *error = expression_error(r, (long)i, base, &e);
        return NULL;
    }
    if (!json_is_array(v)) {
        char *text = activity_quote_value(v);
        char *msg = xasprintf("for_each items must be an array, but evaluated to %s", text);
        *error = step_error(r, i, "invalid_items", msg);
        free(msg);
        free(text);
        json_decref(v);
        return NULL;
    }
    if (json_array_size(v) > r->p->max_items) {
        char *msg = xasprintf("for_each items has %zu elements; the most allowed is %zu "
                              "(KEEL_FOR_EACH_MAX_ITEMS)",
                              json_array_size(v), r->p->max_items);
        *error = step_error(r, i, "too_many_items", msg);
        free(msg);
        json_decref(v);
        return NULL;
    }
    return v;
}

static json_t *step_template(struct run *r, size_t i, const struct expr_template *t,
                             const char *field, json_t **error);

/* Evaluates if i's condition into *value; false with *error set when it fails or is not a
 * boolean (no implicit truthiness: a string or a number there is a mistake to report). */
static bool if_condition(struct run *r, size_t i, bool *value, json_t **error)
{
    const struct defn_step *ds = N(r, i)->step;
    json_t *v = step_template(r, i, ds->cond_expr, "/if", error);
    if (!v)
        return false;
    if (!json_is_boolean(v)) {
        char *text = activity_quote_value(v);
        char *msg = xasprintf("the condition %s must be true or false, but evaluated to %s",
                              json_string_value(ds->cond), text);
        *error = step_error(r, i, "invalid_condition", msg);
        free(msg);
        free(text);
        json_decref(v);
        return false;
    }
    *value = json_is_true(v);
    json_decref(v);
    return true;
}

/* Starts if i: its condition chooses then or else, which it enters; false without an else
 * completes it at once with a null output. The branch taken is its cursor (n_children when
 * none), and step_scheduled says which, for a reader of the history. */
static void enter_if(struct run *r, size_t i)
{
    const struct engine_plan_node *n = N(r, i);
    reset_container(r, i);
    json_t *error = NULL;
    bool cond = false;
    if (!if_condition(r, i, &cond, &error)) {
        emit(r, "step_scheduled", (long)i, 0, json_pack("{s:s}", "kind", "if"));
        fail_node(r, i, error);
        return;
    }
    size_t b = cond ? 0 : 1;
    bool none = b >= n->n_children;
    S(r, i)->cursor = b;
    emit(r, "step_scheduled", (long)i, 0,
         json_pack("{s:s, s:b, s:o}", "kind", "if", "condition", cond, "branch",
                   none ? json_null() : json_string(n->children[b].branch)));
    if (none) {
        complete_node(r, i, json_null());
        return;
    }
    size_t k = child_instance(r, i, &n->children[b], b);
    enter_node(r, k);
}

/* Starts instance i: a container starts its children as its kind says, a leaf is entered as a
 * step. */
static void enter_node(struct run *r, size_t i)
{
    const struct engine_plan_node *n = N(r, i);
    set_active(r, i);
    switch (n->kind) {
    case ENGINE_NODE_SEQUENCE: {
        reset_container(r, i);
        size_t k = child_instance(r, i, &n->children[0], 0);
        enter_node(r, k);
        return;
    }
    case ENGINE_NODE_PARALLEL: {
        reset_container(r, i);
        emit(r, "step_scheduled", (long)i, 0, json_pack("{s:s}", "kind", "parallel"));
        S(r, i)->running = (int)n->n_children;
        /* Every branch exists before any is entered: one that fails at once stops the others,
         * which must be there to be counted. */
        size_t *kids = xcalloc(n->n_children, sizeof *kids);
        for (size_t b = 0; b < n->n_children; b++)
            kids[b] = child_instance(r, i, &n->children[b], b);
        for (size_t b = 0; b < n->n_children; b++) {
            size_t k = kids[b];
            if (halted(r, i)) {
                /* A branch entered before failed at once: the rest never start. */
                skip_node(r, k);
                node_ended(r, k, ENGINE_OUTCOME_CANCELLED);
            } else {
                enter_node(r, k);
            }
        }
        free(kids);
        return;
    }
    case ENGINE_NODE_FOR_EACH: {
        reset_container(r, i);
        emit(r, "step_scheduled", (long)i, 0, json_pack("{s:s}", "kind", "for_each"));
        json_t *error = NULL;
        json_t *items = for_each_items(r, i, &error);
        if (!items) {
            fail_node(r, i, error);
            return;
        }
        S(r, i)->items = items;
        S(r, i)->items_set = true;
        S(r, i)->n_items = json_array_size(items);
        container_check(r, i);
        return;
    }
    case ENGINE_NODE_IF:
        enter_if(r, i);
        return;
    case ENGINE_NODE_CODE:
        /* Runs until its program completes or fails it; its steps come from step calls. */
        reset_container(r, i);
        return;
    case ENGINE_NODE_ACTIVITY:
    case ENGINE_NODE_SLEEP:
    case ENGINE_NODE_SLEEP_UNTIL:
    case ENGINE_NODE_WAIT:
    case ENGINE_NODE_SET:
    case ENGINE_NODE_FAIL:
    case ENGINE_NODE_WORKFLOW:
        enter_step(r, i);
        return;
    }
}

/* Starts for_each f's iterations while fewer than its concurrency run: first those a redrive
 * asked to run again (in item order), then items never started. Iterations that end at once
 * are counted by child_ended, which leaves the starting to this loop. */
static void for_each_fill(struct run *r, size_t f)
{
    int concurrency = N(r, f)->step->concurrency;
    S(r, f)->filling = true;
    while (S(r, f)->status == ENGINE_STEP_RUNNING && !halted(r, f) &&
           S(r, f)->running < concurrency) {
        size_t k = SIZE_MAX;
        if (S(r, f)->redo > 0) {
            need_all(r);
            for (size_t pos = 0; pos < S(r, f)->next_item && k == SIZE_MAX; pos++) {
                char *path = xasprintf("%s/%zu", S(r, f)->path, pos);
                long found = engine_state_find(r->st, path);
                free(path);
                if (found >= 0 && S(r, (size_t)found)->status == ENGINE_STEP_PENDING)
                    k = (size_t)found;
            }
            S(r, f)->redo--;
            if (k == SIZE_MAX)
                continue;
            S(r, f)->running++;
            mark_changed(r, f);
            resume_node(r, k);
        } else if (S(r, f)->next_item < S(r, f)->n_items) {
            size_t pos = S(r, f)->next_item;
            json_t *item = NULL;
            if (S(r, f)->items) {
                item = json_incref(json_array_get(S(r, f)->items, pos));
            } else if (!r->st->loader ||
                       r->st->loader->item(r->st->loader->arg, S(r, f)->path, pos, &item) != 0) {
                r->load_failed = true;
                break;
            }
            S(r, f)->running++;
            mark_changed(r, f);
            /* Before next_item moves past pos, so that child_instance knows the iteration is
             * new and does not look for it in storage. */
            k = child_instance(r, f, &N(r, f)->children[0], pos);
            S(r, f)->next_item++;
            json_decref(S(r, k)->item);
            S(r, k)->item = item ? item : json_null();
            enter_node(r, k);
        } else {
            break;
        }
    }
    S(r, f)->filling = false;
}

/* The output of a container that completed: {"<branch>": last output, ...} or [last output of
 * each iteration, in item order]. New reference. */
static json_t *container_output(struct run *r, size_t c)
{
    const struct engine_plan_node *n = N(r, c);
    bool par = n->kind == ENGINE_NODE_PARALLEL;
    size_t count = par ? n->n_children : S(r, c)->n_items;
    /* The path of the last step of each branch or iteration: only those rows are needed (read
     * in one go when not loaded), not the whole execution. */
    char **paths = xcalloc(count ? count : 1, sizeof *paths);
    const char **missing = xcalloc(count ? count : 1, sizeof *missing);
    size_t n_missing = 0;
    json_t *steps = json_object_get(r->ctx, "steps");
    for (size_t k = 0; k < count; k++) {
        const struct engine_plan_node *seq = par ? &n->children[k] : &n->children[0];
        const char *last = seq->children[seq->n_children - 1].id;
        paths[k] = par ? xasprintf("%s/%s/%s", S(r, c)->path, seq->branch, last)
                       : xasprintf("%s/%zu/%s", S(r, c)->path, k, last);
        if (!json_object_get(json_object_get(steps, paths[k]), "output"))
            missing[n_missing++] = paths[k];
    }
    need_paths(r, missing, n_missing);
    steps = json_object_get(r->ctx, "steps");
    json_t *out = par ? json_object() : json_array();
    for (size_t k = 0; k < count; k++) {
        const json_t *o = json_object_get(json_object_get(steps, paths[k]), "output");
        json_t *v = o ? json_deep_copy(o) : json_null();
        if (par)
            json_object_set_new(out, n->children[k].branch, v);
        else
            json_array_append_new(out, v);
        free(paths[k]);
    }
    free(paths);
    free(missing);
    return out;
}

/* Ends parallel or for_each c once nothing of it runs and nothing more may start: failed when
 * a child failed (with the first failure's error), cancelled when children were stopped or
 * never started, else completed with its output. A for_each first starts what it may. */
static void container_check(struct run *r, size_t c)
{
    if (S(r, c)->status != ENGINE_STEP_RUNNING || S(r, c)->filling)
        return;
    bool loop = N(r, c)->kind == ENGINE_NODE_FOR_EACH;
    if (loop)
        for_each_fill(r, c);
    struct engine_step *s = S(r, c);
    if (s->status != ENGINE_STEP_RUNNING || s->running > 0)
        return;
    bool undone = loop && (s->next_item < s->n_items || s->redo > 0);
    if (s->failed > 0) {
        const json_t *e = json_object_get(ctx_step(r, c), "error");
        json_t *err = e ? json_deep_copy(e)
                        : step_error(r, c, "unknown", "the failed child's error is missing");
        json_object_del(ctx_step(r, c), "error");
        fail_node(r, c, err);
    } else if (s->cancelled > 0 || undone) {
        skip_node(r, c);
        node_ended(r, c, ENGINE_OUTCOME_CANCELLED);
    } else {
        complete_node(r, c, container_output(r, c));
    }
}

/* Stops every step below container c that is not in flight (scheduled, waiting, sleeping,
 * retrying): it is skipped, its pending tasks are dropped, and it ends cancelled. An attempt in
 * flight finishes first: that is its safe point. */
static void stop_below(struct run *r, size_t c)
{
    need_all(r);
    size_t n = r->st->n_steps, k = 0;
    size_t *stop = xcalloc(n ? n : 1, sizeof *stop);
    for (size_t j = c + 1; j < n; j++) {
        enum engine_step_status st = S(r, j)->status;
        if (engine_node_is_container(N(r, j)->kind) ||
            (st != ENGINE_STEP_SCHEDULED && st != ENGINE_STEP_WAITING))
            continue;
        size_t a = S(r, j)->parent;
        while (a != ENGINE_NO_PARENT && a != c)
            a = S(r, a)->parent;
        if (a == c && instance_active(r, j))
            stop[k++] = j;
    }
    for (size_t x = 0; x < k; x++) {
        size_t j = stop[x];
        if (S(r, j)->status != ENGINE_STEP_SCHEDULED && S(r, j)->status != ENGINE_STEP_WAITING)
            continue;
        skip_node(r, j);
        cancel_kind(r, ENGINE_TASK_ACTIVITY, j);
        cancel_kind(r, ENGINE_TASK_TIMER, j);
        cancel_kind(r, ENGINE_TASK_WAIT_TIMEOUT, j);
        drop_new_tasks(r, j);
        node_ended(r, j, ENGINE_OUTCOME_CANCELLED);
    }
    free(stop);
}

/* Child instance `child` of sequence instance seq ended. It goes on with the next child only
 * when the child completed and nothing halts it; otherwise it ends with the child's outcome (a
 * completed child with a halt pending makes it end cancelled). */
static void sequence_child_ended(struct run *r, size_t seq, size_t child,
                                 enum engine_outcome outcome)
{
    const struct engine_plan_node *n = N(r, seq);
    if (outcome == ENGINE_OUTCOME_COMPLETED && halted(r, seq))
        outcome = ENGINE_OUTCOME_CANCELLED;
    size_t next = N(r, child)->index + 1;
    if (outcome == ENGINE_OUTCOME_COMPLETED && next < n->n_children) {
        size_t k = child_instance(r, seq, &n->children[next], next);
        enter_node(r, k);
        return;
    }
    switch (outcome) {
    case ENGINE_OUTCOME_COMPLETED:
        complete_node(r, seq, NULL);
        return;
    case ENGINE_OUTCOME_FAILED: {
        const json_t *e = json_object_get(ctx_step(r, child), "error");
        fail_node(r, seq, e ? json_deep_copy(e) : json_null());
        return;
    }
    case ENGINE_OUTCOME_CANCELLED:
        skip_node(r, seq);
        node_ended(r, seq, ENGINE_OUTCOME_CANCELLED);
        return;
    }
}

/* A child of parallel or for_each c ended: counted; the first failure stops the others at
 * their safe point (and keeps its error as the container's); then c goes on or ends. */
static void container_child_ended(struct run *r, size_t c, size_t child,
                                  enum engine_outcome outcome)
{
    struct engine_step *s = S(r, c);
    s->running--;
    mark_changed(r, c);
    if (outcome == ENGINE_OUTCOME_FAILED) {
        s->failed++;
        if (!s->stopping) {
            s->stopping = true;
            const json_t *e = json_object_get(ctx_step(r, child), "error");
            json_object_set_new(ctx_step(r, c), "error", e ? json_deep_copy(e) : json_null());
            stop_below(r, c);
        }
    } else if (outcome == ENGINE_OUTCOME_CANCELLED) {
        s->cancelled++;
    }
    container_check(r, c);
}

/* The branch `child` (a sequence) of if c ended: the if ends the same way, with the output of
 * the branch's last step when it completed. */
static void if_child_ended(struct run *r, size_t c, size_t child, enum engine_outcome outcome)
{
    switch (outcome) {
    case ENGINE_OUTCOME_COMPLETED: {
        const struct engine_plan_node *seq = N(r, child);
        char *path = xasprintf("%s/%s", S(r, child)->path, seq->children[seq->n_children - 1].id);
        const char *paths[] = {path};
        if (!json_object_get(json_object_get(json_object_get(r->ctx, "steps"), path), "output"))
            need_paths(r, paths, 1);
        const json_t *o =
            json_object_get(json_object_get(json_object_get(r->ctx, "steps"), path), "output");
        free(path);
        complete_node(r, c, o ? json_deep_copy(o) : json_null());
        return;
    }
    case ENGINE_OUTCOME_FAILED: {
        const json_t *e = json_object_get(ctx_step(r, child), "error");
        fail_node(r, c, e ? json_deep_copy(e) : json_null());
        return;
    }
    case ENGINE_OUTCOME_CANCELLED:
        skip_node(r, c);
        node_ended(r, c, ENGINE_OUTCOME_CANCELLED);
        return;
    }
}

/* Top-level step i ended: the root sequence enters the next one or ends. */
static void root_child_ended(struct run *r, size_t i, enum engine_outcome outcome)
{
    if (outcome == ENGINE_OUTCOME_COMPLETED && r->st->cancel_requested)
        outcome = ENGINE_OUTCOME_CANCELLED;
    if (outcome == ENGINE_OUTCOME_COMPLETED && i + 1 < r->st->n_top) {
        enter_node(r, i + 1);
        return;
    }
    root_ended(r, outcome);
}

/* The root ended: the execution completes, or the saga starts (failed, cancelled; which one
 * st->cancel_requested says). */
static void root_ended(struct run *r, enum engine_outcome outcome)
{
    if (outcome == ENGINE_OUTCOME_COMPLETED)
        complete_execution(r);
    else
        begin_saga(r);
}

/* Instance i ended with outcome: its parent is told. */
static void node_ended(struct run *r, size_t i, enum engine_outcome outcome)
{
    size_t parent = S(r, i)->parent;
    if (parent == ENGINE_NO_PARENT) {
        root_child_ended(r, i, outcome);
        return;
    }
    switch (N(r, parent)->kind) {
    case ENGINE_NODE_SEQUENCE:
        sequence_child_ended(r, parent, i, outcome);
        return;
    case ENGINE_NODE_PARALLEL:
    case ENGINE_NODE_FOR_EACH:
        container_child_ended(r, parent, i, outcome);
        return;
    case ENGINE_NODE_IF:
        if_child_ended(r, parent, i, outcome);
        return;
    case ENGINE_NODE_CODE:
        /* A step call's step ended: the program goes on through its own calls; the root ends
         * only by complete, fail, a cancel's deadline or terminate. */
        return;
    case ENGINE_NODE_ACTIVITY:
    case ENGINE_NODE_SLEEP:
    case ENGINE_NODE_SLEEP_UNTIL:
    case ENGINE_NODE_WAIT:
    case ENGINE_NODE_SET:
    case ENGINE_NODE_FAIL:
    case ENGINE_NODE_WORKFLOW:
        break; /* leaves have no children */
    }
}

/* Instance i runs again after a redrive: a leaf from scratch; a container keeps what completed
 * below it and resumes what did not (a sequence at its cursor, a parallel's unfinished
 * branches, a for_each's unfinished iterations within its concurrency, then the items never
 * started). */
static void resume_node(struct run *r, size_t i)
{
    const struct engine_plan_node *n = N(r, i);
    struct engine_step *s = S(r, i);
    switch (n->kind) {
    case ENGINE_NODE_SEQUENCE: {
        set_active(r, i);
        s->status = ENGINE_STEP_RUNNING;
        s->completed_at_ms = 0;
        json_object_del(ctx_step(r, i), "error");
        mark_changed(r, i);
        size_t k = child_instance(r, i, &n->children[S(r, i)->cursor], S(r, i)->cursor);
        if (S(r, k)->status == ENGINE_STEP_COMPLETED)
            sequence_child_ended(r, i, k, ENGINE_OUTCOME_COMPLETED);
        else if (S(r, k)->status == ENGINE_STEP_PENDING)
            enter_node(r, k);
        else
            resume_node(r, k);
        return;
    }
    case ENGINE_NODE_PARALLEL:
    case ENGINE_NODE_FOR_EACH: {
        if (n->kind == ENGINE_NODE_FOR_EACH && s->n_items == 0) {
            /* Its items failed to evaluate (no iteration ever started): it is entered again,
             * as if for the first time, rather than resumed over no items. */
            enter_node(r, i);
            return;
        }
        set_active(r, i);
        s->status = ENGINE_STEP_RUNNING;
        s->completed_at_ms = 0;
        s->stopping = false;
        s->failed = s->cancelled = s->running = 0;
        s->redo = 0;
        json_object_del(ctx_step(r, i), "error");
        mark_changed(r, i);
        emit(r, "step_scheduled", (long)i, 0,
             json_pack("{s:s, s:b}", "kind", engine_node_kind_name(n->kind), "resumed", 1));
        if (n->kind == ENGINE_NODE_FOR_EACH) {
            for (size_t pos = 0; pos < S(r, i)->next_item; pos++) {
                char *path = xasprintf("%s/%zu", S(r, i)->path, pos);
                long k = engine_state_find(r->st, path);
                free(path);
                if (k >= 0 && S(r, (size_t)k)->status != ENGINE_STEP_COMPLETED) {
                    S(r, (size_t)k)->status = ENGINE_STEP_PENDING;
                    mark_changed(r, (size_t)k);
                    S(r, i)->redo++;
                }
            }
            container_check(r, i);
            return;
        }
        size_t *todo = xcalloc(n->n_children, sizeof *todo), m = 0;
        for (size_t b = 0; b < n->n_children; b++) {
            size_t k = child_instance(r, i, &n->children[b], b);
            if (S(r, k)->status != ENGINE_STEP_COMPLETED)
                todo[m++] = k;
        }
        S(r, i)->running = (int)m;
        for (size_t x = 0; x < m; x++) {
            if (S(r, todo[x])->status == ENGINE_STEP_PENDING)
                enter_node(r, todo[x]);
            else
                resume_node(r, todo[x]);
        }
        free(todo);
        container_check(r, i);
        return;
    }
    case ENGINE_NODE_CODE:
        /* A retry: the program runs again (its completed steps are replayed, its failed ones
         * run again when it calls them: they are new again, keeping their request). */
        set_active(r, i);
        s->status = ENGINE_STEP_RUNNING;
        s->completed_at_ms = 0;
        json_object_del(ctx_step(r, i), "error");
        mark_changed(r, i);
        need_all(r);
        for (size_t k = 0; k < r->st->n_steps; k++) {
            struct engine_step *c = S(r, k);
            if (c->parent != i ||
                (c->status != ENGINE_STEP_FAILED && c->status != ENGINE_STEP_SKIPPED))
                continue;
            reset_instance(c, ENGINE_STEP_PENDING);
            clear_result(r, k);
        }
        return;
    case ENGINE_NODE_IF: {
        /* The branch it took, when it took one (a condition that failed took none): that
         * branch resumes; the condition is not evaluated again, so a redrive never switches
         * branches under steps that already ran. */
        long k = -1;
        if (s->cursor < n->n_children) {
            char *path = xasprintf("%s/%s", s->path, n->children[s->cursor].branch);
            k = find_instance(r, path);
            free(path);
        }
        if (k < 0) {
            enter_node(r, i);
            return;
        }
        set_active(r, i);
        s = S(r, i);
        s->status = ENGINE_STEP_RUNNING;
        s->completed_at_ms = 0;
        json_object_del(ctx_step(r, i), "error");
        mark_changed(r, i);
        emit(r, "step_scheduled", (long)i, 0,
             json_pack("{s:s, s:b, s:s}", "kind", "if", "resumed", 1, "branch",
                       n->children[s->cursor].branch));
        size_t b = (size_t)k;
        if (S(r, b)->status == ENGINE_STEP_COMPLETED)
            if_child_ended(r, i, b, ENGINE_OUTCOME_COMPLETED);
        else if (S(r, b)->status == ENGINE_STEP_PENDING)
            enter_node(r, b);
        else
            resume_node(r, b);
        return;
    }
    case ENGINE_NODE_ACTIVITY:
    case ENGINE_NODE_SLEEP:
    case ENGINE_NODE_SLEEP_UNTIL:
    case ENGINE_NODE_WAIT:
    case ENGINE_NODE_SET:
    case ENGINE_NODE_FAIL:
    case ENGINE_NODE_WORKFLOW:
        enter_node(r, i);
        return;
    }
}

/* Starts step i's timer, due at due_at_ms. */
static void start_timer(struct run *r, size_t i, int64_t due_at_ms)
{
    emit(r, "timer_started", (long)i, 0, json_pack("{s:o}", "due_at", time_json(due_at_ms)));
    add_task(r, ENGINE_TASK_TIMER, i, 0, due_at_ms, NULL);
}

/* Evaluates template t of step i (field is its member in the step: "/sleep_until", "/set"):
 * a new value, or NULL with *error set (an expression error pointing into the definition). */
static json_t *step_template(struct run *r, size_t i, const struct expr_template *t,
                             const char *field, json_t **error)
{
    struct expr_error e;
    json_t *v = expr_template_eval(t, scope_ctx(r, (long)i), ENGINE_MAX_PAYLOAD_BYTES, &e);
    if (!v) {
        char base[1024];
        node_pointer(N(r, i), base, sizeof base - 16);
        strcat(base, field);
        *error = expression_error(r, (long)i, base, &e);
    }
    return v;
}

/* The time a sleep_until step sleeps until, or -1 with *error set. */
static int64_t sleep_until_time(struct run *r, size_t i, json_t **error)
{
    int64_t ms = -1;
    json_t *v = step_template(r, i, N(r, i)->step->sleep_until_expr, "/sleep_until", error);
    if (!v)
        return -1;
    const char *s = json_string_value(v);
    int64_t parsed;
    if (s && strlen(s) == json_string_length(v) && time_parse_rfc3339(s, &parsed)) {
        ms = parsed;
    } else {
        char *text = activity_quote_value(v);
        char *msg = xasprintf("sleep_until %s is not an RFC 3339 time such as "
                              "\"2030-01-31T09:00:00Z\"",
                              text);
        *error = step_error(r, i, "invalid_time", msg);
        free(msg);
        free(text);
    }
    json_decref(v);
    return ms;
}

/* What wait step ds waits for, as event data: {"signal": name} or {"any": [names]}. */
static json_t *wait_names(const struct defn_step *ds)
{
    if (ds->signal)
        return json_pack("{s:s}", "signal", ds->signal);
    json_t *any = json_array();
    for (size_t k = 0; k < ds->n_any; k++)
        json_array_append_new(any, json_string(ds->any[k]));
    return json_pack("{s:o}", "any", any);
}

/* Step i becomes current (enter_node made it its sequence's active child). */
static void enter_step(struct run *r, size_t i)
{
    static const char *const kinds[] = {"activity", "sleep",    "sleep_until", "wait",
                                        "parallel", "for_each", "set",         "fail",
                                        "if",       "workflow", "code"};
    const struct defn_step *ds = N(r, i)->step;
    struct engine_step *s = S(r, i);
    json_t *error = NULL;

    reset_instance(s, ENGINE_STEP_SCHEDULED);
    s->scheduled_at_ms = r->now;
    /* A step entered again (a redrive) starts without its old result. */
    clear_result(r, i);
    json_t *scheduled = json_pack("{s:s}", "kind", kinds[ds->kind]);
    if (s->call) {
        /* A step call says what its program asked for, in the program's words. */
        json_object_set_new(scheduled, "kind", json_string(defn_step_call_kind(s->call->request)));
        json_object_set_new(scheduled, "request", json_deep_copy(s->call->request));
    }
    char *child_id = NULL;
    if (ds->kind == DEFN_STEP_WORKFLOW) {
        /* Which workflow it starts; the runner journals which execution (child_started). */
        child_id = engine_child_id(execution_id_of(r), s->path);
        json_object_set_new(scheduled, "workflow", json_string(ds->child_workflow));
        json_object_set_new(scheduled, "version",
                            ds->child_version ? json_integer(ds->child_version) : json_null());
    }
    emit(r, "step_scheduled", (long)i, 0, scheduled);

    switch (ds->kind) {
    case DEFN_STEP_ACTIVITY: {
        struct call c;
        load_call(r, i, false, &c);
        if (activity_start(&c.ac, r->now, &c.sink, &error) != ACTIVITY_APPLIED)
            goto Fail;
        store_call(&c);
        return;
    }
    case DEFN_STEP_SLEEP:
        s->started_at_ms = r->now;
        start_timer(r, i, r->now + ds->sleep_ms);
        return;
    case DEFN_STEP_SLEEP_UNTIL: {
        int64_t until = sleep_until_time(r, i, &error);
        if (error)
            goto Fail;
        /* Evaluating the time may have loaded instances, moving st->steps: s is stale. */
        S(r, i)->started_at_ms = r->now;
        start_timer(r, i, until > r->now ? until : r->now);
        return;
    }
    case DEFN_STEP_WAIT: {
        s->status = ENGINE_STEP_WAITING;
        s->started_at_ms = r->now;
        json_t *timeout_at = json_null();
        if (ds->wait_timeout_ms > 0) {
            int64_t due = r->now + ds->wait_timeout_ms;
            json_decref(timeout_at);
            timeout_at = time_json(due);
            add_task(r, ENGINE_TASK_WAIT_TIMEOUT, i, 0, due, NULL);
        }
        json_t *data = wait_names(ds);
        json_object_set_new(data, "timeout_at", timeout_at);
        emit(r, "wait_started", (long)i, 0, data);
        r->fx->wants_signal = ds->signal ? ds->signal : ds->any[0];
        return;
    }
    case DEFN_STEP_SET: {
        json_t *output = step_template(r, i, ds->set_expr, "/set", &error);
        if (!output)
            goto Fail;
        S(r, i)->started_at_ms = r->now;
        complete_node(r, i, output);
        return;
    }
    case DEFN_STEP_FAIL: {
        json_t *v = step_template(r, i, ds->fail_expr, "/fail", &error);
        if (!v)
            goto Fail;
        /* A message that is exactly "${...}" of something else than a string reads as its
         * JSON text, as it would inside a longer string. */
        const json_t *m = json_object_get(v, "message");
        char *text = !m                  ? xasprintf("step \"%s\" fails the execution", ds->id)
                     : json_is_string(m) ? xstrdup(json_string_value(m))
                                         : json_text(m);
        S(r, i)->started_at_ms = r->now;
        error = step_error(r, i, json_string_value(json_object_get(v, "type")),
                           text ? text : "(a message that cannot be encoded)");
        free(text);
        json_decref(v);
        goto Fail;
    }
    case DEFN_STEP_WORKFLOW: {
        json_t *input = step_template(r, i, ds->child_input_expr, "/workflow/input", &error);
        if (!input) {
            free(child_id);
            goto Fail;
        }
        s = S(r, i);
        s->status = ENGINE_STEP_WAITING;
        s->started_at_ms = r->now;
        struct engine_effects *fx = r->fx;
        fx->children = xrealloc(fx->children, (fx->n_children + 1) * sizeof *fx->children);
        fx->children[fx->n_children++] = (struct engine_child){
            i, xstrdup(s->path), child_id, ds->child_workflow, ds->child_version, input};
        return;
    }
    case DEFN_STEP_PARALLEL:
    case DEFN_STEP_FOR_EACH:
    case DEFN_STEP_IF:
    case DEFN_STEP_CODE:
        break; /* containers are entered by enter_node, never here */
    }
    free(child_id);
    return;

Fail:
    fail_node(r, i, error);
}

/* What an attempt's failure or timeout did to call c (res from activity.c; err its final error
 * when it failed for good, stolen): a retry is scheduled, or the call ended: the step fails for
 * good, or the compensation does and the saga goes on. False when the input was stale. */
static bool call_failed(struct run *r, struct call *c, enum activity_result res, json_t *err)
{
    if (res == ACTIVITY_STALE)
        return false;
    store_call(c);
    if (!c->compensation)
        mark_changed(r, c->step);
    if (res != ACTIVITY_FAILED)
        return true;
    if (c->compensation) {
        compensation_failed(r, c->step, err);
        saga_next(r);
    } else {
        fail_node(r, c->step, err);
    }
    return true;
}

/* A cancel, or a failure elsewhere in a container around the step, stops the step's retries;
 * not a compensation's, which is the cancel's own work. */
static bool stop_retries(const struct run *r, const struct call *c)
{
    return !c->compensation && halted(r, c->step);
}

/* ---- the saga ---------------------------------------------------------------------------- */

/* The completed step whose compensation is still to run that completed last, or -1. */
static long next_compensation(const struct run *r)
{
    const struct engine_state *st = r->st;
    long best = -1;
    int order = 0;
    for (size_t i = 0; i < st->n_steps; i++) {
        const struct engine_step *s = &st->steps[i];
        if (s->status == ENGINE_STEP_COMPLETED && s->node->step && s->node->step->compensate &&
            s->comp.status == ENGINE_COMP_NONE && s->completion_order > order) {
            best = (long)i;
            order = s->completion_order;
        }
    }
    return best;
}

/* A failed step or a cancel's safe point: steps not reached will never run, and the
 * compensations of the completed ones start. */
static void begin_saga(struct run *r)
{
    need_all(r);
    struct engine_state *st = r->st;
    st->compensating = true;
    for (size_t i = 0; i < st->n_steps; i++) {
        if (st->steps[i].status == ENGINE_STEP_PENDING) {
            st->steps[i].status = ENGINE_STEP_SKIPPED;
            mark_changed(r, i);
        }
    }
    saga_next(r);
}

/* The context's error of step i (a copy), or one saying it is missing. */
static json_t *ctx_error(struct run *r, size_t i, bool compensation)
{
    const json_t *e = json_object_get(ctx_step(r, i), "error");
    if (json_is_object(e))
        return json_deep_copy(e);
    json_t *err = step_error(r, i, "unknown", "the error is missing from the step's row");
    if (compensation)
        as_compensation_error(r, i, err);
    return err;
}

static int by_order_desc(const void *x, const void *y, void *arg)
{
    const struct engine_state *st = arg;
    int a = st->steps[*(const size_t *)x].completion_order;
    int b = st->steps[*(const size_t *)y].completion_order;
    return (a < b) - (a > b);
}

/* The final errors of the compensations that failed, in the order they ran (reverse order of
 * completion); NULL when none did. New reference. */
static json_t *compensation_errors(struct run *r)
{
    need_all(r);
    const struct engine_state *st = r->st;
    size_t *failed = xcalloc(st->n_steps ? st->n_steps : 1, sizeof *failed), n = 0;
    for (size_t i = 0; i < st->n_steps; i++)
        if (st->steps[i].comp.status == ENGINE_COMP_FAILED)
            failed[n++] = i;
    qsort_r(failed, n, sizeof *failed, by_order_desc, (void *)st);
    json_t *errors = NULL;
    for (size_t k = 0; k < n; k++) {
        if (!errors)
            errors = json_array();
        json_array_append_new(errors, ctx_error(r, failed[k], true));
    }
    free(failed);
    return errors;
}

/* No compensation is left: the execution ends failed (with the failed step's error) or, after a
 * cancel, cancelled; both carry the compensations that failed. */
static void end_saga(struct run *r)
{
    struct engine_state *st = r->st;
    json_t *errors = compensation_errors(r);
    json_t *error = NULL;
    st->compensating = false;
    if (st->cancel_requested) {
        if (errors) {
            size_t n = json_array_size(errors);
            const char *step =
                json_string_value(json_object_get(json_array_get(errors, 0), "step"));
            if (!step)
                step = "?";
            char *msg =
                n == 1 ? xasprintf("the compensation of step \"%s\" failed", step)
                       : xasprintf("%zu compensations failed, the first of step \"%s\"", n, step);
            error = json_pack("{s:s, s:s, s:s, s:o}", "type", "compensation_failed", "message", msg,
                              "step", step, "compensation_errors", errors);
            free(msg);
        }
        st->status = ENGINE_EXEC_CANCELLED;
        json_t *data = json_object();
        json_object_set_new(data, "error", error ? json_deep_copy(error) : json_null());
        emit(r, "execution_cancelled", -1, 0, data);
    } else {
        /* The failed step is the current one; its error is in the context since step_failed. */
        error = st->current < st->n_top ? ctx_error(r, st->current, false)
                                        : json_pack("{s:s, s:s}", "type", "unknown", "message",
                                                    "the execution failed without a failed step");
        if (errors)
            json_object_set_new(error, "compensation_errors", errors);
        st->status = ENGINE_EXEC_FAILED;
        emit(r, "execution_failed", -1, 0, wrap("error", error));
    }
    r->fx->ended = true;
    r->fx->cancel_tasks = true;
    r->fx->error = error;
}

/* Step i's compensation failed for good with err (stolen: an error of the compensation). The
 * step stays completed; its row shows the error. The caller goes on with saga_next. */
static void compensation_failed(struct run *r, size_t i, json_t *err)
{
    struct engine_step *s = &r->st->steps[i];
    s->comp.status = ENGINE_COMP_FAILED;
    s->comp.accepted = false;
    s->comp.attempt_started_at_ms = 0;
    json_object_set_new(ctx_step(r, i), "error", json_deep_copy(err));
    mark_changed(r, i);
    emit(r, "compensation_failed", (long)i, s->comp.attempt, wrap("error", err));
    json_decref(err);
}

/* Step i's compensation completed with output (stolen): the step is compensated. */
static void compensation_completed(struct run *r, size_t i, json_t *output)
{
    struct engine_step *s = &r->st->steps[i];
    int attempt = s->comp.attempt;
    s->comp = (struct engine_compensation){.status = ENGINE_COMP_NONE};
    s->status = ENGINE_STEP_COMPENSATED;
    mark_changed(r, i);
    emit(r, "compensation_completed", (long)i, attempt, wrap("output", output));
    json_decref(output);
    saga_next(r);
}

/* Schedules attempt 1 of step i's compensation, due now. Returns false when its url or input
 * does not evaluate: the compensation has then failed for good. */
static bool start_compensation(struct run *r, size_t i)
{
    struct engine_step *s = &r->st->steps[i];
    json_t *error = NULL;
    struct call c;
    s->comp = (struct engine_compensation){.status = ENGINE_COMP_NONE};
    load_call(r, i, true, &c);
    if (activity_start(&c.ac, r->now, &c.sink, &error) != ACTIVITY_APPLIED) {
        compensation_failed(r, i, error);
        return false;
    }
    store_call(&c);
    return true;
}

/* Starts the next compensation, or ends the saga when none is left. */
static void saga_next(struct run *r)
{
    need_all(r);
    for (;;) {
        long i = next_compensation(r);
        if (i < 0) {
            end_saga(r);
            return;
        }
        if (start_compensation(r, (size_t)i))
            return;
    }
}

/* ---- inputs ------------------------------------------------------------------------------ */

/* The step the input names when it is active in a running execution outside the saga and of
 * the given kind (kind < 0: any step); else NULL. */
static struct engine_step *current_step(struct run *r, int kind)
{
    const struct engine_state *st = r->st;
    size_t i = r->in->step;
    if (st->status != ENGINE_EXEC_RUNNING || st->compensating || !N(r, i)->step ||
        !instance_active(r, i))
        return NULL;
    if (kind >= 0 && N(r, i)->step->kind != (enum defn_step_kind)kind)
        return NULL;
    return S(r, i);
}

static bool on_start(struct run *r)
{
    struct engine_state *st = r->st;
    if (st->status != ENGINE_EXEC_RUNNING || st->current != 0 || st->completions != 0 ||
        st->cancel_requested || st->compensating ||
        (st->n_steps > 0 && st->steps[0].status != ENGINE_STEP_PENDING))
        return false;
    emit(r, "execution_started", -1, 0, NULL);
    if (st->n_top > 0 || r->p->code)
        enter_node(r, 0);
    else
        root_ended(r, ENGINE_OUTCOME_COMPLETED);
    return true;
}

static bool on_attempt_started(struct run *r)
{
    struct call c;
    if (!input_call(r, &c))
        return false;
    /* A redelivery of the attempt in flight changes nothing in the step's row. */
    bool again = c.ac.status == ACTIVITY_RUNNING;
    if (activity_attempt_started(&c.ac, r->in->attempt, r->in->redelivery, r->now, &c.sink) ==
        ACTIVITY_STALE)
        return false;
    store_call(&c);
    if (!c.compensation) {
        struct engine_step *s = S(r, c.step);
        if (s->started_at_ms == 0)
            s->started_at_ms = r->now;
        if (!again)
            mark_changed(r, c.step);
    }
    return true;
}

static bool on_resend(struct run *r)
{
    struct call c;
    return input_call(r, &c) &&
           activity_resend(&c.ac, r->in->attempt, r->now, &c.sink) == ACTIVITY_APPLIED;
}

static bool on_attempt_succeeded(struct run *r)
{
    struct call c;
    if (!input_call(r, &c) ||
        activity_attempt_succeeded(&c.ac, r->in->attempt, r->now, &c.sink) == ACTIVITY_STALE)
        return false;
    store_call(&c);
    json_t *output = r->in->output ? json_deep_copy(r->in->output) : json_null();
    if (c.compensation)
        compensation_completed(r, c.step, output);
    else
        complete_node(r, c.step, output);
    return true;
}

static bool on_attempt_failed(struct run *r)
{
    struct call c;
    json_t *err = NULL;
    if (!input_call(r, &c))
        return false;
    enum activity_result res =
        activity_attempt_failed(&c.ac, r->in->attempt, r->in->error, r->in->non_retryable,
                                r->in->retry_after_ms, stop_retries(r, &c), r->now, &c.sink, &err);
    return call_failed(r, &c, res, err);
}

static bool on_attempt_accepted(struct run *r)
{
    struct call c;
    if (!input_call(r, &c) ||
        activity_attempt_accepted(&c.ac, r->in->attempt, r->now, &c.sink) == ACTIVITY_STALE)
        return false;
    store_call(&c);
    return true;
}

static bool on_heartbeat(struct run *r)
{
    struct call c;
    if (!input_call(r, &c) ||
        activity_heartbeat(&c.ac, r->in->attempt, r->now, &c.sink) == ACTIVITY_STALE)
        return false;
    store_call(&c);
    return true;
}

/* The attempt timeout (or, with heartbeat, the heartbeat timeout) of an accepted attempt. */
static bool on_timed_out(struct run *r, bool heartbeat)
{
    struct call c;
    json_t *err = NULL;
    if (!input_call(r, &c))
        return false;
    enum activity_result res = activity_timed_out(&c.ac, r->in->attempt, heartbeat,
                                                  stop_retries(r, &c), r->now, &c.sink, &err);
    return call_failed(r, &c, res, err);
}

static bool on_timer_fired(struct run *r)
{
    struct engine_step *s = current_step(r, -1);
    if (!s || s->status != ENGINE_STEP_SCHEDULED)
        return false;
    enum defn_step_kind kind = N(r, r->in->step)->step->kind;
    if (kind != DEFN_STEP_SLEEP && kind != DEFN_STEP_SLEEP_UNTIL)
        return false;
    emit(r, "timer_fired", (long)r->in->step, 0, NULL);
    complete_node(r, r->in->step, json_null());
    return true;
}

static bool on_signal(struct run *r)
{
    struct engine_step *s = current_step(r, DEFN_STEP_WAIT);
    const struct defn_step *ds = s ? N(r, r->in->step)->step : NULL;
    if (!s || s->status != ENGINE_STEP_WAITING || !defn_wait_accepts(ds, r->in->signal))
        return false;
    const char *name = r->in->signal;
    json_t *payload = r->in->payload ? json_deep_copy(r->in->payload) : json_null();
    json_t *data = wrap("payload", payload);
    json_object_set_new(data, "signal", json_string(name));
    emit(r, "signal_consumed", (long)r->in->step, 0, data);
    /* A wait on any of several says which one came. */
    if (!ds->signal)
        payload = json_pack("{s:s, s:o}", "signal", name, "payload", payload);
    if (r->p->nested)
        cancel_kind(r, ENGINE_TASK_WAIT_TIMEOUT, r->in->step);
    else
        r->fx->cancel_tasks = true;
    complete_node(r, r->in->step, payload);
    return true;
}

/* The child of the waiting workflow step ended: the step completes with its output, or fails
 * with child_failed (the child's error inside), or with the reason the child never ran. */
static bool on_child_ended(struct run *r)
{
    struct engine_step *s = current_step(r, DEFN_STEP_WORKFLOW);
    const char *status = r->in->child_status;
    if (!s || s->status != ENGINE_STEP_WAITING || !status)
        return false;
    size_t i = r->in->step;
    if (!strcmp(status, "completed")) {
        complete_node(r, i, json_deep_copy(r->in->output ? r->in->output : json_null()));
        return true;
    }
    const json_t *cerr = r->in->error;
    const char *ctype = json_string_value(json_object_get(cerr, "type"));
    const char *cmsg = json_string_value(json_object_get(cerr, "message"));
    json_t *err;
    if (!strcmp(status, "not_started")) {
        err = step_error(r, i, ctype ? ctype : "child_not_started",
                         cmsg ? cmsg : "the child execution could not start");
    } else {
        char *child = r->in->child_id ? xstrdup(r->in->child_id)
                                      : engine_child_id(execution_id_of(r), s->path);
        char *msg = cmsg ? xasprintf("child execution %s (workflow %s) ended %s: %s", child,
                                     N(r, i)->step->child_workflow, status, cmsg)
                         : xasprintf("child execution %s (workflow %s) ended %s", child,
                                     N(r, i)->step->child_workflow, status);
        err = step_error(r, i, "child_failed", msg);
        json_object_set_new(err, "child",
                            json_pack("{s:s, s:s, s:O}", "id", child, "status", status, "error",
                                      cerr ? cerr : json_null()));
        free(msg);
        free(child);
    }
    fail_node(r, i, err);
    return true;
}

static bool on_wait_timed_out(struct run *r)
{
    struct engine_step *s = current_step(r, DEFN_STEP_WAIT);
    if (!s || s->status != ENGINE_STEP_WAITING)
        return false;
    size_t i = r->in->step;
    const struct defn_step *ds = N(r, i)->step;
    if (ds->wait_timeout_ms <= 0)
        return false;
    emit(r, "wait_timed_out", (long)i, 0, wait_names(ds));
    if (ds->on_timeout == DEFN_ON_TIMEOUT_CONTINUE) {
        complete_node(r, i, json_null());
        return true;
    }
    char timeout[32];
    defn_format_duration(ds->wait_timeout_ms, timeout);
    struct buf names = BUF_INIT;
    for (size_t k = 0; k < (ds->signal ? 1 : ds->n_any); k++)
        buf_printf(&names, "%s\"%s\"",
                   k == 0               ? ""
                   : k + 1 == ds->n_any ? " or "
                                        : ", ",
                   ds->signal ? ds->signal : ds->any[k]);
    char *msg = xasprintf("no signal %s arrived within %s", names.data, timeout);
    buf_free(&names);
    json_t *err = step_error(r, i, "timeout", msg);
    free(msg);
    fail_node(r, i, err);
    return true;
}

/* {"reason": ...} when the input carries one, else NULL (an empty object). */
static json_t *reason_data(const struct run *r)
{
    json_t *reason = r->in->reason ? json_string(r->in->reason) : NULL;
    return reason ? json_pack("{s:o}", "reason", reason) : NULL;
}

/* The root of a running code execution that its program may still end, or NULL. */
static struct engine_step *code_root(struct run *r)
{
    struct engine_state *st = r->st;
    if (!r->p->code || st->status != ENGINE_EXEC_RUNNING || st->compensating || st->current != 0 ||
        S(r, 0)->status != ENGINE_STEP_RUNNING)
        return NULL;
    return S(r, 0);
}

/* The program ended its execution (COMPLETE or FAIL): completed with the output given, or,
 * after the saga has undone what completed, failed with its error; cancelled instead after a
 * cancel. No event of the root's own: the execution's says it. */
static bool on_program_end(struct run *r)
{
    struct engine_step *s = code_root(r);
    if (!s)
        return false;
    /* Steps it called and no longer waits for stop where they are (an attempt in flight too:
     * its result will be ignored), as a definition's steps do when their execution ends. */
    need_all(r);
    for (size_t k = 0; k < r->st->n_steps; k++) {
        enum engine_step_status cs = S(r, k)->status;
        if (S(r, k)->parent == 0 && (cs == ENGINE_STEP_SCHEDULED || cs == ENGINE_STEP_RUNNING ||
                                     cs == ENGINE_STEP_WAITING)) {
            skip_node(r, k);
            r->fx->cancel_tasks = true;
        }
    }
    s = S(r, 0);
    bool completed = r->in->kind == ENGINE_IN_COMPLETE;
    /* The program's own act, journaled: compensations may run before the execution's end. */
    emit(r, completed ? "complete_requested" : "fail_requested", -1, 0,
         completed ? NULL : wrap("error", r->in->error ? r->in->error : json_null()));
    if (r->st->cancel_requested) {
        skip_node(r, 0);
        root_ended(r, ENGINE_OUTCOME_CANCELLED);
        return true;
    }
    const json_t *v = completed ? r->in->output : r->in->error;
    s->status = completed ? ENGINE_STEP_COMPLETED : ENGINE_STEP_FAILED;
    s->completed_at_ms = r->now;
    if (completed)
        s->completion_order = ++r->st->completions;
    json_object_set_new(ctx_step(r, 0), completed ? "output" : "error",
                        json_deep_copy(v ? v : json_null()));
    mark_changed(r, 0);
    root_ended(r, completed ? ENGINE_OUTCOME_COMPLETED : ENGINE_OUTCOME_FAILED);
    return true;
}

/* A step call of a key not journaled yet (or made new again by a retry): its instance is
 * created at the next position under the root and entered as a definition's step of its kind.
 * A key that exists is a replay, which the API answers from its row: stale. */
static bool on_step_call(struct run *r)
{
    struct engine_state *st = r->st;
    const char *key = r->in->key;
    if (!code_root(r) || st->cancel_requested || !key || !*key || strchr(key, '/') ||
        !r->in->request)
        return false;
    long found = find_instance(r, key);
    size_t i;
    if (found >= 0) {
        i = (size_t)found;
        if (S(r, i)->status != ENGINE_STEP_PENDING || !S(r, i)->call || S(r, i)->parent != 0)
            return false;
    } else {
        struct engine_call *c = engine_call_new(key, r->in->request);
        if (!c)
            return false;
        i = engine_state_add(st, key, 0);
        struct engine_step *s = S(r, i);
        s->call = c;
        s->position = st->next_position++;
        c->node->parent = N(r, 0);
        c->node->index = s->position;
        s->node = c->node;
        s->fresh = true;
    }
    enter_node(r, i);
    return true;
}

/* A later call of a journaled key came with another request: the history says so, once. */
static bool on_request_differs(struct run *r)
{
    const char *key = r->in->key;
    if (r->st->status != ENGINE_EXEC_RUNNING || !r->p->code || !key || !*key || strchr(key, '/'))
        return false;
    long i = find_instance(r, key);
    if (i < 0 || !S(r, (size_t)i)->call || S(r, (size_t)i)->call->differs)
        return false;
    S(r, (size_t)i)->call->differs = true;
    mark_changed(r, (size_t)i);
    emit(r, "request_differs", i, 0,
         json_pack("{s:o}", "request",
                   json_deep_copy(r->in->request ? r->in->request : json_null())));
    return true;
}

/* A cancel's deadline passed and the program never ended its execution: Keel does, cancelled. */
static bool on_cancel_deadline(struct run *r)
{
    if (!code_root(r) || !r->st->cancel_requested)
        return false;
    emit(r, "cancel_deadline_passed", -1, 0, NULL);
    skip_node(r, 0);
    root_ended(r, ENGINE_OUTCOME_CANCELLED);
    return true;
}

static bool on_cancel(struct run *r)
{
    struct engine_state *st = r->st;
    if (st->status != ENGINE_EXEC_RUNNING || st->cancel_requested || st->compensating)
        return false;
    st->cancel_requested = true;
    emit(r, "cancel_requested", -1, 0, reason_data(r));
    if (r->p->code && st->current == 0 && S(r, 0)->status == ENGINE_STEP_RUNNING) {
        /* The program is told by its next step call (409 cancel-requested) and ends it with
         * complete or fail; if it never comes back, the deadline does. */
        stop_below(r, 0);
        add_task(r, ENGINE_TASK_CANCEL_DEADLINE, 0, 0, r->now + ENGINE_CODE_CANCEL_DEADLINE_MS,
                 NULL);
        return true;
    }
    /* Walks down from the root to the running leaves. */
    if (st->current < st->n_top) {
        size_t i = st->current;
        struct engine_step *s = S(r, i);
        if (engine_node_is_container(N(r, i)->kind)) {
            if (s->status == ENGINE_STEP_RUNNING) {
                /* Every leaf not in flight stops now; the container ends once the ones in
                 * flight have ended (at their safe point). */
                stop_below(r, i);
                return true;
            }
        } else {
            /* The safe point of an attempt in flight is its end: its result decides. */
            if (s->status == ENGINE_STEP_RUNNING)
                return true;
            if (s->status == ENGINE_STEP_SCHEDULED || s->status == ENGINE_STEP_WAITING) {
                skip_node(r, i);
                r->fx->cancel_tasks = true;
                node_ended(r, i, ENGINE_OUTCOME_CANCELLED);
                return true;
            }
        }
    }
    /* Nothing was running (not started, or between steps): the root ends cancelled. */
    root_ended(r, ENGINE_OUTCOME_CANCELLED);
    return true;
}

static bool on_terminate(struct run *r)
{
    struct engine_state *st = r->st;
    if (st->status != ENGINE_EXEC_RUNNING)
        return false;
    need_all(r);
    for (size_t i = 0; i < st->n_steps; i++) {
        struct engine_step *s = &st->steps[i];
        switch (s->status) {
        case ENGINE_STEP_PENDING:
        case ENGINE_STEP_SCHEDULED:
        case ENGINE_STEP_RUNNING:
        case ENGINE_STEP_WAITING:
            skip_node(r, i);
            break;
        default:
            break;
        }
        if (s->comp.status == ENGINE_COMP_SCHEDULED || s->comp.status == ENGINE_COMP_RUNNING) {
            s->comp.status = ENGINE_COMP_INTERRUPTED;
            s->comp.accepted = false;
            s->comp.attempt_started_at_ms = 0;
        }
    }
    st->compensating = false;
    st->status = ENGINE_EXEC_TERMINATED;
    emit(r, "execution_terminated", -1, 0, reason_data(r));
    r->fx->ended = true;
    r->fx->cancel_tasks = true;
    return true;
}

static bool on_retry(struct run *r)
{
    struct engine_state *st = r->st;
    size_t f = st->current;
    if (st->status != ENGINE_EXEC_FAILED || f >= st->n_top ||
        st->steps[f].status != ENGINE_STEP_FAILED)
        return false;
    need_all(r);
    for (size_t i = 0; i < st->n_steps; i++)
        if (st->steps[i].status == ENGINE_STEP_COMPENSATED ||
            st->steps[i].comp.status != ENGINE_COMP_NONE)
            return false;
    emit(r, "execution_retried", -1, 0, json_pack("{s:s}", "step", st->steps[f].path));
    st->status = ENGINE_EXEC_RUNNING;
    st->cancel_requested = false;
    st->compensating = false;
    r->fx->clear_error = true;
    for (size_t i = f + 1; i < st->n_top; i++) {
        if (st->steps[i].status == ENGINE_STEP_SKIPPED) {
            reset_instance(S(r, i), ENGINE_STEP_PENDING);
            mark_changed(r, i);
        }
    }
    resume_node(r, f);
    return true;
}

/* ---- the entry point --------------------------------------------------------------------- */

const char *engine_step_public_status(const struct defn *d, const struct engine_state *st, size_t i)
{
    if (!d || !st || i >= st->n_steps)
        return "unknown";
    const struct engine_step *s = &st->steps[i];
    const struct defn_step *ds = s->node ? s->node->step : i < d->n_steps ? &d->steps[i] : NULL;
    if (s->status == ENGINE_STEP_SCHEDULED && ds) {
        enum defn_step_kind kind = ds->kind;
        if (kind == DEFN_STEP_SLEEP || kind == DEFN_STEP_SLEEP_UNTIL)
            return "sleeping";
        if (kind == DEFN_STEP_ACTIVITY && s->attempt > 1)
            return "retrying";
    }
    return engine_step_status_name(s->status);
}

bool engine_attempt_in_flight(const struct engine_state *st, size_t step, int attempt,
                              bool compensation)
{
    if (!st || st->status != ENGINE_EXEC_RUNNING || step >= st->n_steps || attempt < 1)
        return false;
    const struct engine_step *s = &st->steps[step];
    if (compensation)
        return st->compensating && s->comp.status == ENGINE_COMP_RUNNING &&
               s->comp.attempt == attempt;
    /* A nested step runs while RUNNING (several can at once); a top-level one is current. */
    return !st->compensating && (step >= st->n_top || step == st->current) &&
           s->status == ENGINE_STEP_RUNNING && s->attempt == attempt;
}

size_t engine_attempts_to_resend(const struct engine_state *st, struct engine_attempt_ref **out)
{
    *out = NULL;
    size_t n = 0, cap = 0;
    if (!st)
        return 0;
    for (size_t i = 0; i < st->n_steps; i++) {
        const struct engine_step *s = &st->steps[i];
        bool comp = st->compensating && s->comp.status == ENGINE_COMP_RUNNING && !s->comp.accepted;
        int attempt = comp ? s->comp.attempt : s->attempt;
        /* The state must be bound to its plan: only an activity's RUNNING is an attempt. */
        if (!comp && (s->status != ENGINE_STEP_RUNNING || s->accepted || !s->node ||
                      !s->node->step || s->node->step->kind != DEFN_STEP_ACTIVITY))
            continue;
        if (!engine_attempt_in_flight(st, i, attempt, comp))
            continue;
        void *a = *out;
        xgrow_zeroed(&a, &cap, n + 1, sizeof **out);
        *out = a;
        (*out)[n++] = (struct engine_attempt_ref){i, attempt, comp};
    }
    return n;
}

static void collect_changed(struct run *r)
{
    size_t n = 0, m = r->cap_changed < r->st->n_steps ? r->cap_changed : r->st->n_steps;
    for (size_t i = 0; i < m; i++)
        n += r->changed[i];
    if (n == 0)
        return;
    r->fx->changed_steps = xcalloc(n, sizeof *r->fx->changed_steps);
    for (size_t i = 0; i < m; i++)
        if (r->changed[i])
            r->fx->changed_steps[r->fx->n_changed_steps++] = i;
}

/* Points every instance at its plan node (the plan may be a new one for every call) and
 * checks that its path fits the plan. Returns false when one does not. */
static bool bind_from(const struct engine_plan *p, struct engine_state *st, size_t first)
{
    for (size_t i = first; i < st->n_steps; i++) {
        struct engine_step *s = &st->steps[i];
        if (i < st->n_top) {
            s->node = p->by_step[i];
            if (!s->path || strcmp(s->path, s->node->id) != 0)
                return false;
            continue;
        }
        if (s->call) {
            /* A step call's node is the instance's own, under the code root. */
            struct engine_plan_node *cn = s->call->node;
            if (!p->code || s->parent != 0 || st->steps[0].node != p->by_step[0])
                return false;
            cn->parent = p->by_step[0];
            cn->index = s->position;
            s->node = cn;
            continue;
        }
        size_t idx[MAX_LOOPS], n_loops;
        const struct engine_plan_node *n =
            engine_plan_resolve(p, s->path, idx, MAX_LOOPS, &n_loops);
        if (!n || s->parent == ENGINE_NO_PARENT || s->parent >= i ||
            st->steps[s->parent].node != n->parent)
            return false;
        s->node = n;
        bool iteration = n->kind == ENGINE_NODE_SEQUENCE && n->parent->kind == ENGINE_NODE_FOR_EACH;
        s->position = iteration ? idx[n_loops - 1] : n->index;
    }
    return true;
}

/* True for the inputs that name no step. */
static bool execution_wide(enum engine_input_kind k)
{
    return k == ENGINE_IN_START || k == ENGINE_IN_CANCEL || k == ENGINE_IN_TERMINATE ||
           k == ENGINE_IN_RETRY || k == ENGINE_IN_COMPLETE || k == ENGINE_IN_FAIL ||
           k == ENGINE_IN_CANCEL_DEADLINE || k == ENGINE_IN_STEP_CALL ||
           k == ENGINE_IN_REQUEST_DIFFERS;
}

static bool bind(const struct engine_plan *p, struct engine_state *st)
{
    return bind_from(p, st, 0);
}

bool engine_state_bind(const struct engine_plan *p, struct engine_state *st)
{
    return p && st && st->n_top == p->n_steps && bind(p, st);
}

int engine_advance(const struct defn *d, struct engine_state *st, json_t *ctx,
                   const struct engine_input *in, struct engine_effects *fx)
{
    if (!d)
        return -1;
    struct engine_plan *p = engine_plan_build(d);
    if (!p)
        return -1;
    int rc = engine_advance_plan(p, st, ctx, in, fx);
    /* The instances point into the plan freed here: leave none dangling (a reader such as
     * engine_step_public_status then falls back to the definition, or binds a plan). */
    if (st)
        for (size_t i = 0; i < st->n_steps; i++)
            st->steps[i].node = NULL;
    engine_plan_free(p);
    return rc;
}

int engine_advance_plan(const struct engine_plan *p, struct engine_state *st, json_t *ctx,
                        const struct engine_input *in, struct engine_effects *fx)
{
    if (!p || !p->d || !st || !json_is_object(ctx) || !in || !fx || st->n_top != p->d->n_steps ||
        st->n_steps < st->n_top)
        return -1;
    if (in->kind < ENGINE_IN_START || in->kind > ENGINE_IN_REQUEST_DIFFERS)
        return -1;
    if (!bind(p, st))
        return -1;

    struct run r = {.p = p, .d = p->d, .st = st, .ctx = ctx, .in = in, .fx = fx, .now = in->now_ms};
    r.retired = json_array();
    bool applied = false;
    /* Every other input names a step; one that does not exist is stale like any other. */
    if (!execution_wide(in->kind) && in->step >= st->n_steps) {
        applied = false;
    } else {
        switch (in->kind) {
        case ENGINE_IN_START:
            applied = on_start(&r);
            break;
        case ENGINE_IN_ATTEMPT_STARTED:
            applied = on_attempt_started(&r);
            break;
        case ENGINE_IN_ATTEMPT_SUCCEEDED:
            applied = on_attempt_succeeded(&r);
            break;
        case ENGINE_IN_ATTEMPT_FAILED:
            applied = on_attempt_failed(&r);
            break;
        case ENGINE_IN_TIMER_FIRED:
            applied = on_timer_fired(&r);
            break;
        case ENGINE_IN_SIGNAL:
            applied = on_signal(&r);
            break;
        case ENGINE_IN_WAIT_TIMED_OUT:
            applied = on_wait_timed_out(&r);
            break;
        case ENGINE_IN_CANCEL:
            applied = on_cancel(&r);
            break;
        case ENGINE_IN_TERMINATE:
            applied = on_terminate(&r);
            break;
        case ENGINE_IN_CHILD_ENDED:
            applied = on_child_ended(&r);
            break;
        case ENGINE_IN_COMPLETE:
        case ENGINE_IN_FAIL:
            applied = on_program_end(&r);
            break;
        case ENGINE_IN_CANCEL_DEADLINE:
            applied = on_cancel_deadline(&r);
            break;
        case ENGINE_IN_STEP_CALL:
            applied = on_step_call(&r);
            break;
        case ENGINE_IN_REQUEST_DIFFERS:
            applied = on_request_differs(&r);
            break;
        case ENGINE_IN_RETRY:
            applied = on_retry(&r);
            break;
        case ENGINE_IN_ATTEMPT_ACCEPTED:
            applied = on_attempt_accepted(&r);
            break;
        case ENGINE_IN_HEARTBEAT:
            applied = on_heartbeat(&r);
            break;
        case ENGINE_IN_HEARTBEAT_TIMED_OUT:
            applied = on_timed_out(&r, true);
            break;
        case ENGINE_IN_ATTEMPT_TIMED_OUT:
            applied = on_timed_out(&r, false);
            break;
        case ENGINE_IN_RESEND:
            applied = on_resend(&r);
            break;
        }
    }
    if (applied) {
        collect_changed(&r);
    } else {
        fx->stale = true;
        fx->stale_ended = st->status != ENGINE_EXEC_RUNNING;
    }
    free(r.changed);
    json_decref(r.scope);
    json_decref(r.retired);
    return r.load_failed ? -1 : 0;
}
