/* util: RFC 3339 times, base64url, ids and the growable buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/alloc.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/ids.h"
#include "util/timeutil.h"

#include <stdlib.h>
#include <string.h>

static void test_rfc3339_round_trip(void **state)
{
    (void)state;
    const int64_t cases[] = {
        0, 1, 999, 1000, 1763769347123LL, 951782400000LL /* 2000-02-29 */, 4102444799999LL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char s[32];
        time_format_rfc3339(cases[i], s);
        assert_int_equal(strlen(s), 24);
        int64_t back = -1;
        assert_true(time_parse_rfc3339(s, &back));
        assert_int_equal(back, cases[i]);
    }
    char s[32];
    time_format_rfc3339(1763769347123LL, s);
    assert_string_equal(s, "2025-11-21T23:55:47.123Z");
}

static void test_rfc3339_parse(void **state)
{
    (void)state;
    struct {
        const char *text;
        bool ok;
        int64_t ms;
    } cases[] = {
        {"1970-01-01T00:00:00Z", true, 0},
        {"1970-01-01T00:00:00.5Z", true, 500},
        {"1970-01-01T00:00:00.123456Z", true, 123},
        {"1970-01-01T01:00:00+01:00", true, 0},
        {"1969-12-31T23:00:00-01:00", true, 0},
        {"1970-01-01t00:00:01z", true, 1000},
        {"2024-02-29T00:00:00Z", true, 1709164800000LL},
        {"2023-02-29T00:00:00Z", false, 0},
        {"2024-13-01T00:00:00Z", false, 0},
        {"2024-01-01T24:00:00Z", false, 0},
        {"2024-01-01T00:00:00", false, 0},
        {"2024-01-01", false, 0},
        {"2024-01-01T00:00:00.Z", false, 0},
        {"2024-01-01T00:00:00Z ", false, 0},
        {"2024-01-01T00:00:00+0100", false, 0},
        {"", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -7;
        bool ok = time_parse_rfc3339(cases[i].text, &ms);
        if (ok != cases[i].ok)
            fail_msg("%s: expected %s", cases[i].text, cases[i].ok ? "valid" : "invalid");
        if (ok)
            assert_int_equal(ms, cases[i].ms);
        else
            assert_int_equal(ms, -7);
    }
}

static void test_b64url(void **state)
{
    (void)state;
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\n"};
    const char *coded[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy", "__4K"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        char *e = b64url_encode(plain[i], strlen(plain[i]));
        assert_string_equal(e, coded[i]);
        size_t len = 0;
        char *d = b64url_decode(e, &len);
        assert_non_null(d);
        assert_int_equal(len, strlen(plain[i]));
        assert_memory_equal(d, plain[i], len);
        free(e);
        free(d);
    }
    size_t len;
    assert_null(b64url_decode("Zm9v+", &len));
    assert_null(b64url_decode("Z", &len));
    assert_null(b64url_decode("Zm9v=", &len));
}

static void test_uuid7(void **state)
{
    (void)state;
    char a[37], b[37];
    ids_uuid7(1763769347123LL, a);
    ids_uuid7(1763769347124LL, b);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '7');
    assert_true(strchr("89ab", a[19]) != NULL);
    assert_memory_equal(a, "019aa8d8-6c33", 13); /* 1763769347123 = 0x019aa8d86c33 */
    assert_true(strcmp(a, b) < 0);
}

static void test_tokens_and_trace(void **state)
{
    (void)state;
    char t1[33], t2[33];
    ids_random_hex(16, t1);
    ids_random_hex(16, t2);
    assert_int_equal(strlen(t1), 32);
    assert_string_not_equal(t1, t2);
    char p1[56], p2[56], p3[56];
    ids_traceparent("exec-1", "charge", 1, p1);
    ids_traceparent("exec-1", "charge", 2, p2);
    ids_traceparent("exec-1", "charge", 1, p3);
    assert_int_equal(strlen(p1), 55);
    assert_memory_equal(p1, "00-", 3);
    assert_memory_equal(p1, p2, 35);               /* one trace per execution */
    assert_memory_not_equal(p1 + 36, p2 + 36, 16); /* a span per attempt */
    assert_string_equal(p1, p3);                   /* and stable */
}

static void test_buf(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    for (int i = 0; i < 1000; i++)
        buf_printf(&b, "%d,", i);
    assert_int_equal(b.len, strlen(b.data));
    buf_reset(&b);
    buf_json_escape(&b, "a\"b\\c\n\x01");
    assert_string_equal(b.data, "a\\\"b\\\\c\\n\\u0001");
    char *s = buf_steal(&b);
    assert_null(b.data);
    free(s);
    s = buf_steal(&b);
    assert_string_equal(s, "");
    free(s);
}

/* The array grows by doubling from 8, keeps what it held, and its new part is zeroed. */
static void test_grow_zeroed(void **state)
{
    (void)state;
    int *a = NULL;
    size_t cap = 0;
    void *p = a;
    xgrow_zeroed(&p, &cap, 3, sizeof *a);
    a = p;
    assert_int_equal(cap, 8);
    for (size_t i = 0; i < cap; i++)
        assert_int_equal(a[i], 0);
    a[7] = 42;
    p = a;
    xgrow_zeroed(&p, &cap, 8, sizeof *a); /* long enough: unchanged */
    assert_ptr_equal(p, a);
    assert_int_equal(cap, 8);
    xgrow_zeroed(&p, &cap, 33, sizeof *a);
    a = p;
    assert_int_equal(cap, 64);
    assert_int_equal(a[7], 42);
    for (size_t i = 8; i < cap; i++)
        assert_int_equal(a[i], 0);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_zeroed),   cmocka_unit_test(test_rfc3339_round_trip),
        cmocka_unit_test(test_rfc3339_parse), cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_uuid7),         cmocka_unit_test(test_tokens_and_trace),
        cmocka_unit_test(test_buf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
