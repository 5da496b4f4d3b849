/* The transactional shell around engine_advance. */
#include "runner/transition.h"

#include "store/stmt.h"
#include "util/alloc.h"
#include "util/ids.h"
#include "util/timeutil.h"

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
    json_t *events; /* [{seq, type, step, attempt, data}] */
    json_t *tasks;  /* [{kind, step, attempt, due_at, payload, token, lease_ms}] */
    bool *changed;  /* per step */
    bool cancel_tasks;
    bool notify; /* a task nobody has leased: wake the claimers */
    bool ended;
    json_t *output;
    json_t *error;
    int64_t last_seq;
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

/* Moves the effects of one engine call into p; immediate activity tasks get a token and a lease
 * and are fed back to the engine as started, so one transaction journals both. */
static void collect(const struct transition_env *env, const struct defn *d, struct engine_state *st,
                    json_t *ctx, const struct engine_input *in, struct engine_effects *fx,
                    struct pending *p)
{
    for (size_t i = 0; i < fx->n_events; i++) {
        struct engine_event *e = &fx->events[i];
        json_t *row = json_object();
        json_object_set_new(row, "seq", json_integer(++p->last_seq));
        json_object_set_new(row, "type", json_string(e->type));
        json_object_set_new(row, "step",
                            e->step >= 0 ? json_string(d->steps[e->step].id) : json_null());
        json_object_set_new(row, "attempt",
                            e->attempt > 0 ? json_integer(e->attempt) : json_null());
        json_object_set_new(row, "data", e->data ? json_incref(e->data) : json_object());
        json_array_append_new(p->events, row);
    }
    for (size_t i = 0; i < fx->n_changed_steps; i++)
        p->changed[fx->changed_steps[i]] = true;
    if (fx->cancel_tasks)
        p->cancel_tasks = true;
    if (fx->ended) {
        p->ended = true;
        json_decref(p->output);
        json_decref(p->error);
        p->output = fx->output ? json_incref(fx->output) : NULL;
        p->error = fx->error ? json_incref(fx->error) : NULL;
    }
    for (size_t i = 0; i < fx->n_tasks; i++) {
        struct engine_task *t = &fx->tasks[i];
        char due[32];
        ts(t->due_at_ms, due);
        json_t *row = json_object();
        json_object_set_new(row, "kind", json_string(engine_task_kind_name(t->kind)));
        json_object_set_new(row, "step", json_string(d->steps[t->step].id));
        json_object_set_new(row, "attempt",
                            t->attempt > 0 ? json_integer(t->attempt) : json_null());
        json_object_set_new(row, "due_at", json_string(due));
        json_object_set_new(row, "payload", t->payload ? json_incref(t->payload) : json_null());
        bool immediate = t->kind == ENGINE_TASK_ACTIVITY && t->due_at_ms <= in->now_ms;
        if (t->kind == ENGINE_TASK_ACTIVITY) {
            char token[33];
            ids_random_hex(16, token);
            json_object_set_new(row, "token", json_string(token));
        } else {
            json_object_set_new(row, "token", json_null());
        }
        if (immediate) {
            json_int_t timeout = json_integer_value(json_object_get(t->payload, "timeout_ms"));
            json_object_set_new(row, "lease_ms", json_integer(timeout + env->lease_grace_ms));
        } else {
            json_object_set_new(row, "lease_ms", json_null());
            p->notify = true;
        }
        json_array_append_new(p->tasks, row);
        if (immediate) {
            struct engine_input started = {
                .kind = ENGINE_IN_ATTEMPT_STARTED,
                .now_ms = in->now_ms,
                .step = t->step,
                .attempt = t->attempt,
            };
            struct engine_effects fx2 = {0};
            engine_advance(d, st, ctx, &started, &fx2);
            if (!fx2.stale)
                collect(env, d, st, ctx, &started, &fx2, p);
            engine_effects_free(&fx2);
        }
    }
}

static json_t *build_ctx(const char *exec_id, const char *workflow, const char *input_text,
                         const char *steps_text)
{
    json_t *ctx = json_object();
    json_object_set_new(ctx, "input", json_loads(input_text, JSON_DECODE_ANY, NULL));
    json_t *steps = json_object();
    json_t *rows = json_loads(steps_text, 0, NULL);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *id = json_string_value(json_array_get(row, 0));
        const char *status = json_string_value(json_array_get(row, 1));
        json_t *s = json_object();
        if (status && (!strcmp(status, "completed") || !strcmp(status, "compensated")))
            json_object_set(s, "output", json_array_get(row, 2));
        json_t *err = json_array_get(row, 3);
        if (err && !json_is_null(err))
            json_object_set(s, "error", err);
        json_object_set_new(steps, id, s);
    }
    json_decref(rows);
    json_object_set_new(ctx, "steps", steps);
    json_object_set_new(ctx, "execution",
                        json_pack("{s:s, s:s}", "id", exec_id, "workflow", workflow));
    return ctx;
}

static json_t *step_rows(const struct defn *d, const struct engine_state *st, const json_t *ctx,
                         const bool *changed)
{
    json_t *rows = json_array();
    json_t *steps = json_object_get(ctx, "steps");
    for (size_t i = 0; i < st->n_steps; i++) {
        if (!changed[i])
            continue;
        const struct engine_step *s = &st->steps[i];
        json_t *c = json_object_get(steps, d->steps[i].id);
        json_t *row = json_object();
        json_object_set_new(row, "id", json_string(d->steps[i].id));
        json_object_set_new(row, "position", json_integer((json_int_t)i));
        json_object_set_new(row, "status", json_string(engine_step_status_name(s->status)));
        json_object_set_new(row, "attempts", json_integer(s->attempt));
        json_t *out = json_object_get(c, "output");
        json_object_set_new(row, "output", out ? json_incref(out) : json_null());
        json_t *err = json_object_get(c, "error");
        json_object_set_new(row, "error", err ? json_incref(err) : json_null());
        json_object_set_new(row, "started_at", json_ts_or_null(s->started_at_ms));
        json_object_set_new(row, "completed_at", json_ts_or_null(s->completed_at_ms));
        json_array_append_new(rows, row);
    }
    return rows;
}

static char *dump(const json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

enum transition_outcome transition_apply(const struct transition_env *env, PGconn *conn,
                                         const char *exec_id, const char *step_id,
                                         int64_t consume_task_id, struct engine_input *in,
                                         struct transition_out *out, char **why)
{
    enum transition_outcome rc = TRANSITION_ERROR;
    PGresult *r = NULL;
    json_t *ctx = NULL, *state_json = NULL;
    struct engine_state st = {0};
    bool have_state = false;
    struct engine_effects fx = {0};
    struct pending p = {0};
    char *events = NULL, *steps = NULL, *tasks = NULL, *state_text = NULL, *output = NULL,
         *error = NULL;
    memset(out, 0, sizeof *out);

    char task_id[24];
    snprintf(task_id, sizeof task_id, "%lld", (long long)consume_task_id);
    const char *lock_params[] = {exec_id, consume_task_id > 0 ? task_id : NULL};
    r = store_run(conn, STMT_EXEC_LOCK, 2, lock_params);
    if (!store_ok(r)) {
        *why = store_error(r, conn);
        goto done;
    }
    if (PQntuples(r) == 0) {
        rc = TRANSITION_NOT_FOUND;
        goto done;
    }
    if (consume_task_id > 0 &&
        (PQgetisnull(r, 0, 7) || strcmp(PQgetvalue(r, 0, 7), env->owner) != 0)) {
        rc = TRANSITION_LEASE_LOST;
        goto done;
    }
    const char *workflow = PQgetvalue(r, 0, 0);
    int version = atoi(PQgetvalue(r, 0, 1));
    const struct defn *d = defcache_get(env->defs, conn, workflow, version, why);
    if (!d)
        goto done;
    state_json = json_loads(PQgetvalue(r, 0, 3), 0, NULL);
    if (state_json && json_object_size(state_json) == 0) {
        engine_state_init(&st, d);
    } else if (!state_json || engine_state_from_json(state_json, d, &st) < 0) {
        *why = xasprintf("execution %s has a state this keeld cannot read", exec_id);
        goto done;
    }
    have_state = true;
    ctx = build_ctx(exec_id, workflow, PQgetvalue(r, 0, 4), PQgetvalue(r, 0, 6));
    p.last_seq = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    char *wf = xstrdup(workflow);
    PQclear(r);
    r = NULL;

    if (step_id) {
        int idx = defn_step_index(d, step_id);
        if (idx < 0) {
            free(wf);
            *why = xasprintf("execution %s has no step %s", exec_id, step_id);
            goto done;
        }
        in->step = (size_t)idx;
    }
    if (in->kind == ENGINE_IN_ATTEMPT_STARTED && in->step < st.n_steps &&
        st.steps[in->step].status == ENGINE_STEP_RUNNING &&
        st.steps[in->step].attempt == in->attempt)
        in->redelivery = true;

    p.events = json_array();
    p.tasks = json_array();
    p.changed = xcalloc(st.n_steps ? st.n_steps : 1, sizeof *p.changed);
    /* A new execution gets a row for every step, so readers see the whole plan from the start. */
    if (in->kind == ENGINE_IN_START)
        for (size_t i = 0; i < st.n_steps; i++)
            p.changed[i] = true;
    engine_advance(d, &st, ctx, in, &fx);
    bool stale = fx.stale;
    if (!stale)
        collect(env, d, &st, ctx, in, &fx, &p);
    if (stale && consume_task_id <= 0) {
        free(wf);
        rc = TRANSITION_STALE;
        goto done;
    }

    json_t *rows = step_rows(d, &st, ctx, p.changed);
    events = dump(p.events);
    steps = dump(rows);
    json_decref(rows);
    tasks = dump(p.tasks);
    json_t *sj = engine_state_to_json(&st);
    state_text = dump(sj);
    json_decref(sj);
    if (p.ended && st.status == ENGINE_EXEC_COMPLETED)
        output = dump(p.output ? p.output : json_null());
    if (p.ended && p.error)
        error = dump(p.error);
    char now[32], seq[24];
    ts(in->now_ms, now);
    snprintf(seq, sizeof seq, "%lld", (long long)p.last_seq);
    const char *params[] = {
        exec_id,
        consume_task_id > 0 ? task_id : NULL,
        env->owner,
        events,
        steps,
        tasks,
        p.cancel_tasks ? "true" : "false",
        engine_exec_status_name(st.status),
        state_text,
        seq,
        output,
        error,
        now,
        p.ended ? "true" : "false",
        p.notify ? "true" : "false",
    };
    r = store_run(conn, STMT_EXEC_APPLY, 15, params);
    if (!store_ok(r)) {
        free(wf);
        *why = store_error(r, conn);
        goto done;
    }
    if (consume_task_id > 0 && strcmp(PQgetvalue(r, 0, 0), "1") != 0) {
        free(wf);
        rc = TRANSITION_LEASE_LOST;
        goto done;
    }
    /* Pair the tasks leased to us with their new ids (matched by their unique token). */
    json_t *inserted = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
    size_t i;
    json_t *row;
    json_array_foreach(p.tasks, i, row)
    {
        if (json_is_null(json_object_get(row, "lease_ms")))
            continue;
        const char *token = json_string_value(json_object_get(row, "token"));
        size_t j;
        json_t *pair;
        json_array_foreach(inserted, j, pair)
        {
            if (strcmp(json_string_value(json_array_get(pair, 1)), token) != 0)
                continue;
            struct attempt_dispatch *a = xcalloc(1, sizeof *a);
            a->task_id = json_integer_value(json_array_get(pair, 0));
            a->execution_id = xstrdup(exec_id);
            a->workflow = xstrdup(wf);
            a->version = version;
            a->step_id = xstrdup(json_string_value(json_object_get(row, "step")));
            a->attempt = (int)json_integer_value(json_object_get(row, "attempt"));
            a->payload = json_incref(json_object_get(row, "payload"));
            a->token = xstrdup(token);
            a->next = out->dispatches;
            out->dispatches = a;
            break;
        }
    }
    json_decref(inserted);
    free(wf);
    out->ended = p.ended;
    out->status = st.status;
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
    json_decref(p.output);
    json_decref(p.error);
    free(p.changed);
    free(events);
    free(steps);
    free(tasks);
    free(state_text);
    free(output);
    free(error);
    if (rc != TRANSITION_APPLIED && rc != TRANSITION_STALE) {
        attempt_dispatch_free_list(out->dispatches);
        out->dispatches = NULL;
    }
    return rc;
}

enum transition_outcome transition_run(const struct transition_env *env, PGconn *conn,
                                       const char *exec_id, const char *step_id,
                                       int64_t consume_task_id, struct engine_input *in,
                                       struct transition_out *out, char **why)
{
    memset(out, 0, sizeof *out);
    if (store_command(conn, "BEGIN") < 0) {
        *why = store_error(NULL, conn);
        return TRANSITION_ERROR;
    }
    enum transition_outcome rc =
        transition_apply(env, conn, exec_id, step_id, consume_task_id, in, out, why);
    if (rc == TRANSITION_APPLIED || rc == TRANSITION_STALE) {
        if (store_command(conn, "COMMIT") < 0) {
            *why = store_error(NULL, conn);
            attempt_dispatch_free_list(out->dispatches);
            out->dispatches = NULL;
            return TRANSITION_ERROR;
        }
    } else {
        store_command(conn, "ROLLBACK");
    }
    return rc;
}
