/* The batch's columns as PostgreSQL array literals: every value must arrive as it was (quotes,
 * backslashes, braces and commas inside strings and JSON), SQL NULL only where the column says
 * so, and a value jansson cannot encode must fail the flush, never become a NULL that commits
 * without its effect. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* The statics under test. */
#include "runner/batch_writes.c"

static char *literal(const json_t *table, const char *field, enum column_kind kind, bool *ok)
{
    struct buf b = BUF_INIT;
    *ok = column(&b, table, field, kind);
    return b.data;
}

static void scalars(void **state)
{
    (void)state;
    json_t *t = json_pack("[{s:s}, {s:i}, {s:b}, {s:n}, {}, {s:s}]", "v", "a\"b\\c{,} d", "v", -42,
                          "v", 1, "v", "v", "");
    bool ok;
    char *s = literal(t, "v", COL_SCALAR, &ok);
    assert_true(ok);
    assert_string_equal(s, "{\"a\\\"b\\\\c{,} d\",-42,t,NULL,NULL,\"\"}");
    free(s);
    json_decref(t);
}

static void json_values(void **state)
{
    (void)state;
    json_t *t = json_pack("[{s:{s:s}}, {s:n}, {s:[i,s]}, {}]", "v", "k", "q\"\\", "v", "v", 1, "x");
    bool ok;
    char *s = literal(t, "v", COL_JSON, &ok);
    assert_true(ok);
    /* JSON null is SQL NULL, as jsonb_to_recordset made it. */
    assert_string_equal(s,
                        "{\"{\\\"k\\\":\\\"q\\\\\\\"\\\\\\\\\\\"}\",NULL,\"[1,\\\"x\\\"]\",NULL}");
    free(s);
    /* An execution's output that is JSON null stays JSON null; only an absent one is NULL. */
    s = literal(t, "v", COL_JSON_PRESENT, &ok);
    assert_true(ok);
    assert_string_equal(
        s, "{\"{\\\"k\\\":\\\"q\\\\\\\"\\\\\\\\\\\"}\",\"null\",\"[1,\\\"x\\\"]\",NULL}");
    free(s);
    json_decref(t);
}

static void bare_values(void **state)
{
    (void)state;
    json_t *t = json_pack("[I, I]", (json_int_t)7, (json_int_t)9007199254740993LL);
    bool ok;
    char *s = literal(t, NULL, COL_SCALAR, &ok);
    assert_true(ok);
    assert_string_equal(s, "{7,9007199254740993}");
    free(s);
    json_decref(t);
    t = json_array();
    s = literal(t, NULL, COL_SCALAR, &ok);
    assert_true(ok);
    assert_string_equal(s, "{}");
    free(s);
    json_decref(t);
}

/* jansson refuses to encode a string that is not UTF-8: the column fails, and so does the
 * flush (before anything is sent), with a reason naming the column. */
static void refuses_what_cannot_be_encoded(void **state)
{
    (void)state;
    json_t *t = json_pack("[{s:[o]}]", "v", json_stringn_nocheck("\xff", 1));
    bool ok;
    char *s = literal(t, "v", COL_JSON, &ok);
    assert_false(ok);
    free(s);
    json_decref(t);
    /* A real (float) number is not a scalar column's value either. */
    t = json_pack("[{s:f}]", "v", 1.5);
    s = literal(t, "v", COL_SCALAR, &ok);
    assert_false(ok);
    free(s);
    json_decref(t);

    /* A batch of one and a batch of two: the flush fails before anything is sent (no
     * connection is needed), with a reason. */
    for (int n_execs = 1; n_execs <= 2; n_execs++) {
        struct batch_writes w;
        batch_writes_init(&w);
        json_array_append_new(w.events,
                              json_pack("{s:s, s:I, s:s, s:o}", "execution_id", "e", "seq",
                                        (json_int_t)1, "type", "x", "data",
                                        json_pack("{s:o}", "k", json_stringn_nocheck("\xff", 1))));
        for (int k = 0; k < n_execs; k++)
            json_array_append_new(w.execs,
                                  json_pack("{s:s, s:s, s:{}, s:i, s:s, s:b}", "id", k ? "f" : "e",
                                            "status", "running", "state", "last_seq", 1, "at",
                                            "2026-12-05T00:00:00Z", "ended", 0));
        char *why = NULL;
        assert_int_equal(batch_writes_flush(NULL, &w, "me", NULL, 0, NULL, &why), -1);
        assert_non_null(why);
        assert_non_null(strstr(why, n_execs == 1 ? "cannot be encoded" : "\"data\""));
        free(why);
        batch_writes_free(&w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scalars),
        cmocka_unit_test(json_values),
        cmocka_unit_test(bare_values),
        cmocka_unit_test(refuses_what_cannot_be_encoded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
