/* The interpreter's state: names, lifetime, and its versioned JSON form for executions.state.
 *
 * The JSON (version 1) is
 *   {"v": 1, "status": "running", "current": 1, "completions": 1,
 *    "steps": [{"status": "completed", "attempt": 2, "scheduled_at": ..., "started_at": ...,
 *               "completed_at": ..., "order": 1}, {"status": "scheduled", ...}]}
 * with "steps" parallel to the definition's steps and every member of a step that is zero left
 * out. The version number is there so that a later shape (sub-steps of parallel branches and
 * for_each bodies, a compensation phase) can be read next to this one. Reading checks every
 * type, range and name and the invariants the interpreter keeps, so a damaged or hand-edited
 * state is refused rather than run. */
#include "engine/engine.h"

#include "util/alloc.h"

#include <limits.h>
#include <string.h>

#define STATE_VERSION 1

/* ---- names ------------------------------------------------------------------------------- */

static const char *const EXEC_NAMES[] = {"running", "completed", "failed", "cancelled",
                                         "terminated"};
static const char *const STEP_NAMES[] = {"pending",   "scheduled", "running", "waiting",
                                         "completed", "failed",    "skipped", "compensated"};
#define N_EXEC_NAMES (sizeof EXEC_NAMES / sizeof EXEC_NAMES[0])
#define N_STEP_NAMES (sizeof STEP_NAMES / sizeof STEP_NAMES[0])

const char *engine_exec_status_name(enum engine_exec_status s)
{
    return (size_t)s < N_EXEC_NAMES ? EXEC_NAMES[s] : "unknown";
}

const char *engine_step_status_name(enum engine_step_status s)
{
    return (size_t)s < N_STEP_NAMES ? STEP_NAMES[s] : "unknown";
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

void engine_state_init(struct engine_state *st, const struct defn *d)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    st->status = ENGINE_EXEC_RUNNING;
    st->n_steps = d ? d->n_steps : 0;
    /* calloc leaves every step ENGINE_STEP_PENDING with all counters and times at zero. */
    st->steps = xcalloc(st->n_steps, sizeof *st->steps);
}

void engine_state_free(struct engine_state *st)
{
    if (!st)
        return;
    free(st->steps);
    memset(st, 0, sizeof *st);
}

/* ---- to JSON ----------------------------------------------------------------------------- */

static void set_nonzero(json_t *obj, const char *key, int64_t v)
{
    if (v != 0)
        json_object_set_new(obj, key, json_integer((json_int_t)v));
}

json_t *engine_state_to_json(const struct engine_state *st)
{
    if (!st)
        return NULL;
    json_t *steps = json_array();
    for (size_t i = 0; i < st->n_steps; i++) {
        const struct engine_step *s = &st->steps[i];
        json_t *o = json_object();
        json_object_set_new(o, "status", json_string(engine_step_status_name(s->status)));
        set_nonzero(o, "attempt", s->attempt);
        set_nonzero(o, "scheduled_at", s->scheduled_at_ms);
        set_nonzero(o, "started_at", s->started_at_ms);
        set_nonzero(o, "completed_at", s->completed_at_ms);
        set_nonzero(o, "order", s->completion_order);
        json_array_append_new(steps, o);
    }
    json_t *j = json_object();
    json_object_set_new(j, "v", json_integer(STATE_VERSION));
    json_object_set_new(j, "status", json_string(engine_exec_status_name(st->status)));
    json_object_set_new(j, "current", json_integer((json_int_t)st->current));
    json_object_set_new(j, "completions", json_integer(st->completions));
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

static bool read_step(const json_t *o, size_t n_steps, struct engine_step *s)
{
    static const char *const keys[] = {
        "status", "attempt", "scheduled_at", "started_at", "completed_at", "order", NULL};
    int64_t attempt, order;
    if (!json_is_object(o) || !only_keys(o, keys))
        return false;
    int status = name_index(STEP_NAMES, N_STEP_NAMES, json_object_get(o, "status"));
    if (status < 0)
        return false;
    if (!get_int(o, "attempt", true, 0, INT_MAX, &attempt) ||
        !get_int(o, "scheduled_at", true, INT64_MIN, INT64_MAX, &s->scheduled_at_ms) ||
        !get_int(o, "started_at", true, INT64_MIN, INT64_MAX, &s->started_at_ms) ||
        !get_int(o, "completed_at", true, INT64_MIN, INT64_MAX, &s->completed_at_ms) ||
        !get_int(o, "order", true, 0, (int64_t)n_steps, &order))
        return false;
    s->status = (enum engine_step_status)status;
    s->attempt = (int)attempt;
    s->completion_order = (int)order;
    return true;
}

/* The invariants of one step that the interpreter keeps, given its definition. */
static bool step_consistent(const struct engine_step *s, const struct defn_step *ds)
{
    bool activity = ds->kind == DEFN_STEP_ACTIVITY;
    bool timer = ds->kind == DEFN_STEP_SLEEP || ds->kind == DEFN_STEP_SLEEP_UNTIL;
    bool untouched = s->attempt == 0 && s->scheduled_at_ms == 0 && s->started_at_ms == 0 &&
                     s->completed_at_ms == 0 && s->completion_order == 0;
    if (s->attempt > 0 && !activity)
        return false;
    switch (s->status) {
    case ENGINE_STEP_PENDING:
    case ENGINE_STEP_SKIPPED:
        return untouched;
    case ENGINE_STEP_SCHEDULED:
        return ((activity && s->attempt >= 1) || timer) && s->completed_at_ms == 0 &&
               s->completion_order == 0;
    case ENGINE_STEP_RUNNING:
        return activity && s->attempt >= 1 && s->completed_at_ms == 0 && s->completion_order == 0;
    case ENGINE_STEP_WAITING:
        return ds->kind == DEFN_STEP_WAIT && s->completed_at_ms == 0 && s->completion_order == 0;
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
        ok = step_consistent(s, &d->steps[i]);
        if (ok && s->completion_order > 0) {
            ok = s->completion_order <= st->completions && !seen[s->completion_order];
            seen[s->completion_order] = true;
            orders++;
        }
    }
    free(seen);
    if (!ok || orders != st->completions)
        return false;

    size_t cur = st->current;
    for (size_t i = 0; i < st->n_steps; i++) {
        enum engine_step_status s = st->steps[i].status;
        switch (st->status) {
        case ENGINE_EXEC_RUNNING:
            /* Before the current step: done; the current one: in progress (or not yet entered
             * when the execution has not started); after it: not reached. */
            if (i < cur)
                ok = s == ENGINE_STEP_COMPLETED;
            else if (i == cur)
                ok = s == ENGINE_STEP_SCHEDULED || s == ENGINE_STEP_RUNNING ||
                     s == ENGINE_STEP_WAITING || (s == ENGINE_STEP_PENDING && st->completions == 0);
            else
                ok = s == ENGINE_STEP_PENDING;
            break;
        case ENGINE_EXEC_COMPLETED:
            ok = s == ENGINE_STEP_COMPLETED;
            break;
        case ENGINE_EXEC_FAILED:
            /* A failed step is the current one; without one (the output template failed),
             * every step completed and current is past the end. */
            if (i < cur)
                ok = s == ENGINE_STEP_COMPLETED;
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
        return cur < st->n_steps;
    if (st->status == ENGINE_EXEC_COMPLETED)
        return cur == st->n_steps;
    return true;
}

int engine_state_from_json(const json_t *j, const struct defn *d, struct engine_state *st)
{
    static const char *const keys[] = {"v", "status", "current", "completions", "steps", NULL};
    int64_t v, current, completions;
    if (!st)
        return -1;
    memset(st, 0, sizeof *st);
    if (!j || !d || !json_is_object(j) || !only_keys(j, keys))
        return -1;
    const json_t *steps = json_object_get(j, "steps");
    int status = name_index(EXEC_NAMES, N_EXEC_NAMES, json_object_get(j, "status"));
    if (!get_int(j, "v", false, STATE_VERSION, STATE_VERSION, &v) || status < 0 ||
        !get_int(j, "current", false, 0, (int64_t)d->n_steps, &current) ||
        !get_int(j, "completions", false, 0, (int64_t)d->n_steps, &completions) ||
        !json_is_array(steps) || json_array_size(steps) != d->n_steps)
        return -1;

    st->status = (enum engine_exec_status)status;
    st->n_steps = d->n_steps;
    st->current = (size_t)current;
    st->completions = (int)completions;
    st->steps = xcalloc(st->n_steps, sizeof *st->steps);
    for (size_t i = 0; i < st->n_steps; i++)
        if (!read_step(json_array_get(steps, i), st->n_steps, &st->steps[i]))
            goto Fail;
    if (!state_consistent(st, d))
        goto Fail;
    return 0;

Fail:
    engine_state_free(st);
    return -1;
}
