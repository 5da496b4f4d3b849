/* Durations in the definition language: "250ms", "30s", "5m", "72h", "3d" or integer milliseconds.
 */
#ifndef KEEL_DEFN_DURATION_H
#define KEEL_DEFN_DURATION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The longest duration accepted, 36500 days (about 100 years). The bound keeps "now + duration"
 * far from int64 overflow everywhere the engine adds a duration to a time. */
#define DEFN_DURATION_MAX_MS ((int64_t)36500 * 24 * 60 * 60 * 1000)

/* Parses a duration: a JSON string of decimal digits followed by exactly one unit (ms, s, m, h,
 * d; lower case), or a non-negative JSON integer of milliseconds. Zero is accepted; callers that
 * need a positive duration check for it. Rejected, each with its own message: negative values,
 * JSON reals (even 1.0), fractions ("1.5s"), combined units ("1h30m": one unit only, keep it
 * simple), a missing or unknown unit, spaces anywhere, the empty string, and anything above
 * DEFN_DURATION_MAX_MS.
 * Returns true and sets *ms; or returns false, leaves *ms untouched and, when why is not NULL,
 * points *why at a static message (never freed) phrased to follow the field's name, e.g.
 * "must not be negative". */
bool defn_parse_duration(const json_t *v, int64_t *ms, const char **why)
    __attribute__((warn_unused_result));

/* Writes ms in the largest unit that divides it exactly ("90m", "1500ms", "3d", "0ms"), so the
 * text parses back to the same value. Used in messages. */
void defn_format_duration(int64_t ms, char out[32]);

#endif
