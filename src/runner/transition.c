/* The transactional shell around engine_advance. */
#include "runner/transition.h"

#include "metrics.h"
#include "runner/row_loader.h"

#include "store/stmt.h"
#include "util/alloc.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/ids.h"
#include "util/jsonlimits.h"
#include "util/jsontext.h"
#include "util/timeutil.h"
#include "webhook/sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void attempt_dispatch_free(struct attempt_dispatch *d)
{
    if (!d)
        return;
    free(d->execution_id);
    free(d->workflow);
    free(d->step_id);
    json_decref(d->payload);
    free(d->token);
    free(d);
}

void attempt_dispatch_free_list(struct attempt_dispatch *list)
{
    while (list) {
        struct attempt_dispatch *next = list->next;
        attempt_dispatch_free(list);
        list = next;
    }
}

/* What several engine_advance calls of one transition add up to. */
struct pending {
    json_t *events;      /* [{seq, type, step, attempt, data}] */
    json_t *tasks;       /* [{kind, step, attempt, due_at, payload}]: work due later, or for the
                            execution's owner when that is another keeld */
    json_t *sends;       /* [{step, attempt, payload, token, compensation}]: attempts journaled as
                            started here, to send after COMMIT; the tokens never go to SQL */
    json_t *token_rows;  /* [{token_hash, step, attempt, compensation}] of the sends */
    json_t *drops;       /* [{kind, step}]: pending tasks to delete */
    json_t *children;    /* [{id, path, workflow, version, input}]: child executions to start */
    json_t *child_stops; /* [{path, terminate}]: children of these steps to cancel or terminate */
    bool *changed;       /* per step instance */
    size_t cap_changed;
    bool cancel_tasks;
    bool notify;          /* a task was inserted: wake its owner's claimer */
    int64_t first_due_ms; /* the earliest due time of the tasks inserted */
    bool ended;
    json_t *output;
    json_t *error;
    int64_t last_seq;
    json_t *heartbeat;          /* {"at", "details"} of a heartbeat that applied, or NULL */
    const char *heartbeat_step; /* its step's path (borrowed from the state) */
};

static void ts(int64_t ms, char out[32])
{
    time_format_rfc3339(ms, out);
}

static json_t *json_ts_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char t[32];
    ts(ms, t);
    return json_string(t);
}

/* Everything one transition works on. */
struct apply {
    const struct transition_env *env;
    PGconn *conn;
    const char *exec_id;
    const struct defn *d;
    const struct engine_plan *plan; /* d's plan, cached with it */
    struct engine_state *st;
    json_t *ctx;
    int64_t now_ms;
    bool owned; /* this keeld owns the execution: it sends the attempts due now itself */
    struct pending *p;
    json_t *consumed_signals;  /* [[signal id, seq]] */
    int64_t delivering_signal; /* the request's own signal, consumed by this transition */
    char *why;                 /* a database error met on the way */
};

/* Marks instance i's row to be written. */
static void mark_row(struct pending *p, size_t i)
{
    void *a = p->changed;
    xgrow_zeroed(&a, &p->cap_changed, i + 1, sizeof *p->changed);
    p->changed = a;
    p->changed[i] = true;
}

/* The step id of the instance at path: its last segment (a branch's name or an iteration's
 * index for a sequence). */
static const char *path_id(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Appends an event; step is the instance's path (NULL for the whole execution). */
static void append_event(struct apply *a, const char *type, const char *step, int attempt,
                         json_t *data)
{
    json_t *row = json_object();
    json_object_set_new(row, "seq", json_integer(++a->p->last_seq));
    json_object_set_new(row, "type", json_string(type));
    json_object_set_new(row, "step", step ? json_string(path_id(step)) : json_null());
    json_object_set_new(row, "path", step ? json_string(step) : json_null());
    json_object_set_new(row, "attempt", attempt > 0 ? json_integer(attempt) : json_null());
    json_object_set_new(row, "data", data ? data : json_object());
    json_array_append_new(a->p->events, row);
}

static void collect(struct apply *a, const struct engine_input *in, struct engine_effects *fx);

/* Feeds one more input to the engine within the same transition. Returns true if it applied. */
static bool advance_more(struct apply *a, const struct engine_input *in)
{
    struct engine_effects fx = {0};
    if (engine_advance_plan(a->plan, a->st, a->ctx, in, &fx) != 0) {
        if (!a->why)
            a->why = xasprintf("execution %s: the interpreter could not apply a follow-up input "
                               "(reading its step rows failed)",
                               a->exec_id);
        engine_effects_free(&fx);
        return false;
    }
    bool applied = !fx.stale;
    if (applied)
        collect(a, in, &fx);
    engine_effects_free(&fx);
    return applied;
}

/* The seq of the newest event of that type written in this transition, or 0. */
static json_int_t last_event_seq(struct apply *a, const char *type)
{
    json_int_t seq = 0;
    size_t i;
    json_t *e;
    json_array_foreach(a->p->events, i, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "type")), type))
            seq = json_integer_value(json_object_get(e, "seq"));
    }
    return seq;
}

/* A wait has started: deliver the oldest signal of its name that arrived before it to the
 * waiting instance `step`. */
static void deliver_stored_signal(struct apply *a, const struct defn_step *ds, size_t step)
{
    /* Signals consumed earlier in this transition are not marked in the table yet. */
    struct buf taken = BUF_INIT;
    buf_printf(&taken, "{%lld", (long long)a->delivering_signal);
    size_t k;
    json_t *c;
    json_array_foreach(a->consumed_signals, k, c)
    {
        buf_printf(&taken, ",%lld", (long long)json_integer_value(json_array_get(c, 0)));
    }
    buf_putc(&taken, '}');
    /* The oldest of any name the wait accepts. */
    struct buf names = BUF_INIT;
    const char *const *list =
        ds->signal ? (const char *const *)&ds->signal : (const char *const *)ds->any;
    store_text_array(&names, list, ds->signal ? 1 : ds->n_any);
    const char *params[] = {a->exec_id, names.data, taken.data};
    PGresult *r = store_run(a->conn, STMT_SIGNAL_NEXT, 3, params);
    buf_free(&taken);
    buf_free(&names);
    if (!store_ok(r)) {
        if (!a->why)
            a->why = store_error(r, a->conn);
        PQclear(r);
        return;
    }
    if (PQntuples(r) == 1) {
        json_int_t id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        json_t *payload = json_loads(PQgetvalue(r, 0, 1), JSON_DECODE_ANY, NULL);
        struct engine_input sig = {
            .kind = ENGINE_IN_SIGNAL,
            .now_ms = a->now_ms,
            .step = step,
            .signal = PQgetvalue(r, 0, 2),
            .payload = payload,
            .retry_after_ms = -1,
        };
        if (advance_more(a, &sig))
            json_array_append_new(a->consumed_signals,
                                  json_pack("[I, I]", id, last_event_seq(a, "signal_consumed")));
        json_decref(payload);
    }
    PQclear(r);
}

/* Moves the effects of one engine call into the pending writes. An attempt due now, when this
 * keeld owns the execution, gets a token and is fed back to the engine as started, so that one
 * transaction journals both and no task row holds it; any other task is inserted. */
static void collect(struct apply *a, const struct engine_input *in, struct engine_effects *fx)
{
    struct pending *p = a->p;
    const struct engine_state *st = a->st;
    for (size_t i = 0; i < fx->n_events; i++) {
        struct engine_event *e = &fx->events[i];
        append_event(a, e->type, e->step >= 0 ? st->steps[e->step].path : NULL, e->attempt,
                     e->data ? json_incref(e->data) : NULL);
    }
    for (size_t i = 0; i < fx->n_changed_steps; i++)
        mark_row(p, fx->changed_steps[i]);
    /* Cancels apply to the tasks of the earlier calls of this transition too (engine.h), which
     * are not in the table yet: the statement that deletes pending tasks cannot see them. */
    if (fx->cancel_tasks) {
        p->cancel_tasks = true;
        json_array_clear(p->tasks);
    }
    for (size_t i = 0; i < fx->n_cancels; i++) {
        const char *kind = engine_task_kind_name(fx->cancels[i].kind);
        const char *path = st->steps[fx->cancels[i].step].path;
        for (size_t k = json_array_size(p->tasks); k-- > 0;) {
            const json_t *t = json_array_get(p->tasks, k);
            if (!strcmp(json_string_value(json_object_get(t, "kind")), kind) &&
                !strcmp(json_string_value(json_object_get(t, "step")), path))
                json_array_remove(p->tasks, k);
        }
        json_array_append_new(p->drops, json_pack("{s:s, s:s}", "kind", kind, "step", path));
    }
    for (size_t i = 0; i < fx->n_children; i++) {
        const struct engine_child *c = &fx->children[i];
        json_array_append_new(p->children, json_pack("{s:s, s:s, s:s, s:i, s:O}", "id", c->id,
                                                     "path", c->path, "workflow", c->workflow,
                                                     "version", c->version, "input", c->input));
    }
    for (size_t i = 0; i < fx->n_child_stops; i++) {
        /* A child asked for and stopped within one transition is neither. */
        const char *path = fx->child_stops[i].path;
        bool started_here = false;
        for (size_t k = json_array_size(p->children); k-- > 0 && !started_here;) {
            if (!strcmp(json_string_value(json_object_get(json_array_get(p->children, k), "path")),
                        path)) {
                json_array_remove(p->children, k);
                started_here = true;
            }
        }
        if (!started_here)
            json_array_append_new(p->child_stops, json_pack("{s:s, s:b}", "path", path, "terminate",
                                                            fx->child_stops[i].terminate));
    }
    if (fx->ended) {
        p->ended = true;
        json_decref(p->output);
        json_decref(p->error);
        p->output = fx->output ? json_incref(fx->output) : NULL;
        p->error = fx->error ? json_incref(fx->error) : NULL;
    }
    const char *wants_signal = fx->wants_signal;
    for (size_t i = 0; i < fx->n_tasks; i++) {
        struct engine_task *t = &fx->tasks[i];
        const char *path = st->steps[t->step].path;
        bool compensation = t->kind == ENGINE_TASK_COMPENSATION;
        if (a->owned && engine_task_sends(t->kind) && t->due_at_ms <= in->now_ms) {
            /* Sent after COMMIT with a new token, whose hash goes into attempt_tokens in this
             * same transaction: the token is valid from the moment it is sent. */
            char token[WH_TASK_TOKEN_LEN + 1], hash[WH_TASK_TOKEN_HASH_LEN + 1];
            wh_task_token_new(token, hash);
            json_array_append_new(
                p->sends, json_pack("{s:s, s:i, s:O, s:s, s:b}", "step", path, "attempt",
                                    t->attempt, "payload", t->payload ? t->payload : json_null(),
                                    "token", token, "compensation", compensation));
            json_array_append_new(
                p->token_rows, json_pack("{s:s, s:s, s:i, s:b}", "token_hash", hash, "step", path,
                                         "attempt", t->attempt, "compensation", compensation));
            struct engine_input started = {
                .now_ms = in->now_ms,
                .step = t->step,
                .attempt = t->attempt,
                .retry_after_ms = -1,
            };
            if (engine_input_for_task(t->kind, &started) == 0) {
                /* A takeover's resend is of an attempt in flight. */
                started.redelivery =
                    engine_attempt_in_flight(st, t->step, t->attempt, started.compensation);
                advance_more(a, &started);
            }
            continue;
        }
        char due[32];
        ts(t->due_at_ms, due);
        json_array_append_new(
            p->tasks,
            json_pack("{s:s, s:s, s:o, s:s, s:O}", "kind", engine_task_kind_name(t->kind), "step",
                      path, "attempt", t->attempt > 0 ? json_integer(t->attempt) : json_null(),
                      "due_at", due, "payload", t->payload ? t->payload : json_null()));
        p->notify = true;
        if (p->first_due_ms == 0 || t->due_at_ms < p->first_due_ms)
            p->first_due_ms = t->due_at_ms > 0 ? t->due_at_ms : 1;
    }
    if (wants_signal) {
        /* Several waits may have started at once (in a parallel's branches): each waiting
         * instance gets the oldest stored signal of its name. Those that waited before got
         * theirs when they started; the query finds nothing more for them. */
        for (size_t i = 0; i < a->st->n_steps && a->st->status == ENGINE_EXEC_RUNNING; i++) {
            const struct engine_step *s = &a->st->steps[i];
            if (s->status == ENGINE_STEP_WAITING && s->node && s->node->step)
                deliver_stored_signal(a, s->node->step, i);
        }
    }
}

/* The due_at text of the last task of that kind for the step at path id written in this
 * transition, as a new JSON string, or JSON null. */
static json_t *task_due(const struct pending *p, const char *kind, const char *id)
{
    json_t *due = NULL;
    size_t k;
    json_t *t;
    json_array_foreach(p->tasks, k, t)
    {
        if (!strcmp(json_string_value(json_object_get(t, "kind")), kind) &&
            !strcmp(json_string_value(json_object_get(t, "step")), id))
            due = json_object_get(t, "due_at");
    }
    return due ? json_incref(due) : json_null();
}

/* The step row's columns that outlive one transition, as this transition's events leave them:
 * last_error is the error of the step's latest failed attempt (not a compensation's), and both
 * it and heartbeat start afresh when the step is entered (again). Sets "last_error_set" and
 * "heartbeat_set" to say whether the row's stored values are replaced. */
static void row_details(const struct pending *p, const char *id, json_t *row)
{
    json_t *last_error = NULL;
    bool fresh = false;
    size_t k;
    json_t *e;
    json_array_foreach(p->events, k, e)
    {
        const char *step = json_string_value(json_object_get(e, "path"));
        const char *type = json_string_value(json_object_get(e, "type"));
        if (!step || !type || strcmp(step, id) != 0)
            continue;
        json_t *data = json_object_get(e, "data");
        if (!strcmp(type, "step_scheduled")) {
            fresh = true;
            last_error = NULL;
        } else if (!strcmp(type, "attempt_failed") &&
                   !json_is_true(json_object_get(data, "compensation"))) {
            last_error = json_object_get(data, "error");
        }
    }
    json_object_set_new(row, "last_error", last_error ? json_incref(last_error) : json_null());
    json_object_set_new(row, "last_error_set", json_boolean(last_error || fresh));
    bool beat = p->heartbeat && !strcmp(p->heartbeat_step, id);
    json_object_set_new(row, "heartbeat", beat ? json_incref(p->heartbeat) : json_null());
    json_object_set_new(row, "heartbeat_set", json_boolean(beat || fresh));
}

/* The kind a step row shows: the step's kind, a step call's kind as its program named it
 * ("output" for what a definition calls "set"), or "branch" / "iteration" for the sequences of
 * a parallel's branch and a for_each's item. */
static const char *row_kind(const struct engine_step *s)
{
    const struct engine_plan_node *n = s->node;
    if (s->call)
        return defn_step_call_kind(s->call->request);
    if (n->kind != ENGINE_NODE_SEQUENCE)
        return engine_node_kind_name(n->kind);
    return n->branch ? "branch" : "iteration";
}

static json_t *step_rows(const struct defn *d, const struct engine_state *st, const json_t *ctx,
                         const struct pending *p)
{
    const bool *changed = p->changed;
    json_t *rows = json_array();
    json_t *steps = json_object_get(ctx, "steps");
    size_t n = p->cap_changed < st->n_steps ? p->cap_changed : st->n_steps;
    for (size_t i = 0; i < n; i++) {
        if (!changed[i])
            continue;
        const struct engine_step *s = &st->steps[i];
        const char *id = s->path;
        const struct engine_plan_node *node = s->node;
        json_t *c = json_object_get(steps, id);
        json_t *row = json_object();
        const char *status = engine_step_public_status(d, st, i);
        json_object_set_new(row, "path", json_string(id));
        json_object_set_new(row, "id", json_string(path_id(id)));
        json_object_set_new(row, "parent",
                            s->parent == ENGINE_NO_PARENT ? json_null()
                                                          : json_string(st->steps[s->parent].path));
        json_object_set_new(row, "kind", node ? json_string(row_kind(s)) : json_null());
        /* A key's request, with the row that creates it (never rewritten). */
        if (s->call && s->fresh)
            json_object_set(row, "request", s->call->request);
        json_object_set_new(row, "position", json_integer((json_int_t)s->position));
        json_object_set_new(row, "status", json_string(status));
        /* Attempts made: a step waiting to send its next attempt (scheduled, retrying) has
         * only numbered it. */
        int made = s->status == ENGINE_STEP_SCHEDULED && node && node->kind == ENGINE_NODE_ACTIVITY
                       ? s->attempt - 1
                       : s->attempt;
        json_object_set_new(row, "attempts", json_integer(made < 0 ? 0 : made));
        /* The due times come from the tasks written with the status: a step is retrying,
         * sleeping or waiting only in the transition that schedules its task. */
        json_object_set_new(row, "next_attempt_at",
                            !strcmp(status, "retrying") ? task_due(p, "activity", id)
                                                        : json_null());
        json_object_set_new(row, "due_at",
                            !strcmp(status, "sleeping")  ? task_due(p, "timer", id)
                            : !strcmp(status, "waiting") ? task_due(p, "wait_timeout", id)
                                                         : json_null());
        row_details(p, id, row);
        json_t *out = json_object_get(c, "output");
        json_object_set_new(row, "output", out ? json_incref(out) : json_null());
        json_t *err = json_object_get(c, "error");
        json_object_set_new(row, "error", err ? json_incref(err) : json_null());
        json_object_set_new(row, "started_at", json_ts_or_null(s->started_at_ms));
        json_object_set_new(row, "completed_at", json_ts_or_null(s->completed_at_ms));
        /* The interpreter's own state of the instance; a for_each's items only when they were
         * evaluated in this transition (they are written once). */
        json_object_set_new(row, "engine", engine_step_to_json(st, i));
        json_object_set_new(row, "items_set", json_boolean(s->items_set));
        json_object_set_new(row, "items",
                            s->items_set && s->items ? json_incref(s->items) : json_null());
        json_array_append_new(rows, row);
    }
    return rows;
}

/* Runs one statement of a transition's rarer writes (child workflows, a code execution's
 * ended keys and handler), which cost their own round trip rather than a place in the batch's
 * writes; false with *why set when it failed. */
static bool run_stmt(PGconn *conn, enum store_stmt id, int n, const char *const *params, char **why)
{
    PGresult *res = store_run(conn, id, n, params);
    bool ok = store_ok(res);
    if (!ok)
        *why = store_error(res, conn);
    PQclear(res);
    return ok;
}

/* The keys of a code execution whose step ended in this transition (rows written as
 * completed, failed, skipped or compensated), as topics "<execution>/<key>". New array. */
static json_t *ended_keys(const char *exec_id, const json_t *rows)
{
    static const char *const final[] = {"completed", "failed", "skipped", "compensated"};
    json_t *topics = json_array();
    size_t k;
    json_t *row;
    json_array_foreach(rows, k, row)
    {
        const char *parent = json_string_value(json_object_get(row, "parent"));
        const char *status = json_string_value(json_object_get(row, "status"));
        if (!parent || *parent || !status)
            continue;
        for (size_t f = 0; f < sizeof final / sizeof final[0]; f++)
            if (!strcmp(status, final[f])) {
                char *t =
                    xasprintf("%s/%s", exec_id, json_string_value(json_object_get(row, "path")));
                json_array_append_new(topics, json_string(t));
                free(t);
            }
    }
    return topics;
}

/* Announces the ended keys' topics at COMMIT on keel_steps, for the step calls held waiting
 * for them (Prefer: wait) on any keeld. False with *why set when it failed. */
static bool notify_ended_keys(PGconn *conn, const json_t *topics, char **why)
{
    bool ok = true;
    size_t n = json_array_size(topics);
    if (n > 0) {
        const char **items = xcalloc(n, sizeof *items);
        for (size_t i = 0; i < n; i++)
            items[i] = json_string_value(json_array_get(topics, i));
        struct buf arr = BUF_INIT;
        store_text_array(&arr, items, n);
        const char *params[] = {arr.data};
        ok = run_stmt(conn, STMT_STEPS_NOTIFY, 1, params, why);
        buf_free(&arr);
        free(items);
    }
    return ok;
}

/* A code execution's handler (contract, "Step calls"): after this transition, which may call
 * it (at start, after a retry or a cancel, when a key ended that no step call of this keeld
 * waits for, after its program has been idle with steps pending), and which arms the next
 * inactivity check. *queued is set when a task was inserted. False with *why set when a
 * statement failed. */
static bool handler_writes(struct apply *a, const struct transition_request *req, bool stale,
                           const json_t *topics, const char *task_owner, const char *now,
                           bool *queued, char **why)
{
    const struct engine_input *in = &req->in;
    const char *reason = NULL, *key = NULL;
    char arm_at[32] = "";
    if (!stale && in->kind == ENGINE_IN_START) {
        reason = "start";
        snprintf(arm_at, sizeof arm_at, "%s", now);
    } else if (!stale && in->kind == ENGINE_IN_RETRY) {
        reason = "retry";
    } else if (!stale && in->kind == ENGINE_IN_CANCEL) {
        reason = "cancel";
    } else if (in->kind != ENGINE_IN_STEP_CALL && !req->journal_only) {
        /* A key that ended by itself (a timer, a signal, a webhook's answer): the program is
         * told, unless one of its calls here waits for that key already. */
        size_t k;
        json_t *t;
        json_array_foreach(topics, k, t)
        {
            const char *topic = json_string_value(t);
            if (a->env->step_awaited && a->env->step_awaited(a->env->hook_arg, topic))
                continue;
            reason = "step_ended";
            key = strchr(topic, '/') + 1;
            break;
        }
    }
    if (req->inactivity_check) {
        const char *ip[] = {a->exec_id};
        PGresult *ir = store_run(a->conn, STMT_HANDLER_IDLE, 1, ip);
        if (!store_ok(ir)) {
            *why = store_error(ir, a->conn);
            PQclear(ir);
            return false;
        }
        if (PQntuples(ir) == 1) {
            int64_t idle_since = strtoll(PQgetvalue(ir, 0, 0), NULL, 10);
            int64_t timeout = strtoll(PQgetvalue(ir, 0, 1), NULL, 10);
            bool pending = !strcmp(PQgetvalue(ir, 0, 2), "t");
            bool idle = a->now_ms - idle_since >= timeout;
            if (idle && pending && !reason)
                reason = "inactivity";
            /* The next check: a timeout after the last call, or after now once it is past. */
            time_format_rfc3339(idle ? a->now_ms : idle_since, arm_at);
        }
        PQclear(ir);
    }
    if (arm_at[0]) {
        const char *ap[] = {a->exec_id, arm_at, task_owner};
        if (!run_stmt(a->conn, STMT_HANDLER_ARM, 3, ap, why))
            return false;
        *queued = true;
    }
    if (reason) {
        char timeout[24];
        snprintf(timeout, sizeof timeout, "%d", HANDLER_CALL_TIMEOUT_MS);
        const char *qp[] = {a->exec_id, now, reason, key, task_owner, timeout};
        if (!run_stmt(a->conn, STMT_HANDLER_QUEUE, 6, qp, why))
            return false;
        *queued = true;
    }
    return true;
}

/* Events do not repeat outputs that the same transaction stores elsewhere: a step_completed's
 * output is its step row's, an execution_completed's is the execution's. The history puts them
 * back (STMT_HISTORY), so readers see the events as the engine wrote them; an output that is
 * not stored alike (none today) stays in its event. */
static void compact_events(json_t *events, const json_t *rows, const json_t *exec_output)
{
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type"));
        json_t *data = json_object_get(e, "data");
        const json_t *output = json_object_get(data, "output");
        if (!type || !output)
            continue;
        const json_t *stored = NULL;
        if (!strcmp(type, "execution_completed")) {
            stored = exec_output;
        } else if (!strcmp(type, "step_completed")) {
            const char *path = json_string_value(json_object_get(e, "path"));
            size_t k;
            json_t *row;
            json_array_foreach(rows, k, row)
            {
                const char *rp = json_string_value(json_object_get(row, "path"));
                if (path && rp && !strcmp(path, rp))
                    stored = json_object_get(row, "output");
            }
        }
        if (stored && json_equal(stored, output))
            json_object_del(data, "output");
    }
}

/* Appends the records (objects) to a table of the batch's writes, each naming its execution. */
static void add_records(json_t *table, json_t *records, json_t *exec_id)
{
    size_t k;
    json_t *rec;
    json_array_foreach(records, k, rec)
    {
        json_object_set(rec, "execution_id", exec_id);
    }
    json_array_extend(table, records);
}

/* The child workflow writes of one transition of exec_id, inside its transaction (rare enough
 * to cost their own statements rather than a place in the batch's): the children its workflow
 * steps start are created (or found) and their starts queued; the children of steps that
 * stopped are cancelled or terminated; and report (when not NULL: {"child", "status",
 * "output", "error"}, or JSON null to build it from the execution's row) tells its parent that
 * it ended. A child started and stopped by the same input is neither. Returns true with
 * *queued set when a task was inserted (its owner's claimer must hear of it), false with *why
 * set when a statement failed. */
static bool child_writes(struct apply *a, const char *parent_id, const char *parent_path,
                         const json_t *report, const char *now, bool *queued, char **why)
{
    const struct transition_env *env = a->env;
    PGconn *conn = a->conn;
    const char *exec_id = a->exec_id;
    const struct pending *p = a->p;
    char depth[24];
    snprintf(depth, sizeof depth, "%ld", env->max_child_depth);
    size_t k;
    json_t *c;
    json_array_foreach(p->children, k, c)
    {
        char version[16];
        json_int_t v = json_integer_value(json_object_get(c, "version"));
        snprintf(version, sizeof version, "%lld", (long long)v);
        char *input = json_text(json_object_get(c, "input"));
        const char *params[] = {json_string_value(json_object_get(c, "id")),
                                json_string_value(json_object_get(c, "workflow")),
                                v ? version : NULL,
                                input,
                                exec_id,
                                json_string_value(json_object_get(c, "path")),
                                depth,
                                env->owner,
                                now};
        if (!input) {
            *why = xasprintf("execution %s: the input of child %s cannot be encoded", exec_id,
                             params[0]);
            return false;
        }
        PGresult *res = store_run(conn, STMT_CHILD_START, 9, params);
        free(input);
        if (!store_ok(res)) {
            *why = store_error(res, conn);
            PQclear(res);
            return false;
        }
        /* Which execution the step waits for, for a reader of the history (none when it cannot
         * start: the step fails with why, from the child_ended queued for it). */
        if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
            json_t *data = json_pack("{s:s, s:s, s:i, s:b}", "child", PQgetvalue(res, 0, 0),
                                     "workflow", params[1], "version", atoi(PQgetvalue(res, 0, 1)),
                                     "again", !strcmp(PQgetvalue(res, 0, 2), "t"));
            append_event(a, "child_started", params[5], 0, data);
        }
        PQclear(res);
        *queued = true;
    }
    json_array_foreach(p->child_stops, k, c)
    {
        bool terminate = json_is_true(json_object_get(c, "terminate"));
        char *payload = xasprintf("{\"reason\": \"its parent execution %s was %s\"}", exec_id,
                                  terminate ? "terminated" : "cancelled");
        const char *params[] = {exec_id,
                                json_string_value(json_object_get(c, "path")),
                                terminate ? TASK_PARENT_TERMINATE : TASK_PARENT_CANCEL,
                                payload,
                                now,
                                env->owner};
        bool ok = run_stmt(conn, STMT_CHILD_STOP, 6, params, why);
        free(payload);
        if (!ok)
            return false;
        *queued = true;
    }
    if (report && parent_id) {
        char *payload = json_is_null(report) ? NULL : json_text(report);
        const char *params[] = {exec_id, parent_id, parent_path, payload, now, env->owner};
        bool ok = run_stmt(conn, STMT_CHILD_REPORT, 6, params, why);
        free(payload);
        if (!ok)
            return false;
        *queued = true;
    }
    return true;
}

/* An attempt that waits for the capacity of its host (KEEL_HOST_LIMITS), or was sent after
 * waiting (req->capacity_wait NULL), while it is still in flight: the first journals
 * waiting_for_capacity and marks its step's row (an activity's own attempt, not a
 * compensation's: the row is the step's), the second clears the mark. An attempt that is over
 * (its answer came first, or the execution ended) gets nothing. False with *why set when the
 * statement failed. */
static bool capacity_writes(struct apply *a, const struct transition_request *req, char **why)
{
    const struct engine_input *in = &req->in;
    if (in->step >= a->st->n_steps ||
        !engine_attempt_in_flight(a->st, in->step, in->attempt, in->compensation))
        return true;
    const char *path = a->st->steps[in->step].path;
    char *mark = NULL;
    if (req->capacity_wait) {
        json_t *data = json_deep_copy(req->capacity_wait);
        if (in->compensation)
            json_object_set_new(data, "compensation", json_true());
        append_event(a, "waiting_for_capacity", path, in->attempt, data);
        if (in->compensation)
            return true;
        json_t *m = json_deep_copy(req->capacity_wait);
        json_object_set_new(m, "attempt", json_integer(in->attempt));
        json_object_set_new(m, "since", json_ts_or_null(a->now_ms));
        mark = json_text(m);
        json_decref(m);
    }
    const char *params[] = {a->exec_id, path, mark};
    bool ok = run_stmt(a->conn, STMT_STEP_CAPACITY, 3, params, why);
    free(mark);
    return ok;
}

static bool is_result(enum engine_input_kind k)
{
    return k == ENGINE_IN_ATTEMPT_SUCCEEDED || k == ENGINE_IN_ATTEMPT_FAILED ||
           k == ENGINE_IN_ATTEMPT_ACCEPTED;
}

/* Runs lk's "lock; read" in one round trip, and returns the read's result. */
static PGresult *lock_execution(PGconn *conn, const struct transition_lock *lk, char **why)
{
    PGresult *res[2] = {NULL, NULL};
    int rc = store_pipeline(conn, lk->calls, 2, res, why);
    PQclear(res[0]);
    if (rc < 0 && res[1] && store_ok(res[1])) {
        PQclear(res[1]);
        return NULL;
    }
    return res[1];
}

void transition_lock_prepare(const struct transition_request *req, struct transition_lock *lk)
{
    snprintf(lk->task_id, sizeof lk->task_id, "%lld", (long long)req->consume_task_id);
    /* The rows the input's step starts from: it and its ancestors, and their children (not a
     * for_each's iterations); the top-level rows always come. The engine loads the others it
     * needs through the loader. */
    lk->paths = (struct buf)BUF_INIT;
    json_t *list = json_array(), *seen = json_object();
    if (req->step_id)
        row_paths_with_ancestors(list, seen, req->step_id);
    /* A step call's key, when it is journaled already (then the call is a replay). */
    if ((req->in.kind == ENGINE_IN_STEP_CALL || req->in.kind == ENGINE_IN_REQUEST_DIFFERS) &&
        req->in.key)
        row_paths_with_ancestors(list, seen, req->in.key);
    size_t n = json_array_size(list);
    const char **items = xcalloc(n ? n : 1, sizeof *items);
    for (size_t k = 0; k < n; k++)
        items[k] = json_string_value(json_array_get(list, k));
    store_text_array(&lk->paths, items, n);
    free(items);
    json_decref(list);
    json_decref(seen);
    lk->params[0] = req->execution_id;
    lk->params[1] = req->consume_task_id > 0 ? lk->task_id : NULL;
    lk->params[2] = lk->paths.data;
    lk->calls[0] = (struct store_call){.stmt = STMT_EXEC_LOCK, .n_params = 2, .params = lk->params};
    lk->calls[1] =
        (struct store_call){.stmt = STMT_EXEC_LOCKED_READ, .n_params = 3, .params = lk->params};
}

void transition_lock_free(struct transition_lock *lk)
{
    buf_free(&lk->paths);
}

static enum transition_outcome apply_transition(const struct transition_env *env, PGconn *conn,
                                                struct transition_request *req,
                                                struct transition_out *out, char **why)
{
    enum transition_outcome rc = TRANSITION_ERROR;
    PGresult *r = NULL;
    json_t *ctx = NULL, *state_json = NULL;
    struct engine_state st = {0};
    char task_id[24];
    snprintf(task_id, sizeof task_id, "%lld", (long long)req->consume_task_id);
    bool have_state = false;
    struct engine_effects fx = {0};
    struct pending p = {0};
    struct apply a = {0};
    struct row_loader rl = {conn, req->execution_id, NULL, json_object()};
    struct engine_loader loader = row_loader_engine(&rl);
    char *wf = NULL, *task_owner = NULL, *parent_id = NULL, *parent_path = NULL;
    json_t *report = NULL;
    bool was_running = false;
    struct engine_input *in = &req->in;
    const char *exec_id = req->execution_id;
    int64_t consume_task_id = req->consume_task_id;
    memset(out, 0, sizeof *out);

    if (req->locked_read) {
        /* Locked and read by the caller, in one pipeline with the other transitions of its
         * batch (transition_lock_calls). */
        r = req->locked_read;
        req->locked_read = NULL;
    } else {
        struct transition_lock lk;
        transition_lock_prepare(req, &lk);
        r = lock_execution(conn, &lk, why);
        transition_lock_free(&lk);
    }
    if (!r || !store_ok(r)) {
        if (!*why)
            *why = store_error(r, conn);
        goto done;
    }
    if (PQntuples(r) == 0) {
        rc = TRANSITION_NOT_FOUND;
        goto done;
    }
    if (consume_task_id > 0 &&
        (PQgetisnull(r, 0, 7) || strcmp(PQgetvalue(r, 0, 7), env->owner) != 0)) {
        /* The task is gone or someone else's. After the execution ended (a terminate drops
         * its tasks) a result still goes into the history as ignored; otherwise another
         * keeld holds the attempt now and will journal its own result. */
        if (!is_result(in->kind) || !strcmp(PQgetvalue(r, 0, 2), "running")) {
            rc = TRANSITION_LEASE_LOST;
            goto done;
        }
        consume_task_id = 0;
    }
    /* The owner alone journals the results of its attempts and the tasks it claimed: a keeld
     * that was paused past its heartbeat, then taken over, is fenced here, and writes nothing
     * (not even a result_ignored) over the new owner's journal. An execution that was not
     * running (a redrive) becomes the API keeld's. */
    bool running = !strcmp(PQgetvalue(r, 0, 2), "running");
    was_running = running;
    if (!PQgetisnull(r, 0, 9)) {
        parent_id = xstrdup(PQgetvalue(r, 0, 9));
        parent_path = xstrdup(PQgetisnull(r, 0, 10) ? "" : PQgetvalue(r, 0, 10));
    }
    bool has_handler = !strcmp(PQgetvalue(r, 0, 11), "t");
    int64_t created_ms = strtoll(PQgetvalue(r, 0, 12), NULL, 10);
    bool owned = !PQgetisnull(r, 0, 8) && !strcmp(PQgetvalue(r, 0, 8), env->owner);
    if (req->fenced && !owned) {
        rc = TRANSITION_LEASE_LOST;
        goto done;
    }
    bool take = !owned && (!running || PQgetisnull(r, 0, 8));
    /* Tasks belong to the execution's owner: its claimer alone takes them. */
    task_owner = take || PQgetisnull(r, 0, 8) ? xstrdup(env->owner) : xstrdup(PQgetvalue(r, 0, 8));
    wf = xstrdup(PQgetvalue(r, 0, 0));
    int version = atoi(PQgetvalue(r, 0, 1));
    const struct engine_plan *plan = defcache_get_plan(env->defs, conn, wf, version, why);
    if (!plan)
        goto done;
    const struct defn *d = plan->d;
    state_json = json_loads(PQgetvalue(r, 0, 3), 0, NULL);
    ctx = row_ctx_new(exec_id, wf, PQgetisnull(r, 0, 4) ? NULL : PQgetvalue(r, 0, 4));
    if (!ctx) {
        *why = xasprintf("execution %s has an input this keeld cannot read", exec_id);
        goto done;
    }
    if (req->child_start) {
        /* A child that never ran starts; one that failed runs again (a retry of its parent
         * reached its workflow step again); otherwise the input is stale, and its end is
         * reported again below. */
        in->kind =
            state_json && json_object_size(state_json) == 0 ? ENGINE_IN_START : ENGINE_IN_RETRY;
    }
    bool fresh = state_json && json_object_size(state_json) == 0;
    if (fresh) {
        /* Not started: nothing is stored yet. */
        engine_state_init(&st, d);
        have_state = true;
        st.all_loaded = true;
    } else if (!state_json || engine_state_begin(&st, state_json, d) < 0) {
        *why = xasprintf("execution %s has a state this keeld cannot read", exec_id);
        goto done;
    } else {
        have_state = true;
        if (!row_put(&st, ctx, PQgetvalue(r, 0, 6), rl.loaded) || engine_state_ready(&st) < 0) {
            *why = xasprintf("execution %s has step rows this keeld cannot read", exec_id);
            goto done;
        }
    }
    st.loader = &loader;
    p.last_seq = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    PQclear(r);
    r = NULL;

    if (!engine_state_bind(plan, &st)) {
        *why = xasprintf("execution %s has a state that does not fit its definition", exec_id);
        goto done;
    }
    if (req->step_id) {
        long idx = engine_state_find(&st, req->step_id);
        if (idx < 0) {
            *why = xasprintf("execution %s has no step %s", exec_id, req->step_id);
            goto done;
        }
        in->step = (size_t)idx;
    }
    if (in->kind == ENGINE_IN_SIGNAL && !req->step_id && !st.all_loaded) {
        /* The waiting steps, wherever they are in the tree. */
        const char *wp[] = {exec_id};
        PGresult *wr = store_run(conn, STMT_STEPS_WAITING, 1, wp);
        bool ok = store_ok(wr);
        const char **waiting = xcalloc((size_t)(ok ? PQntuples(wr) : 0) + 1, sizeof *waiting);
        int n_waiting = ok ? PQntuples(wr) : 0;
        for (int k = 0; k < n_waiting; k++)
            waiting[k] = PQgetvalue(wr, k, 0);
        ok = ok && row_load_paths(&rl, &st, ctx, waiting, (size_t)n_waiting) == 0 &&
             engine_state_bind(plan, &st);
        free(waiting);
        if (!ok) {
            *why = rl.why ? rl.why : store_error(wr, conn);
            rl.why = NULL;
            PQclear(wr);
            goto done;
        }
        PQclear(wr);
    }
    if (in->kind == ENGINE_IN_SIGNAL && !req->step_id) {
        /* The first waiting step of that name takes it (several may wait in parallel
         * branches); when none waits, the input is stale and the signal stays stored. */
        in->step = st.n_steps;
        for (size_t k = 0; k < st.n_steps && in->step == st.n_steps; k++)
            if (st.steps[k].status == ENGINE_STEP_WAITING && st.steps[k].node &&
                st.steps[k].node->step && defn_wait_accepts(st.steps[k].node->step, in->signal))
                in->step = k;
        if (in->step == st.n_steps)
            in->step = st.current;
    }

    p.events = json_array();
    p.tasks = json_array();
    p.sends = json_array();
    p.token_rows = json_array();
    p.drops = json_array();
    p.children = json_array();
    p.child_stops = json_array();
    a = (struct apply){.env = env,
                       .conn = conn,
                       .exec_id = exec_id,
                       .d = d,
                       .plan = plan,
                       .st = &st,
                       .ctx = ctx,
                       .now_ms = in->now_ms,
                       .owned = owned || take,
                       .p = &p,
                       .consumed_signals = json_array()};
    size_t i;
    json_t *extra;
    json_array_foreach(req->extra_events, i, extra)
    {
        append_event(&a, json_string_value(json_object_get(extra, "type")),
                     json_string_value(json_object_get(extra, "step")),
                     (int)json_integer_value(json_object_get(extra, "attempt")),
                     json_incref(json_object_get(extra, "data")));
    }
    if (req->capacity && !capacity_writes(&a, req, why))
        goto done;
    /* A new execution gets a row for every step, so readers see the whole plan from the start.
     * (A journal-only request carries no input: its kind is left zero, which reads as START.) */
    if (in->kind == ENGINE_IN_START && !req->journal_only)
        for (size_t k = 0; k < st.n_steps; k++)
            mark_row(&p, k);
    bool stale;
    if (req->resend_in_flight) {
        /* A takeover: the attempts in flight may be anywhere in the tree. */
        if (row_load_all(&rl, &st, ctx) != 0 || !engine_state_bind(plan, &st)) {
            *why = rl.why ? rl.why
                          : xasprintf("execution %s: its step rows could not be read", exec_id);
            rl.why = NULL;
            goto done;
        }
        struct engine_attempt_ref *refs = NULL;
        size_t n_refs = engine_attempts_to_resend(&st, &refs);
        stale = true;
        for (size_t k = 0; k < n_refs; k++) {
            struct engine_input resend = {
                .kind = ENGINE_IN_RESEND,
                .now_ms = in->now_ms,
                .step = refs[k].step,
                .attempt = refs[k].attempt,
                .compensation = refs[k].compensation,
                .retry_after_ms = -1,
            };
            if (advance_more(&a, &resend))
                stale = false;
        }
        free(refs);
    } else if (req->journal_only) {
        stale = true;
    } else if (engine_advance_plan(plan, &st, ctx, in, &fx) != 0) {
        *why = rl.why
                   ? rl.why
                   : xasprintf("execution %s: the interpreter could not apply the input", exec_id);
        rl.why = NULL;
        goto done;
    } else {
        stale = fx.stale;
    }
    if (!stale && in->kind == ENGINE_IN_SIGNAL)
        a.delivering_signal = req->signal_id;
    if (req->extra_tasks && st.status == ENGINE_EXEC_RUNNING) {
        json_t *t;
        json_array_foreach(req->extra_tasks, i, t)
        {
            json_array_append(p.tasks, t);
            int64_t due = json_integer_value(json_object_get(t, "due_ms"));
            p.notify = true;
            if (p.first_due_ms == 0 || due < p.first_due_ms)
                p.first_due_ms = due > 0 ? due : 1;
        }
    }
    if (!stale && in->kind == ENGINE_IN_HEARTBEAT && !in->compensation && in->step < st.n_steps) {
        /* The interpreter keeps no heartbeat; the step row shows the last one. Details that
         * could not be stored or read back are left out rather than failing the heartbeat. */
        const json_t *details = in->details ? in->details : json_null();
        bool storable =
            !json_depth_exceeds(details, JSON_LIMIT_MAX_DEPTH) &&
            !json_find_nul(details, NULL, 0) &&
            json_encoded_size(details, ENGINE_MAX_PAYLOAD_BYTES) <= ENGINE_MAX_PAYLOAD_BYTES;
        p.heartbeat = json_pack("{s:o, s:O}", "at", json_ts_or_null(in->now_ms), "details",
                                storable ? details : json_null());
        if (!storable)
            json_object_set_new(p.heartbeat, "details_omitted",
                                json_string("the details are too large, too deep or hold "
                                            "\\u0000"));
        p.heartbeat_step = st.steps[in->step].path;
        mark_row(&p, in->step);
    }
    if (!stale && !req->resend_in_flight) {
        collect(&a, in, &fx);
        if (in->kind == ENGINE_IN_SIGNAL && req->signal_id > 0)
            json_array_append_new(a.consumed_signals,
                                  json_pack("[I, I]", (json_int_t)req->signal_id,
                                            last_event_seq(&a, "signal_consumed")));
    } else if (is_result(in->kind) && in->kind != ENGINE_IN_ATTEMPT_ACCEPTED) {
        /* A result that lost (the execution ended, or the attempt was completed through its
         * task token while its request was open, or the other way round) is kept in the
         * history, never applied. A late 202 carries no result and is not journaled. */
        json_t *data = json_pack(
            "{s:s, s:s}", "reason",
            fx.stale_ended ? "the execution had already ended"
                           : "the attempt was no longer in flight (already completed, failed "
                             "or timed out)",
            "execution_status", engine_exec_status_name(st.status));
        if (in->kind == ENGINE_IN_ATTEMPT_SUCCEEDED)
            json_object_set_new(data, "output",
                                json_deep_copy(in->output ? in->output : json_null()));
        else if (in->error)
            json_object_set_new(data, "error", json_deep_copy(in->error));
        append_event(&a, "result_ignored", in->step < st.n_steps ? st.steps[in->step].path : NULL,
                     in->attempt, data);
    }
    if (a.why) {
        *why = a.why;
        a.why = NULL;
        goto done;
    }
    if (stale && consume_task_id <= 0 && json_array_size(p.events) == 0) {
        rc = TRANSITION_STALE;
        goto done;
    }
    char now[32];
    ts(in->now_ms, now);
    if (parent_id && p.ended) {
        bool completed = st.status == ENGINE_EXEC_COMPLETED;
        report = json_pack("{s:s, s:s, s:O, s:O}", "child", exec_id, "status",
                           engine_exec_status_name(st.status), "output",
                           completed && p.output ? p.output : json_null(), "error",
                           p.error ? p.error : json_null());
    } else if (parent_id && req->child_start && stale && !was_running) {
        report = json_null();
    }
    bool queued = false;
    if ((json_array_size(p.children) || json_array_size(p.child_stops) || report) &&
        !child_writes(&a, parent_id, parent_path, report, now, &queued, why))
        goto done;

    json_t *consumed;
    json_array_foreach(a.consumed_signals, i, consumed)
    {
        char sid[24], seq[24];
        snprintf(sid, sizeof sid, "%lld",
                 (long long)json_integer_value(json_array_get(consumed, 0)));
        snprintf(seq, sizeof seq, "%lld",
                 (long long)json_integer_value(json_array_get(consumed, 1)));
        const char *cp[] = {sid, seq};
        PGresult *cr = store_run(conn, STMT_SIGNAL_CONSUME, 2, cp);
        bool ok = store_ok(cr);
        if (!ok)
            *why = store_error(cr, conn);
        PQclear(cr);
        if (!ok)
            goto done;
    }

    if (req->started_token && !stale && in->kind == ENGINE_IN_ATTEMPT_STARTED) {
        /* A claimed attempt is about to be sent (again) with a new token: record its hash with
         * the attempt_started event, so it is valid from the moment it is sent. */
        char attempt[16], hash[WH_TASK_TOKEN_HASH_LEN + 1];
        snprintf(attempt, sizeof attempt, "%d", in->attempt);
        wh_task_token_hash(req->started_token, hash);
        const char *tp[] = {hash, exec_id, st.steps[in->step].path, attempt,
                            in->compensation ? "true" : "false"};
        PGresult *tr = store_run(conn, STMT_TOKEN_INSERT, 5, tp);
        bool ok = store_ok(tr);
        if (!ok)
            *why = store_error(tr, conn);
        PQclear(tr);
        if (!ok)
            goto done;
    }
    /* Every row whose interpreter state changed is written (the engine names the rows whose
     * public columns changed; its own bookkeeping, such as a compensation's attempt or a
     * container's counters, is caught here). */
    for (size_t k = 0; k < st.n_steps; k++) {
        const json_t *before = json_object_get(rl.loaded, st.steps[k].path);
        json_t *after = engine_step_to_json(&st, k);
        if (!before || !json_equal(before, after) || st.steps[k].items_set)
            mark_row(&p, k);
        json_decref(after);
    }
    json_t *rows = step_rows(d, &st, ctx, &p);
    if (plan->code) {
        json_t *topics = ended_keys(exec_id, rows);
        bool ok = notify_ended_keys(conn, topics, why) &&
                  (!has_handler || st.status != ENGINE_EXEC_RUNNING ||
                   handler_writes(&a, req, stale, topics, task_owner, now, &queued, why));
        json_decref(topics);
        if (!ok) {
            json_decref(rows);
            goto done;
        }
    }
    json_t *sj = engine_state_header_to_json(&st);
    compact_events(
        p.events, rows,
        p.ended && st.status == ENGINE_EXEC_COMPLETED ? (p.output ? p.output : json_null()) : NULL);
    /* Added to the batch's writes, one statement per table for all its transitions. */
    struct batch_writes *w = req->writes;
    if (queued)
        w->notify = true;
    json_t *exec_id_json = json_string(exec_id);
    size_t k;
    json_t *rec;
    json_array_foreach(p.events, k, rec)
    {
        json_object_set_new(rec, "at", json_string(now));
    }
    json_array_foreach(p.tasks, k, rec)
    {
        json_object_set_new(rec, "owner", json_string(task_owner));
    }
    add_records(w->events, p.events, exec_id_json);
    add_records(w->steps, rows, exec_id_json);
    add_records(w->tasks, p.tasks, exec_id_json);
    add_records(w->tokens, p.token_rows, exec_id_json);
    add_records(w->drops, p.drops, exec_id_json);
    if (consume_task_id > 0)
        json_array_append_new(w->consumed, json_integer(consume_task_id));
    if (p.cancel_tasks)
        json_array_append_new(w->cancels, json_incref(exec_id_json));
    /* Tasks of this keeld's own executions wake its claimer in-process; only another owner's
     * need a NOTIFY. */
    if (p.notify && strcmp(task_owner, env->owner) != 0)
        w->notify = true;
    json_t *ex = json_pack("{s:O, s:s, s:o, s:I, s:s, s:b, s:s?}", "id", exec_id_json, "status",
                           engine_exec_status_name(st.status), "state", sj, "last_seq",
                           (json_int_t)p.last_seq, "at", now, "ended", p.ended, "take",
                           take ? env->owner : NULL);
    if (p.ended && st.status == ENGINE_EXEC_COMPLETED)
        json_object_set(ex, "output", p.output ? p.output : json_null());
    if (p.ended && p.error)
        json_object_set(ex, "error", p.error);
    json_array_append_new(w->execs, ex);
    json_decref(exec_id_json);
    json_decref(rows);
    size_t i_send;
    json_t *send;
    json_array_foreach(p.sends, i_send, send)
    {
        struct attempt_dispatch *ad = xcalloc(1, sizeof *ad);
        ad->execution_id = xstrdup(exec_id);
        ad->workflow = xstrdup(wf);
        ad->version = version;
        ad->step_id = xstrdup(json_string_value(json_object_get(send, "step")));
        ad->attempt = (int)json_integer_value(json_object_get(send, "attempt"));
        ad->payload = json_incref(json_object_get(send, "payload"));
        ad->token = xstrdup(json_string_value(json_object_get(send, "token")));
        ad->compensation = json_is_true(json_object_get(send, "compensation"));
        ad->next = out->dispatches;
        out->dispatches = ad;
    }
    out->ended = p.ended;
    out->status = st.status;
    out->cancel_requested = st.cancel_requested;
    out->started = fresh;
    if (fresh || p.ended) {
        /* Counted by the runner once committed (a batch rolled back runs again). */
        out->metrics_workflow = metrics_workflow_label(wf, plan->code);
        out->created_ms = created_ms;
    }
    if (p.notify && !strcmp(task_owner, env->owner))
        out->first_task_due_ms = p.first_due_ms;
    rc = stale ? TRANSITION_STALE : TRANSITION_APPLIED;
done:
    PQclear(r);
    json_decref(ctx);
    json_decref(state_json);
    if (have_state)
        engine_state_free(&st);
    engine_effects_free(&fx);
    json_decref(p.events);
    json_decref(p.tasks);
    json_decref(p.sends);
    json_decref(p.token_rows);
    json_decref(p.heartbeat);
    json_decref(p.drops);
    json_decref(p.children);
    json_decref(p.child_stops);
    json_decref(p.output);
    json_decref(p.error);
    json_decref(a.consumed_signals);
    free(a.why);
    free(rl.why);
    json_decref(rl.loaded);
    free(p.changed);
    free(task_owner);
    free(wf);
    free(parent_id);
    free(parent_path);
    json_decref(report);
    if (rc != TRANSITION_APPLIED && rc != TRANSITION_STALE) {
        attempt_dispatch_free_list(out->dispatches);
        out->dispatches = NULL;
    }
    return rc;
}

enum transition_outcome transition_step(const struct transition_env *env, PGconn *conn,
                                        struct transition_request *req, struct transition_out *out,
                                        char **why)
{
    return apply_transition(env, conn, req, out, why);
}
