/* Workflow definitions: parse and validate a JSON document into a struct defn that the engine
 * reads, reporting every error with the RFC 6901 JSON Pointer of the offending value.
 *
 * The language is fixed by the contract ("The definition language"); the parts it leaves open
 * are settled here, and tests/unit/defn/test_defn.c states each as a case:
 *
 *   - Unknown fields anywhere are errors.
 *   - A step has exactly one kind: activity, sleep, sleep_until, wait, parallel, for_each, set,
 *     fail, if or workflow. A fail's type is a literal string (error types are matched as
 *     written); its message, and a set's whole value, are templates.
 *   - A workflow step's name is a literal workflow name (which workflows exist is the
 *     registering API's business: the parser knows no database) and its version, when given, a
 *     positive integer; its input is a template (null when absent).
 *   - An if's condition is a string that is exactly one expression ("${input.total > 1000}"):
 *     text around it would make the value a string, never true or false. Its "then" (required)
 *     and "else" (optional) are step lists, fields of the step itself, and apply only to if
 *     steps. They are stored as two branches named "then" and "else", in that order.
 *   - parallel and for_each hold step lists (non-empty arrays of steps), nested to any depth up
 *     to DEFN_MAX_STEP_DEPTH levels of steps (a deeper step is an error at its pointer). A
 *     parallel's branches are an object of at least one member named [A-Za-z0-9_-]{1,64}; they
 *     are stored, and walked (errors, the first use of an id), in name order, so that member
 *     order means nothing. A for_each's items are an array (any content) or a string with an
 *     expression; anything else could never evaluate to an array and is an error. Its
 *     concurrency is an integer 1..DEFN_FOR_EACH_MAX_CONCURRENCY.
 *   - Step ids are unique across the whole definition, at any depth; a duplicate's message names
 *     the pointer of the first use.
 *   - timeout, schedule_to_close, heartbeat_timeout, retry and compensate apply only to activity
 *     steps; on_timeout only to wait steps that have a wait.timeout. Elsewhere (parallel and
 *     for_each included) they are errors, because a setting that silently does nothing is a bug
 *     waiting to happen.
 *   - Durations that bound something (every timeout, initial_interval, max_interval) must be
 *     greater than zero; "sleep" may be zero.
 *   - Step retry overrides defaults.retry field by field; max_interval, when neither gives it, is
 *     100 x the resolved initial_interval; it must never be below initial_interval.
 *   - A compensation is retried like an activity (its own retry over defaults.retry), except that
 *     max_attempts defaults to the larger of 10 and defaults.retry.max_attempts, because a
 *     compensation that gives up leaves the saga half undone. Its timeout defaults like an
 *     activity's; it has no schedule_to_close bound; it inherits defaults.heartbeat_timeout.
 *   - A template of step A (url, input, sleep_until, items) may use steps.<X> only when X has
 *     completed before A starts on every run: X is an earlier sibling of A or of one of A's
 *     ancestors (in the same step list), or a step nested in such a sibling, but not inside a
 *     for_each body there (from outside a loop, its steps' results are the loop's output,
 *     steps.<for_each id>.output). So steps of one loop body see each other's results in the same
 *     iteration, and the branches of a parallel never see each other's (they run at once), nor
 *     do the then and else of an if (only one of them runs). A step after an if may use the
 *     steps of its branches: only the branch taken has run, and a result of the other is a
 *     missing value when evaluated (exists() tells which). A
 *     step's compensate may also use the step itself. The top-level output may use any step that
 *     is not inside a for_each body.
 *   - item and index may be used only inside a for_each's steps (at any depth below it; its own
 *     items are evaluated outside its loop); loops.<X> only where X is a for_each enclosing the
 *     template's step.
 *   - Names: [A-Za-z0-9_.-]{1,128} but not "." or ".." (they would be path segments in URLs).
 */
#ifndef KEEL_DEFN_DEFN_H
#define KEEL_DEFN_DEFN_H

#include "defn/expr.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Built-in defaults, used where neither the step nor "defaults" says otherwise. */
#define DEFN_DEFAULT_TIMEOUT_MS              30000 /* one attempt of an activity */
#define DEFN_DEFAULT_MAX_ATTEMPTS            5
#define DEFN_DEFAULT_COMPENSATE_MAX_ATTEMPTS 10
#define DEFN_DEFAULT_INITIAL_INTERVAL_MS     1000
#define DEFN_DEFAULT_BACKOFF_COEFFICIENT     2.0
#define DEFN_DEFAULT_MAX_INTERVAL_FACTOR     100 /* x initial_interval */

enum defn_step_kind {
    DEFN_STEP_ACTIVITY,    /* an outbound webhook, retried per its policy */
    DEFN_STEP_SLEEP,       /* a fixed duration */
    DEFN_STEP_SLEEP_UNTIL, /* until an RFC 3339 time, literal or from an expression */
    DEFN_STEP_WAIT,        /* for a named signal, optionally with a timeout */
    DEFN_STEP_PARALLEL,    /* named branches (step lists) that all run at once */
    DEFN_STEP_FOR_EACH,    /* a step list run once per element of an evaluated array */
    DEFN_STEP_SET,         /* evaluates a template: that is its output */
    DEFN_STEP_FAIL,        /* fails the execution there with {type, message} */
    DEFN_STEP_IF,          /* a condition and one or two step lists (then, else) */
    DEFN_STEP_WORKFLOW,    /* a child execution of another workflow, waited for */
    DEFN_STEP_CODE,        /* never parsed: the one step of defn_code(), the root of a code
                              execution, which its program's step calls run under */
};

/* Defaults and bounds of for_each (contract, "Flow steps"). The item cap is a server setting
 * (KEEL_FOR_EACH_MAX_ITEMS) applied when the items are evaluated, not here. */
#define DEFN_FOR_EACH_DEFAULT_CONCURRENCY 10
#define DEFN_FOR_EACH_MAX_CONCURRENCY     1000

/* The most signal names a wait on any of several may list. */
#define DEFN_WAIT_MAX_ANY 32

/* The most levels of steps a definition may nest (the definition's own steps are level 1). */
#define DEFN_MAX_STEP_DEPTH 32

struct defn_step;

/* One branch of a parallel step: a name (a path segment, [A-Za-z0-9_-]{1,64}) and its steps. */
struct defn_branch {
    char *name;              /* owned */
    struct defn_step *steps; /* owned; n_steps >= 1, in definition order */
    size_t n_steps;
};

enum defn_on_timeout {
    DEFN_ON_TIMEOUT_FAIL,     /* the wait step fails with a "timeout" error (the default) */
    DEFN_ON_TIMEOUT_CONTINUE, /* the wait step completes without a signal; the execution goes on */
};

/* A resolved retry policy (Temporal's names and meaning). */
struct defn_retry {
    int max_attempts; /* >= 1; 1 means no retry */
    int64_t initial_interval_ms;
    double backoff_coefficient;  /* >= 1.0 */
    int64_t max_interval_ms;     /* >= initial_interval_ms */
    char **non_retryable_errors; /* error types that stop retries; owned by the struct defn */
    size_t n_non_retryable_errors;
};

/* An activity call: the step's own webhook, or its compensation. */
struct defn_activity {
    json_t *url;   /* owned; a string template (evaluates to the URL) */
    json_t *input; /* owned; a template; JSON null when the definition gives none */
    struct expr_template *url_expr;   /* owned; url compiled, what the engine evaluates */
    struct expr_template *input_expr; /* owned; input compiled */
    int64_t timeout_ms;               /* bounds one attempt; always > 0 */
    int64_t schedule_to_close_ms;     /* bounds all attempts together; 0 = no bound */
    int64_t heartbeat_timeout_ms;     /* for asynchronous completion; 0 = none */
    struct defn_retry retry;
};

struct defn_step {
    char *id; /* owned; unique within the definition */
    enum defn_step_kind kind;

    /* DEFN_STEP_ACTIVITY */
    struct defn_activity activity;
    struct defn_activity *compensate; /* owned; NULL when the step has none */

    /* DEFN_STEP_SLEEP */
    int64_t sleep_ms;

    /* DEFN_STEP_SLEEP_UNTIL: a string template that must evaluate to an RFC 3339 time. */
    json_t *sleep_until;                    /* owned */
    struct expr_template *sleep_until_expr; /* owned; sleep_until compiled */

    /* DEFN_STEP_SET: any template; its value is the step's output. */
    json_t *set;                    /* owned */
    struct expr_template *set_expr; /* owned; set compiled */

    /* DEFN_STEP_FAIL: {"type": literal non-empty string, "message"?: string template}. */
    json_t *fail;                    /* owned */
    struct expr_template *fail_expr; /* owned; fail compiled */

    /* DEFN_STEP_WAIT: one signal name, or (any) several, of which the first to come ends the
     * wait; exactly one of signal and any is set. */
    char *signal; /* owned; NULL for a wait on any of several */
    char **any;   /* owned; n_any >= 1 names, distinct, in definition order */
    size_t n_any;
    int64_t wait_timeout_ms; /* 0 = wait for ever */
    enum defn_on_timeout on_timeout;

    /* DEFN_STEP_PARALLEL: the branches, sorted by name (a JSON object's member order is not
     * part of its meaning, and the canonical form sorts keys). n_branches >= 1.
     * DEFN_STEP_IF: "then" and, when the step has one, "else", in that order. */
    struct defn_branch *branches; /* owned */
    size_t n_branches;

    /* DEFN_STEP_FOR_EACH: the items template (must evaluate to an array when the step is
     * entered), the most iterations running at once, and the body in `children`. */
    json_t *items;                    /* owned */
    struct expr_template *items_expr; /* owned; items compiled */
    int concurrency;                  /* 1 .. DEFN_FOR_EACH_MAX_CONCURRENCY */

    /* DEFN_STEP_WORKFLOW: the child's workflow name, its version (0: the latest when the
     * child starts) and its input template (JSON null when the definition gives none). */
    char *child_workflow; /* owned */
    int child_version;
    json_t *child_input;                    /* owned */
    struct expr_template *child_input_expr; /* owned; child_input compiled */

    /* DEFN_STEP_IF: a string that is exactly one expression; it must evaluate to true or
     * false when the step is entered. */
    json_t *cond;                    /* owned */
    struct expr_template *cond_expr; /* owned; cond compiled */

    /* The steps a compound kind holds: for_each's body (n_children >= 1); NULL and 0 for the
     * other kinds. defn_free frees it recursively. */
    struct defn_step *children;
    size_t n_children;
};

struct defn {
    char *name;              /* owned */
    char *description;       /* owned; NULL when absent */
    struct defn_step *steps; /* owned; n_steps >= 1, in definition order */
    size_t n_steps;
    json_t *output; /* owned template; NULL when the definition has no "output" */
    struct expr_template *output_expr; /* owned; output compiled; NULL when output is NULL */
};

/* Parses and validates doc (a jansson value from a request body; not modified, not kept).
 * Returns 0 and sets *out to a new definition (caller frees it with defn_free) and *errors to
 * NULL; or returns -1, sets *out to NULL and *errors to a new JSON array (caller decrefs) of
 * every error found, each {"pointer": "/steps/2/retry/max_attempts", "message": "..."}.
 * A missing required field is reported at the pointer of the object that lacks it.
 * Returns -1 without touching anything when out or errors is NULL. */
int defn_parse(const json_t *doc, struct defn **out, json_t **errors)
    __attribute__((warn_unused_result));

/* Checks the literal activity and compensate URLs of *d against the process's destination
 * policy (webhook/destination.h: KEEL_ACTIVITY_ALLOW, link-local and metadata addresses,
 * keeld's own address). For registration only: a stored definition is not checked again when
 * it is loaded, so a policy narrowed later fails those attempts when they are sent
 * (destination_refused) instead of making the definition unreadable. URLs built by
 * expressions are checked when sent. Returns 0; or -1 after freeing *d (set to NULL), with
 * *errors a new array of {"pointer", "message"} (caller decrefs). */
int defn_check_destinations(struct defn **d, json_t **errors) __attribute__((warn_unused_result));

/* Frees d and everything it owns. NULL and defn_code() are fine (nothing is freed). */
void defn_free(struct defn *d);

/* The index in d->steps (the top level only) of the step with this id, or -1. */
int defn_step_index(const struct defn *d, const char *id);

/* The step with this id at any depth (inside parallel branches and for_each bodies too), or
 * NULL when there is none (or d or id is NULL). Borrowed from d. */
const struct defn_step *defn_find_step(const struct defn *d, const char *id);

/* The delay before the attempt after attempt number `attempt` (1-based) fails:
 * min(initial_interval x backoff_coefficient^(attempt - 1), max_interval), in whole
 * milliseconds (rounded down), computed in doubles so huge exponents saturate at max_interval
 * rather than overflow. An attempt below 1 is taken as 1. */
int64_t defn_retry_interval_ms(const struct defn_retry *r, int attempt);

/* The definition every code execution (one without a definition, driven by its program's step
 * calls; contract, "Step calls") runs: a single step of kind DEFN_STEP_CODE whose id is "" (so
 * that the paths of the steps under it are their keys). Static, shared, never freed. */
const struct defn *defn_code(void);

/* Parses the body of a step call (contract, "Step calls"): exactly one of {"activity": {"url",
 * "input"?, "timeout"?, "schedule_to_close"?, "heartbeat_timeout"?, "retry"?}, "compensate"?:
 * {...}}, {"output": any}, {"sleep": duration}, {"sleep_until": RFC 3339 time} or {"wait":
 * {"signal" or "any", "timeout"?}, "on_timeout"?}, into the step a definition would hold for it
 * (an output is a "set" step), with id key. Its strings are data: "${" and "$$" mean nothing,
 * every template evaluates to the value as sent. The rules and messages are the definition's
 * (durations, retry, URLs, signal names), the pointers the body's. Returns 0 and sets *out (free
 * with defn_step_free), or -1 with *errors a new array of {"pointer", "message"}. */
int defn_parse_step_call(const json_t *body, const char *key, struct defn_step **out,
                         json_t **errors) __attribute__((warn_unused_result));

/* The kind of a step call's body ("activity", "output", "sleep", "sleep_until" or "wait"), or
 * NULL when it has none or several. Borrowed static string. */
const char *defn_step_call_kind(const json_t *body);

/* Frees a step made by defn_parse_step_call. NULL is fine. */
void defn_step_free(struct defn_step *st);

/* Calls fn(arg, pointer, name) for every workflow step of d, at any depth, in definition order:
 * pointer is the JSON Pointer of the step's workflow.name ("/steps/2/workflow/name"), name the
 * workflow it starts. Both borrowed for the call. */
void defn_each_child_workflow(const struct defn *d,
                              void (*fn)(void *arg, const char *pointer, const char *name),
                              void *arg);

/* True when wait step st ends on a signal of this name (its signal, or one of its any). */
bool defn_wait_accepts(const struct defn_step *st, const char *name);

/* True when error_type is one of r's non_retryable_errors (exact, case-sensitive match). */
bool defn_retry_is_non_retryable(const struct defn_retry *r, const char *error_type);

#endif
