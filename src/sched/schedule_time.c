/* The civil minutes of a cron expression turned into instants by a zone. The search is bounded:
 * a civil minute maps to an instant within a day and a bit of it (offsets are at most 26 hours),
 * so the minutes that map to or before `after` all lie within SCHED_SKIP_MAX minutes of it, and
 * cron_next itself gives up after 8 years. */
#include "sched/schedule_time.h"

#include <stdio.h>

#define DAY 86400
/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
#define SCHED_MIN_UNIX INT64_C(-62135596800)
#define SCHED_MAX_UNIX INT64_C(253402300799)
/* More than the minutes of (after - 26 h, after + 26 h], the only civil minutes after the one of
 * `after` that can map to an instant at or before it. */
#define SCHED_SKIP_MAX (4 * 24 * 60)

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

bool sched_civil_at(const struct tz *z, int64_t unix_seconds, struct civil_minute *out)
{
    if (unix_seconds < SCHED_MIN_UNIX - DAY || unix_seconds > SCHED_MAX_UNIX + DAY)
        return false;
    int64_t local = unix_seconds + tz_offset_at(z, unix_seconds);
    int64_t days = floor_div(local, DAY), secs = local - days * DAY, year;
    int month, day;
    tz_civil_from_days(days, &year, &month, &day);
    if (year < 1 || year > 9999)
        return false;
    *out =
        (struct civil_minute){(int)year, month, day, (int)(secs / 3600), (int)(secs % 3600 / 60)};
    return true;
}

int64_t sched_civil_to_instant(const struct tz *z, const struct civil_minute *m)
{
    int64_t local =
        tz_days_from_civil(m->year, m->month, m->day) * DAY + m->hour * 3600 + m->minute * 60;
    return tz_local_to_instant(z, local);
}

bool sched_next(const struct cron *c, const struct tz *z, int64_t after_unix, int64_t *out_unix)
{
    struct civil_minute m;
    if (!sched_civil_at(z, after_unix, &m))
        return false;
    for (int i = 0; i < SCHED_SKIP_MAX; i++) {
        struct civil_minute next;
        if (!cron_next(c, &m, &next))
            return false;
        int64_t t = sched_civil_to_instant(z, &next);
        if (t > after_unix) {
            *out_unix = t;
            return true;
        }
        /* A minute of a repeated hour whose first occurrence has passed, or one more minute
         * of a skipped hour whose shift is `after` itself. */
        m = next;
    }
    return false;
}

size_t sched_next_n(const struct cron *c, const struct tz *z, int64_t after_unix, int64_t *out,
                    size_t n)
{
    size_t found = 0;
    int64_t t = after_unix;
    while (found < n && sched_next(c, z, t, &t))
        out[found++] = t;
    return found;
}

void sched_format_due(int64_t unix_seconds, char buf[SCHED_DUE_MAX])
{
    /* The remainder rather than unix_seconds - days * DAY, which overflows at INT64_MIN. */
    int64_t days = floor_div(unix_seconds, DAY), secs = unix_seconds % DAY, year;
    if (secs < 0)
        secs += DAY;
    int month, day;
    tz_civil_from_days(days, &year, &month, &day);
    snprintf(buf, SCHED_DUE_MAX, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)year, month, day,
             (int)(secs / 3600), (int)(secs % 3600 / 60), (int)(secs % 60));
}
