/* The transition shell's reading of stored rows into the interpreter's state and context. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* The statics under test. */
#include "runner/transition.c"

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
    json_t *ctx = row_ctx_new("e", "w", "{\"a\":1}");
    assert_non_null(ctx);
    assert_true(row_put(
        &st, ctx, "[[\"s\",\"completed\",{\"x\":1},null,{\"status\":\"completed\",\"order\":1}]]",
        NULL));
    assert_int_equal(engine_state_ready(&st), 0);
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(json_object_get(ctx, "steps"), "s"), "output"), "x")),
        1);
    /* Rows that do not read: broken JSON, a row without its interpreter state, a nested row
     * whose parent is missing. */
    assert_false(row_put(&st, ctx, "[[\"s\"", NULL));
    assert_false(
        row_put(&st, ctx, "[[\"t/0\",\"running\",null,null,{\"status\":\"running\"}]]", NULL));
    engine_state_free(&st);
    assert_int_equal(engine_state_begin(&st, header, d), 0);
    assert_false(row_put(&st, ctx, "[[\"s\",\"completed\",null,null,null]]", NULL));
    engine_state_free(&st);
    /* A version 1 state (every instance in one value) is not a header. */
    json_t *v1 = json_loads("{\"v\": 1, \"status\": \"running\", \"current\": 0, "
                            "\"completions\": 0, \"steps\": [{\"status\": \"pending\"}]}",
                            0, NULL);
    assert_int_equal(engine_state_begin(&st, v1, d), -1);
    json_decref(v1);
    json_decref(ctx);
    assert_null(row_ctx_new("e", "w", "{\"a\":"));
    json_decref(header);
    json_decref(doc);
    defn_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(context_that_does_not_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
