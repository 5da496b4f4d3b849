/* The JSON text keeld writes: a user's numbers come back as they were sent (0.1, not
 * 0.10000000000000001), every double survives the trip, and a string that is not UTF-8 is
 * refused rather than written. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/jsontext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expect_text(const char *json_in, const char *want)
{
    json_error_t e;
    json_t *v = json_loads(json_in, JSON_DECODE_ANY, &e);
    assert_non_null(v);
    char *got = json_text(v);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("%s: got %s, want %s", json_in, got, want);
    free(got);
    json_decref(v);
}

static void numbers_as_sent(void **state)
{
    (void)state;
    expect_text("0.1", "0.1");
    expect_text("[0.2, 129.5, 1e-7, 2.5e30, -0.0, 100.0, 1e20]",
                "[0.2,129.5,1e-07,2.5e+30,-0.0,100.0,100000000000000000000.0]");
    expect_text("{\"total\": 19.99, \"n\": 3, \"big\": 9223372036854775807}",
                "{\"total\":19.99,\"n\":3,\"big\":9223372036854775807}");
    expect_text("0.30000000000000004", "0.30000000000000004");
}

/* Every double reads back as itself. */
static void every_double_round_trips(void **state)
{
    (void)state;
    unsigned long long x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d))
            continue;
        json_t *v = json_real(d);
        char *t = json_text(v);
        assert_non_null(t);
        json_t *back = json_loads(t, JSON_DECODE_ANY, NULL);
        if (!back || json_real_value(back) != d)
            fail_msg("%.17g was written as %s", d, t);
        json_decref(back);
        free(t);
        json_decref(v);
    }
}

static void strings_and_order(void **state)
{
    (void)state;
    expect_text("{\"b\": \"q\\\"\\\\/\\n\\u0001é€😀\", \"a\": [true, false, null]}",
                "{\"b\":\"q\\\"\\\\/\\n\\u0001é€😀\",\"a\":[true,false,null]}");
}

static void refuses_what_is_not_utf8(void **state)
{
    (void)state;
    static const char *const bad[] = {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80",
                                      "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *v = json_pack("{s:[o]}", "k", json_stringn_nocheck(bad[i], strlen(bad[i])));
        char *t = json_text(v);
        if (t)
            fail_msg("bad UTF-8 %zu was written as %s", i, t);
        json_decref(v);
    }
    assert_null(json_text(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers_as_sent),
        cmocka_unit_test(every_double_round_trips),
        cmocka_unit_test(strings_and_order),
        cmocka_unit_test(refuses_what_is_not_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
