/* One activity call: the attempts of one webhook call until it succeeds or fails for good, with
 * retries and backoff, Retry-After, timeouts, schedule_to_close, 202 + heartbeats, and the same
 * for a compensation. Pure like the interpreter (no I/O, no clock): each function applies one
 * input to a struct activity_call and reports what to journal and schedule through a struct
 * activity_sink. It knows nothing of definitions, steps, paths or executions: the caller (the
 * interpreter, engine.c) decides which call an input is about, copies that call's state in and
 * out, maps the sink's tasks and events to its step or path, and decides what the end of the
 * call means (the step completes or fails, the saga goes on). A definition's activity step and
 * its compensation use it today; a node of the tree engine and a step call (whose options come
 * from a request body, already evaluated) are meant to use it unchanged.
 *
 * The life of a call:
 *
 *   activity_start -> SCHEDULED (attempt 1, a SEND task due now)
 *   SCHEDULED --attempt_started--> RUNNING
 *   RUNNING --attempt_accepted (202)--> RUNNING, accepted: a TIMEOUT task due at the attempt's
 *       start + timeout (capped by schedule_to_close) and, when heartbeat_timeout > 0, a
 *       HEARTBEAT_TIMEOUT task due heartbeat_timeout after the accept, moved by every heartbeat
 *   RUNNING --attempt_succeeded--> IDLE (ACTIVITY_SUCCEEDED: the caller takes the output)
 *   RUNNING --attempt_failed / timed_out--> SCHEDULED (attempt + 1, a SEND task due after the
 *       backoff: ACTIVITY_APPLIED) or IDLE (ACTIVITY_FAILED with the call's final error)
 *
 * Rules (the contract's, and choices it leaves open):
 *   - The backoff is the policy's (defn_retry_interval_ms). The receiver's Retry-After can
 *     lengthen it up to max_interval, never beyond (a receiver cannot park a call for years).
 *   - No retry when the receiver said stop (non_retryable), when the error type is one of the
 *     policy's non_retryable_errors, after max_attempts, when the caller stops retries (a
 *     cancel), or when the next attempt could not start before schedule_to_close runs out.
 *   - One attempt's timeout (in the SEND payload, and for the TIMEOUT of an accepted attempt)
 *     is capped by what remains of schedule_to_close, counted from scheduled_at_ms.
 *   - A redelivered attempt (the same attempt sent again after its lease expired) restarts the
 *     attempt clock: the receiver sees a new request, so an accept after it times out from the
 *     new send. A redelivery of an accepted attempt is stale: the receiver already has it.
 *   - A heartbeat applies while the attempt is in flight, even before its accept is journaled;
 *     it moves the HEARTBEAT_TIMEOUT only once accepted. It emits no event.
 *   - A TIMEOUT or HEARTBEAT_TIMEOUT applies to the live accepted attempt it names whenever it
 *     arrives: the module has no clock to compare with the deadline, so whoever stores the
 *     tasks must delete a replaced heartbeat task in the transaction that replaces it (the
 *     sink's cancel comes before the new task). The timeouts fail the attempt with error type
 *     "timeout" or "heartbeat_timeout", retried per the policy like any other failure.
 *   - An accepted attempt that ends, whatever the outcome, cancels its TIMEOUT and
 *     HEARTBEAT_TIMEOUT tasks.
 *   - The url and input are evaluated afresh for every attempt (from templates, in the caller's
 *     context, which holds nothing that changes while the call is under way) or taken as given.
 *     A url that is not http(s):// with a host, or a template that does not evaluate, ends the
 *     call with an "invalid_url" or "expression" error without an attempt.
 *
 * Errors the module builds are {"type", "message", "step": call->name, "attempts"} (+
 * "pointer" for an expression error, + "compensation": true for a compensation); the final
 * error after a failed attempt is the attempt's error (type and message made strings, other
 * members kept) plus "step", "attempts" and, for a compensation, "compensation": true. */
#ifndef KEEL_ENGINE_ACTIVITY_H
#define KEEL_ENGINE_ACTIVITY_H

#include "defn/defn.h"
#include "defn/expr.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest evaluated url or input, as compact JSON text (counted while evaluating). */
#define ACTIVITY_MAX_PAYLOAD_BYTES ((size_t)1024 * 1024)

/* How to call: from a definition (activity_options_from_defn) or from a request body. The
 * module only reads it; everything it points to is the caller's and must outlive the call's
 * functions. */
struct activity_options {
    const struct expr_template *url_expr;   /* compiled url template; NULL: use url */
    const struct expr_template *input_expr; /* compiled input template; NULL: use input */
    const json_t *url;                      /* the evaluated url (a string), when no url_expr */
    const json_t *input;            /* the evaluated input when no input_expr; NULL = null */
    int64_t timeout_ms;             /* bounds one attempt; > 0 */
    int64_t schedule_to_close_ms;   /* bounds all attempts together; 0 = no bound */
    int64_t heartbeat_timeout_ms;   /* for an accepted (202) attempt; 0 = none */
    const struct defn_retry *retry; /* the retry policy */
    const char *pointer;            /* JSON Pointer of the activity in the definition, the base
                                       of an expression error's "pointer" (+ "/url" or
                                       "/input"); NULL when there is none */
};

/* Fills o from a definition's activity (borrowed: a stays the owner). pointer is borrowed too
 * (e.g. "/steps/2/activity"). */
void activity_options_from_defn(struct activity_options *o, const struct defn_activity *a,
                                const char *pointer);

enum activity_status {
    ACTIVITY_IDLE,      /* not started, or ended (the caller's own status says how) */
    ACTIVITY_SCHEDULED, /* attempt `attempt` is due (now or after a backoff) */
    ACTIVITY_RUNNING,   /* attempt `attempt` is in flight */
};

/* One call: what it is (set by the caller, only read here) and where it stands (the state the
 * functions below update; the caller stores it between inputs, in any form it likes). */
struct activity_call {
    const struct activity_options *opt; /* borrowed */
    const char *name;  /* the "step" member of the errors built here (a step id, a path, a
                          step-call key); borrowed */
    bool compensation; /* a compensation: its events are compensation_started and
                          attempt_failed/attempt_accepted with "compensation": true, its
                          errors say "compensation": true */
    const json_t *ctx; /* the expression context templates are evaluated in; borrowed. NULL:
                          ask ctx_fn, once a template is evaluated (building the context may
                          cost reads the call does not need, e.g. for a result) */
    const json_t *(*ctx_fn)(void *arg);
    void *ctx_arg;

    enum activity_status status;
    int attempt;                   /* the current or last attempt; 0 = none yet */
    int64_t scheduled_at_ms;       /* set by activity_start: schedule_to_close counts from here */
    int64_t attempt_started_at_ms; /* while RUNNING: when the attempt was sent (the last send
                                      when it was redelivered); else 0 */
    bool accepted;                 /* while RUNNING: the receiver answered 202 */
};

enum activity_task_kind {
    ACTIVITY_TASK_SEND,              /* send the attempt; payload {"url", "input", "timeout_ms"} */
    ACTIVITY_TASK_TIMEOUT,           /* the accepted attempt did not complete in time */
    ACTIVITY_TASK_HEARTBEAT_TIMEOUT, /* the accepted attempt sent no heartbeat in time */
};

/* Where a call's effects go, in the order they happen. The caller maps them to its own step or
 * path (an event's step, a task's row). Every callback is required. */
struct activity_sink {
    void *arg; /* passed to every callback */
    /* An event of the call: type is a static string ("attempt_started",
     * "compensation_started", "attempt_accepted", "attempt_failed"); data is a new object the
     * callee takes over (never NULL). */
    void (*event)(void *arg, const char *type, int attempt, json_t *data);
    /* A task to store: kind, the attempt it is about, when it is due; payload (SEND only, else
     * NULL) is a new reference the callee takes over. */
    void (*task)(void *arg, enum activity_task_kind kind, int attempt, int64_t due_at_ms,
                 json_t *payload);
    /* Delete the call's pending tasks of kind (before any task given after it). */
    void (*cancel)(void *arg, enum activity_task_kind kind);
};

/* What an input did to the call. */
enum activity_result {
    ACTIVITY_STALE,     /* it did not apply (another attempt, or the call is not in that state):
                           nothing was changed or emitted */
    ACTIVITY_APPLIED,   /* it applied; the call is still under way */
    ACTIVITY_SUCCEEDED, /* the attempt succeeded: the call ended (IDLE); the output is the
                           caller's to take from its input */
    ACTIVITY_FAILED,    /* the call failed for good (IDLE); *error is its final error */
};

/* Starts c at now: attempt 1 is scheduled, due now (status SCHEDULED, scheduled_at_ms = now,
 * a SEND task). The state fields are reset first, so a call can be started again (a redrive).
 * Returns ACTIVITY_APPLIED, or ACTIVITY_FAILED with *error set (a new reference, the caller's)
 * when the url or input cannot be sent: the call then ended without an attempt (attempt 0). */
enum activity_result activity_start(struct activity_call *c, int64_t now_ms,
                                    const struct activity_sink *sink, json_t **error)
    __attribute__((warn_unused_result));

/* The attempt in flight must be sent again (its sender's keeld died or was fenced): a SEND task
 * due now, with the url and input evaluated afresh (the same values: the context holds nothing
 * that changed since). Nothing else changes; the redelivery's attempt_started, fed after it,
 * restarts the attempt clock. Stale unless the attempt is in flight and not accepted (a 202's
 * receiver already has it; its timeouts are tasks of their own). */
enum activity_result activity_resend(struct activity_call *c, int attempt, int64_t now_ms,
                                     const struct activity_sink *sink);

/* Attempt `attempt` is being sent at now (redelivery: sent again after its lease expired).
 * Applies to the scheduled attempt, or to the one in flight when redelivered and not accepted;
 * emits attempt_started (compensation_started) with {} or {"redelivery": true}. Returns
 * ACTIVITY_APPLIED or ACTIVITY_STALE. */
enum activity_result activity_attempt_started(struct activity_call *c, int attempt, bool redelivery,
                                              int64_t now_ms, const struct activity_sink *sink);

/* Attempt `attempt` returned its output. Emits nothing (the caller journals the outcome with
 * the output). Returns ACTIVITY_SUCCEEDED or ACTIVITY_STALE. */
enum activity_result activity_attempt_succeeded(struct activity_call *c, int attempt,
                                                int64_t now_ms, const struct activity_sink *sink);

/* Attempt `attempt` failed with error (borrowed; {"type", "message", ...}, repaired when it is
 * not). non_retryable: the receiver said stop; retry_after_ms: its Retry-After, -1 when none;
 * stop_retries: the caller allows no further attempt (a cancel). Emits attempt_failed
 * ({"error", "next_attempt_at"}). Returns ACTIVITY_APPLIED (a retry is scheduled),
 * ACTIVITY_FAILED with *error_out set (new reference, the caller's) or ACTIVITY_STALE. */
enum activity_result
activity_attempt_failed(struct activity_call *c, int attempt, const json_t *error,
                        bool non_retryable, int64_t retry_after_ms, bool stop_retries,
                        int64_t now_ms, const struct activity_sink *sink, json_t **error_out)
    __attribute__((warn_unused_result));

/* Attempt `attempt` was answered 202: it completes later. Emits attempt_accepted
 * ({"timeout_at", "heartbeat_timeout_at" or null}) and schedules the timeouts. Returns
 * ACTIVITY_APPLIED, or ACTIVITY_STALE (also when already accepted). */
enum activity_result activity_attempt_accepted(struct activity_call *c, int attempt, int64_t now_ms,
                                               const struct activity_sink *sink);

/* A heartbeat of attempt `attempt`: moves the HEARTBEAT_TIMEOUT task when the attempt is
 * accepted and has a heartbeat_timeout. Returns ACTIVITY_APPLIED or ACTIVITY_STALE. */
enum activity_result activity_heartbeat(struct activity_call *c, int attempt, int64_t now_ms,
                                        const struct activity_sink *sink);

/* The TIMEOUT (or, with heartbeat, the HEARTBEAT_TIMEOUT) task of accepted attempt `attempt`
 * is due: the attempt fails as activity_attempt_failed does, with a "timeout" or
 * "heartbeat_timeout" error. Same results; ACTIVITY_STALE when the attempt is not the accepted
 * one in flight. */
enum activity_result activity_timed_out(struct activity_call *c, int attempt, bool heartbeat,
                                        bool stop_retries, int64_t now_ms,
                                        const struct activity_sink *sink, json_t **error_out)
    __attribute__((warn_unused_result));

/* v as compact JSON for an error message, cut (at a character boundary, with "...") past 200
 * bytes so that a huge value does not end up whole in every event and row that quotes it.
 * Caller frees. */
char *activity_quote_value(const json_t *v);

#endif
