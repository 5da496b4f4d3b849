/* One activity call: attempts, retries, timeouts, heartbeats and 202 + task tokens, for any
 * caller that can say which call an input is about (see activity.h for the rules). */
#include "engine/activity.h"

#include "defn/duration.h"
#include "util/alloc.h"
#include "util/jsontext.h"
#include "util/timeutil.h"

#include <string.h>
#include <strings.h>

/* ---- helpers ----------------------------------------------------------------------------- */

static json_t *time_json(int64_t ms)
{
    char text[32];
    time_format_rfc3339(ms, text);
    return json_string(text);
}

char *activity_quote_value(const json_t *v)
{
    enum { MAX = 200 };
    char *text = json_text(v);
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

/* {"type", "message", "step", "attempts"} for an error Keel itself finds in the call. The
 * caller adds "compensation" last (after "pointer"), the order the events have always had. */
static json_t *call_error(const struct activity_call *c, const char *type, const char *message)
{
    return json_pack("{s:s, s:s, s:s, s:i}", "type", type, "message", message, "step",
                     c->name ? c->name : "", "attempts", c->attempt);
}

/* The error of a template of c that did not evaluate; member is "url" or "input". */
static json_t *expression_error(const struct activity_call *c, const char *member,
                                const struct expr_error *e)
{
    json_t *err = call_error(c, "expression", e->message);
    const char *base = c->opt->pointer ? c->opt->pointer : "";
    char *pointer = xasprintf("%s/%s%s", base, member, e->pointer);
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

/* The url or input: evaluated from its template, or a copy of the given value. NULL with *e
 * set when the template does not evaluate. */
static json_t *eval_or_copy(const struct expr_template *t, const json_t *given, const json_t *ctx,
                            struct expr_error *e)
{
    if (t)
        return expr_template_eval(t, ctx, ACTIVITY_MAX_PAYLOAD_BYTES, e);
    return given ? json_deep_copy(given) : json_null();
}

/* The SEND payload of the attempt due at due_at_ms: {"url", "input", "timeout_ms"}. Returns
 * NULL with *error set (a new reference) when the url or input cannot be sent. */
static json_t *call_payload(const struct activity_call *c, int64_t due_at_ms, json_t **error)
{
    const struct activity_options *o = c->opt;
    struct expr_error e;
    json_t *url = NULL, *input = NULL, *payload = NULL;

    const json_t *ctx = c->ctx ? c->ctx : c->ctx_fn ? c->ctx_fn(c->ctx_arg) : NULL;
    url = eval_or_copy(o->url_expr, o->url, ctx, &e);
    if (!url) {
        *error = expression_error(c, "url", &e);
        goto Exit;
    }
    if (!url_ok(url)) {
        char *text = activity_quote_value(url);
        char *msg =
            xasprintf("url %s is not an http:// or https:// URL with a host and no spaces", text);
        *error = call_error(c, "invalid_url", msg);
        free(msg);
        free(text);
        goto Exit;
    }
    input = eval_or_copy(o->input_expr, o->input, ctx, &e);
    if (!input) {
        *error = expression_error(c, "input", &e);
        goto Exit;
    }

    /* One attempt may not run past what remains of schedule_to_close. */
    int64_t timeout = o->timeout_ms;
    if (o->schedule_to_close_ms > 0) {
        int64_t left = c->scheduled_at_ms + o->schedule_to_close_ms - due_at_ms;
        if (left < timeout)
            timeout = left;
    }
    payload =
        json_pack("{s:o, s:o, s:I}", "url", url, "input", input, "timeout_ms", (json_int_t)timeout);
    url = input = NULL; /* stolen by the payload */
Exit:
    if (!payload && c->compensation)
        json_object_set_new(*error, "compensation", json_true());
    json_decref(url);
    json_decref(input);
    return payload;
}

/* True when the input is about the attempt in flight. */
static bool in_flight(const struct activity_call *c, int attempt)
{
    return c->status == ACTIVITY_RUNNING && attempt == c->attempt;
}

/* The attempt in flight ended (whatever its outcome): an accepted one drops its timeouts. */
static void end_attempt(struct activity_call *c, const struct activity_sink *sink)
{
    if (c->accepted) {
        sink->cancel(sink->arg, ACTIVITY_TASK_TIMEOUT);
        if (c->opt->heartbeat_timeout_ms > 0)
            sink->cancel(sink->arg, ACTIVITY_TASK_HEARTBEAT_TIMEOUT);
    }
    c->accepted = false;
    c->attempt_started_at_ms = 0;
}

/* The attempt in flight failed with err (stolen; type and message are strings): a retry after
 * the backoff, or the end of the call with its final error in *error_out. */
static enum activity_result attempt_failed(struct activity_call *c, json_t *err, bool non_retryable,
                                           int64_t retry_after_ms, bool stop_retries, int64_t now,
                                           const struct activity_sink *sink, json_t **error_out)
{
    const struct activity_options *o = c->opt;
    const struct defn_retry *policy = o->retry;
    int attempt = c->attempt;
    json_t *payload = NULL, *payload_error = NULL;
    int64_t next = 0;

    end_attempt(c, sink);
    bool retry =
        !non_retryable && !stop_retries &&
        !defn_retry_is_non_retryable(policy, json_string_value(json_object_get(err, "type"))) &&
        attempt < policy->max_attempts;
    if (retry) {
        int64_t delay = defn_retry_interval_ms(policy, attempt);
        /* The receiver's Retry-After may lengthen the backoff up to max_interval, never beyond:
         * "Retry-After: 999999999" would otherwise park the execution for decades. */
        int64_t after = retry_after_ms;
        if (after > policy->max_interval_ms)
            after = policy->max_interval_ms;
        if (after > DEFN_DURATION_MAX_MS)
            after = DEFN_DURATION_MAX_MS; /* keeps now + delay far from overflow */
        if (after > delay)
            delay = after;
        next = now + delay;
        /* The next attempt must be able to start before schedule_to_close runs out. */
        if (o->schedule_to_close_ms > 0 && next >= c->scheduled_at_ms + o->schedule_to_close_ms)
            retry = false;
    }
    if (retry) {
        payload = call_payload(c, next, &payload_error);
        retry = payload != NULL;
    }

    json_t *data = json_object();
    json_object_set_new(data, "error", json_deep_copy(err));
    json_object_set_new(data, "next_attempt_at", retry ? time_json(next) : json_null());
    if (c->compensation)
        json_object_set_new(data, "compensation", json_true());
    sink->event(sink->arg, "attempt_failed", attempt, data);
    if (retry) {
        c->attempt++;
        c->status = ACTIVITY_SCHEDULED;
        sink->task(sink->arg, ACTIVITY_TASK_SEND, c->attempt, next, payload);
        json_decref(err);
        return ACTIVITY_APPLIED;
    }
    if (payload_error) {
        /* Cannot happen while the context is only added to; handled so it stays an error of
         * the call. */
        json_decref(err);
        err = payload_error;
    } else {
        json_object_set_new(err, "step", json_string(c->name ? c->name : ""));
        json_object_set_new(err, "attempts", json_integer(attempt));
        if (c->compensation)
            json_object_set_new(err, "compensation", json_true());
    }
    c->status = ACTIVITY_IDLE;
    *error_out = err;
    return ACTIVITY_FAILED;
}

/* ---- the inputs -------------------------------------------------------------------------- */

void activity_options_from_defn(struct activity_options *o, const struct defn_activity *a,
                                const char *pointer)
{
    *o = (struct activity_options){
        .url_expr = a->url_expr,
        .input_expr = a->input_expr,
        .url = a->url,
        .input = a->input,
        .timeout_ms = a->timeout_ms,
        .schedule_to_close_ms = a->schedule_to_close_ms,
        .heartbeat_timeout_ms = a->heartbeat_timeout_ms,
        .retry = &a->retry,
        .pointer = pointer,
    };
}

enum activity_result activity_start(struct activity_call *c, int64_t now_ms,
                                    const struct activity_sink *sink, json_t **error)
{
    c->status = ACTIVITY_IDLE;
    c->attempt = 0;
    c->scheduled_at_ms = now_ms;
    c->attempt_started_at_ms = 0;
    c->accepted = false;
    json_t *payload = call_payload(c, now_ms, error);
    if (!payload)
        return ACTIVITY_FAILED;
    c->status = ACTIVITY_SCHEDULED;
    c->attempt = 1;
    sink->task(sink->arg, ACTIVITY_TASK_SEND, 1, now_ms, payload);
    return ACTIVITY_APPLIED;
}

enum activity_result activity_resend(struct activity_call *c, int attempt, int64_t now_ms,
                                     const struct activity_sink *sink)
{
    if (!in_flight(c, attempt) || c->accepted)
        return ACTIVITY_STALE;
    json_t *error = NULL;
    json_t *payload = call_payload(c, now_ms, &error);
    if (!payload) {
        /* The templates evaluated when the attempt was first sent, in a context that has only
         * grown since: not expected. The attempt then stays in flight until a later takeover. */
        json_decref(error);
        return ACTIVITY_STALE;
    }
    sink->task(sink->arg, ACTIVITY_TASK_SEND, attempt, now_ms, payload);
    return ACTIVITY_APPLIED;
}

enum activity_result activity_attempt_started(struct activity_call *c, int attempt, bool redelivery,
                                              int64_t now_ms, const struct activity_sink *sink)
{
    if (attempt != c->attempt || attempt < 1)
        return ACTIVITY_STALE;
    /* A redelivery re-sends the attempt in flight, unless the receiver already accepted it. */
    bool scheduled = c->status == ACTIVITY_SCHEDULED;
    bool again = c->status == ACTIVITY_RUNNING && redelivery && !c->accepted;
    if (!scheduled && !again)
        return ACTIVITY_STALE;
    c->status = ACTIVITY_RUNNING;
    c->attempt_started_at_ms = now_ms;
    sink->event(sink->arg, c->compensation ? "compensation_started" : "attempt_started", attempt,
                redelivery ? json_pack("{s:b}", "redelivery", 1) : json_object());
    return ACTIVITY_APPLIED;
}

enum activity_result activity_attempt_succeeded(struct activity_call *c, int attempt,
                                                int64_t now_ms, const struct activity_sink *sink)
{
    (void)now_ms;
    if (!in_flight(c, attempt))
        return ACTIVITY_STALE;
    end_attempt(c, sink);
    c->status = ACTIVITY_IDLE;
    return ACTIVITY_SUCCEEDED;
}

enum activity_result activity_attempt_failed(struct activity_call *c, int attempt,
                                             const json_t *error, bool non_retryable,
                                             int64_t retry_after_ms, bool stop_retries,
                                             int64_t now_ms, const struct activity_sink *sink,
                                             json_t **error_out)
{
    if (!in_flight(c, attempt))
        return ACTIVITY_STALE;
    return attempt_failed(c, attempt_error(error), non_retryable, retry_after_ms, stop_retries,
                          now_ms, sink, error_out);
}

enum activity_result activity_attempt_accepted(struct activity_call *c, int attempt, int64_t now_ms,
                                               const struct activity_sink *sink)
{
    if (!in_flight(c, attempt) || c->accepted)
        return ACTIVITY_STALE;
    const struct activity_options *o = c->opt;
    int64_t start = c->attempt_started_at_ms ? c->attempt_started_at_ms : now_ms;
    int64_t due = start + o->timeout_ms;
    if (o->schedule_to_close_ms > 0) {
        int64_t close = c->scheduled_at_ms + o->schedule_to_close_ms;
        if (close < due)
            due = close;
    }
    if (due < now_ms)
        due = now_ms;
    c->accepted = true;

    json_t *data = json_object();
    json_object_set_new(data, "timeout_at", time_json(due));
    int64_t beat = o->heartbeat_timeout_ms > 0 ? now_ms + o->heartbeat_timeout_ms : 0;
    json_object_set_new(data, "heartbeat_timeout_at", beat ? time_json(beat) : json_null());
    if (c->compensation)
        json_object_set_new(data, "compensation", json_true());
    sink->event(sink->arg, "attempt_accepted", attempt, data);
    sink->task(sink->arg, ACTIVITY_TASK_TIMEOUT, attempt, due, NULL);
    if (beat)
        sink->task(sink->arg, ACTIVITY_TASK_HEARTBEAT_TIMEOUT, attempt, beat, NULL);
    return ACTIVITY_APPLIED;
}

enum activity_result activity_heartbeat(struct activity_call *c, int attempt, int64_t now_ms,
                                        const struct activity_sink *sink)
{
    if (!in_flight(c, attempt))
        return ACTIVITY_STALE;
    /* Before the accept is journaled (the receiver may beat before its 202 is processed) and
     * without heartbeat_timeout it applies and changes nothing. */
    int64_t limit = c->opt->heartbeat_timeout_ms;
    if (c->accepted && limit > 0) {
        sink->cancel(sink->arg, ACTIVITY_TASK_HEARTBEAT_TIMEOUT);
        sink->task(sink->arg, ACTIVITY_TASK_HEARTBEAT_TIMEOUT, attempt, now_ms + limit, NULL);
    }
    return ACTIVITY_APPLIED;
}

enum activity_result activity_timed_out(struct activity_call *c, int attempt, bool heartbeat,
                                        bool stop_retries, int64_t now_ms,
                                        const struct activity_sink *sink, json_t **error_out)
{
    if (!in_flight(c, attempt) || !c->accepted)
        return ACTIVITY_STALE;
    const struct activity_options *o = c->opt;
    if (heartbeat && o->heartbeat_timeout_ms <= 0)
        return ACTIVITY_STALE;
    char limit[32];
    char *msg;
    if (heartbeat) {
        defn_format_duration(o->heartbeat_timeout_ms, limit);
        msg = xasprintf("attempt %d sent no heartbeat within %s", attempt, limit);
    } else {
        int64_t start = c->attempt_started_at_ms;
        bool capped = o->schedule_to_close_ms > 0 &&
                      c->scheduled_at_ms + o->schedule_to_close_ms < start + o->timeout_ms;
        defn_format_duration(capped ? o->schedule_to_close_ms : o->timeout_ms, limit);
        msg = capped ? xasprintf("attempt %d did not complete before schedule_to_close (%s) ran "
                                 "out",
                                 attempt, limit)
                     : xasprintf("attempt %d did not complete within %s", attempt, limit);
    }
    json_t *err = json_pack("{s:s, s:s}", "type", heartbeat ? "heartbeat_timeout" : "timeout",
                            "message", msg);
    free(msg);
    return attempt_failed(c, err, false, -1, stop_retries, now_ms, sink, error_out);
}
