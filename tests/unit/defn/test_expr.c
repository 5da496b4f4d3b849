/* Expressions: checking and compiling at registration, evaluation at run time, escapes, size
 * budgets and error messages. */
#include "defn/expr.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return v;
}

static const char CTX[] =
    "{\"input\": {\"order_id\": \"A1\", \"total\": 19.99, \"qty\": 3, \"ok\": true, \"none\": null,"
    "  \"half\": 0.5, \"intreal\": 2.0, \"neg\": -7, \"big\": 1e300,"
    "  \"items\": [{\"sku\": \"x\"}, {\"sku\": \"y\"}],"
    "  \"nested\": {\"a\": {\"b\": [10, 20, [30]]}},"
    "  \"odd key\": 1, \"a.b\": 2, \"quote\\\"key\": 3, \"back\\\\slash\": 4, \"\": \"empty\","
    "  \"dollar\": \"$5\", \"expr\": \"${input.qty}\", \"text\": \"h\\u00e9\", \"nl\": \"a\\nb\","
    "  \"empty_obj\": {}, \"empty_arr\": [], \"under_score\": 5, \"da-sh\": 6, \"9lives\": 7},"
    " \"steps\": {\"charge\": {\"output\": {\"id\": \"ch_1\", \"amount\": 1999}},"
    "   \"approval\": {\"output\": null},"
    "   \"flaky\": {\"error\": {\"type\": \"timeout\", \"message\": \"took too long\"}},"
    "   \"pending\": {}},"
    " \"execution\": {\"id\": \"ex-1\", \"workflow\": \"orders\"}}";

/* ---- evaluation: values ------------------------------------------------------------------ */

/* A string template (raw text, not JSON) and the JSON of what it evaluates to. */
static const struct {
    const char *tmpl;
    const char *want;
} eval_ok[] = {
    /* Exactly "${path}": the value itself, any type. */
    {"${input.order_id}", "\"A1\""},
    {"${input.total}", "19.99"},
    {"${input.qty}", "3"},
    {"${input.ok}", "true"},
    {"${input.none}", "null"},
    {"${input.half}", "0.5"},
    {"${input.items}", "[{\"sku\": \"x\"}, {\"sku\": \"y\"}]"},
    {"${input.items[0]}", "{\"sku\": \"x\"}"},
    {"${input.items[1].sku}", "\"y\""},
    {"${input.nested.a.b[2][0]}", "30"},
    {"${input.nested.a.b[2]}", "[30]"},
    {"${input.empty_obj}", "{}"},
    {"${input.empty_arr}", "[]"},
    {"${input.under_score}", "5"},
    {"${input.da-sh}", "6"},
    {"${input.9lives}", "7"},
    {"${input[\"odd key\"]}", "1"},
    {"${input[\"a.b\"]}", "2"},
    {"${input[\"quote\\\"key\"]}", "3"},
    {"${input[\"back\\\\slash\"]}", "4"},
    {"${input[\"\"]}", "\"empty\""},
    {"${input[\"items\"][0][\"sku\"]}", "\"x\""},
    {"${input.text}", "\"h\\u00e9\""},
    {"${input.dollar}", "\"$5\""},
    /* A value that looks like an expression is data, never evaluated again. */
    {"${input.expr}", "\"${input.qty}\""},
    {"${ input.qty }", "3"},
    {"${\tinput.qty\t}", "3"},
    {"${steps.charge.output}", "{\"id\": \"ch_1\", \"amount\": 1999}"},
    {"${steps.charge.output.id}", "\"ch_1\""},
    {"${steps[\"charge\"].output.amount}", "1999"},
    {"${steps.approval.output}", "null"},
    {"${steps.flaky.error}", "{\"type\": \"timeout\", \"message\": \"took too long\"}"},
    {"${steps.flaky.error.type}", "\"timeout\""},
    {"${execution.id}", "\"ex-1\""},
    {"${execution.workflow}", "\"orders\""},
    {"${input}", NULL}, /* NULL: the whole of ctx.input, compared separately */

    /* Inside a longer string: text. */
    {"order ${input.order_id}!", "\"order A1!\""},
    {"total=${input.total}", "\"total=19.99\""},
    {"qty=${input.qty}", "\"qty=3\""},
    {"neg=${input.neg}", "\"neg=-7\""},
    {"half=${input.half}", "\"half=0.5\""},
    {"intreal=${input.intreal}", "\"intreal=2.0\""},
    {"big=${input.big}", "\"big=1e+300\""},
    {"ok=${input.ok} none=${input.none}", "\"ok=true none=null\""},
    {"obj=${input.items[0]}", "\"obj={\\\"sku\\\":\\\"x\\\"}\""},
    {"arr=${input.nested.a.b}", "\"arr=[10,20,[30]]\""},
    {"e=${input.empty_obj}${input.empty_arr}", "\"e={}[]\""},
    {"${input.order_id}${input.qty}", "\"A13\""},
    {"${input.order_id}-${execution.id}", "\"A1-ex-1\""},
    {"${input.qty} ", "\"3 \""},
    {" ${input.qty}", "\" 3\""},
    {"${input.text}x", "\"h\\u00e9x\""},
    {"nl=${input.nl}", "\"nl=a\\nb\""},
    {"http://svc/${input.order_id}/charge", "\"http://svc/A1/charge\""},
    {"${input.qty}}", "\"3}\""},
    {"{${input.qty}}", "\"{3}\""},

    /* Escapes: "$$" is one "$"; any other "$" is itself. */
    {"$${input.qty}", "\"${input.qty}\""},
    {"$$", "\"$\""},
    {"$$$$", "\"$$\""},
    {"$$${input.qty}", "\"$3\""},
    {"$$$${input.qty}", "\"$${input.qty}\""},
    {"${input.qty}$$", "\"3$\""},
    {"cost $5", "\"cost $5\""},
    {"$", "\"$\""},
    {"a$", "\"a$\""},
    {"$x", "\"$x\""},
    {"$$x", "\"$x\""},
    {"$ {input.qty}", "\"$ {input.qty}\""},
    {"{$input.qty}", "\"{$input.qty}\""},
    {"", "\"\""},
    {"plain text", "\"plain text\""},
};

static void test_eval_strings(void **state)
{
    (void)state;
    json_t *ctx = J(CTX);
    for (size_t i = 0; i < sizeof eval_ok / sizeof eval_ok[0]; i++) {
        json_t *tmpl = json_string(eval_ok[i].tmpl);
        struct expr_error err = {{0}, {0}};
        json_t *got = expr_eval_template(tmpl, ctx, &err);
        if (!got)
            fail_msg("%s: failed: %s (at \"%s\")", eval_ok[i].tmpl, err.message, err.pointer);
        json_t *want =
            eval_ok[i].want ? J(eval_ok[i].want) : json_incref(json_object_get(ctx, "input"));
        if (!json_equal(got, want)) {
            char *g = json_dumps(got, JSON_ENCODE_ANY);
            fail_msg("%s: got %s, want %s", eval_ok[i].tmpl, g, eval_ok[i].want);
        }
        /* Type, not only value: 3 must not come back as 3.0 or "3". */
        assert_int_equal(json_typeof(got), json_typeof(want));
        json_decref(want);
        json_decref(got);
        json_decref(tmpl);
    }
    json_decref(ctx);
}

/* ---- evaluation: errors ------------------------------------------------------------------ */

static const struct {
    const char *tmpl;
    const char *message; /* the whole message, or a substring when partial is set */
    int partial;
} eval_bad[] = {
    {"${input.missing}", "${input.missing}: \"input\" has no field \"missing\"", 0},
    {"${steps.charge.output.nope}",
     "${steps.charge.output.nope}: \"steps.charge.output\" has no field \"nope\"", 0},
    {"${input.items[3]}", "${input.items[3]}: \"input.items\": index 3 out of range (array of 2)",
     0},
    {"${input.items[2].sku}",
     "${input.items[2].sku}: \"input.items\": index 2 out of range (array of 2)", 0},
    {"${input.empty_arr[0]}",
     "${input.empty_arr[0]}: \"input.empty_arr\": index 0 out of range (array of 0)", 0},
    {"${input.order_id.x}",
     "${input.order_id.x}: \"input.order_id\" is a string, not an object, so it has no field "
     "\"x\"",
     0},
    {"${input.items.x}", "\"input.items\" is an array, not an object, so it has no field \"x\"", 1},
    {"${input[0]}", "${input[0]}: \"input\" is an object, not an array, so it has no index 0", 0},
    {"${input.none.x}", "\"input.none\" is null, not an object, so it has no field \"x\"", 1},
    {"${input.qty[0]}", "\"input.qty\" is a number, not an array, so it has no index 0", 1},
    {"${input.half.x}", "\"input.half\" is a number, not an object", 1},
    {"${input.ok.x}", "\"input.ok\" is a boolean, not an object", 1},
    {"${input.items[0].sku.x}", "\"input.items[0].sku\" is a string", 1},
    {"${input.nested.a.b[2][1]}",
     "${input.nested.a.b[2][1]}: \"input.nested.a.b[2]\": index 1 out of range (array of 1)", 0},
    {"${input[\"odd key\"].x}",
     "${input[\"odd key\"].x}: \"input[\"odd key\"]\" is a number, not an object, so it has no "
     "field \"x\"",
     0},
    {"${input[\"no such\"]}", "${input[\"no such\"]}: \"input\" has no field \"no such\"", 0},
    {"${input[\"q\\\"x\"]}", "\"input\" has no field \"q\\\"x\"", 1},
    {"${ input.missing }", "${input.missing}: \"input\" has no field \"missing\"", 0},
    {"${steps.ship.output}", "${steps.ship.output}: steps.ship has no output yet", 0},
    {"${steps.ship.output.id}", "${steps.ship.output.id}: steps.ship has no output yet", 0},
    {"${steps.pending.output}", "${steps.pending.output}: steps.pending has no output yet", 0},
    {"${steps.flaky.output}", "steps.flaky has no output yet", 1},
    {"${steps.charge.error}",
     "${steps.charge.error}: steps.charge has no error (it has not failed)", 0},
    {"${steps.flaky.error.code}",
     "${steps.flaky.error.code}: \"steps.flaky.error\" has no field \"code\"", 0},
    /* Text interpolation fails the same way: a missing value never becomes "" or "null". */
    {"id: ${input.missing}!", "${input.missing}: \"input\" has no field \"missing\"", 0},
    {"${input.qty}-${steps.ship.output}", "${steps.ship.output}: steps.ship has no output yet", 0},
    /* Malformed expressions fail at run time too, with the same messages as at check time. */
    {"${input", "${input: missing \"}\" to close the expression", 0},
    {"${}", "${}: empty expression", 0},
    {"x ${inptu.a} y", "${inptu.a}: unknown root \"inptu\"", 1},
    {"${steps.charge}", "only .output or .error may follow \"steps.charge\"", 1},
    /* The whole string is checked before anything is evaluated: the syntax error wins. */
    {"${input.missing} ${}", "${}: empty expression", 0},
};

static void test_eval_errors(void **state)
{
    (void)state;
    json_t *ctx = J(CTX);
    for (size_t i = 0; i < sizeof eval_bad / sizeof eval_bad[0]; i++) {
        json_t *tmpl = json_string(eval_bad[i].tmpl);
        struct expr_error err;
        memset(&err, 'x', sizeof err);
        json_t *got = expr_eval_template(tmpl, ctx, &err);
        if (got)
            fail_msg("%s: evaluated, want an error", eval_bad[i].tmpl);
        bool ok = eval_bad[i].partial ? strstr(err.message, eval_bad[i].message) != NULL
                                      : strcmp(err.message, eval_bad[i].message) == 0;
        if (!ok)
            fail_msg("%s:\n got  %s\n want %s", eval_bad[i].tmpl, err.message, eval_bad[i].message);
        assert_string_equal(err.pointer, "");
        json_decref(tmpl);
    }
    json_decref(ctx);
}

/* A context without a member is not a crash: the engine may build ctx before input exists. */
static void test_eval_sparse_context(void **state)
{
    (void)state;
    static const struct {
        const char *ctx;
        const char *tmpl;
        const char *message;
    } cases[] = {
        {"{}", "${input}", "${input}: \"input\" is not available"},
        {"{}", "${input.a}", "${input.a}: \"input\" is not available"},
        {"{}", "${execution.id}", "${execution.id}: \"execution.id\" is not available"},
        {"{\"execution\": {}}", "${execution.workflow}",
         "${execution.workflow}: \"execution.workflow\" is not available"},
        {"{}", "${steps.a.output}", "${steps.a.output}: steps.a has no output yet"},
        {"{\"steps\": []}", "${steps.a.output}", "${steps.a.output}: steps.a has no output yet"},
        {"{\"steps\": {\"a\": 5}}", "${steps.a.output}",
         "${steps.a.output}: steps.a has no output yet"},
        {"[]", "${input}", "${input}: \"input\" is not available"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *ctx = J(cases[i].ctx);
        json_t *tmpl = json_string(cases[i].tmpl);
        struct expr_error err;
        assert_null(expr_eval_template(tmpl, ctx, &err));
        assert_string_equal(err.message, cases[i].message);
        json_decref(tmpl);
        json_decref(ctx);
    }
    /* No context at all. */
    json_t *tmpl = json_string("${input}");
    struct expr_error err;
    assert_null(expr_eval_template(tmpl, NULL, &err));
    assert_string_equal(err.message, "${input}: \"input\" is not available");
    json_decref(tmpl);
    /* An input that is itself null is there. */
    json_t *ctx = J("{\"input\": null}");
    json_t *v = expr_eval_template(tmpl = json_string("${input}"), ctx, &err);
    assert_non_null(v);
    assert_true(json_is_null(v));
    json_decref(v);
    json_decref(tmpl);
    json_decref(ctx);
}

/* ---- evaluation: whole templates ---------------------------------------------------------- */

static void test_eval_structures(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl;
        const char *want;
    } cases[] = {
        {"{\"order\": \"${input.order_id}\", \"amount\": \"${input.total}\", \"fixed\": 1,"
         " \"nested\": [\"${input.qty}\", {\"k\": \"${execution.id}\"}], \"n\": null, \"t\": true,"
         " \"f\": false, \"r\": 1.5, \"s\": \"plain\"}",
         "{\"order\": \"A1\", \"amount\": 19.99, \"fixed\": 1, \"nested\": [3, {\"k\": \"ex-1\"}],"
         " \"n\": null, \"t\": true, \"f\": false, \"r\": 1.5, \"s\": \"plain\"}"},
        /* Keys are never expressions. */
        {"{\"${input.qty}\": \"${input.qty}\", \"$$\": \"$$\"}",
         "{\"${input.qty}\": 3, \"$$\": \"$\"}"},
        {"[]", "[]"},
        {"{}", "{}"},
        {"[[[\"${input.qty}\"]]]", "[[[3]]]"},
        {"5", "5"},
        {"-2.5", "-2.5"},
        {"null", "null"},
        {"true", "true"},
        {"{\"charge\": \"${steps.charge.output}\", \"by\": \"${steps.approval.output}\"}",
         "{\"charge\": {\"id\": \"ch_1\", \"amount\": 1999}, \"by\": null}"},
    };
    json_t *ctx = J(CTX);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *tmpl = J(cases[i].tmpl);
        json_t *want = J(cases[i].want);
        struct expr_error err;
        json_t *got = expr_eval_template(tmpl, ctx, &err);
        if (!got)
            fail_msg("%s: %s", cases[i].tmpl, err.message);
        if (!json_equal(got, want))
            fail_msg("%s: got %s", cases[i].tmpl, json_dumps(got, JSON_ENCODE_ANY));
        json_decref(got);
        json_decref(want);
        json_decref(tmpl);
    }
    json_decref(ctx);
}

/* The pointer names the string that failed, RFC 6901-escaped. */
static void test_eval_error_pointer(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl;
        const char *pointer;
    } cases[] = {
        {"\"${input.missing}\"", ""},
        {"{\"a\": \"${input.missing}\"}", "/a"},
        {"{\"a\": {\"b\": [\"ok ${input.qty}\", \"${input.missing}\"]}}", "/a/b/1"},
        {"{\"ok\": \"${input.qty}\", \"x/y~z\": \"${input.missing}\"}", "/x~1y~0z"},
        {"[0, 1, [2, \"${steps.ship.output}\"]]", "/2/1"},
        {"{\"\": \"${input.missing}\"}", "/"},
    };
    json_t *ctx = J(CTX);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *tmpl = J(cases[i].tmpl);
        struct expr_error err;
        assert_null(expr_eval_template(tmpl, ctx, &err));
        if (strcmp(err.pointer, cases[i].pointer) != 0)
            fail_msg("%s: pointer \"%s\", want \"%s\"", cases[i].tmpl, err.pointer,
                     cases[i].pointer);
        json_decref(tmpl);
    }
    json_decref(ctx);
}

/* The result is the caller's own: changing it changes neither the template nor the context. */
static void test_eval_result_is_independent(void **state)
{
    (void)state;
    json_t *ctx = J(CTX);
    json_t *tmpl = J("{\"items\": \"${input.items}\", \"k\": [1]}");
    struct expr_error err;
    json_t *got = expr_eval_template(tmpl, ctx, &err);
    assert_non_null(got);
    json_array_append_new(json_object_get(got, "items"), json_integer(9));
    json_object_set_new(json_array_get(json_object_get(got, "items"), 0), "sku", json_null());
    json_array_append_new(json_object_get(got, "k"), json_integer(2));
    assert_int_equal(json_array_size(json_object_get(json_object_get(ctx, "input"), "items")), 2);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_object_get(ctx, "input"), "items"), 0), "sku")),
        "x");
    assert_int_equal(json_array_size(json_object_get(tmpl, "k")), 1);
    /* And it outlives them. */
    json_decref(ctx);
    json_decref(tmpl);
    assert_int_equal(json_array_size(json_object_get(got, "items")), 3);
    json_decref(got);
}

static void test_eval_null_arguments(void **state)
{
    (void)state;
    struct expr_error err;
    assert_null(expr_eval_template(NULL, NULL, &err));
    assert_true(strlen(err.message) > 0);
    json_t *tmpl = json_string("${input.missing}");
    json_t *ctx = J(CTX);
    /* err is optional. */
    assert_null(expr_eval_template(tmpl, ctx, NULL));
    json_decref(tmpl);
    json_decref(ctx);
}

/* Messages are truncated to fit, on a UTF-8 boundary so they stay valid JSON text. */
static void test_eval_long_message(void **state)
{
    (void)state;
    char key[1200];
    size_t n = 0;
    while (n + 2 < sizeof key - 1) {
        key[n++] = (char)0xc3; /* é */
        key[n++] = (char)0xa9;
    }
    key[n] = '\0';
    char *text = NULL;
    size_t len = strlen(key) + 32;
    text = malloc(len);
    snprintf(text, len, "${input[\"%s\"]}", key);
    json_t *tmpl = json_string(text);
    assert_non_null(tmpl);
    json_t *ctx = J(CTX);
    struct expr_error err;
    assert_null(expr_eval_template(tmpl, ctx, &err));
    assert_true(strlen(err.message) < sizeof err.message);
    json_t *as_json = json_string(err.message);
    assert_non_null(as_json); /* valid UTF-8 */
    json_decref(as_json);
    json_decref(ctx);
    json_decref(tmpl);
    free(text);
}

/* ---- checking ----------------------------------------------------------------------------- */

struct seen {
    char log[4096]; /* "E pointer|message\n", "R pointer|expr|step\n" and
                     * "L pointer|expr|loop\n" lines */
};

static void on_error(void *arg, const char *pointer, const char *message)
{
    struct seen *s = arg;
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof s->log - n, "E %s|%s\n", pointer, message);
}

static void on_ref(void *arg, const char *pointer, const char *expr, const char *step_id)
{
    struct seen *s = arg;
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof s->log - n, "R %s|%s|%s\n", pointer, expr, step_id);
}

/* A template in JSON and exactly what the callbacks see. */
static const struct {
    const char *tmpl;
    int errors;
    const char *log;
} check_cases[] = {
    {"\"${input.a}\"", 0, ""},
    {"\"plain\"", 0, ""},
    {"42", 0, ""},
    {"null", 0, ""},
    {"{}", 0, ""},
    {"\"${execution.id} ${execution.workflow}\"", 0, ""},
    {"\"${steps.charge.output.id}\"", 0, "R |steps.charge.output.id|charge\n"},
    {"\"${ steps.charge.output[\\\"a b\\\"][0].x }\"", 0,
     "R |steps.charge.output[\"a b\"][0].x|charge\n"},
    {"\"${steps[\\\"charge\\\"].error.type}\"", 0, "R |steps.charge.error.type|charge\n"},
    {"{\"a\": \"x ${steps.a.output} ${steps.b.error.type}\", \"b\": [\"${steps.c.output[0]}\"]}", 0,
     "R /a|steps.a.output|a\n"
     "R /a|steps.b.error.type|b\n"
     "R /b/0|steps.c.output[0]|c\n"},
    {"{\"x/y\": {\"~\": \"${steps.s-1_x.output}\"}}", 0, "R /x~1y/~0|steps.s-1_x.output|s-1_x\n"},
    /* Escaped, so not references. */
    {"\"$${steps.a.output}\"", 0, ""},
    {"\"$${input\"", 0, ""},
    {"\"${input.a}}\"", 0, ""},
    {"\"{$input}\"", 0, ""},
    /* Keys are not expressions. */
    {"{\"${steps.a.output}\": 1, \"${bad\": 2}", 0, ""},
    /* One error per string; the rest of that string is skipped, other strings are not. */
    {"[\"${}\", \"ok\", {\"k\": \"${x} ${steps.a.output}\"}, \"${steps.b.output}\"]", 2,
     "E /0|${}: empty expression\n"
     "E /2/k|${x}: unknown root \"x\"; a path starts with input, steps.<id>, execution, item, "
     "index or loops.<id>\n"
     "R /3|steps.b.output|b\n"},
    {"\"${steps.a.output} ${}\"", 1,
     "R |steps.a.output|a\n"
     "E |${}: empty expression\n"},
};

static void test_check_templates(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof check_cases / sizeof check_cases[0]; i++) {
        json_t *tmpl = J(check_cases[i].tmpl);
        struct seen s = {{0}};
        int n = expr_check_template(tmpl, on_ref, on_error, &s);
        if (n != check_cases[i].errors || strcmp(s.log, check_cases[i].log) != 0)
            fail_msg("%s: %d errors, log:\n%s\nwant %d errors, log:\n%s", check_cases[i].tmpl, n,
                     s.log, check_cases[i].errors, check_cases[i].log);
        json_decref(tmpl);
    }
}

/* Malformed expressions, as raw strings, and the whole message each gets. */
static const struct {
    const char *text;
    const char *message;
} malformed[] = {
    {"${}", "${}: empty expression"},
    {"${ }", "${ }: empty expression"},
    {"${", "${: missing \"}\" to close the expression"},
    {"${input", "${input: missing \"}\" to close the expression"},
    {"${input.a", "${input.a: missing \"}\" to close the expression"},
    {"${input.a ", "${input.a : missing \"}\" to close the expression"},
    {"abc ${input.a", "${input.a: missing \"}\" to close the expression"},
    {"${input.a}${", "${: missing \"}\" to close the expression"},
    {"$$${input", "${input: missing \"}\" to close the expression"},
    {"${.a}",
     "${.a}: expected a name (input, steps, execution, item, index or loops) after \"${\""},
    {"${[0]}",
     "${[0]}: expected a name (input, steps, execution, item, index or loops) after \"${\""},
    {"${\"input\"}",
     "${\"input\"}: expected a name (input, steps, execution, item, index or loops) after \"${\""},
    {"${input.}",
     "${input.}: expected a field name ([A-Za-z0-9_-]) after \".\"; use [\"...\"] for other keys"},
    {"${input..a}", "${input..a}: expected a field name ([A-Za-z0-9_-]) after \".\"; use "
                    "[\"...\"] for other keys"},
    {"${input.a b}",
     "${input.a b}: unexpected space after \"input.a\"; expected \".\", \"[\" or \"}\""},
    {"${input.a+1}",
     "${input.a+1}: unexpected \"+\" after \"input.a\"; expected \".\", \"[\" or \"}\""},
    {"${input.a\xc3\xa9}",
     "${input.a\xc3\xa9}: unexpected character after \"input.a\"; expected \".\", \"[\" or \"}\""},
    {"${input.a.b.c d}", "${input.a.b.c d}: unexpected space after \"input.a.b.c\"; expected "
                         "\".\", \"[\" or \"}\""},
    {"${input[}", "${input[}: expected an index or a quoted key after \"[\""},
    {"${input[a]}", "${input[a]}: expected an index or a quoted key after \"[\""},
    {"${input[ 0]}", "${input[ 0]}: expected an index or a quoted key after \"[\""},
    {"${input[-1]}", "${input[-1]}: an index must be a non-negative integer"},
    {"${input[1}", "${input[1}: expected \"]\""},
    {"${input[1.5]}", "${input[1.5]}: expected \"]\""},
    {"${input[0 ]}", "${input[0 ]}: expected \"]\""},
    {"${input[99999999999999999999]}", "${input[99999999999999999999]}: index is too large"},
    {"${input[\"a]}", "${input[\"a]}: missing closing quote in a quoted key"},
    {"${input[\"a\"}", "${input[\"a\"}: expected \"]\""},
    {"${input[\"a\\n\"]}", "${input[\"a\\n\"]}: only \\\" and \\\\ may be escaped in a quoted key"},
    {"${input[\"a\\", "${input[\"a\\: only \\\" and \\\\ may be escaped in a quoted key"},
    {"${inptu.a}", "${inptu.a}: unknown root \"inptu\"; a path starts with input, steps.<id>, "
                   "execution, item, index or loops.<id>"},
    {"${Input}", "${Input}: unknown root \"Input\"; a path starts with input, steps.<id>, "
                 "execution, item, index or loops.<id>"},
    {"${output}", "${output}: unknown root \"output\"; a path starts with input, steps.<id>, "
                  "execution, item, index or loops.<id>"},
    {"${steps}", "${steps}: \"steps\" must be followed by a step id and .output or .error, e.g. "
                 "steps.charge.output"},
    {"${steps[0].output}", "${steps[0].output}: \"steps\" must be followed by a step id "
                           "([A-Za-z0-9_-]{1,64}), e.g. steps.charge.output"},
    {"${steps[\"a b\"].output}", "${steps[\"a b\"].output}: \"steps\" must be followed by a step "
                                 "id ([A-Za-z0-9_-]{1,64}), e.g. steps.charge.output"},
    {"${steps.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.output}",
     "${steps.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.output}: \"steps\" "
     "must be followed by a step id ([A-Za-z0-9_-]{1,64}), e.g. steps.charge.output"},
    {"${steps.charge}", "${steps.charge}: only .output or .error may follow \"steps.charge\""},
    {"${steps.charge.result}",
     "${steps.charge.result}: only .output or .error may follow \"steps.charge\""},
    {"${steps.charge.outputs}",
     "${steps.charge.outputs}: only .output or .error may follow \"steps.charge\""},
    {"${steps.charge[0]}",
     "${steps.charge[0]}: only .output or .error may follow \"steps.charge\""},
    {"${execution}", "${execution}: \"execution\" must be followed by .id or .workflow"},
    {"${execution.name}", "${execution.name}: \"execution\" must be followed by .id or .workflow"},
    {"${execution[0]}", "${execution[0]}: \"execution\" must be followed by .id or .workflow"},
    {"${execution.id.x}", "${execution.id.x}: nothing may follow \"execution.id\""},
    {"${execution.workflow[0]}",
     "${execution.workflow[0]}: nothing may follow \"execution.workflow\""},
};

static void test_check_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        json_t *tmpl = json_string(malformed[i].text);
        assert_non_null(tmpl);
        struct seen s = {{0}};
        int n = expr_check_template(tmpl, on_ref, on_error, &s);
        char want[1024];
        snprintf(want, sizeof want, "E |%s\n", malformed[i].message);
        if (n != 1 || strcmp(s.log, want) != 0)
            fail_msg("%s: %d errors, log:\n%s\nwant:\n%s", malformed[i].text, n, s.log, want);
        json_decref(tmpl);
    }
}

/* Long malformed expressions are quoted in part, never cut inside a UTF-8 character. */
static void test_check_long_expression(void **state)
{
    (void)state;
    char text[256] = "${input.a ";
    size_t n = strlen(text);
    while (n + 2 < 200) {
        text[n++] = (char)0xc3;
        text[n++] = (char)0xa9;
    }
    text[n] = '\0';
    json_t *tmpl = json_string(text);
    assert_non_null(tmpl);
    struct seen s = {{0}};
    assert_int_equal(expr_check_template(tmpl, NULL, on_error, &s), 1);
    assert_non_null(strstr(s.log, "...: unexpected space after \"input.a\""));
    assert_true(strlen(s.log) < 160);
    json_t *as_json = json_string(s.log);
    assert_non_null(as_json);
    json_decref(as_json);
    json_decref(tmpl);
}

static void test_check_null_callbacks(void **state)
{
    (void)state;
    json_t *tmpl = J("[\"${}\", \"${steps.a.output}\", \"${input\"]");
    assert_int_equal(expr_check_template(tmpl, NULL, NULL, NULL), 2);
    json_decref(tmpl);
    assert_int_equal(expr_check_template(NULL, NULL, NULL, NULL), 0);
}

static void test_has_expression(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool want;
    } cases[] = {
        {"${x}", true},    {"a${", true},    {"http://h/${input.p}", true},
        {"$$${x}", true},  {"$${x}", false}, {"$$$${x}", false},
        {"$", false},      {"", false},      {"{$}", false},
        {"$ {x}", false},  {"$$", false},    {"plain", false},
        {"a$b{c}", false}, {"${", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (expr_has_expression(cases[i].s, strlen(cases[i].s)) != cases[i].want)
            fail_msg("%s: want %d", cases[i].s, cases[i].want);
    assert_false(expr_has_expression(NULL, 0));
    /* The length is honoured: the expression past it does not count. */
    assert_false(expr_has_expression("ab${x}", 2));
    assert_false(expr_has_expression("ab${x}", 3));
    assert_true(expr_has_expression("ab${x}", 4));
}

/* Whatever check accepts, eval can parse: a well-formed path either yields a value or a
 * "missing value" error, never a syntax error. */
static void test_check_and_eval_agree(void **state)
{
    (void)state;
    json_t *ctx = J(CTX);
    for (size_t i = 0; i < sizeof eval_ok / sizeof eval_ok[0]; i++) {
        json_t *tmpl = json_string(eval_ok[i].tmpl);
        if (expr_check_template(tmpl, NULL, NULL, NULL) != 0)
            fail_msg("%s: evaluates but does not check", eval_ok[i].tmpl);
        json_decref(tmpl);
    }
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        json_t *tmpl = json_string(malformed[i].text);
        struct expr_error err;
        assert_null(expr_eval_template(tmpl, ctx, &err));
        assert_string_equal(err.message, malformed[i].message);
        json_decref(tmpl);
    }
    json_decref(ctx);
}

/* ---- compiled templates ------------------------------------------------------------------- */

/* A template compiled once and evaluated under a size budget: the result, or where the budget
 * ran out. Literal parts (no expression in them) are counted in one go when they fit and item
 * by item when they do not, so that the pointer is the one the item-by-item count gives. */
static const struct {
    const char *tmpl;
    size_t budget;
    const char *want;    /* JSON of the result, or NULL when the budget runs out */
    const char *pointer; /* where, when it runs out */
} budget_cases[] = {
    /* {"a":[1,2,{"b":"xxxxxxxx"}]} is 28 bytes. */
    {"{\"a\": [1, 2, {\"b\": \"xxxxxxxx\"}]}", 28, "{\"a\": [1, 2, {\"b\": \"xxxxxxxx\"}]}", NULL},
    {"{\"a\": [1, 2, {\"b\": \"xxxxxxxx\"}]}", 27, NULL, "/a/2/b"},
    {"{\"a\": [1, 2, {\"b\": \"xxxxxxxx\"}]}", 13, NULL, "/a/2"},
    {"{\"a\": [1, 2, {\"b\": \"xxxxxxxx\"}]}", 11, NULL, "/a/1"},
    {"{\"a\": [1, 2, {\"b\": \"xxxxxxxx\"}]}", 5, NULL, "/a"},
    {"{\"a\": [1, 2, {\"b\": \"xxxxxxxx\"}]}", 1, NULL, ""},
    /* {"k":"A1","lit":{"x":[true]}} is 29 bytes; the literal member starts at 17. */
    {"{\"k\": \"${input.order_id}\", \"lit\": {\"x\": [true]}}", 29,
     "{\"k\": \"A1\", \"lit\": {\"x\": [true]}}", NULL},
    {"{\"k\": \"${input.order_id}\", \"lit\": {\"x\": [true]}}", 28, NULL, "/lit/x/0"},
    {"{\"k\": \"${input.order_id}\", \"lit\": {\"x\": [true]}}", 20, NULL, "/lit/x"},
    {"{\"k\": \"${input.order_id}\", \"lit\": {\"x\": [true]}}", 10, NULL, "/k"},
    /* "$$" is read as "$" when compiled: ["a$b"] is 7 bytes. */
    {"[\"a$$b\", 1]", 9, "[\"a$b\", 1]", NULL},
    {"[\"a$$b\", 1]", 8, NULL, "/1"},
    {"[\"a$$b\", 1]", 6, NULL, "/0"},
    {"\"n=${input.qty}\"", 5, "\"n=3\"", NULL},
    {"\"n=${input.qty}\"", 4, NULL, ""},
    {"{\"a~/b\": \"${input.items}\"}", 20, NULL, "/a~0~1b"},
};

static void test_compiled_budget(void **state)
{
    (void)state;
    json_t *ctx = J(CTX);
    for (size_t i = 0; i < sizeof budget_cases / sizeof budget_cases[0]; i++) {
        json_t *tmpl = J(budget_cases[i].tmpl);
        int bad = -1;
        struct expr_template *t = expr_compile(tmpl, NULL, NULL, NULL, &bad);
        assert_non_null(t);
        assert_int_equal(bad, 0);
        /* Evaluating twice gives the same outcome: the compiled form does not change. */
        for (int round = 0; round < 2; round++) {
            struct expr_error err = {{0}, {0}};
            json_t *got = expr_template_eval(t, ctx, budget_cases[i].budget, &err);
            if (budget_cases[i].want) {
                if (!got)
                    fail_msg("case %zu (%s, %zu): %s at %s", i, budget_cases[i].tmpl,
                             budget_cases[i].budget, err.message, err.pointer);
                json_t *want = J(budget_cases[i].want);
                assert_true(json_equal(got, want));
                json_decref(want);
            } else {
                if (got)
                    fail_msg("case %zu (%s, %zu): evaluated", i, budget_cases[i].tmpl,
                             budget_cases[i].budget);
                if (strcmp(err.pointer, budget_cases[i].pointer) != 0)
                    fail_msg("case %zu (%s, %zu): pointer %s, want %s", i, budget_cases[i].tmpl,
                             budget_cases[i].budget, err.pointer, budget_cases[i].pointer);
                assert_non_null(strstr(err.message, "larger than the limit"));
            }
            json_decref(got);
        }
        expr_template_free(t);
        json_decref(tmpl);
    }
    json_decref(ctx);
}

/* expr_compile reports what expr_check_template reports; a string with a malformed expression
 * still compiles, into one that fails when evaluated, after earlier strings were evaluated. */
static void test_compile_reports(void **state)
{
    (void)state;
    json_t *ctx = J(CTX);
    json_t *tmpl = J("{\"a\": \"${steps.x.output} ${input.nope}\", \"b\": \"${steps.y.error} "
                     "${inptu}\", \"c\": [\"${steps.z.output.q}\", \"${\"]}");
    struct seen compiled = {{0}}, checked = {{0}};
    int bad = -1;
    struct expr_template *t = expr_compile(tmpl, on_ref, on_error, &compiled, &bad);
    assert_int_equal(expr_check_template(tmpl, on_ref, on_error, &checked), 2);
    assert_int_equal(bad, 2);
    assert_string_equal(compiled.log, checked.log);
    assert_non_null(strstr(compiled.log, "R /c/0|steps.z.output.q|z\n"));

    /* "a" fails first, for a missing value; on its own, "b" fails for its malformed part. */
    struct expr_error err;
    assert_null(expr_template_eval(t, ctx, SIZE_MAX, &err));
    assert_string_equal(err.pointer, "/a");
    assert_non_null(strstr(err.message, "${steps.x.output}"));
    json_object_del(tmpl, "a");
    expr_template_free(t);
    t = expr_compile(tmpl, NULL, NULL, NULL, NULL);
    assert_null(expr_template_eval(t, ctx, SIZE_MAX, &err));
    assert_string_equal(err.pointer, "/b");
    assert_string_equal(err.message, "${inptu}: unknown root \"inptu\"; a path starts with input, "
                                     "steps.<id>, execution, item, index or loops.<id>");

    /* The compiled form keeps what it needs of the template. */
    json_decref(tmpl);
    expr_template_free(t);
    tmpl = J("{\"lit\": [1, {\"x\": \"$$\"}], \"v\": \"${input.qty}\"}");
    t = expr_compile(tmpl, NULL, NULL, NULL, NULL);
    json_decref(tmpl);
    json_t *got = expr_template_eval(t, ctx, SIZE_MAX, &err);
    json_t *want = J("{\"lit\": [1, {\"x\": \"$\"}], \"v\": 3}");
    assert_true(json_equal(got, want));
    json_decref(want);
    json_decref(got);
    expr_template_free(t);

    /* NULL arguments. */
    bad = -1;
    assert_null(expr_compile(NULL, on_ref, on_error, &checked, &bad));
    assert_int_equal(bad, 0);
    assert_null(expr_template_eval(NULL, ctx, SIZE_MAX, &err));
    assert_string_equal(err.message, "no template");
    assert_string_equal(err.pointer, "");
    expr_template_free(NULL);
    json_decref(ctx);
}

/* ---- loops: item, index and loops.<id> ----------------------------------------------------- */

/* The context the engine builds inside an iteration: the innermost loop's element and index, and
 * every enclosing loop (the innermost included) under "loops". */
static const char LOOP_CTX[] =
    "{\"input\": {\"orders\": [1, 2]},"
    " \"item\": {\"sku\": \"x\", \"tags\": [\"a\", \"b\"], \"none\": null}, \"index\": 3,"
    " \"loops\": {\"outer\": {\"item\": {\"name\": \"o\", \"list\": [7, 8]}, \"index\": 1},"
    "             \"inner\": {\"item\": {\"sku\": \"x\", \"tags\": [\"a\", \"b\"], \"none\": null},"
    "                         \"index\": 3},"
    "             \"half\": {\"index\": 0}}}";

static void test_eval_loop_roots(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl;
        const char *want;
    } cases[] = {
        {"${item}", "{\"sku\": \"x\", \"tags\": [\"a\", \"b\"], \"none\": null}"},
        {"${item.sku}", "\"x\""},
        {"${item.tags[1]}", "\"b\""},
        {"${item[\"sku\"]}", "\"x\""},
        {"${item.none}", "null"},
        {"${ index }", "3"},
        {"n${index}-${item.sku}", "\"n3-x\""},
        {"${loops.outer.item}", "{\"name\": \"o\", \"list\": [7, 8]}"},
        {"${loops.outer.item.list[0]}", "7"},
        {"${loops.outer.index}", "1"},
        {"${loops[\"outer\"].index}", "1"},
        {"${loops.inner.item.sku}/${loops.outer.index}", "\"x/1\""},
        {"${loops.half.index}", "0"},
    };
    json_t *ctx = J(LOOP_CTX);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *tmpl = json_string(cases[i].tmpl);
        struct expr_error err;
        json_t *got = expr_eval_template(tmpl, ctx, &err);
        if (!got)
            fail_msg("%s: %s", cases[i].tmpl, err.message);
        json_t *want = J(cases[i].want);
        if (!json_equal(got, want))
            fail_msg("%s: got %s, want %s", cases[i].tmpl, json_dumps(got, JSON_ENCODE_ANY),
                     cases[i].want);
        json_decref(want);
        json_decref(got);
        json_decref(tmpl);
    }
    json_decref(ctx);
}

/* Outside a loop the context has no item, index or loops: each use fails precisely. */
static void test_eval_loop_errors(void **state)
{
    (void)state;
    static const struct {
        const char *ctx; /* NULL: LOOP_CTX */
        const char *tmpl;
        const char *message;
    } cases[] = {
        {"{}", "${item}", "${item}: not inside a for_each"},
        {"{}", "${item.sku}", "${item.sku}: not inside a for_each"},
        {"{}", "${index}", "${index}: not inside a for_each"},
        {"{\"item\": 5}", "${index}", "${index}: not inside a for_each"},
        {"{}", "at ${index}", "${index}: not inside a for_each"},
        {"{}", "${loops.all.item}", "${loops.all.item}: not inside for_each \"all\""},
        {"{\"loops\": {}}", "${loops.all.index}",
         "${loops.all.index}: not inside for_each \"all\""},
        {"{\"loops\": []}", "${loops.all.index}",
         "${loops.all.index}: not inside for_each \"all\""},
        {NULL, "${loops.other.item}", "${loops.other.item}: not inside for_each \"other\""},
        {NULL, "${loops.half.item}", "${loops.half.item}: not inside for_each \"half\""},
        {NULL, "${item.nope}", "${item.nope}: \"item\" has no field \"nope\""},
        {NULL, "${item.tags[5]}",
         "${item.tags[5]}: \"item.tags\": index 5 out of range (array of 2)"},
        {NULL, "${item.sku.x}",
         "${item.sku.x}: \"item.sku\" is a string, not an object, so it has no field \"x\""},
        {NULL, "${loops.outer.item.nope}",
         "${loops.outer.item.nope}: \"loops.outer.item\" has no field \"nope\""},
    };
    json_t *loop_ctx = J(LOOP_CTX);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *ctx = cases[i].ctx ? J(cases[i].ctx) : json_incref(loop_ctx);
        json_t *tmpl = json_string(cases[i].tmpl);
        struct expr_error err;
        json_t *got = expr_eval_template(tmpl, ctx, &err);
        if (got)
            fail_msg("%s: evaluated, want an error", cases[i].tmpl);
        if (strcmp(err.message, cases[i].message) != 0)
            fail_msg("%s:\n got  %s\n want %s", cases[i].tmpl, err.message, cases[i].message);
        json_decref(tmpl);
        json_decref(ctx);
    }
    json_decref(loop_ctx);
}

/* Malformed uses of the loop roots: the whole message each gets. */
static void test_check_loop_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"${index.a}", "${index.a}: nothing may follow \"index\""},
        {"${index[0]}", "${index[0]}: nothing may follow \"index\""},
        {"${loops}", "${loops}: \"loops\" must be followed by a for_each id ([A-Za-z0-9_-]{1,64}) "
                     "and .item or .index, e.g. loops.orders.item"},
        {"${loops[0].item}", "${loops[0].item}: \"loops\" must be followed by a for_each id "
                             "([A-Za-z0-9_-]{1,64}) and .item or .index, e.g. loops.orders.item"},
        {"${loops[\"a b\"].item}", "${loops[\"a b\"].item}: \"loops\" must be followed by a "
                                   "for_each id ([A-Za-z0-9_-]{1,64}) and .item or .index, e.g. "
                                   "loops.orders.item"},
        {"${loops.all}", "${loops.all}: only .item or .index may follow \"loops.all\""},
        {"${loops.all.value}", "${loops.all.value}: only .item or .index may follow \"loops.all\""},
        {"${loops.all[0]}", "${loops.all[0]}: only .item or .index may follow \"loops.all\""},
        {"${loops.all.index.x}", "${loops.all.index.x}: nothing may follow \"loops.all.index\""},
        {"${loops.all.index[0]}", "${loops.all.index[0]}: nothing may follow \"loops.all.index\""},
        {"${items}", "${items}: unknown root \"items\"; a path starts with input, steps.<id>, "
                     "execution, item, index or loops.<id>"},
        {"${Item}", "${Item}: unknown root \"Item\"; a path starts with input, steps.<id>, "
                    "execution, item, index or loops.<id>"},
    };
    json_t *ctx = J(LOOP_CTX);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *tmpl = json_string(cases[i].text);
        struct seen s = {{0}};
        assert_int_equal(expr_check_template(tmpl, on_ref, on_error, &s), 1);
        char want[1024];
        snprintf(want, sizeof want, "E |%s\n", cases[i].message);
        if (strcmp(s.log, want) != 0)
            fail_msg("%s:\n got  %s want %s", cases[i].text, s.log, want);
        /* Evaluation fails with the same message, even where the context has the value. */
        struct expr_error err;
        assert_null(expr_eval_template(tmpl, ctx, &err));
        assert_string_equal(err.message, cases[i].message);
        json_decref(tmpl);
    }
    json_decref(ctx);
}

static void on_loop_ref(void *arg, const char *pointer, const char *expr, const char *loop_id)
{
    struct seen *s = arg;
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof s->log - n, "L %s|%s|%s\n", pointer, expr,
             loop_id ? loop_id : "(innermost)");
}

/* expr_compile_reporting reports loop uses with the rest, in template order; expr_compile and
 * expr_check_template report the same step references and errors as before, and no loop uses. */
static void test_compile_reporting_loops(void **state)
{
    (void)state;
    json_t *tmpl = J("{\"a\": \"${item.sku} ${steps.x.output}\","
                     " \"b\": [\"${index}\", \"${loops.all.item.id}\", \"${ loops.all.index }\"],"
                     " \"c\": \"${loops.all} ${item}\", \"d\": \"$${item}\","
                     " \"e\": \"${loops[\\\"all\\\"].item[0]}\"}");
    struct seen all = {{0}}, old = {{0}};
    struct expr_reporter r = {on_ref, on_loop_ref, on_error, &all};
    int bad = -1;
    struct expr_template *t = expr_compile_reporting(tmpl, &r, &bad);
    assert_non_null(t);
    assert_int_equal(bad, 1);
    assert_string_equal(all.log, "L /a|item.sku|(innermost)\n"
                                 "R /a|steps.x.output|x\n"
                                 "L /b/0|index|(innermost)\n"
                                 "L /b/1|loops.all.item.id|all\n"
                                 "L /b/2|loops.all.index|all\n"
                                 "E /c|${loops.all}: only .item or .index may follow "
                                 "\"loops.all\"\n"
                                 "L /e|loops.all.item[0]|all\n");
    expr_template_free(t);

    t = expr_compile(tmpl, on_ref, on_error, &old, &bad);
    assert_int_equal(bad, 1);
    assert_string_equal(old.log, "R /a|steps.x.output|x\n"
                                 "E /c|${loops.all}: only .item or .index may follow "
                                 "\"loops.all\"\n");
    expr_template_free(t);

    /* No reporter, or one without callbacks, is fine. */
    t = expr_compile_reporting(tmpl, NULL, &bad);
    assert_int_equal(bad, 1);
    expr_template_free(t);
    struct expr_reporter none = {NULL, NULL, NULL, NULL};
    t = expr_compile_reporting(tmpl, &none, NULL);
    assert_non_null(t);
    expr_template_free(t);
    assert_null(expr_compile_reporting(NULL, &r, &bad));
    assert_int_equal(bad, 0);
    json_decref(tmpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_strings),
        cmocka_unit_test(test_eval_errors),
        cmocka_unit_test(test_eval_sparse_context),
        cmocka_unit_test(test_eval_structures),
        cmocka_unit_test(test_eval_error_pointer),
        cmocka_unit_test(test_eval_result_is_independent),
        cmocka_unit_test(test_eval_null_arguments),
        cmocka_unit_test(test_eval_long_message),
        cmocka_unit_test(test_check_templates),
        cmocka_unit_test(test_check_malformed),
        cmocka_unit_test(test_check_long_expression),
        cmocka_unit_test(test_check_null_callbacks),
        cmocka_unit_test(test_has_expression),
        cmocka_unit_test(test_check_and_eval_agree),
        cmocka_unit_test(test_compiled_budget),
        cmocka_unit_test(test_compile_reports),
        cmocka_unit_test(test_eval_loop_roots),
        cmocka_unit_test(test_eval_loop_errors),
        cmocka_unit_test(test_check_loop_malformed),
        cmocka_unit_test(test_compile_reporting_loops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
