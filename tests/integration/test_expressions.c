/* Expressions with operators (issue 11, point 2) through a real keeld and PostgreSQL: a
 * definition whose constant part cannot be evaluated, or that does not parse, is refused at
 * registration with the JSON Pointer of the string; one that is well-formed runs, its values are
 * the operators' (typed as JSON: 4 is not 4.0 or "4"), and a type or arithmetic error at run time
 * fails the step with an "expression" error naming the expression and the part. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char secret_env[256];

static int group_setup(void **state)
{
    (void)state;
    snprintf(secret_env, sizeof secret_env, "KEEL_WEBHOOK_SECRET=%s",
             harness_env("KEEL_TEST_WEBHOOK_SECRET"));
    return 0;
}

static const char *const *env(void)
{
    static const char *e[2];
    e[0] = secret_env;
    e[1] = NULL;
    return e;
}

/* A well-formed definition: a set step with operators of every kind, and one whose division by
 * input.n fails when n is 0. */
static const char *const CALC =
    "{\"name\": \"calc\", \"steps\": ["
    " {\"id\": \"totals\", \"set\": {"
    "   \"big\": \"${input.total > 1000 && input.country == 'DE'}\","
    "   \"count\": \"${len(input.items)}\","
    "   \"has_coupon\": \"${exists(input.coupon) && input.coupon != null}\","
    "   \"half\": \"${input.total / 2}\","
    "   \"share\": \"${input.total / 3}\","
    "   \"label\": \"order ${input.id}: ${input.total - input.discount} EUR\"}},"
    " {\"id\": \"ratio\", \"set\": \"${steps.totals.output.half / input.n}\"}],"
    " \"output\": {\"totals\": \"${steps.totals.output}\", \"ratio\": \"${steps.ratio.output}\"}}";

static void test_registration_refuses_malformed(void **state)
{
    (void)state;
    char *db = NULL;
    struct proc k, receiver;
    stack_start("keel_it_expr_reg", env(), &db, &k, &receiver);
    struct hreply r;
    http_post_expect(k.base_url, "/v1/workflows",
                     "{\"name\": \"bad\", \"steps\": [{\"id\": \"s\", \"set\": {\"a\": \"${input.a "
                     "+}\", \"b\": [\"ok\", \"x ${1 / 0} y\"], \"c\": \"${index-1}\"}}]}",
                     422, &r);
    assert_problem(&r, 422, "invalid-definition");
    char *errors = json_dumps(json_object_get(r.json, "errors"), JSON_COMPACT);
    assert_string_equal(
        errors,
        "[{\"pointer\":\"/steps/0/set/a\",\"message\":\"${input.a +}: expected an operand "
        "after \\\"+\\\" at offset 9\"},{\"pointer\":\"/steps/0/set/b/1\",\"message\":\"${1 "
        "/ 0}: division by zero in \\\"1 / 0\\\"\"},{\"pointer\":\"/steps/0/set/c\","
        "\"message\":\"${index-1}: unknown root \\\"index-1\\\"; a path starts with input, "
        "steps.<id>, execution, item, index or loops.<id>; to subtract, put spaces around "
        "\\\"-\\\": index - 1\"}]");
    free(errors);
    hreply_free(&r);
    /* Nothing was stored. */
    http_get(k.base_url, "/v1/workflows/bad", &r);
    assert_int_equal(r.status, 404);
    hreply_free(&r);
    stack_stop(&db, &k, &receiver);
}

static void test_operators_run(void **state)
{
    (void)state;
    char *db = NULL;
    struct proc k, receiver;
    stack_start("keel_it_expr_run", env(), &db, &k, &receiver);
    http_post_expect(k.base_url, "/v1/workflows", CALC, 201, NULL);

    http_post_expect(
        k.base_url, "/v1/workflows/calc/executions",
        "{\"id\": \"calc-1\", \"input\": {\"id\": \"A1\", \"total\": 1500, \"country\": "
        "\"DE\", \"items\": [\"x\", \"y\"], \"discount\": 20, \"n\": 4}}",
        201, NULL);
    json_t *done = wait_result(k.base_url, "calc-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    char *out = json_dumps(json_object_get(done, "output"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(out, "{\"ratio\":187.5,\"totals\":{\"big\":true,\"count\":2,"
                             "\"half\":750,\"has_coupon\":false,\"label\":\"order A1: 1480 EUR\","
                             "\"share\":500}}");
    free(out);
    /* 750 is an integer, 187.5 a real, as they were computed. */
    json_t *totals = json_object_get(json_object_get(done, "output"), "totals");
    assert_true(json_is_integer(json_object_get(totals, "half")));
    assert_true(json_is_real(json_object_get(json_object_get(done, "output"), "ratio")));
    json_decref(done);

    /* Division by zero at run time: the step fails with an expression error. */
    http_post_expect(k.base_url, "/v1/workflows/calc/executions",
                     "{\"id\": \"calc-2\", \"input\": {\"id\": \"A2\", \"total\": 10, \"country\": "
                     "\"FR\", \"items\": [1], \"discount\": 0, \"n\": 0}}",
                     201, NULL);
    done = wait_result(k.base_url, "calc-2");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "failed");
    json_t *err = json_object_get(done, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "expression");
    assert_string_equal(json_string_value(json_object_get(err, "step")), "ratio");
    assert_string_equal(json_string_value(json_object_get(err, "message")),
                        "${steps.totals.output.half / input.n}: division by zero in "
                        "\"steps.totals.output.half / input.n\"");
    json_decref(done);

    /* A type error at run time: comparing a number with a string. */
    http_post_expect(k.base_url, "/v1/workflows/calc/executions",
                     "{\"id\": \"calc-3\", \"input\": {\"id\": \"A3\", \"total\": \"1500\", "
                     "\"country\": \"DE\", \"items\": [1], \"discount\": 0, \"n\": 1}}",
                     201, NULL);
    done = wait_result(k.base_url, "calc-3");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "failed");
    err = json_object_get(done, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "expression");
    assert_string_equal(json_string_value(json_object_get(err, "step")), "totals");
    assert_string_equal(json_string_value(json_object_get(err, "message")),
                        "${input.total > 1000 && input.country == 'DE'}: cannot compare string "
                        "with number in \"input.total > 1000\"");
    json_decref(done);
    stack_stop(&db, &k, &receiver);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registration_refuses_malformed),
        cmocka_unit_test(test_operators_run),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
