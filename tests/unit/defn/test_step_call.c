/* The body of a step call (defn_parse_step_call): each kind parses into the step a definition
 * would hold, with the key as its id and its strings as data; every mistake is an error at the
 * body's own pointer. */
#include "defn/defn.h"
#include "defn/expr.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Test bodies are written with single quotes, which become double quotes here. */
static json_t *Jq(const char *text)
{
    char *copy = strdup(text);
    for (char *c = copy; *c; c++)
        if (*c == '\'')
            *c = '"';
    json_error_t e;
    json_t *v = json_loads(copy, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad test JSON %s: %s", copy, e.text);
    free(copy);
    return v;
}

static struct defn_step *parse_ok(const char *text)
{
    json_t *body = Jq(text);
    struct defn_step *st = NULL;
    json_t *errors = NULL;
    if (defn_parse_step_call(body, "k:1@x", &st, &errors) != 0) {
        char *dump = json_dumps(errors, 0);
        fail_msg("%s\nrejected: %s", text, dump);
    }
    assert_null(errors);
    assert_string_equal(st->id, "k:1@x");
    json_decref(body);
    return st;
}

/* Evaluates a compiled template with an empty context. */
static json_t *eval(const struct expr_template *t)
{
    json_t *ctx = json_pack("{s:{}, s:{}}", "input", "steps");
    json_t *v = expr_template_eval(t, ctx, SIZE_MAX, NULL);
    json_decref(ctx);
    assert_non_null(v);
    return v;
}

static void each_kind_parses(void **state)
{
    (void)state;
    struct defn_step *st = parse_ok("{'output': {'a': [1, '${input.x}', '$$']}}");
    assert_int_equal(st->kind, DEFN_STEP_SET);
    json_t *v = eval(st->set_expr);
    json_t *want = Jq("{'a': [1, '${input.x}', '$$']}");
    assert_true(json_equal(v, want));
    json_decref(v);
    json_decref(want);
    defn_step_free(st);

    st = parse_ok("{'sleep': '90s'}");
    assert_int_equal(st->kind, DEFN_STEP_SLEEP);
    assert_int_equal(st->sleep_ms, 90000);
    defn_step_free(st);

    st = parse_ok("{'sleep_until': '2030-01-31T09:00:00Z'}");
    assert_int_equal(st->kind, DEFN_STEP_SLEEP_UNTIL);
    defn_step_free(st);

    st = parse_ok("{'wait': {'any': ['yes', 'no'], 'timeout': '1h'}, 'on_timeout': 'continue'}");
    assert_int_equal(st->kind, DEFN_STEP_WAIT);
    assert_int_equal(st->n_any, 2);
    assert_int_equal(st->wait_timeout_ms, 3600000);
    assert_int_equal(st->on_timeout, DEFN_ON_TIMEOUT_CONTINUE);
    defn_step_free(st);

    /* An activity's settings sit in "activity"; they mean what a definition's mean. */
    st = parse_ok("{'activity': {'url': 'http://pay.internal/charge?x=${a}', "
                  "'input': {'amount': '${input.total}'}, 'timeout': '5s', "
                  "'retry': {'max_attempts': 3}}, "
                  "'compensate': {'url': 'http://pay.internal/refund', 'input': 1}}");
    assert_int_equal(st->kind, DEFN_STEP_ACTIVITY);
    assert_int_equal(st->activity.timeout_ms, 5000);
    assert_int_equal(st->activity.retry.max_attempts, 3);
    assert_non_null(st->compensate);
    v = eval(st->activity.url_expr);
    assert_string_equal(json_string_value(v), "http://pay.internal/charge?x=${a}");
    json_decref(v);
    v = eval(st->activity.input_expr);
    want = Jq("{'amount': '${input.total}'}");
    assert_true(json_equal(v, want));
    json_decref(v);
    json_decref(want);
    defn_step_free(st);
}

struct bad {
    const char *body;
    const char *pointer;
    const char *message_part;
};

static void mistakes_name_their_pointer(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {"[1]", "", "must be a JSON object"},
        {"{}", "", "needs one of activity, output, sleep, sleep_until or wait"},
        {"{'output': 1, 'sleep': '1s'}", "", "has both output and sleep"},
        {"{'output': 1, 'extra': 2}", "/extra", "unknown field"},
        {"{'output': 1, 'retry': 2}", "/retry", "unknown field"},
        {"{'outptu': 1}", "/outptu", "did you mean \"output\""},
        {"{'output': 1, 'compensate': {'url': 'http://a'}}", "/compensate",
         "only to activity step calls"},
        {"{'sleep': '1s', 'on_timeout': 'fail'}", "/on_timeout", "only to wait step calls"},
        {"{'activity': 'http://a'}", "/activity", "must be an object"},
        {"{'activity': {'input': 1}}", "/activity", "missing required field \"url\""},
        {"{'activity': {'url': 'ftp://a'}}", "/activity/url", "http:// or https://"},
        {"{'activity': {'url': 'http://a', 'urll': 1}}", "/activity/urll", "unknown field"},
        {"{'activity': {'url': 'http://a', 'timeout': '0s'}}", "/activity/timeout", ""},
        {"{'activity': {'url': 'http://a', 'retry': {'max_attempts': 0}}}",
         "/activity/retry/max_attempts", ""},
        {"{'activity': {'url': 'http://a'}, 'compensate': {'url': 1}}", "/compensate/url",
         "must be a string"},
        {"{'sleep': 'soon'}", "/sleep", ""},
        {"{'sleep_until': 'tomorrow'}", "/sleep_until", "RFC 3339"},
        {"{'sleep_until': '${input.at}'}", "/sleep_until", "RFC 3339"},
        {"{'wait': {'signal': 'no spaces'}}", "/wait/signal", "1 to 128 characters"},
        {"{'wait': {'signal': 'a', 'timeout': 'x'}}", "/wait/timeout", ""},
        {"{'wait': {'signal': 'a'}, 'on_timeout': 'continue'}", "/on_timeout",
         "no effect without a wait.timeout"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *body = Jq(cases[i].body);
        struct defn_step *st = NULL;
        json_t *errors = NULL;
        if (defn_parse_step_call(body, "k", &st, &errors) == 0)
            fail_msg("%s: accepted", cases[i].body);
        assert_null(st);
        bool found = false;
        size_t k;
        json_t *e;
        json_array_foreach(errors, k, e)
        {
            const char *ptr = json_string_value(json_object_get(e, "pointer"));
            const char *msg = json_string_value(json_object_get(e, "message"));
            if (!strcmp(ptr, cases[i].pointer) && strstr(msg, cases[i].message_part))
                found = true;
        }
        if (!found) {
            char *dump = json_dumps(errors, 0);
            fail_msg("%s: want %s \"%s\", got %s", cases[i].body, cases[i].pointer,
                     cases[i].message_part, dump);
        }
        /* The messages of a step call never suggest an expression. */
        json_array_foreach(errors, k, e)
        {
            assert_null(strstr(json_string_value(json_object_get(e, "message")), "${"));
        }
        json_decref(errors);
        json_decref(body);
    }
}

static void the_kind_is_named(void **state)
{
    (void)state;
    static const char *const bodies[][2] = {
        {"{'output': null}", "output"},
        {"{'sleep': '1s'}", "sleep"},
        {"{'wait': {}}", "wait"},
        {"{'activity': 1, 'compensate': 2}", "activity"},
        {"{'sleep_until': 1}", "sleep_until"},
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        json_t *b = Jq(bodies[i][0]);
        assert_string_equal(defn_step_call_kind(b), bodies[i][1]);
        json_decref(b);
    }
    json_t *b = Jq("{'output': 1, 'sleep': '1s'}");
    assert_null(defn_step_call_kind(b));
    json_decref(b);
    b = Jq("{}");
    assert_null(defn_step_call_kind(b));
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_kind_parses),
        cmocka_unit_test(mistakes_name_their_pointer),
        cmocka_unit_test(the_kind_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
