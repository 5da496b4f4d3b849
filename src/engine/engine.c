/* The interpreter: engine_advance and the step transitions it is made of.
 *
 * One call applies one input. It first decides, without touching anything, whether the input
 * applies (the step it names is the current one, in the status and attempt it expects); if not
 * it only sets fx->stale. Otherwise it moves the state through a small set of transitions:
 *
 *   enter_step      a step becomes current: schedules its attempt, timer or wait
 *   complete_step   a step has its output; continue_after decides what comes next
 *   fail_step       a step failed for good; fail_execution ends the execution
 *   continue_after  the routing point: the next step, or the end of the execution
 *
 * Later kinds reroute these (a parallel branch completes into its parent, a failed step starts
 * the compensations, a redrive re-enters the failed step) without touching the input handlers.
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
 *   - Whenever the execution ends, and when a signal completes a wait, fx->cancel_tasks is set;
 *     the runner deletes the other pending tasks before inserting fx->tasks. */
#include "engine/engine.h"

#include "defn/duration.h"
#include "defn/expr.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include <string.h>
#include <strings.h>

/* Everything one engine_advance call works with. */
struct run {
    const struct defn *d;
    struct engine_state *st;
    json_t *ctx;
    const struct engine_input *in;
    struct engine_effects *fx;
    int64_t now;
    bool *changed; /* per step: its row must be written */
    size_t cap_events, cap_tasks;
};

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
    }
    return "unknown";
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

static void mark_changed(struct run *r, size_t i)
{
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

/* ctx.steps.<id>, created when missing. Borrowed. */
static json_t *ctx_step(struct run *r, const char *id)
{
    json_t *steps = json_object_get(r->ctx, "steps");
    if (!json_is_object(steps)) {
        steps = json_object();
        json_object_set_new(r->ctx, "steps", steps);
    }
    json_t *entry = json_object_get(steps, id);
    if (!json_is_object(entry)) {
        entry = json_object();
        json_object_set_new(steps, id, entry);
    }
    return entry;
}

/* ---- errors ------------------------------------------------------------------------------ */

/* {"type", "message", "step", "attempts"} for an error Keel itself finds in a step. */
static json_t *step_error(struct run *r, size_t i, const char *type, const char *message)
{
    return json_pack("{s:s, s:s, s:s, s:i}", "type", type, "message", message, "step",
                     r->d->steps[i].id, "attempts", r->st->steps[i].attempt);
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

/* The attempt's error as the runner reported it, with a string type and message whatever it
 * sent. New reference. */
static json_t *attempt_error(const json_t *in)
{
    json_t *err = json_is_object(in) ? json_deep_copy(in) : json_object();
    if (!json_is_string(json_object_get(err, "type")))
        json_object_set_new(err, "type", json_string("unknown"));
    if (!json_is_string(json_object_get(err, "message")))
        json_object_set_new(err, "message", json_string(""));
    return err;
}

/* v as compact JSON for a message, cut (at a character boundary, with "...") past 200 bytes so
 * that a huge value does not end up whole in every event and row that quotes the error. Caller
 * frees. */
static char *quote_value(const json_t *v)
{
    enum { MAX = 200 };
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return xstrdup("?");
    size_t n = strlen(text);
    if (n <= MAX)
        return text;
    n = MAX;
    while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
        n--;
    char *cut = xasprintf("%.*s...", (int)n, text);
    free(text);
    return cut;
}

/* ---- activity attempts ------------------------------------------------------------------- */

/* True when s is an http:// or https:// URL with a host and no spaces or control characters,
 * the rule the definition parser applies to literal URLs. */
static bool url_ok(const json_t *url)
{
    const char *s = json_string_value(url);
    if (!s || strlen(s) != json_string_length(url))
        return false;
    size_t scheme = strncasecmp(s, "https://", 8) == 0  ? 8
                    : strncasecmp(s, "http://", 7) == 0 ? 7
                                                        : 0;
    if (!scheme || s[scheme] == '\0' || strchr("/?#:", s[scheme]))
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* The payload of an ACTIVITY task for step i due at due_at_ms: {"url", "input", "timeout_ms"},
 * evaluated afresh from the context (which holds nothing that changes while the step is current,
 * so every attempt sends the same input). Returns NULL with *error set (a new reference) when
 * the templates do not evaluate to something that can be sent. */
static json_t *activity_payload(struct run *r, size_t i, int64_t due_at_ms, json_t **error)
{
    const struct defn_activity *a = &r->d->steps[i].activity;
    struct expr_error e;
    json_t *url = NULL, *input = NULL, *payload = NULL;
    char *base = NULL;

    url = expr_eval_template(a->url, r->ctx, &e);
    if (!url) {
        base = xasprintf("/steps/%zu/activity/url", i);
        *error = expression_error(r, (long)i, base, &e);
        goto Exit;
    }
    if (!url_ok(url)) {
        char *text = quote_value(url);
        char *msg =
            xasprintf("url %s is not an http:// or https:// URL with a host and no spaces", text);
        *error = step_error(r, i, "invalid_url", msg);
        free(msg);
        free(text);
        goto Exit;
    }
    input = expr_eval_template(a->input, r->ctx, &e);
    if (!input) {
        base = xasprintf("/steps/%zu/activity/input", i);
        *error = expression_error(r, (long)i, base, &e);
        goto Exit;
    }

    /* One attempt may not run past what remains of schedule_to_close. */
    int64_t timeout = a->timeout_ms;
    if (a->schedule_to_close_ms > 0) {
        int64_t left = r->st->steps[i].scheduled_at_ms + a->schedule_to_close_ms - due_at_ms;
        if (left < timeout)
            timeout = left;
    }
    payload =
        json_pack("{s:o, s:o, s:I}", "url", url, "input", input, "timeout_ms", (json_int_t)timeout);
    url = input = NULL; /* stolen by the payload */
Exit:
    json_decref(url);
    json_decref(input);
    free(base);
    return payload;
}

/* ---- transitions ------------------------------------------------------------------------- */

static void enter_step(struct run *r, size_t i);
static void continue_after(struct run *r, size_t i);

static void complete_execution(struct run *r)
{
    struct engine_state *st = r->st;
    json_t *output;
    st->current = st->n_steps;
    r->fx->ended = true;
    r->fx->cancel_tasks = true;
    if (r->d->output) {
        struct expr_error e;
        output = expr_eval_template(r->d->output, r->ctx, &e);
        if (!output) {
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

/* Ends the execution as failed with error (stolen); steps never reached are skipped. */
static void fail_execution(struct run *r, json_t *error)
{
    struct engine_state *st = r->st;
    for (size_t i = 0; i < st->n_steps; i++) {
        if (st->steps[i].status == ENGINE_STEP_PENDING) {
            st->steps[i].status = ENGINE_STEP_SKIPPED;
            mark_changed(r, i);
        }
    }
    st->status = ENGINE_EXEC_FAILED;
    emit(r, "execution_failed", -1, 0, wrap("error", error));
    r->fx->ended = true;
    r->fx->cancel_tasks = true;
    r->fx->error = error;
}

/* Step i failed for good with error (stolen). This is where compensations will start. */
static void fail_step(struct run *r, size_t i, json_t *error)
{
    struct engine_step *s = &r->st->steps[i];
    s->status = ENGINE_STEP_FAILED;
    s->completed_at_ms = r->now;
    json_object_set_new(ctx_step(r, r->d->steps[i].id), "error", json_deep_copy(error));
    mark_changed(r, i);
    emit(r, "step_failed", (long)i, s->attempt, wrap("error", error));
    fail_execution(r, error);
}

/* Step i completed with output (stolen). */
static void complete_step(struct run *r, size_t i, json_t *output)
{
    struct engine_step *s = &r->st->steps[i];
    s->status = ENGINE_STEP_COMPLETED;
    s->completed_at_ms = r->now;
    s->completion_order = ++r->st->completions;
    json_object_set_new(ctx_step(r, r->d->steps[i].id), "output", json_deep_copy(output));
    mark_changed(r, i);
    emit(r, "step_completed", (long)i, s->attempt, wrap("output", output));
    json_decref(output);
    continue_after(r, i);
}

/* The routing point after step i completed: the steps run in definition order. */
static void continue_after(struct run *r, size_t i)
{
    if (i + 1 < r->st->n_steps)
        enter_step(r, i + 1);
    else
        complete_execution(r);
}

/* Starts step i's timer, due at due_at_ms. */
static void start_timer(struct run *r, size_t i, int64_t due_at_ms)
{
    emit(r, "timer_started", (long)i, 0, json_pack("{s:o}", "due_at", time_json(due_at_ms)));
    add_task(r, ENGINE_TASK_TIMER, i, 0, due_at_ms, NULL);
}

/* The time a sleep_until step sleeps until, or -1 with *error set. */
static int64_t sleep_until_time(struct run *r, size_t i, json_t **error)
{
    struct expr_error e;
    int64_t ms = -1;
    json_t *v = expr_eval_template(r->d->steps[i].sleep_until, r->ctx, &e);
    if (!v) {
        char *base = xasprintf("/steps/%zu/sleep_until", i);
        *error = expression_error(r, (long)i, base, &e);
        free(base);
        return -1;
    }
    const char *s = json_string_value(v);
    int64_t parsed;
    if (s && strlen(s) == json_string_length(v) && time_parse_rfc3339(s, &parsed)) {
        ms = parsed;
    } else {
        char *text = quote_value(v);
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

static void enter_step(struct run *r, size_t i)
{
    static const char *const kinds[] = {"activity", "sleep", "sleep_until", "wait"};
    const struct defn_step *ds = &r->d->steps[i];
    struct engine_step *s = &r->st->steps[i];
    json_t *error = NULL;

    r->st->current = i;
    *s = (struct engine_step){ENGINE_STEP_SCHEDULED, 0, r->now, 0, 0, 0};
    /* A step entered again (a redrive) starts without its old result. */
    json_t *entry = ctx_step(r, ds->id);
    json_object_del(entry, "output");
    json_object_del(entry, "error");
    mark_changed(r, i);
    emit(r, "step_scheduled", (long)i, 0, json_pack("{s:s}", "kind", kinds[ds->kind]));

    switch (ds->kind) {
    case DEFN_STEP_ACTIVITY: {
        json_t *payload = activity_payload(r, i, r->now, &error);
        if (!payload)
            goto Fail;
        s->attempt = 1;
        add_task(r, ENGINE_TASK_ACTIVITY, i, 1, r->now, payload);
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
        s->started_at_ms = r->now;
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
        emit(r, "wait_started", (long)i, 0,
             json_pack("{s:s, s:o}", "signal", ds->signal, "timeout_at", timeout_at));
        r->fx->wants_signal = ds->signal;
        return;
    }
    }
    return;

Fail:
    fail_step(r, i, error);
}

/* ---- inputs ------------------------------------------------------------------------------ */

/* The step the input names when it is the current step of a running execution and of the
 * given kind (kind < 0: any); else NULL. */
static struct engine_step *current_step(struct run *r, int kind)
{
    const struct engine_state *st = r->st;
    if (st->status != ENGINE_EXEC_RUNNING || r->in->step != st->current ||
        st->current >= st->n_steps)
        return NULL;
    if (kind >= 0 && r->d->steps[st->current].kind != (enum defn_step_kind)kind)
        return NULL;
    return &st->steps[st->current];
}

/* The current activity step when in names its attempt in flight; else NULL. */
static struct engine_step *running_attempt(struct run *r)
{
    struct engine_step *s = current_step(r, DEFN_STEP_ACTIVITY);
    if (!s || s->status != ENGINE_STEP_RUNNING || r->in->attempt != s->attempt)
        return NULL;
    return s;
}

static bool on_start(struct run *r)
{
    struct engine_state *st = r->st;
    if (st->status != ENGINE_EXEC_RUNNING || st->current != 0 || st->completions != 0 ||
        (st->n_steps > 0 && st->steps[0].status != ENGINE_STEP_PENDING))
        return false;
    emit(r, "execution_started", -1, 0, NULL);
    if (st->n_steps > 0)
        enter_step(r, 0);
    else
        complete_execution(r);
    return true;
}

static bool on_attempt_started(struct run *r)
{
    struct engine_step *s = current_step(r, DEFN_STEP_ACTIVITY);
    if (!s || r->in->attempt != s->attempt || s->attempt < 1)
        return false;
    bool again = s->status == ENGINE_STEP_RUNNING;
    if (!(s->status == ENGINE_STEP_SCHEDULED || (again && r->in->redelivery)))
        return false;
    s->status = ENGINE_STEP_RUNNING;
    if (s->started_at_ms == 0)
        s->started_at_ms = r->now;
    /* A redelivery of the attempt in flight changes nothing in the step's row. */
    if (!again)
        mark_changed(r, r->in->step);
    emit(r, "attempt_started", (long)r->in->step, s->attempt,
         r->in->redelivery ? json_pack("{s:b}", "redelivery", 1) : NULL);
    return true;
}

static bool on_attempt_succeeded(struct run *r)
{
    if (!running_attempt(r))
        return false;
    complete_step(r, r->in->step, r->in->output ? json_deep_copy(r->in->output) : json_null());
    return true;
}

static bool on_attempt_failed(struct run *r)
{
    struct engine_step *s = running_attempt(r);
    if (!s)
        return false;
    size_t i = r->in->step;
    const struct defn_activity *a = &r->d->steps[i].activity;
    json_t *err = attempt_error(r->in->error);
    json_t *payload = NULL, *payload_error = NULL;
    int64_t next = 0;

    bool retry =
        !r->in->non_retryable &&
        !defn_retry_is_non_retryable(&a->retry, json_string_value(json_object_get(err, "type"))) &&
        s->attempt < a->retry.max_attempts;
    if (retry) {
        int64_t delay = defn_retry_interval_ms(&a->retry, s->attempt);
        int64_t after = r->in->retry_after_ms;
        if (after > DEFN_DURATION_MAX_MS)
            after = DEFN_DURATION_MAX_MS; /* keeps now + delay far from overflow */
        if (after > delay)
            delay = after;
        next = r->now + delay;
        /* The next attempt must be able to start before schedule_to_close runs out. */
        if (a->schedule_to_close_ms > 0 && next >= s->scheduled_at_ms + a->schedule_to_close_ms)
            retry = false;
    }
    if (retry) {
        payload = activity_payload(r, i, next, &payload_error);
        retry = payload != NULL;
    }

    json_t *data = wrap("error", err);
    json_object_set_new(data, "next_attempt_at", retry ? time_json(next) : json_null());
    emit(r, "attempt_failed", (long)i, s->attempt, data);
    mark_changed(r, i);
    if (retry) {
        s->attempt++;
        s->status = ENGINE_STEP_SCHEDULED;
        add_task(r, ENGINE_TASK_ACTIVITY, i, s->attempt, next, payload);
        json_decref(err);
        return true;
    }
    if (payload_error) {
        /* Cannot happen while the context is only added to; handled so it stays a step error. */
        json_decref(err);
        err = payload_error;
    } else {
        json_object_set_new(err, "step", json_string(r->d->steps[i].id));
        json_object_set_new(err, "attempts", json_integer(s->attempt));
    }
    fail_step(r, i, err);
    return true;
}

static bool on_timer_fired(struct run *r)
{
    struct engine_step *s = current_step(r, -1);
    if (!s || s->status != ENGINE_STEP_SCHEDULED)
        return false;
    enum defn_step_kind kind = r->d->steps[r->in->step].kind;
    if (kind != DEFN_STEP_SLEEP && kind != DEFN_STEP_SLEEP_UNTIL)
        return false;
    emit(r, "timer_fired", (long)r->in->step, 0, NULL);
    complete_step(r, r->in->step, json_null());
    return true;
}

static bool on_signal(struct run *r)
{
    struct engine_step *s = current_step(r, DEFN_STEP_WAIT);
    if (!s || s->status != ENGINE_STEP_WAITING || !r->in->signal ||
        strcmp(r->in->signal, r->d->steps[r->in->step].signal) != 0)
        return false;
    const char *name = r->d->steps[r->in->step].signal;
    json_t *payload = r->in->payload ? json_deep_copy(r->in->payload) : json_null();
    json_t *data = wrap("payload", payload);
    json_object_set_new(data, "signal", json_string(name));
    emit(r, "signal_consumed", (long)r->in->step, 0, data);
    r->fx->cancel_tasks = true;
    complete_step(r, r->in->step, payload);
    return true;
}

static bool on_wait_timed_out(struct run *r)
{
    struct engine_step *s = current_step(r, DEFN_STEP_WAIT);
    if (!s || s->status != ENGINE_STEP_WAITING)
        return false;
    size_t i = r->in->step;
    const struct defn_step *ds = &r->d->steps[i];
    if (ds->wait_timeout_ms <= 0)
        return false;
    emit(r, "wait_timed_out", (long)i, 0, json_pack("{s:s}", "signal", ds->signal));
    if (ds->on_timeout == DEFN_ON_TIMEOUT_CONTINUE) {
        complete_step(r, i, json_null());
        return true;
    }
    char timeout[32];
    defn_format_duration(ds->wait_timeout_ms, timeout);
    char *msg = xasprintf("no signal \"%s\" arrived within %s", ds->signal, timeout);
    json_t *err = step_error(r, i, "timeout", msg);
    free(msg);
    fail_step(r, i, err);
    return true;
}

/* ---- the entry point --------------------------------------------------------------------- */

static void collect_changed(struct run *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->st->n_steps; i++)
        n += r->changed[i];
    if (n == 0)
        return;
    r->fx->changed_steps = xcalloc(n, sizeof *r->fx->changed_steps);
    for (size_t i = 0; i < r->st->n_steps; i++)
        if (r->changed[i])
            r->fx->changed_steps[r->fx->n_changed_steps++] = i;
}

int engine_advance(const struct defn *d, struct engine_state *st, json_t *ctx,
                   const struct engine_input *in, struct engine_effects *fx)
{
    if (!d || !st || !json_is_object(ctx) || !in || !fx || st->n_steps != d->n_steps)
        return -1;
    if (in->kind < ENGINE_IN_START || in->kind > ENGINE_IN_WAIT_TIMED_OUT)
        return -1;

    struct run r = {d, st, ctx, in, fx, in->now_ms, NULL, 0, 0};
    r.changed = xcalloc(st->n_steps, sizeof *r.changed);
    bool applied = false;
    /* Every input but START names a step; one that does not exist is stale like any other. */
    if (in->kind != ENGINE_IN_START && in->step >= st->n_steps) {
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
        }
    }
    if (applied)
        collect_changed(&r);
    else
        fx->stale = true;
    free(r.changed);
    return 0;
}
