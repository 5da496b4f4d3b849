/* Canonical JSON and the definition digest. */
#include "defn/canon.h"
#include "defn/defn.h"
#include "util/jsontext.h"

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
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return v;
}

static char *canon(const char *text)
{
    json_t *v = J(text);
    char *c = defn_canonical_json(v);
    json_decref(v);
    assert_non_null(c);
    return c;
}

/* Input JSON text and its exact canonical text. */
static const struct {
    const char *in;
    const char *out;
} cases[] = {
    {"{\"b\": 1, \"a\": [true, false, null, \"x\"], \"c\": {\"z\": 1.5, \"y\": \"\\u00e9\"}}",
     "{\"a\":[true,false,null,\"x\"],\"b\":1,\"c\":{\"y\":\"\xc3\xa9\",\"z\":1.5}}"},
    {"  {  }  ", "{}"},
    {"[ ]", "[]"},
    {"[[], {}, [{}]]", "[[],{},[{}]]"},
    {"\"x\"", "\"x\""},
    {"null", "null"},
    {"0", "0"},
    {"-0", "0"},
    {"9223372036854775807", "9223372036854775807"},
    {"-9223372036854775808", "-9223372036854775808"},
    /* Reals: the shortest text that reads back the same, and always a real. */
    {"0.1", "0.1"},
    {"19.99", "19.99"},
    {"2.0", "2.0"},
    {"2.50", "2.5"},
    {"-0.0", "-0.0"},
    {"1e300", "1e+300"},
    {"1E2", "100.0"},
    {"1.5e-7", "1.5e-07"},
    {"100000000000000000000.0", "100000000000000000000.0"},
    {"1e21", "1e+21"},
    {"123e18", "123000000000000000000.0"},
    {"0.00001", "1e-05"},
    {"0.0001", "0.0001"},
    {"123456789.123", "123456789.123"},
    {"0.30000000000000004", "0.30000000000000004"},
    {"5e-324", "5e-324"},
    {"1.7976931348623157e308", "1.7976931348623157e+308"},
    /* Strings: UTF-8 as is; only quote, backslash and control characters escaped. */
    {"\"a\\\"b\\\\c/d\"", "\"a\\\"b\\\\c/d\""},
    {"\"\\b\\f\\n\\r\\t\"", "\"\\b\\f\\n\\r\\t\""},
    {"\"\\u0000\\u0001\\u001f\\u0020\\u007f\"", "\"\\u0000\\u0001\\u001f \x7f\""},
    {"\"\\u2028\\ud83d\\ude00\"", "\"\xe2\x80\xa8\xf0\x9f\x98\x80\""},
    {"\"\\/\"", "\"/\""},
    {"\"a\\u0000b\"", "\"a\\u0000b\""},
    /* Keys by their UTF-8 bytes, which is code point order. */
    {"{\"\\u00e9\": 1, \"aa\": 2, \"a\": 3, \"B\": 4, \"\": 5, \"ab\": 6}",
     "{\"\":5,\"B\":4,\"a\":3,\"aa\":2,\"ab\":6,\"\xc3\xa9\":1}"},
    {"{\"b\": {\"d\": [ {\"f\": 1, \"e\": 2} ], \"c\": 3}, \"a\": 0}",
     "{\"a\":0,\"b\":{\"c\":3,\"d\":[{\"e\":2,\"f\":1}]}}"},
};

static void test_canonical_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *c = canon(cases[i].in);
        if (strcmp(c, cases[i].out) != 0)
            fail_msg("%s:\n got  %s\n want %s", cases[i].in, c, cases[i].out);
        free(c);
    }
}

/* canonical(parse(canonical(x))) == canonical(x), and the types survive. */
static void test_canonical_idempotent(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = J(cases[i].in);
        char *once = defn_canonical_json(v);
        json_t *back = J(once);
        char *twice = defn_canonical_json(back);
        assert_string_equal(once, twice);
        assert_true(json_equal(v, back));
        json_decref(back);
        json_decref(v);
        free(once);
        free(twice);
    }
}

static const char A[] =
    "{\"name\": \"order\", \"steps\": [{\"id\": \"charge\", \"activity\": {\"url\": "
    "\"http://p/charge\", \"input\": {\"amount\": \"${input.total}\", \"order\": "
    "\"${input.order_id}\"}}}], \"defaults\": {\"timeout\": \"30s\"}}";
static const char A_REORDERED[] =
    "{\n  \"defaults\" : { \"timeout\" : \"30s\" },\n  \"steps\" : [ {\n    \"activity\" : {\n"
    "      \"input\" : { \"order\" : \"${input.order_id}\", \"amount\" : \"${input.total}\" },\n"
    "      \"url\" : \"http://p/charge\"\n    },\n    \"id\" : \"charge\"\n  } ],\n"
    "  \"name\" : \"order\"\n}\n";

static void test_same_definition_same_digest(void **state)
{
    (void)state;
    char *a = canon(A), *b = canon(A_REORDERED);
    assert_string_equal(a, b);
    char da[65], db[65];
    defn_digest_hex(a, da);
    defn_digest_hex(b, db);
    assert_string_equal(da, db);
    assert_int_equal(strlen(da), 64);
    for (size_t i = 0; i < 64; i++)
        assert_non_null(strchr("0123456789abcdef", da[i]));
    free(a);
    free(b);
}

static void test_different_definition_different_digest(void **state)
{
    (void)state;
    static const char *const variants[] = {
        /* a value changed */
        "{\"name\": \"order\", \"steps\": [{\"id\": \"charge\", \"activity\": {\"url\": "
        "\"http://p/charge2\", \"input\": {\"amount\": \"${input.total}\", \"order\": "
        "\"${input.order_id}\"}}}], \"defaults\": {\"timeout\": \"30s\"}}",
        /* an integer where there was a string */
        "{\"name\": \"order\", \"steps\": [{\"id\": \"charge\", \"activity\": {\"url\": "
        "\"http://p/charge\", \"input\": {\"amount\": \"${input.total}\", \"order\": "
        "\"${input.order_id}\"}}}], \"defaults\": {\"timeout\": 30000}}",
        /* array order matters */
        "{\"name\": \"order\", \"steps\": [{\"id\": \"charge\", \"activity\": {\"url\": "
        "\"http://p/charge\", \"input\": [\"${input.total}\", \"${input.order_id}\"]}}], "
        "\"defaults\": {\"timeout\": \"30s\"}}",
        "{\"name\": \"order\", \"steps\": [{\"id\": \"charge\", \"activity\": {\"url\": "
        "\"http://p/charge\", \"input\": [\"${input.order_id}\", \"${input.total}\"]}}], "
        "\"defaults\": {\"timeout\": \"30s\"}}",
    };
    char *base = canon(A);
    char dbase[65];
    defn_digest_hex(base, dbase);
    char seen[4][65];
    for (size_t i = 0; i < 4; i++) {
        char *c = canon(variants[i]);
        defn_digest_hex(c, seen[i]);
        assert_string_not_equal(seen[i], dbase);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(seen[i], seen[j]);
        free(c);
    }
    free(base);
    /* 2 and 2.0 are different texts, so different versions; documented. */
    char *i2 = canon("{\"x\": 2}"), *r2 = canon("{\"x\": 2.0}");
    assert_string_not_equal(i2, r2);
    free(i2);
    free(r2);
}

/* Known SHA-256 vectors (FIPS 180-2). */
static void test_digest_vectors(void **state)
{
    (void)state;
    char out[65];
    defn_digest_hex("", out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    defn_digest_hex("abc", out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    defn_digest_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", out);
    assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    defn_digest_hex(NULL, out); /* as the empty text */
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* jansson can hold keys with a NUL byte (though it cannot parse them); they sort and escape. */
static void test_nul_in_key(void **state)
{
    (void)state;
    json_t *v = json_object();
    json_object_setn_new(v, "a\0b", 3, json_integer(1));
    json_object_setn_new(v, "a", 1, json_integer(2));
    json_object_setn_new(v, "a\0a", 3, json_integer(3));
    char *c = defn_canonical_json(v);
    assert_string_equal(c, "{\"a\":2,\"a\\u0000a\":3,\"a\\u0000b\":1}");
    free(c);
    json_decref(v);
}

static void test_null_document(void **state)
{
    (void)state;
    assert_null(defn_canonical_json(NULL));
}

/* Without sorting, members keep the order they were inserted in. */
static void test_append_insertion_order(void **state)
{
    (void)state;
    json_t *v = J("{\"b\": 1, \"a\": {\"d\": 2.5, \"c\": [1, \"x\"]}}");
    struct buf b = BUF_INIT;
    buf_puts(&b, "pre:");
    assert_true(json_text_append(&b, v, false));
    assert_string_equal(b.data, "pre:{\"b\":1,\"a\":{\"d\":2.5,\"c\":[1,\"x\"]}}");
    buf_reset(&b);
    assert_true(json_text_append(&b, v, true));
    assert_string_equal(b.data, "{\"a\":{\"c\":[1,\"x\"],\"d\":2.5},\"b\":1}");
    buf_free(&b);
    json_decref(v);
}

/* A large document: every member in order, and the text parses back to an equal value. */
static void test_large_document(void **state)
{
    (void)state;
    json_t *v = json_object();
    for (int i = 999; i >= 0; i--) {
        char key[16];
        snprintf(key, sizeof key, "k%04d", i);
        json_object_set_new(v, key, json_pack("{s:i, s:[f, s]}", "n", i, "l", i / 7.0, "s"));
    }
    char *c = defn_canonical_json(v);
    json_t *back = J(c);
    assert_true(json_equal(v, back));
    assert_true(strstr(c, "\"k0000\"") < strstr(c, "\"k0001\""));
    assert_true(strstr(c, "\"k0998\"") < strstr(c, "\"k0999\""));
    json_decref(back);
    json_decref(v);
    free(c);
}

/* A nested definition (a for_each in a parallel in a for_each): the member order of branches
 * and of every object is not part of it, so both texts have one canonical form and digest and
 * parse to the same branches; the order of steps in a list, and which branch holds what, are. */
static const char NESTED[] =
    "{\"name\": \"n\", \"steps\": [{\"id\": \"outer\", \"for_each\": {\"items\": "
    "\"${input.regions}\", \"concurrency\": 3, \"steps\": [{\"id\": \"fan\", \"parallel\": "
    "{\"branches\": {\"sms\": [{\"id\": \"s1\", \"activity\": {\"url\": \"http://h/s\"}}], "
    "\"email\": [{\"id\": \"e1\", \"activity\": {\"url\": \"http://h/e\", \"input\": "
    "\"${item}\"}}, {\"id\": \"inner\", \"for_each\": {\"items\": \"${steps.e1.output}\", "
    "\"steps\": [{\"id\": \"leaf\", \"activity\": {\"url\": \"http://h/l\", \"input\": "
    "[\"${loops.outer.index}\", \"${index}\"]}}]}}]}}}]}}]}";
static const char NESTED_REORDERED[] =
    "{\"steps\": [{\"for_each\": {\"steps\": [{\"parallel\": {\"branches\": {\"email\": "
    "[{\"activity\": {\"input\": \"${item}\", \"url\": \"http://h/e\"}, \"id\": \"e1\"}, "
    "{\"for_each\": {\"steps\": [{\"activity\": {\"input\": [\"${loops.outer.index}\", "
    "\"${index}\"], \"url\": \"http://h/l\"}, \"id\": \"leaf\"}], \"items\": "
    "\"${steps.e1.output}\"}, \"id\": \"inner\"}], \"sms\": [{\"id\": \"s1\", \"activity\": "
    "{\"url\": \"http://h/s\"}}]}}, \"id\": \"fan\"}], \"concurrency\": 3, \"items\": "
    "\"${input.regions}\"}, \"id\": \"outer\"}], \"name\": \"n\"}";

static void test_nested_definition_digest(void **state)
{
    (void)state;
    char *a = canon(NESTED), *b = canon(NESTED_REORDERED);
    assert_string_equal(a, b);
    char da[65], db[65];
    defn_digest_hex(a, da);
    defn_digest_hex(b, db);
    assert_string_equal(da, db);

    /* Both parse, to branches in name order. */
    static const char *const texts[] = {NESTED, NESTED_REORDERED};
    for (size_t i = 0; i < 2; i++) {
        json_t *doc = J(texts[i]);
        struct defn *d = NULL;
        json_t *errors = NULL;
        assert_int_equal(defn_parse(doc, &d, &errors), 0);
        const struct defn_step *fan = defn_find_step(d, "fan");
        assert_non_null(fan);
        assert_int_equal(fan->n_branches, 2);
        assert_string_equal(fan->branches[0].name, "email");
        assert_string_equal(fan->branches[0].steps[1].id, "inner");
        assert_string_equal(fan->branches[1].name, "sms");
        defn_free(d);
        json_decref(doc);
    }

    /* The texts canonicalise again to themselves. */
    json_t *back = J(a);
    char *again = defn_canonical_json(back);
    assert_string_equal(again, a);
    free(again);
    json_decref(back);

    /* Steps in another order within a branch, or the branches' contents swapped: another
     * definition. */
    static const char SWAPPED_STEPS[] =
        "{\"name\": \"n\", \"steps\": [{\"id\": \"outer\", \"for_each\": {\"items\": "
        "\"${input.regions}\", \"concurrency\": 3, \"steps\": [{\"id\": \"fan\", \"parallel\": "
        "{\"branches\": {\"sms\": [{\"id\": \"s1\", \"activity\": {\"url\": \"http://h/s\"}}], "
        "\"email\": [{\"id\": \"inner\", \"for_each\": {\"items\": \"${steps.e1.output}\", "
        "\"steps\": [{\"id\": \"leaf\", \"activity\": {\"url\": \"http://h/l\", \"input\": "
        "[\"${loops.outer.index}\", \"${index}\"]}}]}}, {\"id\": \"e1\", \"activity\": {\"url\": "
        "\"http://h/e\", \"input\": \"${item}\"}}]}}}]}}]}";
    static const char SWAPPED_BRANCHES[] =
        "{\"name\": \"n\", \"steps\": [{\"id\": \"outer\", \"for_each\": {\"items\": "
        "\"${input.regions}\", \"concurrency\": 3, \"steps\": [{\"id\": \"fan\", \"parallel\": "
        "{\"branches\": {\"email\": [{\"id\": \"s1\", \"activity\": {\"url\": \"http://h/s\"}}], "
        "\"sms\": [{\"id\": \"e1\", \"activity\": {\"url\": \"http://h/e\", \"input\": "
        "\"${item}\"}}, {\"id\": \"inner\", \"for_each\": {\"items\": \"${steps.e1.output}\", "
        "\"steps\": [{\"id\": \"leaf\", \"activity\": {\"url\": \"http://h/l\", \"input\": "
        "[\"${loops.outer.index}\", \"${index}\"]}}]}}]}}}]}}]}";
    static const char *const others[] = {SWAPPED_STEPS, SWAPPED_BRANCHES};
    for (size_t i = 0; i < 2; i++) {
        char *c = canon(others[i]);
        char dc[65];
        defn_digest_hex(c, dc);
        assert_string_not_equal(dc, da);
        free(c);
    }
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_text),
        cmocka_unit_test(test_canonical_idempotent),
        cmocka_unit_test(test_same_definition_same_digest),
        cmocka_unit_test(test_different_definition_different_digest),
        cmocka_unit_test(test_digest_vectors),
        cmocka_unit_test(test_nul_in_key),
        cmocka_unit_test(test_null_document),
        cmocka_unit_test(test_append_insertion_order),
        cmocka_unit_test(test_large_document),
        cmocka_unit_test(test_nested_definition_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
