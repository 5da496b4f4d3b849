/* Expressions in definitions: "${path}" references into an execution's data, checked when a
 * definition is registered and evaluated when a step runs.
 *
 * The language, which the unit tests in tests/unit/defn/test_expr.c spell out case by case:
 *
 *   - A template is any JSON value. Only string values are expressions; object keys, numbers,
 *     booleans and null are copied as they are.
 *   - A string that is exactly "${path}" evaluates to the JSON value at path, of any type.
 *   - "${path}" inside a longer string is interpolated as text: a string is inserted verbatim;
 *     numbers, booleans and null as their JSON text (2.5, true, null); objects and arrays as
 *     compact JSON ({"a":1}).
 *   - Escape: "$$" stands for one "$", so "$${input}" is the literal text "${input}" and
 *     "$$$${x}" is "$$" followed by the value of x. A "$" followed by anything else than "$" or
 *     "{" is an ordinary character ("costs $5" needs no escape).
 *   - Spaces right after "${" and right before "}" are allowed: "${ input.a }".
 *   - A path starts with a root and continues with segments:
 *       input                      the execution's input
 *       steps.<id>.output          the output of an earlier step
 *       steps.<id>.error           the error of an earlier step ({"type", "message", ...})
 *       execution.id, execution.workflow
 *     Segments: .name (name of [A-Za-z0-9_-]+), [N] (N a non-negative decimal integer) and
 *     ["quoted key"] for any other key (inside the quotes, \" and \\ are the only escapes).
 *     After steps.<id> only .output or .error may follow; nothing may follow execution.id or
 *     execution.workflow.
 *   - A path to a value that is not there is an error, named precisely; it never becomes null.
 *     A JSON null that is there is a value like any other.
 */
#ifndef KEEL_DEFN_EXPR_H
#define KEEL_DEFN_EXPR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Why an evaluation failed. Both strings are NUL-terminated and truncated if too long. */
struct expr_error {
    /* RFC 6901 pointer, relative to the template, of the string that failed ("" for the
     * template itself, "/order" for a field of it). */
    char pointer[512];
    /* For a reader, e.g. "${steps.charge.output.id}: \"steps.charge.output\" has no field
     * \"id\"". */
    char message[1024];
};

/* Called by expr_check_template once per well-formed reference to a step's result.
 * pointer: where the string is, relative to the template; expr: the path as text, for messages
 * (e.g. "steps.charge.output.id"); step_id: the id after "steps.". All borrowed for the call. */
typedef void (*expr_step_ref_fn)(void *arg, const char *pointer, const char *expr,
                                 const char *step_id);
/* Called by expr_check_template once per malformed expression. message starts with the
 * expression, e.g. "${inptu.a}: unknown root \"inptu\"; ...". Borrowed for the call. */
typedef void (*expr_error_fn)(void *arg, const char *pointer, const char *message);

/* Checks every string in tmpl, recursively, as a definition is registered: each "${...}" must
 * parse and have a valid shape (root, steps.<id>.output|error, execution.id|workflow). Reports
 * the first bad expression of each string to on_error (the rest of that string is skipped, as
 * it cannot be split reliably) and each step reference to on_step_ref; either may be NULL.
 * Whether a referenced step exists is the caller's business. Returns the number of strings
 * with a malformed expression (0 when all are well-formed). */
int expr_check_template(const json_t *tmpl, expr_step_ref_fn on_step_ref, expr_error_fn on_error,
                        void *arg);

/* True when s (len bytes) contains at least one "${" that is not escaped, i.e. evaluating it
 * depends on the execution. Says nothing about whether the expression is well-formed. */
bool expr_has_expression(const char *s, size_t len);

/* Evaluates tmpl against ctx, the object
 *   {"input": ..., "steps": {"<id>": {"output": ..., "error": ...}},
 *    "execution": {"id": ..., "workflow": ...}}
 * where a step that has not completed has no "output" member and one that has not failed has no
 * "error" member. Walks objects and arrays recursively. All expressions of a string are checked
 * before any of them is evaluated, so a malformed one is reported as such even when an earlier
 * one would fail for a missing value.
 * Returns a new value that shares nothing with tmpl or ctx (the caller owns it and decrefs it),
 * or NULL with *err filled in (err may be NULL when the caller needs no reason). */
json_t *expr_eval_template(const json_t *tmpl, const json_t *ctx, struct expr_error *err)
    __attribute__((warn_unused_result));

/* expr_eval_template with a size budget: the result's compact JSON text may not be longer than
 * max_bytes. The budget is counted while evaluating, before anything is copied, so a template
 * that would expand a large value many times fails after building at most about max_bytes
 * (never the whole expansion). Going over returns NULL with err->message naming the limit and
 * err->pointer at the string where the budget ran out. */
json_t *expr_eval_template_bounded(const json_t *tmpl, const json_t *ctx, size_t max_bytes,
                                   struct expr_error *err) __attribute__((warn_unused_result));

#endif
