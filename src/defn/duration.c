/* Duration parsing and formatting for the definition language. */
#include "defn/duration.h"

#include <stdio.h>
#include <string.h>

static const char WHY_TYPE[] =
    "must be a duration string like \"30s\" (units ms, s, m, h, d) or an integer of milliseconds";

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Milliseconds per unit; 0 when the unit is not one of ours. */
static int64_t unit_ms(const char *u, size_t n)
{
    if (n == 2 && memcmp(u, "ms", 2) == 0)
        return 1;
    if (n != 1)
        return 0;
    switch (u[0]) {
    case 's':
        return 1000;
    case 'm':
        return 60 * 1000;
    case 'h':
        return 60 * 60 * 1000;
    case 'd':
        return 24 * 60 * 60 * 1000;
    default:
        return 0;
    }
}

static bool parse_string(const char *s, size_t len, int64_t *ms, const char **why)
{
    if (len == 0) {
        *why = "must not be empty; use e.g. \"30s\"";
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (is_space(s[i])) {
            *why = "must not contain spaces; write e.g. \"30s\"";
            return false;
        }
        if (s[i] == '\0') {
            *why = WHY_TYPE;
            return false;
        }
    }
    if (s[0] == '-') {
        *why = "must not be negative";
        return false;
    }
    if (!is_digit(s[0])) {
        *why = "must start with a number, e.g. \"30s\"";
        return false;
    }
    size_t i = 0;
    int64_t n = 0;
    bool too_long = false;
    while (i < len && is_digit(s[i])) {
        /* Keep scanning after an overflow so the message can still be about the unit. */
        if (n > DEFN_DURATION_MAX_MS / 10)
            too_long = true;
        else
            n = n * 10 + (s[i] - '0');
        i++;
    }
    if (i == len) {
        *why = "needs a unit (ms, s, m, h or d), e.g. \"30s\"; a bare number of milliseconds must "
               "be a JSON integer, not a string";
        return false;
    }
    if (s[i] == '.' || s[i] == ',') {
        *why = "must be a whole number; use a smaller unit, e.g. \"1500ms\" rather than \"1.5s\"";
        return false;
    }
    size_t u = i;
    while (i < len && is_alpha(s[i]))
        i++;
    int64_t per = unit_ms(s + u, i - u);
    if (per == 0) {
        *why = "has an unknown unit; use ms, s, m, h or d (lower case)";
        return false;
    }
    if (i < len) {
        *why = is_digit(s[i])
                   ? "must use a single unit; combined units like \"1h30m\" are not supported, "
                     "write \"90m\""
                   : "has unexpected characters after the unit";
        return false;
    }
    if (too_long || n > DEFN_DURATION_MAX_MS / per) {
        *why = "is too long; the maximum is 36500d";
        return false;
    }
    *ms = n * per;
    return true;
}

bool defn_parse_duration(const json_t *v, int64_t *ms, const char **why)
{
    const char *ignored;
    if (!why)
        why = &ignored;
    if (!ms || !v) {
        *why = WHY_TYPE;
        return false;
    }
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0) {
            *why = "must not be negative";
            return false;
        }
        if (n > DEFN_DURATION_MAX_MS) {
            *why = "is too long; the maximum is 36500d";
            return false;
        }
        *ms = (int64_t)n;
        return true;
    }
    if (json_is_real(v)) {
        *why = json_real_value(v) < 0 ? "must not be negative"
                                      : "must be a whole number of milliseconds (a JSON integer) "
                                        "or a string like \"1500ms\"";
        return false;
    }
    if (json_is_string(v))
        return parse_string(json_string_value(v), json_string_length(v), ms, why);
    *why = WHY_TYPE;
    return false;
}

void defn_format_duration(int64_t ms, char out[32])
{
    static const struct {
        int64_t per;
        const char *unit;
    } units[] = {{24 * 60 * 60 * 1000, "d"}, {60 * 60 * 1000, "h"}, {60 * 1000, "m"}, {1000, "s"}};
    if (ms != 0) {
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (ms % units[i].per == 0) {
                snprintf(out, 32, "%lld%s", (long long)(ms / units[i].per), units[i].unit);
                return;
            }
        }
    }
    snprintf(out, 32, "%lldms", (long long)ms);
}
