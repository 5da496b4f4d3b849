/* Cron expressions of schedules (issue 12, contract "Operations"): the standard five fields
 * "minute hour day-of-month month day-of-week", and the shorthands @yearly (@annually),
 * @monthly, @weekly, @daily (@midnight) and @hourly.
 *
 * Each field is "*" or a comma-separated list of items "N", "A-B", "*" followed by an optional
 * "/S" step ("*\/15", "10-50/20", "5/15" meaning 5-max/15). Months and weekdays also take their
 * English three-letter names (jan-dec, sun-sat, any case); weekday 7 is Sunday, as 0 is.
 * Ranges do not wrap ("fri-mon" is an error, "fri-sat,sun-mon" says it).
 *
 * As every cron since Vixie's: when both day-of-month and day-of-week are restricted (neither
 * field starts with "*"), a day matches when EITHER matches; otherwise both must.
 *
 * Times here are civil (wall-clock) minutes with no zone: the schedule's time zone turns them
 * into instants (a separate module, which decides what a civil time that does not exist or
 * exists twice on a daylight-saving day means). */
#ifndef KEEL_SCHED_CRON_H
#define KEEL_SCHED_CRON_H

#include <stdbool.h>
#include <stdint.h>

struct cron {
    uint64_t minutes; /* bit m: minute m (0-59) */
    uint32_t hours;   /* bit h: hour h (0-23) */
    uint32_t mdays;   /* bit d: day of month d (1-31) */
    uint16_t months;  /* bit m: month m (1-12) */
    uint8_t wdays;    /* bit w: weekday w (0 = Sunday .. 6) */
    bool mday_star;   /* the day-of-month field starts with "*" */
    bool wday_star;   /* the day-of-week field starts with "*" */
};

/* A civil minute: a date and a time of day with no zone. */
struct civil_minute {
    int year;   /* 1..9999 */
    int month;  /* 1..12 */
    int day;    /* 1..31 (valid for the month) */
    int hour;   /* 0..23 */
    int minute; /* 0..59 */
};

#define CRON_ERROR_MAX 160

/* Parses text into *out. Returns true, or false with why (at least CRON_ERROR_MAX bytes) set to
 * a sentence naming the field and what is wrong with it (e.g. "field 2 (hour): 24 is out of
 * range 0-23"). */
bool cron_parse(const char *text, struct cron *out, char *why);

/* True when c fires at civil minute t (its day exists in its month). */
bool cron_matches(const struct cron *c, const struct civil_minute *t);

/* The first civil minute strictly after `after` at which c fires, within 8 years (an
 * expression such as "0 0 30 2 *" never fires: false). */
bool cron_next(const struct cron *c, const struct civil_minute *after, struct civil_minute *out);

/* The weekday of a civil date (0 = Sunday). */
int civil_weekday(int year, int month, int day);
/* The days in a month of a year (leap years by the Gregorian rule). */
int civil_days_in_month(int year, int month);

#endif
