/* Durations: every accepted form and every rejected one, with the reason given. */
#include "defn/duration.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

/* Each case is a JSON text, as it would appear in a definition. */
static const struct {
    const char *json;
    int64_t ms;
} valid[] = {
    {"\"250ms\"", 250},
    {"\"0ms\"", 0},
    {"\"0s\"", 0},
    {"\"1ms\"", 1},
    {"\"30s\"", 30 * SEC},
    {"\"5m\"", 5 * MIN},
    {"\"72h\"", 72 * HOUR},
    {"\"3d\"", 3 * DAY},
    {"\"90m\"", 90 * MIN},
    {"\"1500ms\"", 1500},
    {"\"007s\"", 7 * SEC},
    {"\"36500d\"", 36500 * DAY},
    {"\"876000h\"", 36500 * DAY},
    {"\"3153600000000ms\"", 36500 * DAY},
    {"0", 0},
    {"1", 1},
    {"30000", 30 * SEC},
    {"3153600000000", 36500 * DAY},
};

static const struct {
    const char *json;
    const char *why; /* a substring of the message */
} invalid[] = {
    {"\"\"", "must not be empty"},
    {"\"-5s\"", "must not be negative"},
    {"\"-\"", "must not be negative"},
    {"-1", "must not be negative"},
    {"-1.5", "must not be negative"},
    {"1.5", "whole number of milliseconds"},
    {"1.0", "whole number of milliseconds"},
    {"0.0", "whole number of milliseconds"},
    {"\"1.5s\"", "use a smaller unit"},
    {"\"1,5s\"", "use a smaller unit"},
    {"\"1h30m\"", "\"1h30m\" are not supported"},
    {"\"1m30s\"", "single unit"},
    {"\"5\"", "needs a unit"},
    {"\"30\"", "JSON integer"},
    {"\"5x\"", "unknown unit"},
    {"\"5sec\"", "unknown unit"},
    {"\"5S\"", "unknown unit"},
    {"\"5MS\"", "unknown unit"},
    {"\"5w\"", "unknown unit"},
    {"\"5us\"", "unknown unit"},
    {"\"5\\u00b5s\"", "unknown unit"},
    {"\"5_s\"", "unknown unit"},
    {"\" 5s\"", "spaces"},
    {"\"5s \"", "spaces"},
    {"\"5 s\"", "spaces"},
    {"\"\\t5s\"", "spaces"},
    {"\"5s\\n\"", "spaces"},
    {"\"s\"", "must start with a number"},
    {"\"ms\"", "must start with a number"},
    {"\"+5s\"", "must start with a number"},
    {"\"5s!\"", "unexpected characters after the unit"},
    {"\"5s\\u0000\"", "duration string"},
    {"\"36501d\"", "too long"},
    {"\"876001h\"", "too long"},
    {"\"3153600000001ms\"", "too long"},
    {"\"99999999999999999999999s\"", "too long"},
    {"\"9223372036854775807ms\"", "too long"},
    {"\"9223372036854775808ms\"", "too long"},
    {"3153600000001", "too long"},
    {"9223372036854775807", "too long"},
    {"true", "duration string"},
    {"false", "duration string"},
    {"null", "duration string"},
    {"[]", "duration string"},
    {"{}", "duration string"},
    {"[\"5s\"]", "duration string"},
};

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return v;
}

static void test_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        json_t *v = load(valid[i].json);
        int64_t ms = -42;
        const char *why = "unset";
        if (!defn_parse_duration(v, &ms, &why))
            fail_msg("%s rejected: %s", valid[i].json, why);
        if (ms != valid[i].ms)
            fail_msg("%s: got %lld, want %lld", valid[i].json, (long long)ms,
                     (long long)valid[i].ms);
        json_decref(v);
    }
}

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        json_t *v = load(invalid[i].json);
        int64_t ms = -42;
        const char *why = NULL;
        if (defn_parse_duration(v, &ms, &why))
            fail_msg("%s accepted as %lld", invalid[i].json, (long long)ms);
        if (ms != -42)
            fail_msg("%s: *ms was changed on failure", invalid[i].json);
        if (!why || !strstr(why, invalid[i].why))
            fail_msg("%s: message \"%s\" lacks \"%s\"", invalid[i].json, why ? why : "(null)",
                     invalid[i].why);
        json_decref(v);
    }
}

static void test_null_arguments(void **state)
{
    (void)state;
    int64_t ms = 0;
    const char *why = NULL;
    assert_false(defn_parse_duration(NULL, &ms, &why));
    assert_non_null(why);
    json_t *v = json_string("5s");
    assert_false(defn_parse_duration(v, NULL, &why));
    /* why is optional. */
    assert_true(defn_parse_duration(v, &ms, NULL));
    assert_int_equal(ms, 5000);
    json_decref(v);
    json_t *bad = json_string("5");
    assert_false(defn_parse_duration(bad, &ms, NULL));
    json_decref(bad);
}

static void test_format(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {0, "0ms"},        {1, "1ms"},
        {999, "999ms"},    {1000, "1s"},
        {1500, "1500ms"},  {60000, "1m"},
        {90000, "90s"},    {5400000, "90m"},
        {3600000, "1h"},   {86400000, "1d"},
        {259200000, "3d"}, {90000000, "25h"},
        {-1000, "-1s"},    {36500 * DAY, "36500d"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[32];
        defn_format_duration(cases[i].ms, out);
        assert_string_equal(out, cases[i].text);
    }
}

/* What defn_format_duration writes, defn_parse_duration reads back unchanged. */
static void test_format_round_trip(void **state)
{
    (void)state;
    static const int64_t values[] = {0,     1,       7,        1000,      1001,       59999,
                                     60000, 3600000, 86400000, 172800001, 36500 * DAY};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char out[32];
        defn_format_duration(values[i], out);
        json_t *v = json_string(out);
        int64_t ms = -1;
        assert_true(defn_parse_duration(v, &ms, NULL));
        assert_int_equal(ms, values[i]);
        json_decref(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
