/* Mutation testing of the parsers: thousands of byte-level mutations of valid definitions and
 * expressions, fed to the JSON loader, defn_parse, the canonicaliser and the expression
 * checker and evaluator. Nothing may crash, leak (the suite also runs under ASan/LSan) or
 * disagree with itself: a definition either parses or reports at least one error, and every
 * reported error carries a pointer and a message. The seed is fixed, so a failure reproduces. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "defn/canon.h"
#include "defn/defn.h"
#include "defn/duration.h"
#include "defn/expr.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITERATIONS 40000

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t next_random(void)
{
    /* xorshift64*: deterministic, so a failing case can be found again from its iteration. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static const char *const seeds[] = {
    "{\"name\": \"order\", \"defaults\": {\"timeout\": \"30s\", \"retry\": {\"max_attempts\": 5, "
    "\"initial_interval\": \"1s\", \"backoff_coefficient\": 2.0, \"max_interval\": \"5m\", "
    "\"non_retryable_errors\": [\"PaymentDeclined\"]}}, \"steps\": [{\"id\": \"charge\", "
    "\"activity\": {\"url\": \"http://p/charge\", \"input\": {\"order\": \"${input.order_id}\", "
    "\"amount\": \"${input.total}\"}}, \"compensate\": {\"url\": \"http://p/refund\", \"input\": "
    "{\"id\": \"${steps.charge.output.id}\"}}}, {\"id\": \"approval\", \"wait\": {\"signal\": "
    "\"approve\", \"timeout\": \"72h\"}, \"on_timeout\": \"fail\"}, {\"id\": \"cool\", \"sleep\": "
    "\"3d\"}, {\"id\": \"ship\", \"activity\": {\"url\": \"http://s/${input.region}/ship\"}, "
    "\"timeout\": \"10s\", \"retry\": {\"max_attempts\": 10}}], \"output\": {\"c\": "
    "\"${steps.charge.output}\", \"by\": \"${steps.approval.output.user}\"}}",
    "{\"name\": \"t\", \"steps\": [{\"id\": \"a\", \"sleep_until\": \"${input.at}\"}, {\"id\": "
    "\"b\", \"activity\": {\"url\": \"https://x/y\", \"input\": [\"${steps.a.output}\", "
    "\"$${literal}\", \"${input.list[3]}\", \"${input[\\\"odd key\\\"]}\"]}}]}",
    /* Flow steps: a for_each in a parallel in a for_each, with loop references. */
    "{\"name\": \"n\", \"steps\": [{\"id\": \"o\", \"for_each\": {\"items\": "
    "\"${input.r}\", \"concurrency\": 3, \"steps\": [{\"id\": \"p\", \"parallel\": "
    "{\"branches\": {\"b\": [{\"id\": \"s\", \"sleep\": \"1s\"}], \"a\": [{\"id\": \"e\", "
    "\"activity\": {\"url\": \"http://h/${item.n}\", \"input\": \"${index}\"}}, {\"id\": "
    "\"i\", \"for_each\": {\"items\": \"${steps.e.output}\", \"steps\": [{\"id\": \"l\", "
    "\"activity\": {\"url\": \"http://h\", \"input\": [\"${loops.o.index}\", \"${item}\", "
    "\"${steps.e.output}\"]}}]}}]}}}]}}], \"output\": {\"o\": \"${steps.o.output}\"}}",
};

static void mutate(char *s, size_t len)
{
    static const char alphabet[] = "{}[]\":,${}.\\0123456789azAZ _-ms";
    int n = 1 + (int)(next_random() % 4);
    for (int k = 0; k < n; k++) {
        size_t at = (size_t)(next_random() % len);
        switch (next_random() % 3) {
        case 0: /* replace a byte */
            s[at] = alphabet[next_random() % (sizeof alphabet - 1)];
            break;
        case 1: /* duplicate a span over the next bytes */
            if (at + 8 < len)
                memcpy(s + at, s + at / 2, 8);
            break;
        default: /* truncate with a space */
            s[at] = ' ';
            break;
        }
    }
}

static void check_errors(json_t *errors)
{
    assert_true(json_is_array(errors));
    assert_true(json_array_size(errors) > 0);
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *ptr = json_string_value(json_object_get(e, "pointer"));
        assert_non_null(ptr);
        assert_true(ptr[0] == '\0' || ptr[0] == '/');
        assert_non_null(json_string_value(json_object_get(e, "message")));
    }
}

static void test_definitions_survive_mutation(void **state)
{
    (void)state;
    int parsed = 0, rejected = 0;
    for (int it = 0; it < ITERATIONS; it++) {
        const char *seed = seeds[it % (sizeof seeds / sizeof seeds[0])];
        size_t len = strlen(seed);
        char *s = strdup(seed);
        mutate(s, len);
        json_t *doc = json_loads(s, JSON_DECODE_ANY, NULL);
        if (doc) {
            struct defn *d = NULL;
            json_t *errors = NULL;
            if (defn_parse(doc, &d, &errors) == 0) {
                assert_non_null(d);
                assert_null(errors);
                assert_true(d->n_steps >= 1);
                char *canon = defn_canonical_json(doc);
                assert_non_null(canon);
                /* The canonical form parses back to itself. */
                json_t *again = json_loads(canon, 0, NULL);
                assert_non_null(again);
                char *canon2 = defn_canonical_json(again);
                assert_string_equal(canon, canon2);
                free(canon2);
                json_decref(again);
                free(canon);
                defn_free(d);
                parsed++;
            } else {
                assert_null(d);
                check_errors(errors);
                json_decref(errors);
                rejected++;
            }
            json_decref(doc);
        }
        free(s);
    }
    /* The mutations reach both sides of the validator. */
    assert_true(parsed > 0);
    assert_true(rejected > 0);
}

static void count_error(void *arg, const char *pointer, const char *message)
{
    assert_non_null(pointer);
    assert_non_null(message);
    (*(int *)arg)++;
}

static void test_expressions_survive_mutation(void **state)
{
    (void)state;
    json_t *ctx =
        json_loads("{\"input\": {\"a\": [1, {\"b\": \"x\"}], \"odd key\": null, \"n\": 2.5},"
                   " \"steps\": {\"s\": {\"output\": {\"id\": 7, \"list\": [1, 2]}}},"
                   " \"execution\": {\"id\": \"e\", \"workflow\": \"w\"}}",
                   0, NULL);
    assert_non_null(ctx);
    const char *exprs[] = {"${input.a[1].b}",           "id-${steps.s.output.id}-${input.n}",
                           "${input[\"odd key\"]}",     "$${x} and ${ execution.id }",
                           "${steps.s.output.list[1]}", "${loops.o.item[0]} ${index} ${item.x}"};
    int evaluated = 0, failed = 0;
    for (int it = 0; it < ITERATIONS; it++) {
        const char *seed = exprs[it % (sizeof exprs / sizeof exprs[0])];
        size_t len = strlen(seed);
        char *s = strdup(seed);
        mutate(s, len);
        json_t *tmpl = json_stringn(s, len);
        if (!tmpl) {
            free(s);
            continue; /* not valid UTF-8: such a string cannot reach the engine */
        }
        int errors = 0;
        expr_check_template(tmpl, NULL, count_error, &errors);
        struct expr_error err;
        json_t *v = expr_eval_template(tmpl, ctx, &err);
        if (v) {
            evaluated++;
            json_decref(v);
        } else {
            failed++;
            assert_true(err.message[0] != '\0');
        }
        json_t *dur = json_string(s);
        int64_t ms;
        const char *why;
        if (dur && !defn_parse_duration(dur, &ms, &why))
            assert_non_null(why);
        json_decref(dur);
        json_decref(tmpl);
        free(s);
    }
    assert_true(evaluated > 0);
    assert_true(failed > 0);
    json_decref(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_definitions_survive_mutation),
        cmocka_unit_test(test_expressions_survive_mutation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
