/* Time zones of schedules: offsets around both daylight-saving shifts (2026, and 2040 where only
 * the POSIX footer knows them), southern, half-hour and 45-minute zones; local times in a gap
 * (the shift) and in an overlap (the first occurrence); when "30 2 * * *" and "*\/15 * * * *" are
 * due on shift days; the POSIX TZ parser; names refused before the file system is touched; and
 * TZif files that are truncated, garbled or hostile, from memory and from a TZDIR. Every zone of
 * the system is also checked against the C library's localtime_r (this test is single-threaded,
 * so setting TZ here is fine) and every local time near a shift against the rules' definition. */
#include "sched/schedule_time.h"
#include "sched/tz.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- helpers -------------------------------------------------------------------------- */

/* "2026-03-29T01:00:00Z" or a local "2026-03-29T02:30" as seconds (the C library's timegm, so
 * the expectations do not lean on the code under test). */
static int64_t secs(const char *text)
{
    struct tm tm = {0};
    int n = sscanf(text, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec);
    if (n < 5)
        fail_msg("bad time in a test table: %s", text);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static struct tz *load(const char *name)
{
    struct tz *z = NULL;
    char why[TZ_ERROR_MAX];
    if (!tz_load(name, &z, why))
        fail_msg("%s: %s", name, why);
    return z;
}

static const char *fmt(int64_t t, char buf[SCHED_DUE_MAX])
{
    sched_format_due(t, buf);
    return buf;
}

/* The definition of tz_local_to_instant, checked by brute force: any instant whose local time is
 * `local` is local - o for an offset o of the zone, so the first occurrence is the least such
 * candidate that really has offset o; with none, the answer must be a shift forward over it. */
static void check_local(const struct tz *z, int64_t local)
{
    int32_t offs[256];
    size_t n = tz_offsets(z, offs, 256);
    assert_true(n >= 1 && n <= 256);
    int64_t got = tz_local_to_instant(z, local), best = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        int64_t c = local - offs[i];
        if (tz_offset_at(z, c) == offs[i] && c < best)
            best = c;
    }
    char b1[SCHED_DUE_MAX], b2[SCHED_DUE_MAX], b3[SCHED_DUE_MAX];
    if (best != INT64_MAX) {
        if (got != best)
            fail_msg("%s: local %s: got %s, its first occurrence is %s", tz_name(z), fmt(local, b1),
                     fmt(got, b2), fmt(best, b3));
    } else if (!(got + tz_offset_at(z, got - 1) <= local && local < got + tz_offset_at(z, got))) {
        fail_msg("%s: local %s does not exist, but %s is not the shift over it", tz_name(z),
                 fmt(local, b1), fmt(got, b2));
    }
}

/* ---- offsets -------------------------------------------------------------------------- */

struct offset_case {
    const char *zone, *at;
    int32_t offset;
};

static void offsets_around_shifts(void **state)
{
    (void)state;
    static const struct offset_case cases[] = {
        /* Berlin: last Sunday of March and of October at 01:00 UTC */
        {"Europe/Berlin", "2026-03-29T00:59:59Z", 3600},
        {"Europe/Berlin", "2026-03-29T01:00:00Z", 7200},
        {"Europe/Berlin", "2026-10-25T00:59:59Z", 7200},
        {"Europe/Berlin", "2026-10-25T01:00:00Z", 3600},
        {"Europe/Berlin", "2040-03-25T00:59:59Z", 3600},
        {"Europe/Berlin", "2040-03-25T01:00:00Z", 7200},
        {"Europe/Berlin", "2040-10-28T00:59:59Z", 7200},
        {"Europe/Berlin", "2040-10-28T01:00:00Z", 3600},
        {"Europe/Berlin", "2426-07-01T12:00:00Z", 7200}, /* a 400-year cycle later */
        {"Europe/Berlin", "1980-01-01T00:00:00Z", 3600},
        /* New York: second Sunday of March, first of November, at 02:00 local */
        {"America/New_York", "2026-03-08T06:59:59Z", -18000},
        {"America/New_York", "2026-03-08T07:00:00Z", -14400},
        {"America/New_York", "2026-11-01T05:59:59Z", -14400},
        {"America/New_York", "2026-11-01T06:00:00Z", -18000},
        {"America/New_York", "2040-03-11T06:59:59Z", -18000},
        {"America/New_York", "2040-03-11T07:00:00Z", -14400},
        {"America/New_York", "2040-11-04T05:59:59Z", -14400},
        {"America/New_York", "2040-11-04T06:00:00Z", -18000},
        /* southern hemisphere: summer time spans the new year */
        {"Australia/Sydney", "2026-01-15T00:00:00Z", 39600},
        {"Australia/Sydney", "2026-04-04T15:59:59Z", 39600},
        {"Australia/Sydney", "2026-04-04T16:00:00Z", 36000},
        {"Australia/Sydney", "2026-10-03T15:59:59Z", 36000},
        {"Australia/Sydney", "2026-10-03T16:00:00Z", 39600},
        {"Australia/Sydney", "2040-03-31T16:00:00Z", 36000},
        {"Australia/Sydney", "2040-10-06T16:00:00Z", 39600},
        {"America/Santiago", "2026-04-05T02:59:59Z", -10800},
        {"America/Santiago", "2026-04-05T03:00:00Z", -14400},
        {"America/Santiago", "2026-09-06T03:59:59Z", -14400},
        {"America/Santiago", "2026-09-06T04:00:00Z", -10800},
        {"America/Santiago", "2040-09-02T04:00:00Z", -10800},
        /* half hours, a half-hour shift, 45 minutes */
        {"Asia/Kolkata", "2026-03-29T01:00:00Z", 19800},
        {"Asia/Kolkata", "2040-07-01T00:00:00Z", 19800},
        {"Australia/Adelaide", "2026-04-04T16:29:59Z", 37800},
        {"Australia/Adelaide", "2026-04-04T16:30:00Z", 34200},
        {"Australia/Adelaide", "2040-10-06T16:30:00Z", 37800},
        {"Australia/Lord_Howe", "2040-10-06T15:29:59Z", 37800},
        {"Australia/Lord_Howe", "2040-10-06T15:30:00Z", 39600},
        {"Asia/Kathmandu", "2026-06-01T00:00:00Z", 20700},
        {"Asia/Kathmandu", "2040-06-01T00:00:00Z", 20700},
        {"Asia/Kathmandu", "1980-01-01T00:00:00Z", 19800},
        /* Dublin's winter time is its "daylight-saving" time, at offset 0 */
        {"Europe/Dublin", "2040-01-15T00:00:00Z", 0},
        {"Europe/Dublin", "2040-07-01T00:00:00Z", 3600},
        /* Nuuk's footer starts summer time at -1:00 local (a TZif version 3 rule) */
        {"America/Nuuk", "2040-03-25T00:59:59Z", -7200},
        {"America/Nuuk", "2040-03-25T01:00:00Z", -3600},
        {"UTC", "2026-03-29T01:00:00Z", 0},
        {"Etc/UTC", "2040-07-01T00:00:00Z", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tz *z = load(cases[i].zone);
        int32_t got = tz_offset_at(z, secs(cases[i].at));
        if (got != cases[i].offset)
            fail_msg("%s at %s: offset %d, want %d", cases[i].zone, cases[i].at, got,
                     cases[i].offset);
        tz_free(z);
    }
}

/* Whatever the instant, an offset is one the zone has; nothing overflows (UBSan would say). */
static void offsets_at_extreme_instants(void **state)
{
    (void)state;
    static const char *const zones[] = {"Europe/Berlin", "America/New_York", "Australia/Sydney",
                                        "America/Nuuk", "UTC"};
    static const int64_t instants[] = {
        INT64_MIN, INT64_MIN + 1,    -((int64_t)1 << 62), -(INT64_C(1) << 40), -1,
        0,         INT64_C(1) << 40, INT64_C(1) << 62,    INT64_MAX - 1,       INT64_MAX};
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        struct tz *z = load(zones[i]);
        int32_t offs[64];
        size_t n = tz_offsets(z, offs, 64);
        for (size_t j = 0; j < sizeof instants / sizeof instants[0]; j++) {
            int32_t o = tz_offset_at(z, instants[j]);
            bool known = false;
            for (size_t k = 0; k < n && k < 64; k++)
                known = known || offs[k] == o;
            assert_true(known);
            (void)tz_local_to_instant(z, instants[j]);
            struct civil_minute m;
            if (j == 0 || j == 9)
                assert_false(sched_civil_at(z, instants[j], &m));
        }
        tz_free(z);
    }
}

/* Every zone of tzdata.zi (links included), loaded from the folder in TZDIR (or the system's),
 * agrees with the C library, which reads the same files, from `from` to 2200. */
static void compare_every_zone(const char *from)
{
    FILE *f = fopen("/usr/share/zoneinfo/tzdata.zi", "r");
    if (!f)
        fail_msg("/usr/share/zoneinfo/tzdata.zi is missing: install tzdata");
    char line[512];
    int zones = 0;
    while (fgets(line, sizeof line, f)) {
        char name[200];
        if (!((line[0] == 'Z' && sscanf(line, "Z %199s", name) == 1) ||
              (line[0] == 'L' && sscanf(line, "L %*s %199s", name) == 1)))
            continue;
        struct tz *z = load(name);
        setenv("TZ", name, 1);
        tzset();
        for (int64_t t = secs(from); t < secs("2200-01-01T00:00:00Z"); t += 13 * 86400 + 3607) {
            time_t tt = (time_t)t;
            struct tm tm;
            assert_non_null(localtime_r(&tt, &tm));
            if (tm.tm_gmtoff != tz_offset_at(z, t)) {
                char b[SCHED_DUE_MAX];
                fail_msg("%s at %s: offset %d, the C library says %ld", name, fmt(t, b),
                         tz_offset_at(z, t), tm.tm_gmtoff);
            }
        }
        tz_free(z);
        zones++;
    }
    fclose(f);
    unsetenv("TZ");
    tzset();
    assert_true(zones > 300);
}

static void every_zone_agrees_with_the_c_library(void **state)
{
    (void)state;
    compare_every_zone("1900-01-01T00:00:00Z");
}

/* The same with "slim" files, as zic -b slim writes them (Debian's tzdata may ship those): no
 * transition after the rules last changed, every later one from the footer. */
static void every_slim_zone_agrees_with_the_c_library(void **state)
{
    (void)state;
    if (access("/usr/sbin/zic", X_OK) != 0)
        skip(); /* zic comes with libc-bin, which every Debian system has */
    char dir[] = "/tmp/keel-test-tz-slim-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/sbin/zic -b slim -d %s /usr/share/zoneinfo/tzdata.zi", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(setenv("TZDIR", dir, 1), 0);
    struct tz *z = load("Europe/Berlin");
    /* Its 2040 shifts come from the footer alone. */
    assert_int_equal(tz_offset_at(z, secs("2040-03-25T01:00:00Z")), 7200);
    tz_free(z);
    compare_every_zone("1970-01-01T00:00:00Z");
    assert_int_equal(unsetenv("TZDIR"), 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- local times ---------------------------------------------------------------------- */

struct local_case {
    const char *zone, *local, *want;
};

static void local_times_in_gaps_and_overlaps(void **state)
{
    (void)state;
    static const struct local_case cases[] = {
        /* Berlin, 2026-03-29: 02:00-02:59 does not exist; the shift is at 01:00 UTC */
        {"Europe/Berlin", "2026-03-29T01:59", "2026-03-29T00:59:00Z"},
        {"Europe/Berlin", "2026-03-29T02:00", "2026-03-29T01:00:00Z"},
        {"Europe/Berlin", "2026-03-29T02:30", "2026-03-29T01:00:00Z"},
        {"Europe/Berlin", "2026-03-29T02:59", "2026-03-29T01:00:00Z"},
        {"Europe/Berlin", "2026-03-29T03:00", "2026-03-29T01:00:00Z"},
        {"Europe/Berlin", "2026-03-29T03:01", "2026-03-29T01:01:00Z"},
        /* Berlin, 2026-10-25: 02:00-02:59 twice; the first is in summer time */
        {"Europe/Berlin", "2026-10-25T01:59", "2026-10-24T23:59:00Z"},
        {"Europe/Berlin", "2026-10-25T02:00", "2026-10-25T00:00:00Z"},
        {"Europe/Berlin", "2026-10-25T02:30", "2026-10-25T00:30:00Z"},
        {"Europe/Berlin", "2026-10-25T02:59", "2026-10-25T00:59:00Z"},
        {"Europe/Berlin", "2026-10-25T03:00", "2026-10-25T02:00:00Z"},
        {"Europe/Berlin", "2040-03-25T02:30", "2040-03-25T01:00:00Z"},
        {"Europe/Berlin", "2040-10-28T02:30", "2040-10-28T00:30:00Z"},
        /* New York: 02:00-02:59 skipped in March, 01:00-01:59 repeated in November */
        {"America/New_York", "2026-03-08T02:30", "2026-03-08T07:00:00Z"},
        {"America/New_York", "2026-03-08T03:00", "2026-03-08T07:00:00Z"},
        {"America/New_York", "2026-11-01T01:30", "2026-11-01T05:30:00Z"},
        {"America/New_York", "2026-11-01T02:30", "2026-11-01T07:30:00Z"},
        {"America/New_York", "2040-03-11T02:30", "2040-03-11T07:00:00Z"},
        {"America/New_York", "2040-11-04T01:30", "2040-11-04T05:30:00Z"},
        /* Sydney and Lord Howe (a half-hour shift), Dublin (negative summer time), Santiago
         * (shifts at local midnight) */
        {"Australia/Sydney", "2026-10-04T02:30", "2026-10-03T16:00:00Z"},
        {"Australia/Sydney", "2026-04-05T02:30", "2026-04-04T15:30:00Z"},
        {"Australia/Lord_Howe", "2026-10-04T02:15", "2026-10-03T15:30:00Z"},
        {"Australia/Lord_Howe", "2026-04-05T01:45", "2026-04-04T14:45:00Z"},
        {"Europe/Dublin", "2026-03-29T01:30", "2026-03-29T01:00:00Z"},
        {"Europe/Dublin", "2026-10-25T01:30", "2026-10-25T00:30:00Z"},
        {"America/Santiago", "2026-09-06T00:30", "2026-09-06T04:00:00Z"},
        {"America/Santiago", "2026-04-04T23:30", "2026-04-05T02:30:00Z"},
        {"UTC", "2026-03-29T02:30", "2026-03-29T02:30:00Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tz *z = load(cases[i].zone);
        int64_t got = tz_local_to_instant(z, secs(cases[i].local));
        char b[SCHED_DUE_MAX];
        if (got != secs(cases[i].want))
            fail_msg("%s local %s: got %s, want %s", cases[i].zone, cases[i].local, fmt(got, b),
                     cases[i].want);
        check_local(z, secs(cases[i].local));
        tz_free(z);
    }
}

/* Every zone, every shift from 2020 to 2041, local times every 7 minutes around it: the answer
 * is the definition's (check_local). */
static void local_times_near_every_shift(void **state)
{
    (void)state;
    FILE *f = fopen("/usr/share/zoneinfo/tzdata.zi", "r");
    assert_non_null(f);
    char line[512];
    long shifts = 0;
    while (fgets(line, sizeof line, f)) {
        char name[200];
        if (line[0] != 'Z' || sscanf(line, "Z %199s", name) != 1)
            continue;
        struct tz *z = load(name);
        int64_t t = secs("2020-01-01T00:00:00Z"), end = secs("2042-01-01T00:00:00Z");
        for (; t < end; t += 86400) {
            int32_t before = tz_offset_at(z, t), after = tz_offset_at(z, t + 86400);
            if (before == after)
                continue;
            /* The shift lies in (t, t + 1 day]: find it by halving. */
            int64_t lo = t, hi = t + 86400;
            while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                if (tz_offset_at(z, mid) == before)
                    lo = mid;
                else
                    hi = mid;
            }
            int64_t from = hi + (before < after ? before : after) - 3 * 3600;
            int64_t to = hi + (before > after ? before : after) + 3 * 3600;
            for (int64_t local = from; local <= to; local += 7 * 60)
                check_local(z, local);
            shifts++;
        }
        tz_free(z);
    }
    fclose(f);
    assert_true(shifts > 1000);
}

/* ---- when schedules are due ----------------------------------------------------------- */

struct due_case {
    const char *expr, *zone, *after;
    const char *want[6]; /* NULL-terminated */
};

static void due_times_on_shift_days(void **state)
{
    (void)state;
    static const struct due_case cases[] = {
        /* once on each day: at the shift when 02:30 does not exist, at the first 02:30 when it
         * exists twice */
        {"30 2 * * *",
         "Europe/Berlin",
         "2026-03-27T12:00:00Z",
         {"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z",
          "2026-03-31T00:30:00Z"}},
        {"30 2 * * *",
         "Europe/Berlin",
         "2026-10-23T12:00:00Z",
         {"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z",
          "2026-10-27T01:30:00Z"}},
        {"30 2 * * *",
         "Europe/Berlin",
         "2040-03-24T12:00:00Z",
         {"2040-03-25T01:00:00Z", "2040-03-26T00:30:00Z"}},
        {"30 2 * * *",
         "Europe/Berlin",
         "2040-10-27T12:00:00Z",
         {"2040-10-28T00:30:00Z", "2040-10-29T01:30:00Z"}},
        {"30 2 * * *",
         "America/New_York",
         "2026-03-06T12:00:00Z",
         {"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z",
          "2026-03-10T06:30:00Z"}},
        {"30 2 * * *",
         "America/New_York",
         "2026-10-30T12:00:00Z",
         {"2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"}},
        {"30 1 * * *",
         "America/New_York",
         "2026-10-30T12:00:00Z",
         {"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
        {"30 2 * * *",
         "America/New_York",
         "2040-03-10T12:00:00Z",
         {"2040-03-11T07:00:00Z", "2040-03-12T06:30:00Z"}},
        /* every quarter hour: the skipped hour's minutes collapse into the shift, the repeated
         * hour runs once (in summer time) */
        {"*/15 * * * *",
         "Europe/Berlin",
         "2026-03-29T00:20:00Z",
         {"2026-03-29T00:30:00Z", "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z",
          "2026-03-29T01:15:00Z", "2026-03-29T01:30:00Z"}},
        {"*/15 * * * *",
         "Europe/Berlin",
         "2026-10-25T00:20:00Z",
         {"2026-10-25T00:30:00Z", "2026-10-25T00:45:00Z", "2026-10-25T02:00:00Z",
          "2026-10-25T02:15:00Z"}},
        /* from within the repeated hour: its minutes are past (their first occurrence) */
        {"*/15 * * * *",
         "Europe/Berlin",
         "2026-10-25T01:10:00Z",
         {"2026-10-25T02:00:00Z", "2026-10-25T02:15:00Z"}},
        /* from the shift itself: the collapsed minutes are not due again */
        {"*/15 * * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", {"2026-03-29T01:15:00Z"}},
        {"*/15 * * * *",
         "America/New_York",
         "2026-03-08T06:20:00Z",
         {"2026-03-08T06:30:00Z", "2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z",
          "2026-03-08T07:15:00Z"}},
        {"*/15 * * * *",
         "America/New_York",
         "2026-11-01T05:20:00Z",
         {"2026-11-01T05:30:00Z", "2026-11-01T05:45:00Z", "2026-11-01T07:00:00Z"}},
        /* seconds in `after` do not matter */
        {"*/15 * * * *", "UTC", "2026-03-29T00:29:59Z", {"2026-03-29T00:30:00Z"}},
        {"*/15 * * * *", "UTC", "2026-03-29T00:30:00Z", {"2026-03-29T00:45:00Z"}},
        /* February 29 at midnight in Auckland (summer time, +13) */
        {"0 0 29 2 *",
         "Pacific/Auckland",
         "2026-01-01T00:00:00Z",
         {"2028-02-28T11:00:00Z", "2032-02-28T11:00:00Z", "2036-02-28T11:00:00Z"}},
        {"0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", {"2028-02-29T00:00:00Z"}},
        {"45 5 * * *", "Asia/Kathmandu", "2026-05-31T23:59:00Z", {"2026-06-01T00:00:00Z"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct due_case *k = &cases[i];
        struct cron c;
        char why[CRON_ERROR_MAX];
        assert_true(cron_parse(k->expr, &c, why));
        struct tz *z = load(k->zone);
        size_t n = 0;
        while (n < 6 && k->want[n])
            n++;
        int64_t got[6];
        size_t found = sched_next_n(&c, z, secs(k->after), got, n);
        char b[SCHED_DUE_MAX];
        for (size_t j = 0; j < n; j++) {
            if (j >= found)
                fail_msg("%s in %s after %s: only %zu due times", k->expr, k->zone, k->after,
                         found);
            if (got[j] != secs(k->want[j]))
                fail_msg("%s in %s after %s: due time %zu is %s, want %s", k->expr, k->zone,
                         k->after, j + 1, fmt(got[j], b), k->want[j]);
        }
        tz_free(z);
    }
}

/* "30 2 * * *" runs exactly once on every local day of 2026 and 2040, shift days included. */
static void daily_runs_once_every_day(void **state)
{
    (void)state;
    static const char *const zones[] = {
        "Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe",
        "Europe/Dublin", "America/Santiago", "America/Nuuk",     "Asia/Kathmandu"};
    static const char *const exprs[] = {"30 2 * * *", "30 1 * * *", "0 0 * * *"};
    static const char *const starts[] = {"2025-12-31T00:00:00Z", "2039-12-31T00:00:00Z"};
    struct cron c;
    char why[CRON_ERROR_MAX];
    int64_t *due = malloc(400 * sizeof *due);
    assert_non_null(due);
    for (size_t e = 0; e < sizeof exprs / sizeof exprs[0]; e++) {
        assert_true(cron_parse(exprs[e], &c, why));
        for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
            struct tz *z = load(zones[i]);
            for (size_t s = 0; s < 2; s++) {
                assert_int_equal(sched_next_n(&c, z, secs(starts[s]), due, 400), 400);
                struct civil_minute prev, cur;
                assert_true(sched_civil_at(z, due[0], &prev));
                for (size_t j = 1; j < 400; j++) {
                    assert_true(due[j] > due[j - 1]);
                    assert_true(sched_civil_at(z, due[j], &cur));
                    int64_t d0 = tz_days_from_civil(prev.year, prev.month, prev.day);
                    int64_t d1 = tz_days_from_civil(cur.year, cur.month, cur.day);
                    char b[SCHED_DUE_MAX];
                    if (d1 != d0 + 1)
                        fail_msg("%s in %s: %s is not on the day after the run before", exprs[e],
                                 zones[i], fmt(due[j], b));
                    prev = cur;
                }
            }
            tz_free(z);
        }
    }
    free(due);
}

/* Minute by minute across both shifts: strictly increasing, every civil minute that exists is
 * due exactly once (the repeated ones at their first occurrence), and the skipped hour is one
 * run at the shift. */
static void every_minute_across_shifts(void **state)
{
    (void)state;
    struct cron c;
    char why[CRON_ERROR_MAX];
    assert_true(cron_parse("* * * * *", &c, why));
    struct tz *z = load("Europe/Berlin");
    static const char *const days[] = {"2026-03-28T22:00:00Z", "2026-10-24T22:00:00Z",
                                       "2040-03-24T22:00:00Z", "2040-10-27T22:00:00Z"};
    for (size_t d = 0; d < 4; d++) {
        int64_t after = secs(days[d]), due[1500];
        assert_int_equal(sched_next_n(&c, z, after, due, 1500), 1500);
        size_t shifts = 0;
        for (size_t j = 0; j < 1500; j++) {
            assert_true(due[j] > (j ? due[j - 1] : after));
            if (j > 0 && due[j] - due[j - 1] != 60) {
                /* spring: 01:59 CET -> 03:00 CEST is one minute apart in UTC; autumn: 02:59
                 * CEST -> 03:00 CET is an hour and a minute */
                assert_int_equal(due[j] - due[j - 1], 3660);
                shifts++;
            }
        }
        assert_int_equal(shifts, d % 2 == 0 ? 0 : 1);
    }
    tz_free(z);
}

static void never_due(void **state)
{
    (void)state;
    struct cron c;
    char why[CRON_ERROR_MAX];
    struct tz *z = load("Europe/Berlin");
    int64_t t;
    assert_true(cron_parse("0 0 30 2 *", &c, why));
    assert_false(sched_next(&c, z, secs("2026-01-01T00:00:00Z"), &t));
    assert_true(cron_parse("* * * * *", &c, why));
    assert_false(sched_next(&c, z, secs("9999-12-31T22:59:00Z"), &t));
    assert_false(sched_next(&c, z, INT64_MIN, &t));
    assert_false(sched_next(&c, z, INT64_MAX, &t));
    assert_true(sched_next(&c, z, secs("0001-01-01T00:00:00Z"), &t));
    tz_free(z);
}

static void due_time_format(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00Z"},
        {-1, "1969-12-31T23:59:59Z"},
        {INT64_C(1774746000), "2026-03-29T01:00:00Z"},
        {INT64_C(951782400), "2000-02-29T00:00:00Z"},
        {INT64_C(253402300799), "9999-12-31T23:59:59Z"},
        {INT64_C(-62135596800), "0001-01-01T00:00:00Z"},
    };
    char buf[SCHED_DUE_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sched_format_due(cases[i].t, buf);
        assert_string_equal(buf, cases[i].want);
    }
    /* Whatever the instant, it fits. */
    sched_format_due(INT64_MAX, buf);
    assert_true(strlen(buf) < SCHED_DUE_MAX);
    sched_format_due(INT64_MIN, buf);
    assert_true(strlen(buf) < SCHED_DUE_MAX);
    assert_int_equal(tz_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(tz_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(tz_days_from_civil(1, 1, 1), -719162);
}

/* ---- POSIX TZ strings ----------------------------------------------------------------- */

struct rule_case {
    const char *text;
    int32_t std_offset, dst_offset;
    bool has_dst;
    int start_kind, start_time, end_kind, end_time;
};

static void posix_strings_parse(void **state)
{
    (void)state;
    static const struct rule_case cases[] = {
        {"UTC0", 0, 0, false, 0, 0, 0, 0},
        {"<+0330>-3:30", 12600, 12600, false, 0, 0, 0, 0},
        {"<-0930>9:30", -34200, -34200, false, 0, 0, 0, 0},
        {"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", 45900, 49500, true, TZ_DATE_MONTH, 9900,
         TZ_DATE_MONTH, 13500},
        {"EST5EDT,M3.2.0,M11.1.0", -18000, -14400, true, TZ_DATE_MONTH, 7200, TZ_DATE_MONTH, 7200},
        {"CET-1CEST,M3.5.0,M10.5.0/3", 3600, 7200, true, TZ_DATE_MONTH, 7200, TZ_DATE_MONTH, 10800},
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", -7200, -3600, true, TZ_DATE_MONTH, -3600, TZ_DATE_MONTH,
         0},
        {"EET-2EEST,M3.4.4/50,M10.4.4/50", 7200, 10800, true, TZ_DATE_MONTH, 180000, TZ_DATE_MONTH,
         180000},
        {"IST-1GMT0,M10.5.0,M3.5.0/1", 3600, 0, true, TZ_DATE_MONTH, 7200, TZ_DATE_MONTH, 3600},
        {"EST5EDT,0/0,J365/25", -18000, -14400, true, TZ_DATE_ZERO, 0, TZ_DATE_JULIAN, 90000},
        {"AAA+24BBB-24:59:59,J60/-167,365/167:59:59", -86400, 89999, true, TZ_DATE_JULIAN, -601200,
         TZ_DATE_ZERO, 604799},
        {"NST3:30NDT,M3.2.0,M11.1.0", -12600, -9000, true, TZ_DATE_MONTH, 7200, TZ_DATE_MONTH,
         7200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct rule_case *k = &cases[i];
        struct tz_rule r;
        char why[TZ_ERROR_MAX];
        if (!tz_rule_parse(k->text, &r, why))
            fail_msg("\"%s\": %s", k->text, why);
        if (r.std_offset != k->std_offset || r.dst_offset != k->dst_offset ||
            r.has_dst != k->has_dst)
            fail_msg("\"%s\": offsets %d/%d, want %d/%d", k->text, r.std_offset, r.dst_offset,
                     k->std_offset, k->dst_offset);
        if (k->has_dst && ((int)r.start.kind != k->start_kind || r.start.time != k->start_time ||
                           (int)r.end.kind != k->end_kind || r.end.time != k->end_time))
            fail_msg("\"%s\": dates %d/%d %d/%d", k->text, r.start.kind, r.start.time, r.end.kind,
                     r.end.time);
    }
}

struct rule_offset_case {
    const char *text, *at;
    int32_t offset;
};

static void posix_rules_give_offsets(void **state)
{
    (void)state;
    static const struct rule_offset_case cases[] = {
        {"CET-1CEST,M3.5.0,M10.5.0/3", "2026-03-29T00:59:59Z", 3600},
        {"CET-1CEST,M3.5.0,M10.5.0/3", "2026-03-29T01:00:00Z", 7200},
        {"CET-1CEST,M3.5.0,M10.5.0/3", "2026-10-25T00:59:59Z", 7200},
        {"CET-1CEST,M3.5.0,M10.5.0/3", "2026-10-25T01:00:00Z", 3600},
        {"CET-1CEST,M3.5.0,M10.5.0/3", "2104-03-30T01:00:00Z", 7200},
        {"CET-1CEST,M3.5.0,M10.5.0/3", "1805-03-31T01:00:00Z", 7200},
        {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2026-04-04T15:59:59Z", 39600},
        {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2026-04-04T16:00:00Z", 36000},
        {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2026-12-31T23:00:00Z", 39600},
        {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2027-01-01T01:00:00Z", 39600},
        /* summer time all year: the end of one year is the start of the next */
        {"EST5EDT,0/0,J365/25", "2026-01-01T04:59:59Z", -14400},
        {"EST5EDT,0/0,J365/25", "2026-01-01T05:00:00Z", -14400},
        {"EST5EDT,0/0,J365/25", "2026-07-01T00:00:00Z", -14400},
        {"EST5EDT,0/0,J365/25", "2028-12-31T23:59:59Z", -14400},
        /* Dublin: "daylight-saving" offset 0 in winter */
        {"IST-1GMT0,M10.5.0,M3.5.0/1", "2026-01-15T00:00:00Z", 0},
        {"IST-1GMT0,M10.5.0,M3.5.0/1", "2026-03-29T00:59:59Z", 0},
        {"IST-1GMT0,M10.5.0,M3.5.0/1", "2026-03-29T01:00:00Z", 3600},
        {"IST-1GMT0,M10.5.0,M3.5.0/1", "2026-10-25T00:59:59Z", 3600},
        {"IST-1GMT0,M10.5.0,M3.5.0/1", "2026-10-25T01:00:00Z", 0},
        /* negative rule times (Nuuk), and times past midnight (EET-2EEST,M3.4.4/50: Thursday
         * 50:00 is Saturday 02:00) */
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2026-03-29T00:59:59Z", -7200},
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2026-03-29T01:00:00Z", -3600},
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2026-10-25T00:59:59Z", -3600},
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2026-10-25T01:00:00Z", -7200},
        {"EET-2EEST,M3.4.4/50,M10.4.4/50", "2026-03-27T23:59:59Z", 7200},
        {"EET-2EEST,M3.4.4/50,M10.4.4/50", "2026-03-28T00:00:00Z", 10800},
        /* Jn never counts February 29; n does */
        {"AAA0BBB-1,J60/0,J61/0", "2028-03-01T00:00:00Z", 3600},
        {"AAA0BBB-1,J60/0,J61/0", "2028-02-29T12:00:00Z", 0},
        {"AAA0BBB-1,59/0,60/0", "2028-02-29T12:00:00Z", 3600},
        {"AAA0BBB-1,59/0,60/0", "2027-03-01T12:00:00Z", 3600},
        {"AAA0BBB-1,59/0,60/0", "2027-03-02T12:00:00Z", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tz_rule r;
        char why[TZ_ERROR_MAX];
        if (!tz_rule_parse(cases[i].text, &r, why))
            fail_msg("\"%s\": %s", cases[i].text, why);
        int32_t got = tz_rule_offset_at(&r, secs(cases[i].at));
        if (got != cases[i].offset)
            fail_msg("\"%s\" at %s: offset %d, want %d", cases[i].text, cases[i].at, got,
                     cases[i].offset);
    }
}

struct bad_case {
    const char *text, *message_part;
};

static void posix_strings_refused(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"", "standard time name must have at least 3 letters"},
        {"CE-1", "at least 3 letters"},
        {"CET", "standard time's offset must be"},
        {"CET-", "standard time's offset must be"},
        {"CET-25", "hours up to 24"},
        {"CET1000", "hours up to 24"},
        {"CET-1:60", "minutes and seconds up to 59"},
        {"CET-1:30:", "minutes and seconds up to 59"},
        {"CET-1 ", "daylight-saving time name must have at least 3"},
        {"CET-1CEST", "needs its rule"},
        {"CET-1CEST-2", "needs its rule"},
        {"CET-1CEST-25,M3.5.0,M10.5.0", "daylight-saving time's offset"},
        {"CET-1CEST,M3.5.0", "expected \",\""},
        {"CET-1CEST,,M10.5.0", "start date must be"},
        {"CET-1CEST,M13.5.0,M10.5.0", "start date must be"},
        {"CET-1CEST,M3.6.0,M10.5.0", "start date must be"},
        {"CET-1CEST,M3.0.0,M10.5.0", "start date must be"},
        {"CET-1CEST,M3.5.7,M10.5.0", "start date must be"},
        {"CET-1CEST,M3.5,M10.5.0", "start date must be"},
        {"CET-1CEST,M3.", "start date must be"},
        {"CET-1CEST,M3.5.0,J0", "end date must be"},
        {"CET-1CEST,M3.5.0,J366", "end date must be"},
        {"CET-1CEST,M3.5.0,366", "end date must be"},
        {"CET-1CEST,M3.5.0,x", "end date must be"},
        {"CET-1CEST,M3.5.0/168,M10.5.0", "start time must be [+|-]hh[:mm[:ss]] with hours up "
                                         "to 167"},
        {"CET-1CEST,M3.5.0,M10.5.0/", "end time must be"},
        {"CET-1CEST,M3.5.0,M10.5.0/3x", "unexpected text \"x\" at the end"},
        {"CET-1CEST,M3.5.0,M10.5.0,", "unexpected text"},
        {"<+03", "must end with '>'"},
        {"<+0 3>-3", "must end with '>'"},
        {"<+0>-3", "at least 3"},
        {"<+03>", "standard time's offset"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tz_rule r;
        char why[TZ_ERROR_MAX];
        if (tz_rule_parse(cases[i].text, &r, why))
            fail_msg("\"%s\": accepted", cases[i].text);
        if (!strstr(why, cases[i].message_part))
            fail_msg("\"%s\": \"%s\" does not say \"%s\"", cases[i].text, why,
                     cases[i].message_part);
    }
    struct tz_rule r;
    char why[TZ_ERROR_MAX];
    assert_false(tz_rule_parse(NULL, &r, why));
}

/* ---- names ---------------------------------------------------------------------------- */

static void names_refused(void **state)
{
    (void)state;
    char too_long[TZ_NAME_MAX + 2];
    memset(too_long, 'A', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    char longest[TZ_NAME_MAX + 1];
    memset(longest, 'A', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    const struct bad_case cases[] = {
        {"", "a time zone name must not be empty"},
        {"../etc/passwd", "time zone name \"../etc/passwd\" must not contain \"..\""},
        {"Europe/../../etc/passwd", "must not contain \"..\""},
        {"/etc/passwd", "must not start with \"/\""},
        {"Europe//Berlin", "must not have an empty part"},
        {"Europe/", "must not have an empty part"},
        {"Europe/Ber lin", "must hold only letters, digits, '/', '_', '-' and '+' (it holds byte "
                           "0x20)"},
        {"Europe/Berlin\n", "byte 0x0a"},
        {"Europe/Berlin.tab", "byte 0x2e"},
        {"Europe/./Berlin", "byte 0x2e"},
        {"Europe\\Berlin", "byte 0x5c"},
        {"_Europe/Berlin", "must start each part with a letter"},
        {"Europe/-Berlin", "must start each part with a letter"},
        {"Europe/+1", "must start each part with a letter"},
        {too_long, "must be at most 128 characters"},
        {"Mars/Base", "unknown time zone \"Mars/Base\""},
        {"Europe", "unknown time zone \"Europe\""},
        {"Europe/Berlin/Mitte", "unknown time zone \"Europe/Berlin/Mitte\""},
        {longest, "unknown time zone"},
        {"localtime", "the server's own zone"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tz *z = (struct tz *)1;
        char why[TZ_ERROR_MAX];
        if (tz_load(cases[i].text, &z, why))
            fail_msg("\"%s\": loaded", cases[i].text);
        assert_null(z);
        if (!strstr(why, cases[i].message_part))
            fail_msg("\"%.40s\": \"%s\" does not say \"%s\"", cases[i].text, why,
                     cases[i].message_part);
    }
    struct tz *z;
    char why[TZ_ERROR_MAX];
    assert_false(tz_load(NULL, &z, why));
    /* Names that look odd but are real. */
    static const char *const good[] = {"Etc/GMT+5",
                                       "Etc/GMT-14",
                                       "America/Port-au-Prince",
                                       "America/Argentina/Buenos_Aires",
                                       "EST5EDT",
                                       "UTC",
                                       "Etc/UTC"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        z = load(good[i]);
        assert_string_equal(tz_name(z), good[i]);
        tz_free(z);
    }
}

/* ---- TZif files ----------------------------------------------------------------------- */

/* A small TZif writer: version 1 data (32-bit times), and for version 2+ the same again with
 * 64-bit times and the footer. Every time type is called "LMT". */
struct tzif_spec {
    char version; /* '\0', '2', '3', '4' */
    int ntimes;
    int64_t times[8];
    uint8_t types_of[8];
    int ntypes;
    int32_t utoff[4];
    uint8_t isdst[4];
    const char *footer; /* version 2+ */
};

struct bytes {
    uint8_t b[4096];
    size_t n;
};

static void put(struct bytes *o, const void *p, size_t n)
{
    assert_true(o->n + n <= sizeof o->b);
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void put32(struct bytes *o, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(o, b, 4);
}

static void put64(struct bytes *o, int64_t v)
{
    put32(o, (uint32_t)((uint64_t)v >> 32));
    put32(o, (uint32_t)v);
}

static void put_block(struct bytes *o, const struct tzif_spec *s, char version, bool wide)
{
    static const uint8_t zeros[15] = {0};
    put(o, "TZif", 4);
    put(o, &version, 1);
    put(o, zeros, 15);
    put32(o, 0);                   /* isutcnt */
    put32(o, 0);                   /* isstdcnt */
    put32(o, 0);                   /* leapcnt */
    put32(o, (uint32_t)s->ntimes); /* timecnt */
    put32(o, (uint32_t)s->ntypes); /* typecnt */
    put32(o, 4);                   /* charcnt */
    for (int i = 0; i < s->ntimes; i++) {
        if (wide)
            put64(o, s->times[i]);
        else
            put32(o, (uint32_t)(int32_t)s->times[i]);
    }
    put(o, s->types_of, (size_t)s->ntimes);
    for (int i = 0; i < s->ntypes; i++) {
        put32(o, (uint32_t)s->utoff[i]);
        uint8_t rest[2] = {s->isdst[i], 0};
        put(o, rest, 2);
    }
    put(o, "LMT", 4);
}

static void build(const struct tzif_spec *s, struct bytes *o)
{
    o->n = 0;
    put_block(o, s, s->version, false);
    if (s->version == '\0')
        return;
    put_block(o, s, s->version, true);
    put(o, "\n", 1);
    put(o, s->footer, strlen(s->footer));
    put(o, "\n", 1);
}

/* A Berlin-like zone whose table stops in 2000 ("slim"): later times come from the footer. */
static const struct tzif_spec SLIM = {
    .version = '2',
    .ntimes = 3,
    .times = {INT32_MIN, 954032400, 972781200}, /* 1901-12-13, 2000-03-26, 2000-10-29 */
    .types_of = {1, 2, 1},
    .ntypes = 3,
    .utoff = {3208, 3600, 7200},
    .isdst = {0, 0, 1},
    .footer = "CET-1CEST,M3.5.0,M10.5.0/3",
};

static struct tz *parse_ok(const char *name, const struct bytes *o)
{
    struct tz *z = NULL;
    char why[TZ_ERROR_MAX];
    if (!tz_parse_tzif(name, o->b, o->n, &z, why))
        fail_msg("%s: %s", name, why);
    return z;
}

static void tzif_versions(void **state)
{
    (void)state;
    struct bytes o;
    /* version 2 (and 3 and 4, the same format): the footer carries on after 2000 */
    static const char versions[] = {'2', '3', '4'};
    for (size_t v = 0; v < 3; v++) {
        struct tzif_spec s = SLIM;
        s.version = versions[v];
        build(&s, &o);
        struct tz *z = parse_ok("Test/Slim", &o);
        assert_int_equal(tz_offset_at(z, secs("1800-01-01T00:00:00Z")), 3208);
        assert_int_equal(tz_offset_at(z, secs("1990-01-01T00:00:00Z")), 3600);
        assert_int_equal(tz_offset_at(z, secs("2000-07-01T00:00:00Z")), 7200);
        assert_int_equal(tz_offset_at(z, secs("2026-03-29T00:59:59Z")), 3600);
        assert_int_equal(tz_offset_at(z, secs("2026-03-29T01:00:00Z")), 7200);
        assert_int_equal(tz_offset_at(z, secs("2040-10-28T01:00:00Z")), 3600);
        assert_int_equal(tz_local_to_instant(z, secs("2026-03-29T02:30")),
                         secs("2026-03-29T01:00:00Z"));
        assert_int_equal(tz_local_to_instant(z, secs("2026-10-25T02:30")),
                         secs("2026-10-25T00:30:00Z"));
        int32_t offs[8];
        assert_int_equal(tz_offsets(z, offs, 8), 3);
        assert_int_equal(offs[0], 3208);
        assert_int_equal(offs[2], 7200);
        tz_free(z);
    }
    /* version 3's negative rule times */
    struct tzif_spec nuuk = {.version = '3',
                             .ntimes = 1,
                             .times = {0},
                             .types_of = {0},
                             .ntypes = 1,
                             .utoff = {-7200},
                             .footer = "<-02>2<-01>,M3.5.0/-1,M10.5.0/0"};
    build(&nuuk, &o);
    struct tz *z = parse_ok("Test/Nuuk", &o);
    assert_int_equal(tz_offset_at(z, secs("2040-03-25T01:00:00Z")), -3600);
    tz_free(z);
    /* version 1: no footer, the last type lasts */
    struct tzif_spec v1 = SLIM;
    v1.version = '\0';
    build(&v1, &o);
    z = parse_ok("Test/V1", &o);
    assert_int_equal(tz_offset_at(z, secs("2026-07-01T00:00:00Z")), 3600);
    tz_free(z);
    /* the footer rules from the last transition on, even where it disagrees with that
     * transition's type */
    struct tzif_spec takeover = {.version = '2',
                                 .ntimes = 1,
                                 .times = {0},
                                 .types_of = {1},
                                 .ntypes = 2,
                                 .utoff = {3600, 0},
                                 .footer = "<+05>-5"};
    build(&takeover, &o);
    z = parse_ok("Test/Takeover", &o);
    assert_int_equal(tz_offset_at(z, -1), 3600);
    assert_int_equal(tz_offset_at(z, 0), 18000);
    for (int64_t local = -6 * 3600; local < 6 * 3600; local += 60)
        check_local(z, local);
    tz_free(z);
    /* clocks forward 2 h at 0, back 4 h at 01:00 UTC, forward 4 h at 02:00: local 00:30 is
     * skipped twice and never exists; it is due at the first shift */
    struct tzif_spec twice = {.version = '2',
                              .ntimes = 3,
                              .times = {0, 3600, 7200},
                              .types_of = {1, 2, 1},
                              .ntypes = 3,
                              .utoff = {0, 7200, -7200},
                              .footer = ""};
    build(&twice, &o);
    z = parse_ok("Test/Twice", &o);
    assert_int_equal(tz_local_to_instant(z, 1800), 0);
    assert_int_equal(tz_local_to_instant(z, -1800), -1800);
    assert_int_equal(tz_local_to_instant(z, 9000), 1800);
    for (int64_t local = -6 * 3600; local < 6 * 3600; local += 60)
        check_local(z, local);
    tz_free(z);
    /* an empty footer: the last type lasts */
    struct tzif_spec empty = SLIM;
    empty.footer = "";
    build(&empty, &o);
    z = parse_ok("Test/Empty", &o);
    assert_int_equal(tz_offset_at(z, secs("2026-07-01T00:00:00Z")), 3600);
    tz_free(z);
}

/* Overwrites bytes of a built file in place. */
static void poke32(struct bytes *o, size_t at, uint32_t v)
{
    o->b[at] = (uint8_t)(v >> 24);
    o->b[at + 1] = (uint8_t)(v >> 16);
    o->b[at + 2] = (uint8_t)(v >> 8);
    o->b[at + 3] = (uint8_t)v;
}

/* Offsets into SLIM's version 2 file: its second header starts after the first block. */
enum {
    V1_BLOCK = 3 * 4 + 3 + 3 * 6 + 4,
    H2 = 44 + V1_BLOCK,
    TIMES2 = H2 + 44,
    INDEXES2 = TIMES2 + 3 * 8,
    TYPES2 = INDEXES2 + 3,
    CHARS2 = TYPES2 + 3 * 6,
    FOOTER2 = CHARS2 + 4,
};

struct corruption {
    const char *what, *message_part;
};

/* Applies corruption i to a fresh copy of SLIM's file. */
static void corrupt(size_t i, struct bytes *o)
{
    build(&SLIM, o);
    switch (i) {
    case 0:
        o->n = 0;
        break;
    case 1:
        o->n = 4;
        break;
    case 2:
        memcpy(o->b, "TZix", 4);
        break;
    case 3:
        o->b[4] = '5';
        break;
    case 4:
        o->n = TYPES2;
        break;
    case 5:
        poke32(o, H2 + 32, 0xffffffff);
        break;
    case 6:
        poke32(o, 32, 0xffffffff);
        break;
    case 7:
        poke32(o, H2 + 36, 0);
        break;
    case 8:
        poke32(o, H2 + 40, 0);
        break;
    case 9:
        o->b[INDEXES2 + 1] = 3;
        break;
    case 10:
        memcpy(o->b + TIMES2 + 8, o->b + TIMES2 + 16, 8);
        break;
    case 11:
        poke32(o, TYPES2, 93600);
        break;
    case 12:
        poke32(o, TYPES2, (uint32_t)INT32_MIN);
        break;
    case 13:
        o->b[TYPES2 + 4] = 2;
        break;
    case 14:
        o->b[TYPES2 + 5] = 4;
        break;
    case 15:
        o->b[CHARS2 + 3] = 'X';
        break;
    case 16:
        poke32(o, H2 + 28, 1);
        break;
    case 17:
        poke32(o, H2 + 20, 2);
        break;
    case 18:
        poke32(o, H2 + 24, 1);
        break;
    case 19:
        o->n = FOOTER2;
        break;
    case 20:
        o->b[FOOTER2] = 'X';
        break;
    case 21:
        o->n--;
        break;
    case 22:
        o->b[FOOTER2 + 5] = '\0';
        break;
    case 23:
        o->b[FOOTER2 + 12] = '0';
        break; /* M3.5.0 -> M0.5.0 */
    case 24:
        o->b[H2 + 4] = '\0';
        break;
    default:
        break;
    }
}

static const struct corruption CORRUPTIONS[] = {
    {"empty", "too short for a TZif header"},
    {"four bytes", "too short for a TZif header"},
    {"wrong magic", "not a compiled time zone (no TZif header)"},
    {"version 5", "unknown TZif version (byte 0x35)"},
    {"cut in its data", "the file is truncated (its data needs"},
    {"huge transition count", "the file is truncated"},
    {"huge version 1 count", "truncated (its version 1 data needs"},
    {"no time type", "it has no time type"},
    {"no abbreviation", "no abbreviation characters"},
    {"type index out of range", "time type index is beyond its time types"},
    {"transitions out of order", "do not strictly ascend"},
    {"offset of 26 hours", "beyond 25:59:59 east"},
    {"offset -2^31", "beyond 25:59:59 east or 24:59:59 west"},
    {"dst flag 2", "daylight-saving flag is neither 0 nor 1"},
    {"abbreviation index out of range", "abbreviation index is beyond"},
    {"abbreviations unterminated", "do not end with a NUL byte"},
    {"leap seconds", "counts leap seconds"},
    {"UT indicator count", "UT indicator count"},
    {"standard indicator count", "standard indicator count"},
    {"no footer", "no TZ string footer"},
    {"footer without its newline", "no TZ string footer"},
    {"footer not ended", "not ended by a newline"},
    {"NUL in the footer", "broken by a NUL byte"},
    {"bad footer rule", "its footer's POSIX TZ string \"CET-1CEST,M0.5.0,M10.5.0/3\": the start "
                        "date must be"},
    {"second header version 1", "second header says version 1"},
};

static void tzif_corrupt_in_memory(void **state)
{
    (void)state;
    struct bytes o;
    for (size_t i = 0; i < sizeof CORRUPTIONS / sizeof CORRUPTIONS[0]; i++) {
        corrupt(i, &o);
        struct tz *z = (struct tz *)1;
        char why[TZ_ERROR_MAX];
        if (tz_parse_tzif("Test/Bad", o.b, o.n, &z, why))
            fail_msg("%s: accepted", CORRUPTIONS[i].what);
        assert_null(z);
        if (!strstr(why, CORRUPTIONS[i].message_part))
            fail_msg("%s: \"%s\" does not say \"%s\"", CORRUPTIONS[i].what, why,
                     CORRUPTIONS[i].message_part);
    }
}

/* Every prefix of a good file is refused, and every one-byte change either loads a zone whose
 * offsets are within bounds or is refused with a reason; under ASan nothing reads out of
 * bounds. Real files too. */
static void tzif_every_prefix_and_byte(void **state)
{
    (void)state;
    struct bytes o;
    build(&SLIM, &o);
    for (size_t n = 0; n < o.n; n++) {
        struct tz *z;
        char why[TZ_ERROR_MAX] = "";
        /* A copy of exactly n bytes, so ASan sees a read past them. */
        uint8_t *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, o.b, n);
        assert_false(tz_parse_tzif("Test/Prefix", copy, n, &z, why));
        assert_true(why[0] != '\0');
        free(copy);
    }
    static const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '\n'};
    for (size_t at = 0; at < o.n; at++) {
        for (size_t v = 0; v < sizeof values; v++) {
            struct bytes m = o;
            m.b[at] = values[v];
            uint8_t *copy = malloc(m.n);
            assert_non_null(copy);
            memcpy(copy, m.b, m.n);
            struct tz *z = NULL;
            char why[TZ_ERROR_MAX] = "";
            if (tz_parse_tzif("Test/Flip", copy, m.n, &z, why)) {
                for (int64_t t = secs("1800-01-01T00:00:00Z"); t < secs("2100-01-01T00:00:00Z");
                     t += 397 * 86400) {
                    int32_t off = tz_offset_at(z, t);
                    assert_true(off >= TZ_OFFSET_MIN && off <= TZ_OFFSET_MAX);
                    check_local(z, t);
                }
                tz_free(z);
            } else {
                assert_true(why[0] != '\0');
            }
            free(copy);
        }
    }
}

static char *write_file(const char *dir, const char *name, const void *data, size_t n)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(path);
    sprintf(path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* The same files on disk, found through TZDIR. */
static void tzif_corrupt_files_through_tzdir(void **state)
{
    (void)state;
    char dir[] = "/tmp/keel-test-tz-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[64];
    snprintf(sub, sizeof sub, "%s/Test", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    char *paths[64];
    size_t npaths = 0;
    struct bytes o;
    build(&SLIM, &o);
    paths[npaths++] = write_file(sub, "Good", o.b, o.n);
    size_t ncorrupt = sizeof CORRUPTIONS / sizeof CORRUPTIONS[0];
    for (size_t i = 0; i < ncorrupt; i++) {
        corrupt(i, &o);
        char name[32];
        snprintf(name, sizeof name, "Bad%zu", i);
        paths[npaths++] = write_file(sub, name, o.b, o.n);
    }
    /* A file larger than any zone file. */
    uint8_t *big = calloc(1, 300 * 1024);
    assert_non_null(big);
    paths[npaths++] = write_file(sub, "Big", big, 300 * 1024);
    free(big);
    const char *garbage = "# This file is not a compiled zone, though it sits beside them.\n";
    paths[npaths++] = write_file(dir, "leapseconds", garbage, strlen(garbage));

    assert_int_equal(setenv("TZDIR", dir, 1), 0);
    struct tz *z = load("Test/Good");
    assert_int_equal(tz_offset_at(z, secs("2040-10-28T00:59:59Z")), 7200);
    tz_free(z);
    char why[TZ_ERROR_MAX];
    for (size_t i = 0; i < ncorrupt; i++) {
        char name[32];
        snprintf(name, sizeof name, "Test/Bad%zu", i);
        assert_false(tz_load(name, &z, why));
        assert_null(z);
        if (!strstr(why, CORRUPTIONS[i].message_part) || !strstr(why, name))
            fail_msg("%s: \"%s\" does not say \"%s\"", CORRUPTIONS[i].what, why,
                     CORRUPTIONS[i].message_part);
    }
    static const struct bad_case cases[] = {
        {"Test/Big", "too large for a zone file"},
        {"leapseconds", "no TZif header"},
        {"Test", "unknown time zone \"Test\""},
        {"Europe/Berlin", "unknown time zone \"Europe/Berlin\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_false(tz_load(cases[i].text, &z, why));
        if (!strstr(why, cases[i].message_part))
            fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].text, why, cases[i].message_part);
    }
    /* UTC is built in: it needs no file. */
    z = load("UTC");
    assert_int_equal(tz_offset_at(z, 0), 0);
    tz_free(z);
    /* An empty TZDIR is the default folder. */
    assert_int_equal(setenv("TZDIR", "", 1), 0);
    z = load("Europe/Berlin");
    tz_free(z);
    assert_int_equal(unsetenv("TZDIR"), 0);

    for (size_t i = 0; i < npaths; i++) {
        assert_int_equal(unlink(paths[i]), 0);
        free(paths[i]);
    }
    assert_int_equal(rmdir(sub), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(offsets_around_shifts),
        cmocka_unit_test(offsets_at_extreme_instants),
        cmocka_unit_test(every_zone_agrees_with_the_c_library),
        cmocka_unit_test(every_slim_zone_agrees_with_the_c_library),
        cmocka_unit_test(local_times_in_gaps_and_overlaps),
        cmocka_unit_test(local_times_near_every_shift),
        cmocka_unit_test(due_times_on_shift_days),
        cmocka_unit_test(daily_runs_once_every_day),
        cmocka_unit_test(every_minute_across_shifts),
        cmocka_unit_test(never_due),
        cmocka_unit_test(due_time_format),
        cmocka_unit_test(posix_strings_parse),
        cmocka_unit_test(posix_rules_give_offsets),
        cmocka_unit_test(posix_strings_refused),
        cmocka_unit_test(names_refused),
        cmocka_unit_test(tzif_versions),
        cmocka_unit_test(tzif_corrupt_in_memory),
        cmocka_unit_test(tzif_every_prefix_and_byte),
        cmocka_unit_test(tzif_corrupt_files_through_tzdir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
