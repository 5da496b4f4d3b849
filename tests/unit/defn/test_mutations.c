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

/* The bytes mutations write into definitions, and into expressions (with their operators). */
static const char defn_alphabet[] = "{}[]\":,${}.\\0123456789azAZ _-ms";
static const char expr_alphabet[] = "{}[]\"'$.\\0123456789aeinstAZ _-+*/%<>=!&|(),";

static void mutate(char *s, size_t len, const char *alphabet, size_t alphabet_len)
{
    int n = 1 + (int)(next_random() % 4);
    for (int k = 0; k < n; k++) {
        size_t at = (size_t)(next_random() % len);
        switch (next_random() % 3) {
        case 0: /* replace a byte */
            s[at] = alphabet[next_random() % alphabet_len];
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
        mutate(s, len, defn_alphabet, sizeof defn_alphabet - 1);
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

/* The errors a check reports: how many, and the first message. */
struct reported {
    int count;
    char first[1024];
};

static void count_error(void *arg, const char *pointer, const char *message)
{
    struct reported *r = arg;
    assert_non_null(pointer);
    assert_non_null(message);
    assert_true(message[0] != '\0');
    if (r->count++ == 0)
        snprintf(r->first, sizeof r->first, "%s", message);
}

static void test_expressions_survive_mutation(void **state)
{
    (void)state;
    json_t *ctx =
        json_loads("{\"input\": {\"a\": [1, {\"b\": \"x\"}], \"odd key\": null, \"n\": 2.5},"
                   " \"steps\": {\"s\": {\"output\": {\"id\": 7, \"list\": [1, 2]}}},"
                   " \"execution\": {\"id\": \"e\", \"workflow\": \"w\"},"
                   " \"item\": {\"x\": 2}, \"index\": 1,"
                   " \"loops\": {\"o\": {\"item\": [5], \"index\": 0}}}",
                   0, NULL);
    assert_non_null(ctx);
    /* Paths first, then expressions with operators, literals and functions, so that the
     * mutations reach every part of the grammar. */
    const char *exprs[] = {
        "${input.a[1].b}",
        "id-${steps.s.output.id}-${input.n}",
        "${input[\"odd key\"]}",
        "$${x} and ${ execution.id }",
        "${steps.s.output.list[1]}",
        "${loops.o.item[0]} ${index} ${item.x}",
        "${input.n * 2 + 1 > 3 && exists(steps.s.output.id)}",
        "${len(input.a) == 2 || !(input.n <= 2.5)}",
        "total ${input.n / 2 - -1} of ${len(steps.s.output.list) % 2}, ${'it\\'s' + 'x' != null}",
        "${(input.a[1].b == 'x') && (1e3 >= 10) || false}",
        "${index - 1} ${loops.o.index * (item.x + 1)}",
        "${steps.s.output.id % 4 == 3 && len('\xc3\xa9t\xc3\xa9') < 4 || input[\"odd key\"] == "
        "null}",
        "${exists(input.zz) || input.n - 9223372036854775807 < -1.5e2}",
    };
    const int first_operator_seed = 6;
    int evaluated = 0, failed = 0, op_evaluated = 0, op_failed = 0, op_malformed = 0;
    for (int it = 0; it < ITERATIONS; it++) {
        int which = it % (int)(sizeof exprs / sizeof exprs[0]);
        const char *seed = exprs[which];
        size_t len = strlen(seed);
        char *s = strdup(seed);
        mutate(s, len, expr_alphabet, sizeof expr_alphabet - 1);
        json_t *tmpl = json_stringn(s, len);
        if (!tmpl) {
            free(s);
            continue; /* not valid UTF-8: such a string cannot reach the engine */
        }
        struct reported errors = {0, ""};
        expr_check_template(tmpl, NULL, count_error, &errors);
        struct expr_error err;
        json_t *v = expr_eval_template(tmpl, ctx, &err);
        /* Check and evaluation agree: a string with a malformed expression never evaluates, and
         * fails with the message the check reported for it. */
        assert_true(errors.count <= 1);
        if (errors.count) {
            assert_null(v);
            assert_string_equal(err.message, errors.first);
        }
        /* A compiled template evaluates the same way twice. */
        struct expr_template *t = expr_compile(tmpl, NULL, NULL, NULL, NULL);
        json_t *once = expr_template_eval(t, ctx, SIZE_MAX, NULL);
        json_t *twice = expr_template_eval(t, ctx, SIZE_MAX, NULL);
        assert_true((once == NULL) == (v == NULL));
        assert_true((twice == NULL) == (v == NULL));
        assert_true(!v || (json_equal(v, once) && json_equal(v, twice)));
        json_decref(once);
        json_decref(twice);
        expr_template_free(t);
        if (v) {
            evaluated++;
            op_evaluated += which >= first_operator_seed;
            json_decref(v);
        } else {
            failed++;
            op_failed += which >= first_operator_seed;
            op_malformed += which >= first_operator_seed && errors.count;
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
    /* The operator seeds reach both sides too, and the checks of the grammar. */
    assert_true(op_evaluated > 0);
    assert_true(op_failed > op_malformed);
    assert_true(op_malformed > 0);
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
