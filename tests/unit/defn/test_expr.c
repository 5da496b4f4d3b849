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
    /* Since operators: what may start an expression is more than a name, and the offset says
     * where the problem is. */
    {"${.a}", "${.a}: expected a path (input, steps, execution, item, index or loops), a literal "
              "or \"(\" after \"${\" at offset 0"},
    {"${[0]}", "${[0]}: expected a path (input, steps, execution, item, index or loops), a "
               "literal or \"(\" after \"${\" at offset 0"},
    {"${\"input\"}", "${\"input\"}: expected a path (input, steps, execution, item, index or "
                     "loops), a literal or \"(\" after \"${\" at offset 0; text is written in "
                     "single quotes: 'text'"},
    {"${input.}",
     "${input.}: expected a field name ([A-Za-z0-9_-]) after \".\"; use [\"...\"] for other keys"},
    {"${input..a}", "${input..a}: expected a field name ([A-Za-z0-9_-]) after \".\"; use "
                    "[\"...\"] for other keys"},
    /* Since operators: spaces and operators may follow a path ("${input.a+1}" is input.a plus
     * 1), so the message names what comes after the spaces, and where. */
    {"${input.a b}",
     "${input.a b}: unexpected \"b\" after \"input.a\" at offset 8; expected an operator or \"}\""},
    {"${input.a\xc3\xa9}", "${input.a\xc3\xa9}: unexpected character after \"input.a\" at offset "
                           "7; expected an operator or \"}\""},
    {"${input.a.b.c d}", "${input.a.b.c d}: unexpected \"d\" after \"input.a.b.c\" at offset 12; "
                         "expected an operator or \"}\""},
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
    assert_non_null(strstr(s.log, "...: unexpected character after \"input.a\" at offset 8"));
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

/* ---- operators ----------------------------------------------------------------------------- */

/* A context for operators: a value of each type, the int64 limits, a field whose name has a "-". */
static const char OP_CTX[] =
    "{\"input\": {\"total\": 1500, \"country\": \"DE\", \"n\": 0, \"one\": 1, \"two\": 2.0,"
    "  \"half\": 0.5, \"s\": \"h\\u00e9llo\", \"empty\": \"\", \"items\": [1, 2, 3],"
    "  \"obj\": {\"a\": 1, \"b\": [1, 2]}, \"obj2\": {\"b\": [1.0, 2], \"a\": 1.0},"
    "  \"obj3\": {\"a\": 1, \"c\": [1, 2]}, \"none\": null, \"t\": true, \"f\": false,"
    "  \"max\": 9223372036854775807, \"min\": -9223372036854775808, \"n-1\": 7, \"big\": 1e308,"
    "  \"ten\": \"0123456789\", \"mixed\": [1, \"1\"], \"mixed2\": [\"1\", 1]},"
    " \"steps\": {\"done\": {\"output\": {\"id\": 5}}, \"pending\": {},"
    "   \"flaky\": {\"error\": {\"type\": \"T\"}}},"
    " \"execution\": {\"id\": \"ex-1\", \"workflow\": \"orders\"}}";

/* Evaluates a string template against ctx; fails the test on an error. */
static json_t *eval_ok_in(const char *text, json_t *ctx)
{
    json_t *tmpl = json_string(text);
    if (!tmpl)
        fail_msg("%s: not valid UTF-8", text);
    struct seen s = {{0}};
    if (expr_check_template(tmpl, NULL, on_error, &s) != 0)
        fail_msg("%s: does not compile: %s", text, s.log);
    struct expr_error err = {{0}, {0}};
    json_t *got = expr_eval_template(tmpl, ctx, &err);
    if (!got)
        fail_msg("%s: failed: %s (at \"%s\")", text, err.message, err.pointer);
    json_decref(tmpl);
    return got;
}

/* A string template and what it evaluates to: JSON, of the same JSON type (3 is not 3.0). */
static const struct {
    const char *tmpl;
    const char *want;
} op_values[] = {
    /* Literals. */
    {"${1000}", "1000"},
    {"${0}", "0"},
    {"${-0}", "0"},
    {"${2.5}", "2.5"},
    {"${1e3}", "1000.0"},
    {"${1E-2}", "0.01"},
    {"${2.5e+1}", "25.0"},
    {"${-5}", "-5"},
    {"${- 5}", "-5"},
    {"${-2.5}", "-2.5"},
    {"${9223372036854775807}", "9223372036854775807"},
    {"${-9223372036854775808}", "-9223372036854775808"},
    {"${'text'}", "\"text\""},
    {"${''}", "\"\""},
    {"${'it\\'s'}", "\"it's\""},
    {"${'a\\\\b'}", "\"a\\\\b\""},
    {"${'}'}", "\"}\""},
    {"${'${input.s}'}", "\"${input.s}\""},
    {"${'say \"hi\"'}", "\"say \\\"hi\\\"\""},
    {"${'h\xc3\xa9'}", "\"h\\u00e9\""},
    {"${true}", "true"},
    {"${false}", "false"},
    {"${null}", "null"},
    /* Arithmetic: integers stay integers when the result is exact. */
    {"${1 + 2}", "3"},
    {"${7 - 10}", "-3"},
    {"${6 * 7}", "42"},
    {"${8 / 2}", "4"},
    {"${-8 / 2}", "-4"},
    {"${7 / 2}", "3.5"},
    {"${1 / 3 * 3}", "1.0"},
    {"${7 % 3}", "1"},
    {"${-7 % 3}", "-1"},
    {"${7 % -3}", "1"},
    {"${0 % 5}", "0"},
    {"${input.one + input.two}", "3.0"},
    {"${input.one + 0.5}", "1.5"},
    {"${2.5 * 2}", "5.0"},
    {"${6.0 / 2}", "3.0"},
    {"${input.two / input.one}", "2.0"},
    {"${input.half - 1}", "-0.5"},
    {"${input.max - 1}", "9223372036854775806"},
    {"${input.min + 1}", "-9223372036854775807"},
    {"${input.max + input.min}", "-1"},
    {"${input.min / 1}", "-9223372036854775808"},
    {"${input.min % -1}", "0"},
    {"${input.max / -1}", "-9223372036854775807"},
    {"${-input.max}", "-9223372036854775807"},
    {"${-input.half}", "-0.5"},
    {"${input.max * 1.0}", "9.2233720368547758e18"},
    {"${input.total * 2}", "3000"},
    /* Strings join with +. */
    {"${'a' + 'b'}", "\"ab\""},
    {"${input.s + '!'}", "\"h\\u00e9llo!\""},
    {"${input.empty + input.empty}", "\"\""},
    {"${input.country + '-' + execution.id}", "\"DE-ex-1\""},
    /* Precedence, lowest first: || && (== !=) (< <= > >=) (+ -) (* / %) unary. */
    {"${1 + 2 * 3}", "7"},
    {"${(1 + 2) * 3}", "9"},
    {"${2 * (3 + 4) - 1}", "13"},
    {"${2 * 3 % 4}", "2"},
    {"${2 + 3 % 2}", "3"},
    {"${-2 * 3}", "-6"},
    {"${-(2 + 3) * 2}", "-10"},
    {"${7 - -2}", "9"},
    {"${1 + 1 == 2}", "true"},
    {"${1 < 2 == 2 < 3}", "true"},
    {"${1 < 2 == true}", "true"},
    {"${!true == false}", "true"},
    {"${!(1 < 2)}", "false"},
    {"${true || false && false}", "true"},
    {"${false && false || true}", "true"},
    {"${(true || false) && false}", "false"},
    {"${1 < 2 && 2 < 3}", "true"},
    {"${'a' + 'b' == 'ab'}", "true"},
    {"${input.total > 1000 && input.country == 'DE'}", "true"},
    {"${input.total > 1000 && input.country != 'DE'}", "false"},
    /* Left-associative. */
    {"${10 - 4 - 3}", "3"},
    {"${100 / 10 / 5}", "2"},
    {"${20 % 7 % 4}", "2"},
    {"${1 == 1 != false}", "true"},
    /* Comparisons: numbers by value, exactly, also between integers and reals. */
    {"${1 < 2}", "true"},
    {"${2 < 1}", "false"},
    {"${1 <= 1}", "true"},
    {"${1 >= 2}", "false"},
    {"${2 > 1.5}", "true"},
    {"${1 < 1.0}", "false"},
    {"${1 <= 1.0}", "true"},
    {"${1.5 >= 1.5}", "true"},
    {"${9007199254740993 > 9007199254740992.0}", "true"},
    {"${9007199254740993 == 9007199254740992.0}", "false"},
    {"${9007199254740992 == 9007199254740992.0}", "true"},
    {"${input.max < 9223372036854775808.0}", "true"},
    {"${input.max > 9.2e18}", "true"},
    {"${input.min == -9223372036854775808.0}", "true"},
    {"${input.min > -1e19}", "true"},
    {"${-1 < -0.5}", "true"},
    {"${-0.0 == 0}", "true"},
    /* Strings bytewise. */
    {"${'a' < 'b'}", "true"},
    {"${'a' < 'ab'}", "true"},
    {"${'ab' > 'a'}", "true"},
    {"${'B' < 'a'}", "true"},
    {"${'\xc3\xa9' > 'z'}", "true"},
    {"${'' < 'a'}", "true"},
    {"${'abc' >= 'abc'}", "true"},
    {"${'abc' <= 'abd'}", "true"},
    /* Equality: by value within a type; null with anything. */
    {"${1 == 1.0}", "true"},
    {"${1 != 1.0}", "false"},
    {"${0.1 + 0.2 == 0.3}", "false"},
    {"${'a' == 'a'}", "true"},
    {"${'a' != 'b'}", "true"},
    {"${'a' == 'A'}", "false"},
    {"${true == true}", "true"},
    {"${true != false}", "true"},
    {"${null == null}", "true"},
    {"${null != null}", "false"},
    {"${input.none == null}", "true"},
    {"${input.n == null}", "false"},
    {"${null == 'x'}", "false"},
    {"${null != 0}", "true"},
    {"${input.items == input.items}", "true"},
    {"${input.obj == input.obj2}", "true"},
    {"${input.obj != input.obj3}", "true"},
    {"${input.items != input.obj.b}", "true"},
    {"${input.obj.b == input.obj2.b}", "true"},
    {"${input.mixed == input.mixed2}", "false"},
    {"${steps.done.output == steps.done.output}", "true"},
    /* Logic. */
    {"${true && true}", "true"},
    {"${true && false}", "false"},
    {"${false || true}", "true"},
    {"${false || false}", "false"},
    {"${!false}", "true"},
    {"${!!true}", "true"},
    {"${!input.f}", "true"},
    /* Short-circuit: the right operand is not evaluated, so it may be missing or of any type. */
    {"${false && input.missing}", "false"},
    {"${input.f && input.missing > 1}", "false"},
    {"${input.t || input.missing}", "true"},
    {"${input.f && 1 / input.n > 0}", "false"},
    {"${exists(input.x) && input.x > 1}", "false"},
    {"${!exists(input.x) || input.x > 1}", "true"},
    {"${input.f && 'x'}", "false"},
    {"${input.t || 5}", "true"},
    {"${true || 'a'}", "true"},
    /* len(): code points of a string, items of an array, members of an object. */
    {"${len('h\xc3\xa9llo')}", "5"},
    {"${len(input.s)}", "5"},
    {"${len('\xf0\x9f\x98\x80')}", "1"},
    {"${len('')}", "0"},
    {"${len(input.items)}", "3"},
    {"${len(input.obj)}", "2"},
    {"${len(input.s + 'x')}", "6"},
    {"${len(input.items) > 2}", "true"},
    {"${len (input.items)}", "3"},
    {"${len(len(input.s) + '')}", NULL}, /* NULL: a run-time error, tested below */
    /* exists(): true when the value is there, a null included; false when any part is not. */
    {"${exists(input.s)}", "true"},
    {"${exists(input.none)}", "true"},
    {"${exists(input.nope)}", "false"},
    {"${exists(input.nope.deeper)}", "false"},
    {"${exists(input.s.x)}", "false"},
    {"${exists(input.items[2])}", "true"},
    {"${exists(input.items[3])}", "false"},
    {"${exists(input.obj[\"a\"])}", "true"},
    {"${exists(steps.done.output.id)}", "true"},
    {"${exists(steps.pending.output)}", "false"},
    {"${exists(steps.never.output)}", "false"},
    {"${exists(steps.flaky.error)}", "true"},
    {"${exists(steps.done.error)}", "false"},
    {"${exists(item)}", "false"},
    {"${exists(loops.o.index)}", "false"},
    {"${exists(execution.id)}", "true"},
    {"${exists((input.s))}", "true"},
    {"${!exists(input.nope)}", "true"},
    /* Names are greedy: "-" belongs to them, so subtraction after a name needs spaces. */
    {"${input.n-1}", "7"},
    {"${input[\"n-1\"]}", "7"},
    {"${input.n - 1}", "-1"},
    {"${input.n -1}", "-1"},
    {"${input.one+1}", "2"},
    {"${input.one*2}", "2"},
    {"${len(input.items)-1}", "2"},
    {"${1-1}", "0"},
    /* Spaces, tabs and newlines between tokens. */
    {"${1+2}", "3"},
    {"${\n1 +\t2\r\n}", "3"},
    {"${ ( input.total ) }", "1500"},
    {"${((((1))))}", "1"},
    /* Inside a longer string, the value as text. */
    {"total: ${input.total * 2}", "\"total: 3000\""},
    {"${1 + 1}${'a' + 'b'}", "\"2ab\""},
    {"half=${input.one / 2}", "\"half=0.5\""},
    {"r=${6.0 / 2}", "\"r=3.0\""},
    {"ok=${1 < 2} n=${null}", "\"ok=true n=null\""},
    {"${'}'}}", "\"}}\""},
    {"${input.items == input.items}!", "\"true!\""},
    {"a ${input.s + input.country} b", "\"a h\\u00e9lloDE b\""},
    {"$${1 + 1} ${1 + 1}", "\"${1 + 1} 2\""},
};

static void test_operator_values(void **state)
{
    (void)state;
    json_t *ctx = J(OP_CTX);
    for (size_t i = 0; i < sizeof op_values / sizeof op_values[0]; i++) {
        if (!op_values[i].want)
            continue;
        json_t *got = eval_ok_in(op_values[i].tmpl, ctx);
        json_t *want = J(op_values[i].want);
        if (!json_equal(got, want) || json_typeof(got) != json_typeof(want)) {
            char *g = json_dumps(got, JSON_ENCODE_ANY);
            fail_msg("%s: got %s, want %s", op_values[i].tmpl, g, op_values[i].want);
        }
        json_decref(want);
        json_decref(got);
    }
    json_decref(ctx);
}

/* Run-time errors: each compiles, and fails when evaluated, with exactly this message. */
static const struct {
    const char *tmpl;
    const char *message;
} op_runtime_errors[] = {
    {"${input.total > 'a'}",
     "${input.total > 'a'}: cannot compare number with string in \"input.total > 'a'\""},
    {"${1 / input.n}", "${1 / input.n}: division by zero in \"1 / input.n\""},
    {"${input.one % input.n}",
     "${input.one % input.n}: division by zero in \"input.one % input.n\""},
    {"${input.half / 0}", "${input.half / 0}: division by zero in \"input.half / 0\""},
    {"${input.one / 0.0}", "${input.one / 0.0}: division by zero in \"input.one / 0.0\""},
    {"${input.half % 2}", "${input.half % 2}: cannot apply \"%\" to real number and integer (it "
                          "takes integers) in \"input.half % 2\""},
    {"${7 % input.two}", "${7 % input.two}: cannot apply \"%\" to integer and real number (it "
                         "takes integers) in \"7 % input.two\""},
    {"${input.s % 2}", "${input.s % 2}: cannot apply \"%\" to string and integer (it takes "
                       "integers) in \"input.s % 2\""},
    {"${input.max + 1}", "${input.max + 1}: integer overflow (the result does not fit in 64 bits) "
                         "in \"input.max + 1\""},
    {"${input.min - 1}", "${input.min - 1}: integer overflow (the result does not fit in 64 bits) "
                         "in \"input.min - 1\""},
    {"${input.max * 2}", "${input.max * 2}: integer overflow (the result does not fit in 64 bits) "
                         "in \"input.max * 2\""},
    {"${input.min * -1}", "${input.min * -1}: integer overflow (the result does not fit in 64 "
                          "bits) in \"input.min * -1\""},
    {"${input.min / -1}", "${input.min / -1}: integer overflow (the result does not fit in 64 "
                          "bits) in \"input.min / -1\""},
    {"${-input.min}",
     "${-input.min}: integer overflow (the result does not fit in 64 bits) in \"-input.min\""},
    {"${input.big * 10}",
     "${input.big * 10}: the result is not a finite number in \"input.big * 10\""},
    {"${input.big + input.big}",
     "${input.big + input.big}: the result is not a finite number in \"input.big + input.big\""},
    {"${-input.big - input.big}",
     "${-input.big - input.big}: the result is not a finite number in \"-input.big - input.big\""},
    {"${input.big / 1e-10}",
     "${input.big / 1e-10}: the result is not a finite number in \"input.big / 1e-10\""},
    {"${input.s - 1}", "${input.s - 1}: cannot apply \"-\" to string and number (it takes numbers) "
                       "in \"input.s - 1\""},
    {"${2 * input.s}", "${2 * input.s}: cannot apply \"*\" to number and string (it takes numbers) "
                       "in \"2 * input.s\""},
    {"${input.t / 2}", "${input.t / 2}: cannot apply \"/\" to boolean and number (it takes "
                       "numbers) in \"input.t / 2\""},
    {"${input.t + 1}", "${input.t + 1}: cannot apply \"+\" to boolean and number (it takes two "
                       "numbers or two strings) in \"input.t + 1\""},
    {"${input.s + 1}", "${input.s + 1}: cannot apply \"+\" to string and number (it takes two "
                       "numbers or two strings) in \"input.s + 1\""},
    {"${input.items + input.items}",
     "${input.items + input.items}: cannot apply \"+\" to array and array (it takes two numbers "
     "or two strings) in \"input.items + input.items\""},
    {"${input.none + 1}", "${input.none + 1}: cannot apply \"+\" to null and number (it takes two "
                          "numbers or two strings) in \"input.none + 1\""},
    {"${input.one && true}", "${input.one && true}: cannot apply \"&&\" to number (it takes "
                             "booleans) in \"input.one && true\""},
    {"${input.t && input.s}", "${input.t && input.s}: cannot apply \"&&\" to string (it takes "
                              "booleans) in \"input.t && input.s\""},
    {"${input.f || input.none}", "${input.f || input.none}: cannot apply \"||\" to null (it takes "
                                 "booleans) in \"input.f || input.none\""},
    {"${input.items || true}", "${input.items || true}: cannot apply \"||\" to array (it takes "
                               "booleans) in \"input.items || true\""},
    {"${!input.one}",
     "${!input.one}: cannot apply \"!\" to number (it takes a boolean) in \"!input.one\""},
    {"${-input.s}",
     "${-input.s}: cannot apply \"-\" to string (it takes a number) in \"-input.s\""},
    {"${-input.t}",
     "${-input.t}: cannot apply \"-\" to boolean (it takes a number) in \"-input.t\""},
    {"${input.one == 'a'}",
     "${input.one == 'a'}: cannot compare number with string in \"input.one == 'a'\""},
    {"${input.t == 1}", "${input.t == 1}: cannot compare boolean with number in \"input.t == 1\""},
    {"${input.items == input.obj}",
     "${input.items == input.obj}: cannot compare array with object in \"input.items == "
     "input.obj\""},
    {"${input.one != input.s}",
     "${input.one != input.s}: cannot compare number with string in \"input.one != input.s\""},
    {"${input.t < input.f}",
     "${input.t < input.f}: cannot compare boolean with boolean in \"input.t < input.f\""},
    {"${input.items < input.items}",
     "${input.items < input.items}: cannot compare array with array in \"input.items < "
     "input.items\""},
    {"${input.none < 1}",
     "${input.none < 1}: cannot compare null with number in \"input.none < 1\""},
    {"${input.s >= 1}", "${input.s >= 1}: cannot compare string with number in \"input.s >= 1\""},
    {"${input.one < 2 < 3}",
     "${input.one < 2 < 3}: cannot compare boolean with number in \"input.one < 2 < 3\""},
    {"${len(input.one)}", "${len(input.one)}: cannot apply len() to number (it takes a string, an "
                          "array or an object) in \"len(input.one)\""},
    {"${len(input.none)}", "${len(input.none)}: cannot apply len() to null (it takes a string, an "
                           "array or an object) in \"len(input.none)\""},
    {"${len(len(input.s) + '')}",
     "${len(len(input.s) + '')}: cannot apply \"+\" to number and string (it takes two numbers or "
     "two strings) in \"len(input.s) + ''\""},
    /* A missing value is an error outside exists(), named with the part that reads it. */
    {"${input.missing > 1}",
     "${input.missing > 1}: \"input\" has no field \"missing\" in \"input.missing\""},
    {"${len(steps.pending.output)}",
     "${len(steps.pending.output)}: steps.pending has no output yet in \"steps.pending.output\""},
    {"${1 + item}", "${1 + item}: not inside a for_each in \"item\""},
    {"${input.t && input.items[7] == 1}",
     "${input.t && input.items[7] == 1}: \"input.items\": index 7 out of range (array of 3) in "
     "\"input.items[7]\""},
    {"${(input.nope)}", "${input.nope}: \"input\" has no field \"nope\""},
    {"${ input.one +  input.nope }",
     "${input.one +  input.nope}: \"input\" has no field \"nope\" in \"input.nope\""},
    /* The part named is the operator's, with its operands' parentheses. */
    {"${(input.one + 1) * input.s}",
     "${(input.one + 1) * input.s}: cannot apply \"*\" to number and string (it takes numbers) in "
     "\"(input.one + 1) * input.s\""},
    {"${-(input.s)}", "${-(input.s)}: cannot apply \"-\" to string (it takes a number) in "
                      "\"-(input.s)\""},
    {"${(input.one / input.n)}",
     "${(input.one / input.n)}: division by zero in \"input.one / input.n\""},
    {"${input.t && (input.one)}",
     "${input.t && (input.one)}: cannot apply \"&&\" to number (it takes booleans) in "
     "\"input.t && (input.one)\""},
    /* Interpolated, the same. */
    {"x ${input.one + input.s} y", "${input.one + input.s}: cannot apply \"+\" to number and "
                                   "string (it takes two numbers or two strings) in \"input.one + "
                                   "input.s\""},
    /* "-" in a name: the field "n-1" of a missing object. */
    {"${input.nope.n-1}", "${input.nope.n-1}: \"input\" has no field \"nope\""},
};

static void test_operator_runtime_errors(void **state)
{
    (void)state;
    json_t *ctx = J(OP_CTX);
    for (size_t i = 0; i < sizeof op_runtime_errors / sizeof op_runtime_errors[0]; i++) {
        json_t *tmpl = json_string(op_runtime_errors[i].tmpl);
        struct seen s = {{0}};
        if (expr_check_template(tmpl, NULL, on_error, &s) != 0)
            fail_msg("%s: does not compile: %s", op_runtime_errors[i].tmpl, s.log);
        struct expr_error err;
        memset(&err, 'x', sizeof err);
        json_t *got = expr_eval_template(tmpl, ctx, &err);
        if (got)
            fail_msg("%s: evaluated to %s, want an error", op_runtime_errors[i].tmpl,
                     json_dumps(got, JSON_ENCODE_ANY));
        if (strcmp(err.message, op_runtime_errors[i].message) != 0)
            fail_msg("%s:\n got  %s\n want %s", op_runtime_errors[i].tmpl, err.message,
                     op_runtime_errors[i].message);
        assert_string_equal(err.pointer, "");
        json_decref(tmpl);
    }
    /* The pointer names the string, wherever it is. */
    json_t *tmpl = J("{\"a\": [1, {\"b\": \"${1 / input.n}\"}], \"c\": \"${1 / input.n}\"}");
    struct expr_error err;
    assert_null(expr_eval_template(tmpl, ctx, &err));
    assert_string_equal(err.pointer, "/a/1/b");
    assert_string_equal(err.message, "${1 / input.n}: division by zero in \"1 / input.n\"");
    json_decref(tmpl);
    json_decref(ctx);
}

/* Registration errors: each is reported by the check, once, with exactly this message, and
 * evaluating fails with the same message even where the context would have the values. */
static const struct {
    const char *text;
    const char *message;
} op_compile_errors[] = {
    /* Syntax. */
    {"${input.a +}", "${input.a +}: expected an operand after \"+\" at offset 9"},
    {"${+}", "${+}: expected a path (input, steps, execution, item, index or loops), a literal or "
             "\"(\" after \"${\" at offset 0"},
    {"${ * 2}", "${ * 2}: expected a path (input, steps, execution, item, index or loops), a "
                "literal or \"(\" after \"${\" at offset 1"},
    {"${1 +* 2}", "${1 +* 2}: expected an operand after \"+\" at offset 3"},
    {"${input.a == }", "${input.a == }: expected an operand after \"==\" at offset 11"},
    {"${input.a == \"x\"}", "${input.a == \"x\"}: expected an operand after \"==\" at offset 11; "
                            "text is written in single quotes: 'text'"},
    {"${!}", "${!}: expected an operand after \"!\" at offset 1"},
    {"${-}", "${-}: expected an operand after \"-\" at offset 1"},
    {"${()}", "${()}: expected an operand after \"(\" at offset 1"},
    {"${(1 + 2}", "${(1 + 2}: missing \")\" to close the \"(\" at offset 0"},
    {"${((1) + 2}", "${((1) + 2}: missing \")\" to close the \"(\" at offset 0"},
    {"${1 + 2)}", "${1 + 2)}: unexpected \")\" after \"2\" at offset 5; expected an operator or "
                  "\"}\""},
    {"${1 2}", "${1 2}: unexpected \"2\" after \"1\" at offset 2; expected an operator or \"}\""},
    {"${'a' 'b'}",
     "${'a' 'b'}: unexpected \"'\" after \"'a'\" at offset 4; expected an operator or \"}\""},
    {"${input.a input.b}", "${input.a input.b}: unexpected \"i\" after \"input.a\" at offset 8; "
                           "expected an operator or \"}\""},
    {"${(1 2)}",
     "${(1 2)}: unexpected \"2\" after \"1\" at offset 3; expected an operator or \")\""},
    {"${input.a ! input.b}", "${input.a ! input.b}: unexpected \"!\" after \"input.a\" at offset "
                             "8; expected an operator or \"}\""},
    {"${a = b}",
     "${a = b}: unexpected \"=\" after \"a\" at offset 2; expected an operator or \"}\"; use "
     "\"==\" to compare"},
    {"${input.a & input.b}", "${input.a & input.b}: unexpected \"&\" after \"input.a\" at offset "
                             "8; expected an operator or \"}\"; use \"&&\""},
    {"${input.a | input.b}", "${input.a | input.b}: unexpected \"|\" after \"input.a\" at offset "
                             "8; expected an operator or \"}\"; use \"||\""},
    {"${input.a, 1}", "${input.a, 1}: unexpected \",\" after \"input.a\" at offset 7; expected an "
                      "operator or \"}\""},
    {"${(input.a).b}", "${(input.a).b}: unexpected \".\" after \")\" at offset 9; expected an "
                       "operator or \"}\""},
    {"${1 + 2", "${1 + 2: missing \"}\" to close the expression"},
    {"${(1 + 2", "${(1 + 2: missing \"}\" to close the expression"},
    {"${1 +", "${1 +: missing \"}\" to close the expression"},
    {"${'abc}", "${'abc}: missing closing quote in a string at offset 0"},
    {"${1 + 'abc}", "${1 + 'abc}: missing closing quote in a string at offset 4"},
    {"${'a\\n'}", "${'a\\n'}: only \\' and \\\\ may be escaped in a string at offset 2"},
    {"${'a\\\"'}", "${'a\\\"'}: only \\' and \\\\ may be escaped in a string at offset 2"},
    {"${01}", "${01}: malformed number \"01\" at offset 0"},
    {"${1.}", "${1.}: malformed number \"1.\" at offset 0"},
    {"${.5}", "${.5}: expected a path (input, steps, execution, item, index or loops), a literal "
              "or \"(\" after \"${\" at offset 0"},
    {"${1.5.3}", "${1.5.3}: malformed number \"1.5.3\" at offset 0"},
    {"${2e}", "${2e}: malformed number \"2e\" at offset 0"},
    {"${1e+}", "${1e+}: malformed number \"1e\" at offset 0"},
    {"${9lives}", "${9lives}: malformed number \"9lives\" at offset 0"},
    {"${1 + 2x}", "${1 + 2x}: malformed number \"2x\" at offset 4"},
    {"${0x10}", "${0x10}: malformed number \"0x10\" at offset 0"},
    {"${99999999999999999999}",
     "${99999999999999999999}: the integer 99999999999999999999 does not fit in 64 bits at offset "
     "0"},
    {"${9223372036854775808}",
     "${9223372036854775808}: the integer 9223372036854775808 does not fit in 64 bits at offset "
     "0"},
    {"${-9223372036854775809}",
     "${-9223372036854775809}: the integer -9223372036854775809 does not fit in 64 bits at offset "
     "1"},
    {"${1e400}", "${1e400}: the number 1e400 is out of range at offset 0"},
    {"${-1e400}", "${-1e400}: the number -1e400 is out of range at offset 1"},
    /* Functions. */
    {"${foo(1)}",
     "${foo(1)}: unknown function \"foo\" at offset 0; the functions are len() and exists()"},
    {"${input(1)}",
     "${input(1)}: unknown function \"input\" at offset 0; the functions are len() and exists()"},
    {"${1 + Len(input.a)}", "${1 + Len(input.a)}: unknown function \"Len\" at offset 4; the "
                            "functions are len() and exists()"},
    {"${len()}", "${len()}: len() takes one argument at offset 0"},
    {"${len(1, 2)}", "${len(1, 2)}: len() takes one argument at offset 5"},
    {"${exists()}", "${exists()}: exists() takes one argument at offset 0"},
    {"${len(1 2)}",
     "${len(1 2)}: unexpected \"2\" after \"1\" at offset 6; expected an operator or \")\""},
    {"${len(input.a}", "${len(input.a}: missing \")\" to close the \"(\" at offset 3"},
    {"${exists(1)}",
     "${exists(1)}: exists() takes a path, such as exists(input.x), not \"1\" at offset 7"},
    {"${exists('input.a')}", "${exists('input.a')}: exists() takes a path, such as "
                             "exists(input.x), not \"'input.a'\" at offset 7"},
    {"${exists(input.a + 1)}", "${exists(input.a + 1)}: exists() takes a path, such as "
                               "exists(input.x), not \"input.a + 1\" at offset 7"},
    {"${exists(len(input.a))}", "${exists(len(input.a))}: exists() takes a path, such as "
                                "exists(input.x), not \"len(input.a)\" at offset 7"},
    {"${exists(!input.a)}", "${exists(!input.a)}: exists() takes a path, such as "
                            "exists(input.x), not \"!input.a\" at offset 7"},
    /* Shapes of the paths inside. */
    {"${input.a + inptu.b}",
     "${input.a + inptu.b}: unknown root \"inptu\"; a path starts with input, steps.<id>, "
     "execution, item, index or loops.<id> in \"inptu.b\""},
    {"${exists(steps.x)}",
     "${exists(steps.x)}: only .output or .error may follow \"steps.x\" in \"exists(steps.x)\""},
    {"${1 + steps.x}",
     "${1 + steps.x}: only .output or .error may follow \"steps.x\" in \"steps.x\""},
    {"${len(index.a)}", "${len(index.a)}: nothing may follow \"index\" in \"index.a\""},
    {"${(inptu.a)}", "${inptu.a}: unknown root \"inptu\"; a path starts with input, steps.<id>, "
                     "execution, item, index or loops.<id>"},
    {"${true.x}", "${true.x}: unknown root \"true\"; a path starts with input, steps.<id>, "
                  "execution, item, index or loops.<id>"},
    /* "-" is part of a name: a hint where that makes an unknown root. */
    {"${index-1}", "${index-1}: unknown root \"index-1\"; a path starts with input, steps.<id>, "
                   "execution, item, index or loops.<id>; to subtract, put spaces around \"-\": "
                   "index - 1"},
    {"${n-1 > 0}", "${n-1 > 0}: unknown root \"n-1\"; a path starts with input, steps.<id>, "
                   "execution, item, index or loops.<id>; to subtract, put spaces around \"-\": "
                   "n - 1 in \"n-1\""},
    {"${item-index}", "${item-index}: unknown root \"item-index\"; a path starts with input, "
                      "steps.<id>, execution, item, index or loops.<id>; to subtract, put spaces "
                      "around \"-\": item - index"},
    /* Constants that cannot be evaluated. */
    {"${1 + 'a'}", "${1 + 'a'}: cannot apply \"+\" to number and string (it takes two numbers or "
                   "two strings) in \"1 + 'a'\""},
    {"${1 / 0}", "${1 / 0}: division by zero in \"1 / 0\""},
    {"${1 % 0}", "${1 % 0}: division by zero in \"1 % 0\""},
    {"${1.5 % 1}", "${1.5 % 1}: cannot apply \"%\" to real number and integer (it takes integers) "
                   "in \"1.5 % 1\""},
    {"${-'a'}", "${-'a'}: cannot apply \"-\" to string (it takes a number) in \"-'a'\""},
    {"${!1}", "${!1}: cannot apply \"!\" to number (it takes a boolean) in \"!1\""},
    {"${1 && true}",
     "${1 && true}: cannot apply \"&&\" to number (it takes booleans) in \"1 && true\""},
    {"${true < false}", "${true < false}: cannot compare boolean with boolean in \"true < false\""},
    {"${1 == 'a'}", "${1 == 'a'}: cannot compare number with string in \"1 == 'a'\""},
    {"${len(1)}",
     "${len(1)}: cannot apply len() to number (it takes a string, an array or an object) in "
     "\"len(1)\""},
    {"${9223372036854775807 + 1}",
     "${9223372036854775807 + 1}: integer overflow (the result does not fit in 64 bits) in "
     "\"9223372036854775807 + 1\""},
    {"${-9223372036854775808 / -1}",
     "${-9223372036854775808 / -1}: integer overflow (the result does not fit in 64 bits) in "
     "\"-9223372036854775808 / -1\""},
    {"${-(-9223372036854775808)}",
     "${-(-9223372036854775808)}: integer overflow (the result does not fit in 64 bits) in "
     "\"-(-9223372036854775808)\""},
    {"${1e308 * 10}", "${1e308 * 10}: the result is not a finite number in \"1e308 * 10\""},
    {"${3 > 2 > 1}", "${3 > 2 > 1}: cannot compare boolean with number in \"3 > 2 > 1\""},
    /* Inside a larger expression: the innermost constant part is named. */
    {"${input.a + (1 / 0)}", "${input.a + (1 / 0)}: division by zero in \"1 / 0\""},
    {"${input.a + 2 * (1 - 'x')}", "${input.a + 2 * (1 - 'x')}: cannot apply \"-\" to number and "
                                   "string (it takes numbers) in \"1 - 'x'\""},
    /* Even where short-circuit would skip it at run time: a constant that cannot be evaluated
     * is a mistake wherever it is. */
    {"${input.f && 1 / 0 > 0}", "${input.f && 1 / 0 > 0}: division by zero in \"1 / 0\""},
    {"${false && 1 / 0 > 0}", "${false && 1 / 0 > 0}: division by zero in \"1 / 0\""},
};

static void test_operator_compile_errors(void **state)
{
    (void)state;
    json_t *ctx = J(OP_CTX);
    for (size_t i = 0; i < sizeof op_compile_errors / sizeof op_compile_errors[0]; i++) {
        json_t *tmpl = json_string(op_compile_errors[i].text);
        assert_non_null(tmpl);
        struct seen s = {{0}};
        int n = expr_check_template(tmpl, on_ref, on_error, &s);
        char want[1024];
        snprintf(want, sizeof want, "E |%s\n", op_compile_errors[i].message);
        if (n != 1 || strcmp(s.log, want) != 0)
            fail_msg("%s: %d errors, log:\n%s\nwant:\n%s", op_compile_errors[i].text, n, s.log,
                     want);
        struct expr_error err;
        assert_null(expr_eval_template(tmpl, ctx, &err));
        assert_string_equal(err.message, op_compile_errors[i].message);
        json_decref(tmpl);
    }
    json_decref(ctx);
}

/* Every operator expression of op_values compiles with no error: the two tables do not
 * overlap, and constants that can be evaluated are not refused. */
static void test_operator_values_compile(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof op_values / sizeof op_values[0]; i++) {
        json_t *tmpl = json_string(op_values[i].tmpl);
        struct seen s = {{0}};
        if (expr_check_template(tmpl, NULL, on_error, &s) != 0)
            fail_msg("%s: %s", op_values[i].tmpl, s.log);
        json_decref(tmpl);
    }
}

/* Builds a string of prefix, n copies of open, middle, n copies of close, suffix. */
static char *repeat(const char *prefix, const char *open, size_t n, const char *middle,
                    const char *close, const char *suffix)
{
    size_t len =
        strlen(prefix) + n * (strlen(open) + strlen(close)) + strlen(middle) + strlen(suffix) + 1;
    char *s = malloc(len);
    assert_non_null(s);
    strcpy(s, prefix);
    for (size_t i = 0; i < n; i++)
        strcat(s, open);
    strcat(s, middle);
    for (size_t i = 0; i < n; i++)
        strcat(s, close);
    strcat(s, suffix);
    return s;
}

/* Compiles text and returns the number of errors; *message gets the first. */
static int compile_count(const char *text, char *message, size_t size)
{
    json_t *tmpl = json_string(text);
    assert_non_null(tmpl);
    struct seen s = {{0}};
    int n = expr_check_template(tmpl, NULL, on_error, &s);
    snprintf(message, size, "%s", s.log);
    json_decref(tmpl);
    return n;
}

/* Nesting is bounded at 64 levels, of parentheses, unary operators, calls and operators, so that
 * no input can exhaust the stack; at 64 everything still works. */
static void test_operator_depth(void **state)
{
    (void)state;
    json_t *ctx = J(OP_CTX);
    char msg[4096];
    static const struct {
        const char *open, *middle, *close;
    } shapes[] = {
        {"(", "1", ")"},        {"!", "true", ""},
        {"-", "input.one", ""}, {"len(", "input.s", ")"}, /* len(len(...)) fails only at run time */
        {"1 + (", "1", ")"},    {"exists(input.a) || (", "true", ")"},
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        for (size_t n = 60; n <= 70; n++) {
            char *text = repeat("${", shapes[k].open, n, shapes[k].middle, shapes[k].close, "}");
            int bad = compile_count(text, msg, sizeof msg);
            if (n <= 64 && bad != 0)
                fail_msg("shape %zu, %zu levels: %s", k, n, msg);
            if (n > 64 && (bad != 1 || !strstr(msg, "nests more than 64 levels deep at offset")))
                fail_msg("shape %zu, %zu levels: %d errors: %s", k, n, bad, msg);
            free(text);
        }
    }
    /* A left-associated chain is as deep as it is long. */
    for (size_t n = 63; n <= 66; n++) {
        char *text = repeat("${1", " + input.one", n, "", "", "}");
        int bad = compile_count(text, msg, sizeof msg);
        assert_int_equal(bad, n <= 64 ? 0 : 1);
        if (n <= 64) {
            json_t *got = eval_ok_in(text, ctx);
            assert_int_equal(json_integer_value(got), (json_int_t)n + 1);
            json_decref(got);
        } else {
            assert_non_null(strstr(msg, "nests more than 64 levels deep"));
        }
        free(text);
    }
    /* 64 levels evaluate to the right value. */
    char *text = repeat("${", "!", 64, "input.t", "", "}");
    json_t *got = eval_ok_in(text, ctx);
    assert_true(json_is_true(got));
    json_decref(got);
    free(text);
    /* Far beyond the bound: no crash, one error. */
    text = repeat("${", "(", 100000, "1", ")", "}");
    assert_int_equal(compile_count(text, msg, sizeof msg), 1);
    free(text);
    text = repeat("${", "-", 100000, "1", "", "}");
    assert_int_equal(compile_count(text, msg, sizeof msg), 1);
    free(text);
    text = repeat("${1", " + 1", 100000, "", "", "}");
    assert_int_equal(compile_count(text, msg, sizeof msg), 1);
    free(text);
    json_decref(ctx);
}

/* References to steps and loops are reported wherever they are in an expression, in the order
 * they are written, even where short-circuit or exists() would not read them. */
static void test_operator_reports(void **state)
{
    (void)state;
    json_t *tmpl = J("{\"a\": \"${steps.x.output.n > 1 && exists(steps.y.output)}\","
                     " \"b\": \"${len(loops.o.item) + index}\","
                     " \"c\": \"x ${!(item.ok)} ${steps.z.error.type == 'T' || false}\","
                     " \"d\": \"${-(steps.w.output.n) * (1 + steps[\\\"v\\\"].output.m)}\","
                     " \"e\": \"${false && steps.dead.output}\","
                     " \"f\": \"${steps.ok.output} ${steps.bad.output + } ${steps.after.output}\","
                     " \"g\": \"${input.a + (steps.q.output.n - 1) == loops.p.index}\"}");
    struct seen all = {{0}};
    struct expr_reporter r = {on_ref, on_loop_ref, on_error, &all};
    int bad = -1;
    struct expr_template *t = expr_compile_reporting(tmpl, &r, &bad);
    assert_non_null(t);
    assert_int_equal(bad, 1);
    assert_string_equal(all.log,
                        "R /a|steps.x.output.n|x\n"
                        "R /a|steps.y.output|y\n"
                        "L /b|loops.o.item|o\n"
                        "L /b|index|(innermost)\n"
                        "L /c|item.ok|(innermost)\n"
                        "R /c|steps.z.error.type|z\n"
                        "R /d|steps.w.output.n|w\n"
                        "R /d|steps.v.output.m|v\n"
                        "R /e|steps.dead.output|dead\n"
                        "R /f|steps.ok.output|ok\n"
                        "E /f|${steps.bad.output + }: expected an operand after \"+\" at offset "
                        "19\n"
                        "R /g|steps.q.output.n|q\n"
                        "L /g|loops.p.index|p\n");
    expr_template_free(t);
    /* expr_compile and expr_check_template report the step references and errors alike. */
    struct seen old = {{0}}, checked = {{0}};
    t = expr_compile(tmpl, on_ref, on_error, &old, &bad);
    assert_int_equal(bad, 1);
    assert_int_equal(expr_check_template(tmpl, on_ref, on_error, &checked), 1);
    assert_string_equal(old.log, checked.log);
    assert_null(strstr(old.log, "L "));
    assert_non_null(strstr(old.log, "R /d|steps.v.output.m|v\n"));
    expr_template_free(t);
    json_decref(tmpl);
}

/* The strings "+" builds count against the size budget, all of them together; what comparisons
 * and len() read counts against 16 times the budget. Neither is counted for the result, which
 * is measured as always. */
static void test_operator_budget(void **state)
{
    (void)state;
    json_t *ctx = J(OP_CTX);
    static const struct {
        const char *tmpl;
        size_t budget;
        const char *want;    /* the result's JSON, or NULL for an error */
        const char *message; /* then: the message */
    } cases[] = {
        /* input.ten is 10 bytes. */
        {"${len(input.ten + input.ten) > 0}", 20, "true", NULL},
        {"${len(input.ten + input.ten) > 0}", 19, NULL,
         "${len(input.ten + input.ten) > 0}: the strings built by \"+\" are longer than the limit "
         "of 19 bytes in \"input.ten + input.ten\""},
        /* Together: 20 and then 20 more. */
        {"${len(input.ten + input.ten) + len(input.ten + input.ten)}", 40, "40", NULL},
        {"${len(input.ten + input.ten) + len(input.ten + input.ten)}", 39, NULL,
         "${len(input.ten + input.ten) + len(input.ten + input.ten)}: the strings built by \"+\" "
         "are longer than the limit of 39 bytes in \"input.ten + input.ten\""},
        /* A chain builds 20, then 30. */
        {"${len(input.ten + input.ten + input.ten)}", 50, "30", NULL},
        {"${len(input.ten + input.ten + input.ten)}", 49, NULL,
         "${len(input.ten + input.ten + input.ten)}: the strings built by \"+\" are longer than "
         "the limit of 49 bytes in \"input.ten + input.ten + input.ten\""},
        /* Across the expressions of one template. */
        {"${len(input.ten + input.ten)}/${len(input.ten + input.ten)}", 40, "\"20/20\"", NULL},
        {"${len(input.ten + input.ten)}/${len(input.ten + input.ten)}", 39, NULL,
         "${len(input.ten + input.ten)}: the strings built by \"+\" are longer than the limit of "
         "39 bytes in \"input.ten + input.ten\""},
        /* The result itself is measured as ever: 22 bytes of JSON text. */
        {"${input.ten + input.ten}", 22, "\"01234567890123456789\"", NULL},
        {"${input.ten + input.ten}", 21, NULL,
         "the evaluated template is larger than the limit of 21 bytes (its JSON text); reference "
         "smaller values or fewer copies of them"},
        /* Reading: len() of 10 bytes; budget 4 allows 64. */
        {"${len(input.ten) + len(input.ten) + len(input.ten) + len(input.ten) + len(input.ten) + "
         "len(input.ten) > 0}",
         4, "true", NULL},
        {"${len(input.ten) + len(input.ten) + len(input.ten) + len(input.ten) + len(input.ten) + "
         "len(input.ten) + len(input.ten) > 0}",
         4, NULL,
         /* The expression is quoted up to 100 bytes. */
         "${len(input.ten) + len(input.ten) + len(input.ten) + len(input.ten) + len(input.ten) + "
         "len(input.ten) ...}: the values compared or measured are larger than the limit of 64 "
         "bytes in \"len(input.ten)\""},
        /* ==: one per value and the bytes of strings and keys; [1,2,3] == [1,2,3] reads 4. */
        {"${input.ten == input.ten}", 4, "true", NULL},
        {"${input.items == input.items && input.items == input.items}", 4, "true", NULL},
        {"${input.ten < input.ten}", 5, "false", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *tmpl = json_string(cases[i].tmpl);
        struct expr_template *t = expr_compile(tmpl, NULL, NULL, NULL, NULL);
        for (int round = 0; round < 2; round++) {
            struct expr_error err = {{0}, {0}};
            json_t *got = expr_template_eval(t, ctx, cases[i].budget, &err);
            if (cases[i].want) {
                if (!got)
                    fail_msg("%s (%zu): %s", cases[i].tmpl, cases[i].budget, err.message);
                json_t *want = J(cases[i].want);
                assert_true(json_equal(got, want));
                json_decref(want);
                json_decref(got);
            } else {
                if (got)
                    fail_msg("%s (%zu): evaluated", cases[i].tmpl, cases[i].budget);
                if (strcmp(err.message, cases[i].message) != 0)
                    fail_msg("%s (%zu):\n got  %s\n want %s", cases[i].tmpl, cases[i].budget,
                             err.message, cases[i].message);
            }
        }
        expr_template_free(t);
        json_decref(tmpl);
    }
    /* Large values: reading them costs by their size, so a small budget refuses them early. */
    json_t *big = json_array();
    for (int i = 0; i < 1000; i++)
        json_array_append_new(big, json_integer(i));
    json_t *bctx = json_pack("{s:{s:o}}", "input", "arr", big);
    json_t *tmpl = json_string("${input.arr == input.arr}");
    struct expr_error err;
    json_t *got = expr_eval_template_bounded(tmpl, bctx, 62, &err); /* reads 992 */
    assert_null(got);
    assert_string_equal(err.message, "${input.arr == input.arr}: the values compared or measured "
                                     "are larger than the limit of 992 bytes in \"input.arr == "
                                     "input.arr\"");
    got = expr_eval_template_bounded(tmpl, bctx, 63, &err); /* 1008 >= 1001 */
    assert_true(json_is_true(got));
    json_decref(got);
    json_decref(tmpl);
    json_decref(bctx);
    json_decref(ctx);
}

/* A result that an operator made is the caller's, and the compiled template is immutable:
 * changing one result changes nothing in the next. */
static void test_operator_results_are_independent(void **state)
{
    (void)state;
    json_t *ctx = J(OP_CTX);
    static const char *const texts[] = {"${'a' + 'b'}", "${input.s + 'x'}", "${'lit'}",
                                        "${1 + 2}",     "${input.items}",   "${(input.obj)}"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        json_t *tmpl = json_string(texts[i]);
        struct expr_template *t = expr_compile(tmpl, NULL, NULL, NULL, NULL);
        json_t *first = expr_template_eval(t, ctx, SIZE_MAX, NULL);
        assert_non_null(first);
        json_t *copy = json_deep_copy(first);
        assert_int_equal(first->refcount, 1);
        if (json_is_string(first))
            json_string_set(first, "changed");
        else if (json_is_integer(first))
            json_integer_set(first, 99);
        else if (json_is_array(first))
            json_array_append_new(first, json_null());
        else
            json_object_set_new(first, "new", json_null());
        json_t *second = expr_template_eval(t, ctx, SIZE_MAX, NULL);
        if (!json_equal(second, copy))
            fail_msg("%s: the second evaluation changed", texts[i]);
        json_decref(first);
        json_decref(second);
        json_decref(copy);
        expr_template_free(t);
        json_decref(tmpl);
    }
    json_t *again = J(OP_CTX);
    assert_true(json_equal(ctx, again));
    json_decref(again);
    json_decref(ctx);
}

/* Messages quote at most 100 bytes of an expression, cut on a UTF-8 boundary. */
static void test_operator_long_message(void **state)
{
    (void)state;
    json_t *ctx = J(OP_CTX);
    char *text = repeat("${input.nope + '", "\xc3\xa9", 300, "", "", "'}");
    json_t *tmpl = json_string(text);
    struct expr_error err;
    assert_null(expr_eval_template(tmpl, ctx, &err));
    assert_non_null(strstr(err.message, "...}: \"input\" has no field \"nope\" in \"input.nope\""));
    assert_true(strlen(err.message) < 200);
    json_t *as_json = json_string(err.message);
    assert_non_null(as_json); /* valid UTF-8 */
    json_decref(as_json);
    json_decref(tmpl);
    free(text);
    json_decref(ctx);
}

/* What the operators do in a loop: item, index and loops.<id> like any path. */
static void test_operator_loops(void **state)
{
    (void)state;
    json_t *ctx = J(LOOP_CTX);
    static const struct {
        const char *tmpl;
        const char *want;
    } cases[] = {
        {"${index + 1}", "4"},
        {"${index - 1}", "2"},
        {"${item.sku == 'x' && index > 2}", "true"},
        {"${loops.outer.index * 10 + index}", "13"},
        {"${len(item.tags) == 2}", "true"},
        {"${exists(item.none)}", "true"},
        {"${exists(item.nope)}", "false"},
        {"${item.none == null}", "true"},
        {"${loops.outer.item.list[1] - loops.outer.item.list[0]}", "1"},
        {"#${index + 1} of ${len(input.orders)}", "\"#4 of 2\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *got = eval_ok_in(cases[i].tmpl, ctx);
        json_t *want = J(cases[i].want);
        if (!json_equal(got, want))
            fail_msg("%s: got %s, want %s", cases[i].tmpl, json_dumps(got, JSON_ENCODE_ANY),
                     cases[i].want);
        json_decref(want);
        json_decref(got);
    }
    json_decref(ctx);
}

/* A NUL inside a string literal is a character like any other, in values and in messages. */
static void test_operator_nul_in_literal(void **state)
{
    (void)state;
    json_t *ctx = J(OP_CTX);
    static const char text[] = "${input.nope + 'a\0b' + 'cdef'}";
    json_t *tmpl = json_stringn(text, sizeof text - 1);
    assert_non_null(tmpl);
    struct expr_error err;
    assert_null(expr_eval_template(tmpl, ctx, &err));
    /* The message is cut at the NUL, as C strings are; no byte past the expression is read. */
    assert_string_equal(err.message, "${input.nope + 'a");
    json_decref(tmpl);
    static const char value[] = "${'a\0b' + 'c'}";
    tmpl = json_stringn(value, sizeof value - 1);
    json_t *got = expr_eval_template(tmpl, ctx, &err);
    assert_non_null(got);
    assert_int_equal(json_string_length(got), 4);
    assert_memory_equal(json_string_value(got), "a\0bc", 4);
    json_decref(got);
    json_decref(tmpl);
    static const char length[] = "${len('a\0b') == 3}";
    tmpl = json_stringn(length, sizeof length - 1);
    got = expr_eval_template(tmpl, ctx, &err);
    assert_true(json_is_true(got));
    json_decref(got);
    json_decref(tmpl);
    json_decref(ctx);
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
        cmocka_unit_test(test_operator_values),
        cmocka_unit_test(test_operator_values_compile),
        cmocka_unit_test(test_operator_runtime_errors),
        cmocka_unit_test(test_operator_compile_errors),
        cmocka_unit_test(test_operator_depth),
        cmocka_unit_test(test_operator_reports),
        cmocka_unit_test(test_operator_budget),
        cmocka_unit_test(test_operator_results_are_independent),
        cmocka_unit_test(test_operator_long_message),
        cmocka_unit_test(test_operator_loops),
        cmocka_unit_test(test_operator_nul_in_literal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
