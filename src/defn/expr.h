/* Expressions in definitions: "${...}" in template strings, compiled once when a definition is
 * registered (or loaded) and evaluated, from the compiled form, when a step runs.
 *
 * The language, which the unit tests in tests/unit/defn/test_expr.c spell out case by case:
 *
 *   - A template is any JSON value. Only string values hold expressions; object keys, numbers,
 *     booleans and null are copied as they are.
 *   - A string that is exactly "${expr}" evaluates to the expression's JSON value, of any type
 *     ("${input.total > 1000}" is true or false, "${input.items}" the array).
 *   - "${expr}" inside a longer string is interpolated as text: a string is inserted verbatim;
 *     numbers, booleans and null as their JSON text (2.5, true, null); objects and arrays as
 *     compact JSON ({"a":1}).
 *   - Escape: "$$" stands for one "$", so "$${input}" is the literal text "${input}" and
 *     "$$$${x}" is "$$" followed by the value of x. A "$" followed by anything else than "$" or
 *     "{" is an ordinary character ("costs $5" needs no escape).
 *   - Spaces, tabs and line breaks may appear around the operators, parentheses and literals of
 *     an expression and inside "${ }" ("${ input.a }"), not inside a path ("input .a" is
 *     malformed).
 *
 * What an expression is made of:
 *
 *   - Paths. A path starts with a root and continues with segments:
 *       input                      the execution's input
 *       steps.<id>.output          the output of an earlier step
 *       steps.<id>.error           the error of an earlier step ({"type", "message", ...})
 *       execution.id, execution.workflow
 *       item                       the element of the innermost enclosing for_each
 *       index                      its index (0-based)
 *       loops.<id>.item            the element of the enclosing for_each <id> (any level)
 *       loops.<id>.index           its index
 *     Segments: .name (name of [A-Za-z0-9_-]+), [N] (N a non-negative decimal integer) and
 *     ["quoted key"] for any other key (inside the quotes, \" and \\ are the only escapes).
 *     After steps.<id> only .output or .error may follow; after loops.<id> only .item or
 *     .index. Any segments may follow item and loops.<id>.item, as they may follow input;
 *     nothing may follow execution.id, execution.workflow, index or loops.<id>.index.
 *     Names are greedy and "-" is one of their characters (step ids have it), so "input.n-1"
 *     is the field "n-1" and subtracting after a name needs spaces: "input.n - 1". An unknown
 *     root with a "-" in it ("index-1") gets a hint saying so.
 *   - Literals: numbers as in JSON (1000, -7, 2.5, 1e3; an integer must fit in 64 bits, and
 *     one with a fraction or an exponent is a real), 'text' in single quotes (\' and \\ are the
 *     only escapes), true, false and null.
 *   - Operators, from the loosest to the tightest binding; binary ones associate to the left:
 *       ||                 a boolean or
 *       &&                 a boolean and
 *       == !=              equality
 *       < <= > >=          order
 *       + -                addition (and joining strings), subtraction
 *       * / %              multiplication, division, remainder
 *       ! -                boolean not, negation (prefix)
 *     and parentheses to group.
 *   - Functions: len(x), the number of Unicode code points of a string, of items of an array or
 *     of members of an object; exists(path), true when the path leads to a value (a JSON null
 *     that is there counts) and false when any part of it is missing. The argument of exists()
 *     must be a path.
 *
 * Types are strict, never converted:
 *
 *   - && || and ! take booleans. && and || evaluate their right operand only when it decides
 *     the result, so "${exists(input.x) && input.x > 1}" is false when x is missing.
 *   - + takes two numbers or two strings (joined); - * / take numbers; % takes integers (the
 *     remainder has the sign of the dividend). Two integers give an integer, except / when the
 *     division is not exact, which gives a real (7 / 2 is 3.5, 8 / 2 is 4); a real operand gives
 *     a real (2.5 * 2 is 5.0). An integer result beyond 64 bits, a division or remainder by zero
 *     and a real result that is not finite are errors.
 *   - < <= > >= compare two numbers, or two strings (bytewise, i.e. by code point).
 *   - == and != compare values of the same JSON type by value: numbers numerically (1 == 1.0,
 *     also inside arrays and objects), arrays and objects deeply. Either side may be null (equal
 *     only when both are). Any other mix of types is an error.
 *   - Any other operand type is an error naming the types, e.g. "${input.total > 'a'}: cannot
 *     compare number with string in \"input.total > 'a'\"".
 *
 * Errors:
 *
 *   - A malformed expression is reported when the template is compiled (expr_compile): syntax
 *     errors ("${input.a +}: expected an operand after \"+\" at offset 9", the offset counted
 *     from just after "${"), unknown roots and wrong shapes of paths, unknown functions, wrong
 *     numbers of arguments, a non-path argument of exists(), nesting deeper than 64 levels (of
 *     parentheses, operators and calls), and any part made only of literals that cannot be
 *     evaluated ("${1 / 0}", "${1 + 'a'}"), even where && or || would not evaluate it.
 *   - Everything else fails when the template is evaluated, as an error of the step, named
 *     precisely: the expression, the reason and the part that failed ("${1 / input.n}: division
 *     by zero in \"1 / input.n\""). A lone path keeps its own form ("${input.a}: \"input\" has
 *     no field \"a\"").
 *   - A path to a value that is not there is an error, outside exists(); it never becomes null.
 *     A JSON null that is there is a value like any other.
 *   - Where item, index and loops.<id> may be used (inside the loop) is the definition's
 *     business: compiling reports each use (expr_loop_ref_fn), wherever it is in an expression,
 *     so that the caller can check it; the same for steps.<id> (expr_step_ref_fn).
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

/* Called once per well-formed reference to a step's result while a template is compiled or
 * checked, for each path of an expression that reads one (exists() included), in the order they
 * are written. pointer: where the string is, relative to the template; expr: the path as text,
 * for messages (e.g. "steps.charge.output.id"); step_id: the id after "steps.". All borrowed for
 * the call. */
typedef void (*expr_step_ref_fn)(void *arg, const char *pointer, const char *expr,
                                 const char *step_id);
/* Called once per well-formed use of a loop's element or index while a template is compiled,
 * in the order they are written.
 * pointer and expr as for expr_step_ref_fn (e.g. "item.sku", "index", "loops.all.item");
 * loop_id: NULL for item and index (the innermost enclosing loop), the id after "loops." for
 * loops.<id>... All borrowed for the call. */
typedef void (*expr_loop_ref_fn)(void *arg, const char *pointer, const char *expr,
                                 const char *loop_id);
/* Called once per malformed expression while a template is compiled or checked. message starts
 * with the expression, e.g. "${inptu.a}: unknown root \"inptu\"; ...". Borrowed for the call. */
typedef void (*expr_error_fn)(void *arg, const char *pointer, const char *message);

/* A compiled template: an immutable tree built once from a template's JSON, that evaluation
 * walks without parsing anything. Several threads may evaluate one at the same time. */
struct expr_template;

/* Compiles tmpl (any JSON value; see the language above) as a definition is registered: each
 * "${...}" must parse, its paths must have a valid shape (root, steps.<id>.output|error,
 * execution.id|workflow, item, index, loops.<id>.item|index) and its constant parts must
 * evaluate; those are folded into values once here. Reports the first bad expression
 * of each string to on_error (the rest of that string is skipped, as it cannot be split
 * reliably) and each step reference to on_step_ref, in template order; either may be NULL.
 * Loop references are not reported here (expr_compile_reporting does). Whether a referenced
 * step exists, or a loop encloses the template, is the caller's business. Sets *n_malformed
 * (when not NULL) to the number of strings with a malformed expression. Such a string still
 * compiles, into a node whose evaluation fails with the same message, so that a one-off
 * evaluation reports errors in template order; a definition refuses the template instead.
 * Returns a new compiled template (caller frees it with expr_template_free), or NULL when tmpl
 * is NULL. It keeps references to parts of tmpl rather than copies: tmpl must not be changed
 * while the compiled template lives. */
struct expr_template *expr_compile(const json_t *tmpl, expr_step_ref_fn on_step_ref,
                                   expr_error_fn on_error, void *arg, int *n_malformed)
    __attribute__((warn_unused_result));

/* What compiling reports, and to whom: any callback may be NULL. Reports come in template order,
 * each kind interleaved with the others as the expressions appear. */
struct expr_reporter {
    expr_step_ref_fn on_step_ref; /* each steps.<id>... */
    expr_loop_ref_fn on_loop_ref; /* each item, index and loops.<id>... */
    expr_error_fn on_error;       /* each string's first malformed expression */
    void *arg;                    /* passed to every callback */
};

/* expr_compile with every kind of report, loop references included. r may be NULL (no
 * reports). Same result, ownership and lifetime rules as expr_compile. */
struct expr_template *expr_compile_reporting(const json_t *tmpl, const struct expr_reporter *r,
                                             int *n_malformed) __attribute__((warn_unused_result));

/* A template that evaluates to value as it is, whatever its strings hold ("${" and "$$"
 * included): data that a program sends is never a template (step calls). Keeps a reference to
 * value, which must not be changed while the template lives. NULL when value is NULL. */
struct expr_template *expr_template_literal(const json_t *value)
    __attribute__((warn_unused_result));

/* Evaluates the compiled template t against ctx, the object
 *   {"input": ..., "steps": {"<id>": {"output": ..., "error": ...}},
 *    "execution": {"id": ..., "workflow": ...},
 *    "item": ..., "index": N, "loops": {"<for_each id>": {"item": ..., "index": N}}}
 * where a step that has not completed has no "output" member and one that has not failed has no
 * "error" member. "item" and "index" are the innermost enclosing loop's, and "loops" holds every
 * enclosing loop, the innermost included; outside any loop they are absent, and a path that
 * reads them fails with "${item}: not inside a for_each" (or "${loops.x.item}: not inside
 * for_each \"x\""). Inside a loop, "steps" holds the same iteration's steps.
 * The result's compact JSON text may not be longer than max_bytes (SIZE_MAX for no bound): the
 * budget is counted while evaluating, before anything is copied, so a template that would
 * expand a large value many times fails after building at most about max_bytes (never the whole
 * expansion); going over fails with err->message naming the limit and err->pointer at the value
 * where the budget ran out. Operators are bounded by it too, separately from the result: the
 * strings that "+" builds, all of them together, may not be longer than max_bytes, and what
 * comparisons and len() read (the bytes of strings and keys, and one per value compared) may
 * not exceed 16 times max_bytes; going over fails the expression, naming the limit. So
 * evaluating a template costs no more than its own size and a multiple of max_bytes, however
 * often it repeats a large value. A string's expressions were all
 * checked when it was compiled, so a malformed one is reported as such even when an earlier one
 * would fail for a missing value.
 * Returns a new value that shares nothing with t or ctx (the caller owns it and decrefs it), or
 * NULL with *err filled in (err may be NULL when the caller needs no reason); t NULL fails with
 * "no template". Neither t nor ctx is changed. */
json_t *expr_template_eval(const struct expr_template *t, const json_t *ctx, size_t max_bytes,
                           struct expr_error *err) __attribute__((warn_unused_result));

/* True when t is a string that is exactly one "${...}" expression (so its value may be of any
 * type, as a condition's must be a boolean); false for text, other values, malformed
 * expressions and NULL. */
bool expr_template_is_value(const struct expr_template *t);

/* Frees t and the references it holds. NULL is fine. */
void expr_template_free(struct expr_template *t);

/* Checks tmpl as expr_compile does, with the same reports, and keeps nothing. Returns the number
 * of strings with a malformed expression (0 when all are well-formed, and when tmpl is NULL). */
int expr_check_template(const json_t *tmpl, expr_step_ref_fn on_step_ref, expr_error_fn on_error,
                        void *arg);

/* True when s (len bytes) contains at least one "${" that is not escaped, i.e. evaluating it
 * depends on the execution. Says nothing about whether the expression is well-formed. */
bool expr_has_expression(const char *s, size_t len);

/* For a template evaluated once (tests, tools): compiles tmpl, evaluates it as
 * expr_template_eval does with no bound, and frees the compiled form. Returns a new value
 * (caller decrefs) or NULL with *err filled in (err may be NULL); tmpl NULL fails with
 * "no template". Code that evaluates a template more than once compiles it once instead. */
json_t *expr_eval_template(const json_t *tmpl, const json_t *ctx, struct expr_error *err)
    __attribute__((warn_unused_result));

/* expr_eval_template with a size budget of max_bytes, as expr_template_eval counts it. */
json_t *expr_eval_template_bounded(const json_t *tmpl, const json_t *ctx, size_t max_bytes,
                                   struct expr_error *err) __attribute__((warn_unused_result));

#endif
