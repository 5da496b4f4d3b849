/* Clocks and RFC 3339 times. All times in Keel are int64 milliseconds since the Unix epoch. */
#ifndef KEEL_UTIL_TIMEUTIL_H
#define KEEL_UTIL_TIMEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Wall-clock time in milliseconds since the epoch. */
int64_t time_now_ms(void);
/* Monotonic time in milliseconds, for measuring intervals. */
int64_t time_mono_ms(void);
/* Monotonic time in microseconds. */
int64_t time_mono_us(void);
/* The CLOCK_REALTIME time ms milliseconds from now, as pthread_cond_timedwait wants it. */
struct timespec time_deadline_in(long ms);
/* Writes "2026-11-21T23:55:47.123Z" (24 characters + NUL) into out; needs 32 bytes. */
void time_format_rfc3339(int64_t ms, char out[32]);
/* Parses an RFC 3339 date-time with an optional fraction and a Z or +hh:mm offset.
 * Returns false (and leaves *ms untouched) when s is not one. */
bool time_parse_rfc3339(const char *s, int64_t *ms);

#endif
