/* util/jsonlimits: depth, encoded size (checked against json_dumps) and NUL search. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/jsonlimits.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    assert_non_null(v);
    return v;
}

static void depth(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        size_t depth;
    } cases[] = {{"1", 0},
                 {"[]", 1},
                 {"{}", 1},
                 {"[[1]]", 2},
                 {"{\"a\": [{\"b\": {}}]}", 4},
                 {"[1, [2, [3]], 4]", 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = parse(cases[i].json);
        assert_false(json_depth_exceeds(v, cases[i].depth));
        if (cases[i].depth > 0)
            assert_true(json_depth_exceeds(v, cases[i].depth - 1));
        json_decref(v);
    }
    assert_false(json_depth_exceeds(NULL, 0));
}

/* The size is exactly what json_dumps writes, for every kind of value and escape. */
static void size_matches_dumps(void **state)
{
    (void)state;
    static const char *const cases[] = {"null",
                                        "true",
                                        "false",
                                        "0",
                                        "-12345678901234",
                                        "\"\"",
                                        "\"a\\\"b\\\\c\\n\\t\\u0001\"",
                                        "\"\\u00e9\\u20ac\"",
                                        "[]",
                                        "{}",
                                        "[1, 2, [3, {}]]",
                                        "{\"k\\\"\": [null, \"x\"], \"b\": {}}",
                                        "\"\\u007f\""};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = parse(cases[i]);
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (json_encoded_size(v, SIZE_MAX) != strlen(text))
            fail_msg("%s: %zu, dumps %zu (%s)", cases[i], json_encoded_size(v, SIZE_MAX),
                     strlen(text), text);
        free(text);
        json_decref(v);
    }
    /* Reals count as an upper bound. */
    json_t *r = json_real(0.1);
    char *text = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_true(json_encoded_size(r, SIZE_MAX) >= strlen(text));
    free(text);
    json_decref(r);
}

/* Measuring stops past the limit: the answer is only "more than limit". */
static void size_stops_at_limit(void **state)
{
    (void)state;
    json_t *a = json_array();
    for (int i = 0; i < 1000; i++)
        json_array_append_new(a, json_string("0123456789"));
    size_t full = json_encoded_size(a, SIZE_MAX);
    assert_int_equal(full, 2 + 999 + 1000 * 12);
    assert_true(json_encoded_size(a, 100) > 100);
    assert_int_equal(json_encoded_size(a, full), full);
    json_decref(a);
}

static void find_nul(void **state)
{
    (void)state;
    char ptr[64];
    json_t *v = parse("{\"a\": [1, \"x\\u0000\"], \"b/~\": \"\\u0000\"}");
    assert_true(json_find_nul(v, ptr, sizeof ptr));
    assert_string_equal(ptr, "/a/1");
    json_decref(v);
    v = parse("{\"b/~\": [\"\\u0000\"]}");
    assert_true(json_find_nul(v, ptr, sizeof ptr));
    assert_string_equal(ptr, "/b~1~0/0");
    json_decref(v);
    v = parse("\"\\u0000\"");
    assert_true(json_find_nul(v, ptr, sizeof ptr));
    assert_string_equal(ptr, "");
    json_decref(v);
    v = parse("{\"a\": [1, \"x\"]}");
    assert_false(json_find_nul(v, ptr, sizeof ptr));
    assert_string_equal(ptr, "");
    assert_false(json_find_nul(v, NULL, 0));
    json_decref(v);
    /* A pointer that does not fit is cut, still NUL-terminated. */
    v = parse("{\"abcdefgh\": \"\\u0000\"}");
    char small[4];
    assert_true(json_find_nul(v, small, sizeof small));
    assert_string_equal(small, "/ab");
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(depth),
        cmocka_unit_test(size_matches_dumps),
        cmocka_unit_test(size_stops_at_limit),
        cmocka_unit_test(find_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
