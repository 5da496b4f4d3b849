/* When a schedule is due (issue 12): its cron expression's civil minutes, read in its time zone.
 * A civil minute that does not exist (clocks go forward over it) is due at the instant of the
 * shift; one that exists twice (clocks go back) is due at its first occurrence only. So a
 * "30 2 * * *" schedule runs once on every day, daylight-saving days included, and the minutes
 * of one skipped hour all fall on one instant, which runs once. */
#ifndef KEEL_SCHED_SCHEDULE_TIME_H
#define KEEL_SCHED_SCHEDULE_TIME_H

#include "sched/cron.h"
#include "sched/tz.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The bytes sched_format_due needs (it writes 20 characters and a NUL for years 0 to 9999). */
#define SCHED_DUE_MAX 32

/* The civil minute of an instant in zone z (its seconds dropped). False when that minute is
 * outside the years 1 to 9999. */
bool sched_civil_at(const struct tz *z, int64_t unix_seconds, struct civil_minute *out);

/* The instant civil minute m is due at in zone z: the minute itself, its first occurrence when
 * it exists twice, or the instant of the shift that skips it. */
int64_t sched_civil_to_instant(const struct tz *z, const struct civil_minute *m);

/* The first instant strictly after after_unix at which schedule c is due in zone z: the civil
 * minutes c fires at from the civil minute of after_unix on, each mapped by
 * sched_civil_to_instant, the first of them later than after_unix. False when there is none
 * within cron_next's 8 years (or after the year 9999). Where a zone moves its clocks forward and
 * then back within a day, "first" follows the civil minutes. */
bool sched_next(const struct cron *c, const struct tz *z, int64_t after_unix, int64_t *out_unix);

/* The next n due instants after after_unix (each sched_next of the one before) into out;
 * returns how many there are (fewer than n when the schedule stops firing). */
size_t sched_next_n(const struct cron *c, const struct tz *z, int64_t after_unix, int64_t *out,
                    size_t n);

/* Writes an instant as RFC 3339 UTC to the second, "2026-03-29T01:00:00Z": the due-time part of
 * an execution id "<schedule id>:<due time>". */
void sched_format_due(int64_t unix_seconds, char buf[SCHED_DUE_MAX]);

#endif
