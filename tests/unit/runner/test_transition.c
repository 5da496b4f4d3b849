/* The transition shell's parameter encoding: a value jansson cannot encode must stop the
 * transition (which then rolls back), never become an SQL NULL that commits without effects. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* The statics under test. */
#include "runner/transition.c"

static void encodes_ordinary_values(void **state)
{
    (void)state;
    json_t *v = json_pack("[{s:s}, i, n]", "a", "b", 1);
    char *out = NULL, *why = NULL;
    assert_true(encode_param(v, "events", &out, &why));
    assert_string_equal(out, "[{\"a\":\"b\"},1,null]");
    assert_null(why);
    free(out);
    json_decref(v);
}

/* jansson refuses to encode a string that is not UTF-8 (json_dumps returns NULL): the
 * transition must fail with a reason, not pass NULL on. */
static void refuses_what_cannot_be_encoded(void **state)
{
    (void)state;
    json_t *v = json_pack("[o]", json_stringn_nocheck("\xff", 1));
    char *out = NULL, *why = NULL;
    assert_false(encode_param(v, "tasks", &out, &why));
    assert_null(out);
    assert_non_null(why);
    assert_non_null(strstr(why, "tasks"));
    assert_non_null(strstr(why, "nothing was written"));
    /* A reason already set (a database error met first) is kept. */
    char *first = xstrdup("first");
    char *why2 = first;
    assert_false(encode_param(v, "events", &out, &why2));
    assert_ptr_equal(why2, first);
    free(first);
    free(why);
    json_decref(v);
}

/* A context whose input or step rows do not read back is an error, not an empty context
 * (which made a later step fail with a false "has no output yet"). */
static void context_that_does_not_read_back(void **state)
{
    (void)state;
    json_t *doc =
        json_loads("{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"sleep\": \"1s\"}]}", 0, NULL);
    struct defn *d = NULL;
    json_t *errors = NULL;
    assert_int_equal(defn_parse(doc, &d, &errors), 0);
    json_t *header = json_loads("{\"v\": 2, \"status\": \"running\", \"current\": 0, "
                                "\"completions\": 1}",
                                0, NULL);
    struct engine_state st;
    assert_int_equal(engine_state_begin(&st, header, d), 0);
    json_t *ctx = build_ctx("e", "w", "{\"a\":1}");
    assert_non_null(ctx);
    assert_true(put_rows(
        &st, ctx, "[[\"s\",\"completed\",{\"x\":1},null,{\"status\":\"completed\",\"order\":1}]]",
        NULL));
    assert_int_equal(engine_state_ready(&st), 0);
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(json_object_get(ctx, "steps"), "s"), "output"), "x")),
        1);
    /* Rows that do not read: broken JSON, a row without its interpreter state, a nested row
     * whose parent is missing. */
    assert_false(put_rows(&st, ctx, "[[\"s\"", NULL));
    assert_false(
        put_rows(&st, ctx, "[[\"t/0\",\"running\",null,null,{\"status\":\"running\"}]]", NULL));
    engine_state_free(&st);
    assert_int_equal(engine_state_begin(&st, header, d), 0);
    assert_false(put_rows(&st, ctx, "[[\"s\",\"completed\",null,null,null]]", NULL));
    engine_state_free(&st);
    /* A version 1 state (every instance in one value) is not a header. */
    json_t *v1 = json_loads("{\"v\": 1, \"status\": \"running\", \"current\": 0, "
                            "\"completions\": 0, \"steps\": [{\"status\": \"pending\"}]}",
                            0, NULL);
    assert_int_equal(engine_state_begin(&st, v1, d), -1);
    json_decref(v1);
    json_decref(ctx);
    assert_null(build_ctx("e", "w", "{\"a\":"));
    json_decref(header);
    json_decref(doc);
    defn_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encodes_ordinary_values),
        cmocka_unit_test(refuses_what_cannot_be_encoded),
        cmocka_unit_test(context_that_does_not_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
