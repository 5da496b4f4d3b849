/* Cron expressions: what parses into what, every error naming its field, and the next civil
 * minute a schedule fires after another (month ends, Feb 29, the day-of-month OR day-of-week
 * rule, steps, names, shorthands). */
#include "sched/cron.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static struct civil_minute cm(int y, int mo, int d, int h, int mi)
{
    return (struct civil_minute){y, mo, d, h, mi};
}

struct next_case {
    const char *expr;
    struct civil_minute after, want;
};

static void next_times(void **state)
{
    (void)state;
    static const struct next_case cases[] = {
        /* every five minutes, and its carry over the hour, the day, the month and the year */
        {"*/5 * * * *", {2026, 12, 5, 10, 3}, {2026, 12, 5, 10, 5}},
        {"*/5 * * * *", {2026, 12, 5, 10, 5}, {2026, 12, 5, 10, 10}},
        {"*/5 * * * *", {2026, 12, 31, 23, 58}, {2027, 1, 1, 0, 0}},
        {"0 * * * *", {2026, 2, 28, 23, 0}, {2026, 3, 1, 0, 0}},
        /* Feb 29: only in leap years; 2100 is not one, 2000 was */
        {"0 0 29 2 *", {2026, 12, 5, 0, 0}, {2028, 2, 29, 0, 0}},
        {"0 0 29 2 *", {2096, 2, 29, 0, 0}, {2104, 2, 29, 0, 0}},
        {"30 12 29 2 *", {1999, 3, 1, 0, 0}, {2000, 2, 29, 12, 30}},
        /* the 31st: only months that have one */
        {"0 9 31 * *", {2026, 4, 1, 0, 0}, {2026, 5, 31, 9, 0}},
        /* day of month OR day of week when both are restricted: the 13th or any Friday */
        {"0 0 13 * 5", {2026, 12, 5, 0, 0}, {2026, 12, 11, 0, 0}},
        {"0 0 13 * fri", {2026, 12, 11, 0, 0}, {2026, 12, 13, 0, 0}},
        /* AND when one of them is "*": Fridays only */
        {"0 0 * * 5", {2026, 12, 5, 0, 0}, {2026, 12, 11, 0, 0}},
        /* "*\/10" starts with "*": both must match, as in Vixie cron (days 1, 11, 21, 31 that
         * are Mondays: the 21st) */
        {"0 0 */10 * 1", {2026, 12, 5, 0, 0}, {2026, 12, 21, 0, 0}},
        /* weekday 7 is Sunday; names in any case; ranges and lists */
        {"15 8 * * 7", {2026, 12, 5, 9, 0}, {2026, 12, 6, 8, 15}},
        {"0 18 * * MON-fri", {2026, 12, 5, 19, 0}, {2026, 12, 7, 18, 0}},
        {"5,35 1-3 * jan,jul *", {2026, 12, 5, 0, 0}, {2027, 1, 1, 1, 5}},
        {"10-50/20 * * * *", {2026, 1, 1, 0, 30}, {2026, 1, 1, 0, 50}},
        {"5/15 * * * *", {2026, 1, 1, 0, 49}, {2026, 1, 1, 0, 50}},
        /* shorthands */
        {"@hourly", {2026, 12, 5, 10, 0}, {2026, 12, 5, 11, 0}},
        {"@daily", {2026, 12, 5, 10, 0}, {2026, 12, 6, 0, 0}},
        {"@midnight", {2026, 12, 5, 0, 0}, {2026, 12, 6, 0, 0}},
        {"@weekly", {2026, 12, 5, 10, 0}, {2026, 12, 6, 0, 0}},
        {"@monthly", {2026, 12, 5, 10, 0}, {2027, 1, 1, 0, 0}},
        {"@yearly", {2026, 12, 5, 10, 0}, {2027, 1, 1, 0, 0}},
        {"@annually", {2027, 1, 1, 0, 0}, {2028, 1, 1, 0, 0}},
        /* a daily time on a spring-forward or fall-back date is just a civil minute here */
        {"30 2 * * *", {2027, 3, 27, 3, 0}, {2027, 3, 28, 2, 30}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cron c;
        char why[CRON_ERROR_MAX];
        if (!cron_parse(cases[i].expr, &c, why))
            fail_msg("%s: %s", cases[i].expr, why);
        struct civil_minute got;
        struct civil_minute after = cases[i].after;
        assert_true(cron_next(&c, &after, &got));
        const struct civil_minute *w = &cases[i].want;
        if (got.year != w->year || got.month != w->month || got.day != w->day ||
            got.hour != w->hour || got.minute != w->minute)
            fail_msg("%s after %04d-%02d-%02d %02d:%02d: got %04d-%02d-%02d %02d:%02d, want "
                     "%04d-%02d-%02d %02d:%02d",
                     cases[i].expr, after.year, after.month, after.day, after.hour, after.minute,
                     got.year, got.month, got.day, got.hour, got.minute, w->year, w->month, w->day,
                     w->hour, w->minute);
        assert_true(cron_matches(&c, &got));
    }
}

/* The next time never skips a matching minute: checked minute by minute over two years. */
static void next_agrees_with_matches(void **state)
{
    (void)state;
    static const char *const exprs[] = {"*/7 3-5 1,15,31 * *", "0 0 13 * fri", "59 23 * feb *",
                                        "0 12 29 2 mon"};
    for (size_t e = 0; e < sizeof exprs / sizeof exprs[0]; e++) {
        struct cron c;
        char why[CRON_ERROR_MAX];
        assert_true(cron_parse(exprs[e], &c, why));
        struct civil_minute t = cm(2027, 12, 31, 23, 0), next;
        assert_true(cron_next(&c, &t, &next));
        /* Walk minute by minute from t to next: nothing in between matches. */
        struct civil_minute u = t;
        for (long steps = 0; steps < 4L * 366 * 24 * 60; steps++) {
            if (++u.minute == 60) {
                u.minute = 0;
                if (++u.hour == 24) {
                    u.hour = 0;
                    if (++u.day > civil_days_in_month(u.year, u.month)) {
                        u.day = 1;
                        if (++u.month == 13) {
                            u.month = 1;
                            u.year++;
                        }
                    }
                }
            }
            if (u.year == next.year && u.month == next.month && u.day == next.day &&
                u.hour == next.hour && u.minute == next.minute)
                break;
            if (cron_matches(&c, &u))
                fail_msg("%s: %04d-%02d-%02d %02d:%02d matches before the next time found",
                         exprs[e], u.year, u.month, u.day, u.hour, u.minute);
        }
    }
}

static void never(void **state)
{
    (void)state;
    struct cron c;
    char why[CRON_ERROR_MAX];
    assert_true(cron_parse("0 0 30 2 *", &c, why));
    struct civil_minute t = cm(2026, 1, 1, 0, 0), next;
    assert_false(cron_next(&c, &t, &next));
    assert_true(cron_parse("0 0 31 4,6,9,11 *", &c, why));
    assert_false(cron_next(&c, &t, &next));
}

static void weekdays_and_month_lengths(void **state)
{
    (void)state;
    assert_int_equal(civil_weekday(2026, 12, 5), 6); /* a Saturday */
    assert_int_equal(civil_weekday(2000, 1, 1), 6);  /* a Saturday */
    assert_int_equal(civil_weekday(2024, 2, 29), 4); /* a Thursday */
    assert_int_equal(civil_weekday(1970, 1, 1), 4);  /* a Thursday */
    assert_int_equal(civil_days_in_month(2024, 2), 29);
    assert_int_equal(civil_days_in_month(2100, 2), 28);
    assert_int_equal(civil_days_in_month(2000, 2), 29);
    assert_int_equal(civil_days_in_month(2026, 4), 30);
}

struct bad {
    const char *expr;
    const char *message_part;
};

static void mistakes_name_their_field(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {"", "has 5 fields"},
        {"* * * *", "this one has 4"},
        {"* * * * * *", "this one has 6"},
        {"60 * * * *", "field 1 (minute): 60 is out of range 0-59"},
        {"* 24 * * *", "field 2 (hour): 24 is out of range 0-23"},
        {"* * 0 * *", "field 3 (day of month): 0 is out of range 1-31"},
        {"* * 32 * *", "out of range 1-31"},
        {"* * * 13 *", "field 4 (month): 13 is out of range 1-12"},
        {"* * * * 8", "field 5 (day of week): 8 is out of range 0-7"},
        {"* * * foo *", "\"foo\" is not a month name"},
        {"* * * * sunday", "expected a number or a name"},
        {"* * * * fri-mon", "runs backwards"},
        {"*/0 * * * *", "a step must be 1 to 59"},
        {"*/ * * * *", "a step needs a number"},
        {"1-2-3 * * * *", "unexpected \"-\""},
        {"1,,2 * * * *", "expected a number"},
        {"a * * * *", "field 1 (minute): expected a number at"},
        {"@often", "unknown shorthand"},
        {"@daily extra", "unknown shorthand"},
        {"99999999999 * * * *", "too large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cron c;
        char why[CRON_ERROR_MAX];
        if (cron_parse(cases[i].expr, &c, why))
            fail_msg("\"%s\": accepted", cases[i].expr);
        if (!strstr(why, cases[i].message_part))
            fail_msg("\"%s\": \"%s\" does not say \"%s\"", cases[i].expr, why,
                     cases[i].message_part);
    }
    struct cron c;
    char why[CRON_ERROR_MAX];
    assert_false(cron_parse(NULL, &c, why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(next_times),
        cmocka_unit_test(next_agrees_with_matches),
        cmocka_unit_test(never),
        cmocka_unit_test(weekdays_and_month_lengths),
        cmocka_unit_test(mistakes_name_their_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
