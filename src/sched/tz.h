/* Time zones of schedules (issue 12): IANA zones ("Europe/Berlin") read from the system's
 * compiled TZif files (RFC 9636, versions 1 to 4), the UTC offset at an instant, and the instant
 * of a local civil time by the rules of schedules: a civil time that does not exist (the hour
 * skipped when clocks go forward) is the instant of the shift, and one that exists twice (the
 * hour repeated when they go back) is its first occurrence.
 *
 * Offsets after a file's last transition come from its POSIX TZ footer
 * ("CET-1CEST,M3.5.0,M10.5.0/3"): Debian's "slim" files list no transition after the rules last
 * changed and leave every later daylight-saving time to it.
 *
 * Everything here is arithmetic on a loaded zone: nothing reads or sets the process's TZ, calls
 * localtime or keeps global state, so any number of threads may share a loaded zone. Offsets are
 * seconds east of UTC (Berlin in summer: 7200). */
#ifndef KEEL_SCHED_TZ_H
#define KEEL_SCHED_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TZ_ERROR_MAX 256
/* The longest zone name accepted (the longest IANA name has 32 characters). */
#define TZ_NAME_MAX 128
/* Every offset lies within these bounds (RFC 9636 asks the same of TZif files: 25:59:59 east
 * at most, 24:59:59 west), so a local time is always within a day and a bit of its instant. */
#define TZ_OFFSET_MIN (-89999)
#define TZ_OFFSET_MAX 93599

/* A loaded zone; immutable once loaded. */
struct tz;

/* A day of a POSIX TZ rule. */
struct tz_rule_date {
    enum {
        TZ_DATE_JULIAN, /* "Jn": day n of 1..365, February 29 never counted */
        TZ_DATE_ZERO,   /* "n": day n of 0..365, February 29 counted in leap years */
        TZ_DATE_MONTH,  /* "Mm.w.d": weekday d (0 = Sunday) of week w (1..5, 5 = last) of month m */
    } kind;
    int day;                  /* TZ_DATE_JULIAN and TZ_DATE_ZERO */
    int month, week, weekday; /* TZ_DATE_MONTH */
    int32_t time;             /* seconds after local midnight, -167 h to 167 h (default 2 h) */
};

/* A POSIX TZ string: a standard time and, optionally, a daylight-saving time with the days it
 * starts (time given in standard time) and ends (time given in daylight-saving time). When the
 * start falls after the end in the year, daylight-saving time spans the new year (southern
 * hemisphere, or Dublin's "negative" summer time). */
struct tz_rule {
    int32_t std_offset; /* seconds east of UTC in standard time */
    int32_t dst_offset; /* in daylight-saving time; std_offset when there is none */
    bool has_dst;
    struct tz_rule_date start, end;
};

/* Parses a POSIX TZ string as TZif footers hold them, with RFC 9636's extensions (rule times
 * of -167 to 167 hours): "UTC0", "<+0330>-3:30", "EST5EDT,M3.2.0,M11.1.0",
 * "CET-1CEST,M3.5.0,M10.5.0/3", "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "EST5EDT,0/0,J365/25".
 * A daylight-saving time must have its rule (POSIX leaves "EST5EDT" alone implementation-
 * defined). Returns true, or false with why (TZ_ERROR_MAX bytes) saying what is wrong. */
bool tz_rule_parse(const char *text, struct tz_rule *out, char *why)
    __attribute__((warn_unused_result));

/* The offset of rule r at an instant (any int64 instant: the rule repeats every 400 years). */
int32_t tz_rule_offset_at(const struct tz_rule *r, int64_t unix_seconds);

/* Checks a zone name without touching the file system: 1 to TZ_NAME_MAX characters, only
 * letters, digits, '/', '_', '-' and '+', parts separated by single '/' each starting with a
 * letter (so no leading '/', no "..", no empty part). Returns true, or false with why set. */
bool tz_name_check(const char *name, char *why) __attribute__((warn_unused_result));

/* Loads zone `name` from the folder in the environment variable TZDIR, or /usr/share/zoneinfo
 * when it is unset or empty. "UTC" and "Etc/UTC" are built in (they work without tzdata).
 * Returns true with *out a new zone (the caller frees it with tz_free), or false with *out NULL
 * and why set: "unknown time zone \"Mars/Base\"", a name that tz_name_check refuses, or a file
 * that is not a valid TZif file (each count and index is checked against the file; zones that
 * count leap seconds, the "right/" ones, are refused). Reads TZDIR with getenv: do not change
 * the environment while other threads load zones. */
bool tz_load(const char *name, struct tz **out, char *why) __attribute__((warn_unused_result));

/* Parses TZif file contents (data[0..len), any bytes) as zone `name` (used in messages and by
 * tz_name). Same results as tz_load. */
bool tz_parse_tzif(const char *name, const uint8_t *data, size_t len, struct tz **out, char *why)
    __attribute__((warn_unused_result));

/* Frees a zone (NULL is fine). */
void tz_free(struct tz *z);

/* The zone's name as loaded ("Europe/Berlin"); owned by the zone. */
const char *tz_name(const struct tz *z);

/* The UTC offset of z at an instant, within TZ_OFFSET_MIN..TZ_OFFSET_MAX: before the first
 * transition the file's first time type, on or after the last one its footer's rule (or, without
 * one, the last transition's type). */
int32_t tz_offset_at(const struct tz *z, int64_t unix_seconds);

/* The instant at which the local (wall-clock) time of z is local_seconds, a civil time counted
 * as seconds since 1970-01-01T00:00 as if it were UTC. A civil time that exists twice (or more)
 * gives its first occurrence; one that does not exist gives the instant of the shift that skips
 * it (the transition t at which offset_before + t <= local < offset_after + t). local_seconds is
 * clamped to +-2^62. */
int64_t tz_local_to_instant(const struct tz *z, int64_t local_seconds);

/* The distinct offsets z can have, ascending: writes the first cap of them to out (which may be
 * NULL when cap is 0) and returns how many there are (every offset tz_offset_at can return is among
 * them). */
size_t tz_offsets(const struct tz *z, int32_t *out, size_t cap);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (days within +-10^15). */
int64_t tz_days_from_civil(int64_t year, int month, int day);
void tz_civil_from_days(int64_t days, int64_t *year, int *month, int *day);

#endif
