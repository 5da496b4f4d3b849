/* Fuzzes expressions: expr_compile (registration) and expr_template_eval (a step starting) on
 * a template against a small fixed context. The input is a template as JSON (any value, as it
 * sits in a definition) or, when it is not JSON, the raw text of one string template.
 *
 * Differential, for the language the frozen reference speaks (paths only, in expr_reference.c):
 * a template the reference accepts must compile with the same step and loop references and no
 * error, and evaluate to the same value or fail with the same pointer and message, under every
 * size budget; evaluating it again gives the same outcome, and compiling and evaluating never
 * change the template. Operators made the language larger, never smaller: a template the
 * reference refuses may compile now, but never has more malformed strings than the reference
 * counts, and each of its strings that the reference accepts is compared on its own.
 *
 * For what only the new language can say (operators, literals, len(), exists()), properties
 * that hold whatever the expression: for a string that is one expression X, "${(X)}" means the
 * same as X, "${(X) == (X)}" is true whenever X evaluates, and "${!(X)}" negates X when it is a
 * boolean and fails otherwise (each only if it compiles: wrapping adds a level of nesting, and
 * the only way it may fail to compile is by nesting too deeply).
 *
 * Besides, the contracts of expr.h: error pointers name a string of the template, a template
 * that fails the check fails evaluation too, a string without an unescaped "${" always
 * evaluates, evaluation never changes the context, a template without any '$' evaluates to
 * itself, and a size budget only turns results into errors, never into other results. */
#include "fuzz.h"

#include "defn/expr.h"
#include "util/buf.h"

#include <stdint.h>
#include <string.h>

#include "expr_reference.c"

static const char CTX[] =
    "{\"input\": {\"order_id\": \"A1\", \"total\": 19.99, \"qty\": 3, \"ok\": true, \"none\": null,"
    "  \"big\": 1e300, \"neg\": -7, \"nul\": \"a\\u0000b\", \"text\": \"h\\u00e9\\ud83d\\ude00\","
    "  \"items\": [{\"sku\": \"x\"}, {\"sku\": \"y\"}], \"nested\": {\"a\": {\"b\": [10, [30]]}},"
    "  \"odd key\": 1, \"quote\\\"key\": 3, \"back\\\\slash\": 4, \"\": \"empty\","
    "  \"dollar\": \"$5\", \"expr\": \"${input.qty}\", \"empty_obj\": {}, \"empty_arr\": [],"
    "  \"max\": 9223372036854775807, \"min\": -9223372036854775808, \"zero\": 0,"
    "  \"reals\": [1.0, 0.5], \"ints\": [1, 0], \"n-1\": 7},"
    " \"steps\": {\"charge\": {\"output\": {\"id\": \"ch_1\", \"amount\": 1999}},"
    "   \"approval\": {\"output\": null},"
    "   \"flaky\": {\"error\": {\"type\": \"timeout\", \"message\": \"took too long\"}},"
    "   \"pending\": {}},"
    " \"execution\": {\"id\": \"ex-1\", \"workflow\": \"orders\"},"
    " \"item\": {\"sku\": \"x\", \"qty\": 2}, \"index\": 0,"
    " \"loops\": {\"all\": {\"item\": {\"sku\": \"x\", \"qty\": 2}, \"index\": 0},"
    "   \"outer\": {\"item\": [1, 2], \"index\": 3}, \"half\": {\"index\": 1}}}";

static json_t *ctx;      /* what the evaluations read */
static json_t *ctx_copy; /* a deep copy to prove they never change it */

struct check_state {
    const json_t *tmpl;
    int errors;
};

/* A pointer relative to the template must name one of its strings; a pointer that was cut to
 * fit struct expr_error cannot be followed, so it is only checked when it fits. */
static void check_pointer(const json_t *tmpl, const char *ptr, size_t cap, bool string)
{
    FUZZ_CHECK(ptr != NULL);
    size_t n = strnlen(ptr, cap);
    FUZZ_CHECK(n < cap);
    if (n + 1 < cap) {
        const json_t *v = fuzz_pointer_get(tmpl, ptr);
        if (!v || (string && !json_is_string(v)))
            fprintf(stderr, "pointer \"%s\" does not name a %s of the template\n", ptr,
                    string ? "string" : "value");
        FUZZ_CHECK(v != NULL);
        FUZZ_CHECK(!string || json_is_string(v));
    }
}

static void check_string_pointer(const json_t *tmpl, const char *ptr, size_t cap)
{
    check_pointer(tmpl, ptr, cap, true);
}

static void on_step_ref(void *arg, const char *pointer, const char *expr, const char *step_id)
{
    struct check_state *cs = arg;
    check_string_pointer(cs->tmpl, pointer, (size_t)-1);
    FUZZ_CHECK(expr != NULL && strncmp(expr, "steps", 5) == 0);
    FUZZ_CHECK(step_id != NULL);
}

static void on_error(void *arg, const char *pointer, const char *message)
{
    struct check_state *cs = arg;
    check_string_pointer(cs->tmpl, pointer, (size_t)-1);
    FUZZ_CHECK(message != NULL && message[0] != '\0');
    cs->errors++;
}

static bool has_dollar(const json_t *v)
{
    if (json_is_string(v))
        return memchr(json_string_value(v), '$', json_string_length(v)) != NULL;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (has_dollar(e))
                return true;
        }
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            if (has_dollar(e))
                return true;
        }
    }
    return false;
}

/* A string with no unescaped "${" does not depend on the execution: it always evaluates. */
static void check_plain_strings(const json_t *v)
{
    if (json_is_string(v)) {
        if (!expr_has_expression(json_string_value(v), json_string_length(v))) {
            struct expr_error err;
            json_t *out = expr_eval_template(v, ctx, &err);
            if (!out)
                fprintf(stderr, "a string without an expression failed: %s\n", err.message);
            FUZZ_CHECK(json_is_string(out));
            json_decref(out);
        }
        return;
    }
    size_t i;
    json_t *e;
    const char *k;
    if (json_is_array(v)) {
        json_array_foreach(v, i, e) check_plain_strings(e);
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, e) check_plain_strings(e);
    }
}

/* expr_eval_template_bounded: a budget only ever adds failures, and a result it lets through
 * is the unbounded one, with compact JSON text within the budget. */
static void check_bounded(const json_t *tmpl, const json_t *unbounded)
{
    static const size_t budgets[] = {0, 1, 8, 64, 1024, 1 << 20};
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        struct expr_error err;
        memset(&err, 0x55, sizeof err);
        json_t *out = expr_eval_template_bounded(tmpl, ctx, budgets[i], &err);
        if (!out) {
            FUZZ_CHECK(memchr(err.message, '\0', sizeof err.message) != NULL);
            FUZZ_CHECK(err.message[0] != '\0');
            /* Over the budget, the pointer may name an array or object: its brackets, commas
             * and keys count too. */
            check_pointer(tmpl, err.pointer, sizeof err.pointer, false);
            continue;
        }
        FUZZ_CHECK(unbounded != NULL);
        FUZZ_CHECK(json_equal(out, unbounded));
        char *text = json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT);
        FUZZ_CHECK(text != NULL);
        if (strlen(text) > budgets[i])
            fprintf(stderr, "budget %zu, result %zu bytes: %s\n", budgets[i], strlen(text), text);
        FUZZ_CHECK(strlen(text) <= budgets[i]);
        free(text);
        json_decref(out);
    }
}

/* What a compile or check reported, in order, as text. */
static void log_ref(void *arg, const char *pointer, const char *expr, const char *step_id)
{
    buf_printf(arg, "ref %s | %s | %s\n", pointer, expr, step_id);
}

static void log_loop_ref(void *arg, const char *pointer, const char *expr, const char *loop_id)
{
    buf_printf(arg, "loop %s | %s | %s\n", pointer, expr, loop_id ? loop_id : "(innermost)");
}

static void log_error(void *arg, const char *pointer, const char *message)
{
    buf_printf(arg, "error %s | %s\n", pointer, message);
}

static const char *log_text(const struct buf *b)
{
    return b->data ? b->data : "";
}

/* One compiled evaluation against the reference's, under a budget. */
static void check_same_eval(const struct expr_template *t, const json_t *tmpl, size_t budget)
{
    struct expr_error got_err, want_err;
    memset(&got_err, 0x55, sizeof got_err);
    memset(&want_err, 0x55, sizeof want_err);
    json_t *got = expr_template_eval(t, ctx, budget, &got_err);
    json_t *want = ref_eval_template_bounded(tmpl, ctx, budget, &want_err);
    if ((got == NULL) != (want == NULL))
        fprintf(stderr, "budget %zu: compiled %s, reference %s\n", budget,
                got ? "evaluates" : got_err.message, want ? "evaluates" : want_err.message);
    FUZZ_CHECK((got == NULL) == (want == NULL));
    if (got) {
        FUZZ_CHECK(json_equal(got, want));
        /* The result shares nothing with the template or the context. null, true and false
         * are jansson's immutable singletons, whose reference count is never counted. */
        FUZZ_CHECK(json_is_null(got) || json_is_boolean(got) || got->refcount == 1);
    } else {
        if (strcmp(got_err.pointer, want_err.pointer) != 0 ||
            strcmp(got_err.message, want_err.message) != 0)
            fprintf(stderr, "budget %zu: compiled %s: %s\nreference %s: %s\n", budget,
                    got_err.pointer, got_err.message, want_err.pointer, want_err.message);
        FUZZ_CHECK(strcmp(got_err.pointer, want_err.pointer) == 0);
        FUZZ_CHECK(strcmp(got_err.message, want_err.message) == 0);
    }
    /* A compiled template is immutable: a second evaluation gives the same outcome. */
    json_t *again = expr_template_eval(t, ctx, budget, NULL);
    FUZZ_CHECK((again == NULL) == (got == NULL));
    FUZZ_CHECK(!again || json_equal(again, got));
    json_decref(again);
    json_decref(got);
    json_decref(want);
}

/* Calls fn on every string of v. */
static void for_each_string(const json_t *v, void (*fn)(const json_t *))
{
    if (json_is_string(v)) {
        fn(v);
        return;
    }
    size_t i;
    json_t *e;
    const char *k;
    if (json_is_array(v)) {
        json_array_foreach(v, i, e) for_each_string(e, fn);
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, e) for_each_string(e, fn);
    }
}

static void check_against_reference(const json_t *tmpl);

/* A string of a template the reference refuses: compared on its own when the reference
 * accepts it. */
static void check_string_against_reference(const json_t *s)
{
    if (ref_check_template(s, NULL, NULL, NULL, NULL) == 0)
        check_against_reference(s);
}

/* expr_compile and expr_template_eval against the reference interpreter. */
static void check_against_reference(const json_t *tmpl)
{
    json_t *before = json_deep_copy(tmpl);
    struct buf got = BUF_INIT, want = BUF_INIT;
    int got_bad = -1;
    struct expr_reporter r = {log_ref, log_loop_ref, log_error, &got};
    struct expr_template *t = expr_compile_reporting(tmpl, &r, &got_bad);
    int want_bad = ref_check_template(tmpl, log_ref, log_loop_ref, log_error, &want);
    FUZZ_CHECK(t != NULL);
    if (want_bad > 0) {
        /* The reference refuses it: the new language may accept more, never less. */
        if (got_bad > want_bad)
            fprintf(stderr, "compiled reports (%d):\n%sreference reports (%d):\n%s", got_bad,
                    log_text(&got), want_bad, log_text(&want));
        FUZZ_CHECK(got_bad >= 0 && got_bad <= want_bad);
        buf_free(&got);
        buf_free(&want);
        expr_template_free(t);
        FUZZ_CHECK(json_equal(tmpl, before));
        json_decref(before);
        if (!json_is_string(tmpl))
            for_each_string(tmpl, check_string_against_reference);
        return;
    }
    if (got_bad != want_bad || strcmp(log_text(&got), log_text(&want)) != 0)
        fprintf(stderr, "compiled reports (%d):\n%sreference reports (%d):\n%s", got_bad,
                log_text(&got), want_bad, log_text(&want));
    FUZZ_CHECK(got_bad == want_bad);
    FUZZ_CHECK(strcmp(log_text(&got), log_text(&want)) == 0);
    buf_free(&got);
    buf_free(&want);

    static const size_t budgets[] = {SIZE_MAX, 0, 1, 2, 8, 64, 1024, 1 << 20};
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++)
        check_same_eval(t, tmpl, budgets[i]);
    /* Every budget up to the result's size, where the place the budget runs out moves. */
    struct expr_error err;
    json_t *whole = expr_template_eval(t, ctx, SIZE_MAX, &err);
    if (whole) {
        size_t size = json_encoded_size(whole, SIZE_MAX);
        for (size_t b = 3; b <= size && b < 4096; b += 1 + b / 64)
            check_same_eval(t, tmpl, b);
        json_decref(whole);
    }
    expr_template_free(t);
    FUZZ_CHECK(json_equal(tmpl, before));
    json_decref(before);
}

/* ---- the new language: properties of any expression ------------------------------------ */

/* What compiling a wrapped expression gave. */
enum wrapped {
    WRAPPED_EVALUATED, /* it compiled and was evaluated */
    WRAPPED_TOO_DEEP,  /* refused for nesting more than 64 levels: wrapping adds levels */
    WRAPPED_REFUSED,   /* refused for another reason */
};

/* Compiles "${<prefix>X<suffix>}", X being inner[0..len), and evaluates it when it compiles:
 * *out is then its value, or NULL when evaluating failed. */
static enum wrapped eval_wrapped(const char *prefix, const char *inner, size_t len,
                                 const char *suffix, json_t **out)
{
    struct buf text = BUF_INIT;
    buf_puts(&text, "${");
    buf_puts(&text, prefix);
    buf_append(&text, inner, len);
    buf_puts(&text, suffix);
    buf_putc(&text, '}');
    json_t *tmpl = json_stringn(text.data, text.len);
    buf_free(&text);
    FUZZ_CHECK(tmpl != NULL);
    struct buf errors = BUF_INIT;
    enum wrapped how = WRAPPED_EVALUATED;
    *out = NULL;
    if (expr_check_template(tmpl, NULL, log_error, &errors) != 0)
        how = strstr(log_text(&errors), "nests more than 64 levels deep") ? WRAPPED_TOO_DEEP
                                                                          : WRAPPED_REFUSED;
    else
        *out = expr_eval_template(tmpl, ctx, NULL);
    buf_free(&errors);
    json_decref(tmpl);
    return how;
}

/* For a string template that is one well-formed expression "${X}": (X) is X; (X) == (X) is
 * true when X evaluates and fails when it fails; !(X) negates a boolean and refuses anything
 * else (at registration when X is a constant). */
static void check_wrapped(const json_t *tmpl)
{
    if (!json_is_string(tmpl))
        return;
    const char *s = json_string_value(tmpl);
    size_t len = json_string_length(tmpl);
    if (len < 3 || s[0] != '$' || s[1] != '{' || s[len - 1] != '}' ||
        expr_check_template(tmpl, NULL, NULL, NULL) != 0)
        return;
    const char *inner = s + 2;
    size_t inner_len = len - 3;
    json_t *plain = expr_eval_template(tmpl, ctx, NULL);
    json_t *paren = NULL, *same = NULL, *negated = NULL;
    struct buf twice = BUF_INIT;
    /* "${a} ${b}" starts and ends the same way but is two expressions: "${(a} ${b)}" cannot
     * close its "(", so only one expression compiles in parentheses. Nesting too deeply is
     * found before any "}", so it says nothing either way, and then every wrapping below, all
     * at least as deep, is too deep as well. */
    enum wrapped how = eval_wrapped("(", inner, inner_len, ")", &paren);
    if (how == WRAPPED_REFUSED)
        goto Exit;
    if (how == WRAPPED_EVALUATED) {
        if ((paren == NULL) != (plain == NULL))
            fprintf(stderr, "(X) %s, X %s\n", paren ? "evaluates" : "fails",
                    plain ? "evaluates" : "fails");
        FUZZ_CHECK((paren == NULL) == (plain == NULL));
        FUZZ_CHECK(!paren || json_equal(paren, plain));
    }
    buf_append(&twice, inner, inner_len);
    buf_puts(&twice, ") == (");
    buf_append(&twice, inner, inner_len);
    how = eval_wrapped("(", twice.data, twice.len, ")", &same);
    FUZZ_CHECK(how != WRAPPED_REFUSED);
    if (how == WRAPPED_EVALUATED) {
        FUZZ_CHECK((same == NULL) == (plain == NULL));
        FUZZ_CHECK(!same || json_is_true(same));
    }
    how = eval_wrapped("!(", inner, inner_len, ")", &negated);
    if (plain && json_is_boolean(plain)) {
        FUZZ_CHECK(how != WRAPPED_REFUSED);
        if (how == WRAPPED_EVALUATED) {
            FUZZ_CHECK(negated != NULL && json_is_boolean(negated));
            FUZZ_CHECK(json_is_true(negated) == json_is_false(plain));
        }
    } else {
        FUZZ_CHECK(negated == NULL);
    }
Exit:
    buf_free(&twice);
    json_decref(plain);
    json_decref(paren);
    json_decref(same);
    json_decref(negated);
}

static void check_template(const json_t *tmpl)
{
    check_against_reference(tmpl);
    check_wrapped(tmpl);

    struct check_state cs = {tmpl, 0};
    int bad = expr_check_template(tmpl, on_step_ref, on_error, &cs);
    FUZZ_CHECK(bad >= 0);
    FUZZ_CHECK(bad == cs.errors); /* one report per string with a malformed expression */
    FUZZ_CHECK(expr_check_template(tmpl, NULL, NULL, NULL) == bad);

    struct expr_error err;
    memset(&err, 0x55, sizeof err); /* not NUL-terminated unless the evaluator does it */
    json_t *out = expr_eval_template(tmpl, ctx, &err);
    if (out) {
        FUZZ_CHECK(bad == 0);
        if (!has_dollar(tmpl))
            FUZZ_CHECK(json_equal(out, tmpl));
        char *text = json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT);
        FUZZ_CHECK(text != NULL);
        free(text);
    } else {
        check_string_pointer(tmpl, err.pointer, sizeof err.pointer);
        FUZZ_CHECK(memchr(err.message, '\0', sizeof err.message) != NULL);
        FUZZ_CHECK(err.message[0] != '\0');
    }
    /* err may be NULL, and the outcome does not depend on it. */
    json_t *again = expr_eval_template(tmpl, ctx, NULL);
    FUZZ_CHECK((again == NULL) == (out == NULL));
    json_decref(again);
    check_bounded(tmpl, out);
    json_decref(out);
    check_plain_strings(tmpl);
    FUZZ_CHECK(json_equal(ctx, ctx_copy));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx) {
        ctx = json_loads(CTX, JSON_ALLOW_NUL, NULL);
        FUZZ_CHECK(ctx != NULL);
        ctx_copy = json_deep_copy(ctx);
    }
    json_t *tmpl = json_loadb((const char *)data, size, FUZZ_JSON_BODY_FLAGS, NULL);
    if (!tmpl) /* a string as a definition holds it: valid UTF-8, NULs allowed */
        tmpl = json_stringn((const char *)data, size);
    if (!tmpl)
        return 0;
    check_template(tmpl);
    json_decref(tmpl);
    return 0;
}
