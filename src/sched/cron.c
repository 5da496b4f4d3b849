/* Fields as bit sets; the next time is found field by field, from the year down, so that a
 * search never walks minute by minute through days that cannot match. */
#include "sched/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct field {
    const char *name;
    int min, max;
    const char *const *names; /* the names of min..max, or NULL */
};

static const char *const MONTH_NAMES[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const DAY_NAMES[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const struct field FIELDS[5] = {
    {"minute", 0, 59, NULL},          {"hour", 0, 23, NULL},
    {"day of month", 1, 31, NULL},    {"month", 1, 12, MONTH_NAMES},
    {"day of week", 0, 7, DAY_NAMES},
};

/* Reads one value of field f at *p (a number or, where the field has them, a name). */
static bool read_value(const struct field *f, const char **p, int *out, int k, char *why)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s)) {
            v = v * 10 + (*s - '0');
            if (v > 1000) {
                snprintf(why, CRON_ERROR_MAX, "field %d (%s): a number is too large", k + 1,
                         f->name);
                return false;
            }
            s++;
        }
        if (v < f->min || v > f->max) {
            snprintf(why, CRON_ERROR_MAX, "field %d (%s): %ld is out of range %d-%d", k + 1,
                     f->name, v, f->min, f->max);
            return false;
        }
        *out = (int)v;
        *p = s;
        return true;
    }
    if (f->names && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1]) &&
        isalpha((unsigned char)s[2]) && !isalpha((unsigned char)s[3])) {
        int n = f->max - f->min + 1 - (f->names == DAY_NAMES ? 1 : 0);
        for (int i = 0; i < n; i++) {
            if (!strncasecmp(s, f->names[i], 3)) {
                *out = f->min + i;
                *p = s + 3;
                return true;
            }
        }
        snprintf(why, CRON_ERROR_MAX, "field %d (%s): \"%.3s\" is not a %s name", k + 1, f->name, s,
                 f->names == DAY_NAMES ? "weekday" : "month");
        return false;
    }
    snprintf(why, CRON_ERROR_MAX, "field %d (%s): expected a number%s at \"%.20s\"", k + 1, f->name,
             f->names ? " or a name" : "", s);
    return false;
}

/* Parses field k (text of len bytes) into bits. */
static bool parse_field(const char *text, size_t len, int k, uint64_t *bits, char *why)
{
    const struct field *f = &FIELDS[k];
    char buf[128];
    if (len >= sizeof buf) {
        snprintf(why, CRON_ERROR_MAX, "field %d (%s) is too long", k + 1, f->name);
        return false;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    *bits = 0;
    const char *p = buf;
    for (;;) {
        int lo, hi, step = 1;
        bool star = false;
        if (*p == '*') {
            star = true;
            lo = f->min;
            hi = f->max;
            p++;
        } else {
            if (!read_value(f, &p, &lo, k, why))
                return false;
            hi = lo;
            if (*p == '-') {
                p++;
                if (!read_value(f, &p, &hi, k, why))
                    return false;
                if (hi < lo) {
                    snprintf(why, CRON_ERROR_MAX,
                             "field %d (%s): the range %d-%d runs backwards (ranges do not wrap; "
                             "list two ranges instead)",
                             k + 1, f->name, lo, hi);
                    return false;
                }
            }
        }
        if (*p == '/') {
            p++;
            long s = 0;
            if (!isdigit((unsigned char)*p)) {
                snprintf(why, CRON_ERROR_MAX, "field %d (%s): a step needs a number after \"/\"",
                         k + 1, f->name);
                return false;
            }
            while (isdigit((unsigned char)*p) && s <= 1000)
                s = s * 10 + (*p++ - '0');
            if (s < 1 || s > f->max) {
                snprintf(why, CRON_ERROR_MAX, "field %d (%s): a step must be 1 to %d", k + 1,
                         f->name, f->max);
                return false;
            }
            step = (int)s;
            /* "5/15" is "5-max/15", as Vixie cron reads it. */
            if (!star && hi == lo)
                hi = f->max;
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= (uint64_t)1 << v;
        if (*p == '\0')
            break;
        if (*p != ',') {
            snprintf(why, CRON_ERROR_MAX, "field %d (%s): unexpected \"%c\"", k + 1, f->name, *p);
            return false;
        }
        p++;
    }
    return true;
}

static const struct {
    const char *name;
    const char *expansion;
} SHORTHANDS[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

bool cron_parse(const char *text, struct cron *out, char *why)
{
    memset(out, 0, sizeof *out);
    if (!text) {
        snprintf(why, CRON_ERROR_MAX, "no expression");
        return false;
    }
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text == '@') {
        for (size_t i = 0; i < sizeof SHORTHANDS / sizeof SHORTHANDS[0]; i++) {
            size_t n = strlen(SHORTHANDS[i].name);
            if (!strncasecmp(text, SHORTHANDS[i].name, n) &&
                strspn(text + n, " \t") == strlen(text + n))
                return cron_parse(SHORTHANDS[i].expansion, out, why);
        }
        snprintf(why, CRON_ERROR_MAX,
                 "unknown shorthand \"%.20s\" (use @yearly, @annually, @monthly, @weekly, "
                 "@daily, @midnight or @hourly)",
                 text);
        return false;
    }
    const char *starts[6];
    size_t lens[6];
    int n = 0;
    for (const char *p = text; *p;) {
        if (*p == ' ' || *p == '\t') {
            p++;
            continue;
        }
        size_t len = strcspn(p, " \t");
        if (n < 6) {
            starts[n] = p;
            lens[n] = len;
        }
        n++;
        p += len;
    }
    if (n != 5) {
        snprintf(why, CRON_ERROR_MAX,
                 "a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
                 "this one has %d",
                 n);
        return false;
    }
    uint64_t bits[5];
    for (int k = 0; k < 5; k++)
        if (!parse_field(starts[k], lens[k], k, &bits[k], why))
            return false;
    out->minutes = bits[0];
    out->hours = (uint32_t)bits[1];
    out->mdays = (uint32_t)bits[2];
    out->months = (uint16_t)bits[3];
    /* Weekday 7 is Sunday. */
    out->wdays = (uint8_t)((bits[4] & 0x7f) | ((bits[4] >> 7) & 1));
    out->mday_star = starts[2][0] == '*';
    out->wday_star = starts[4][0] == '*';
    return true;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int civil_days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && leap(year) ? 29 : days[month - 1];
}

int civil_weekday(int year, int month, int day)
{
    /* Sakamoto's method. */
    static const int t[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
    int y = month < 3 ? year - 1 : year;
    return (y + y / 4 - y / 100 + y / 400 + t[month - 1] + day) % 7;
}

/* Whether c fires on that day at all. */
static bool day_matches(const struct cron *c, int year, int month, int day)
{
    bool md = (c->mdays >> day) & 1;
    bool wd = (c->wdays >> civil_weekday(year, month, day)) & 1;
    if (c->mday_star || c->wday_star)
        return md && wd;
    return md || wd;
}

bool cron_matches(const struct cron *c, const struct civil_minute *t)
{
    return t->month >= 1 && t->month <= 12 && t->day >= 1 &&
           t->day <= civil_days_in_month(t->year, t->month) && ((c->months >> t->month) & 1) &&
           day_matches(c, t->year, t->month, t->day) && ((c->hours >> t->hour) & 1) &&
           ((c->minutes >> t->minute) & 1);
}

/* The first set bit at or above from (up to max), or -1. */
static int first_bit(uint64_t bits, int from, int max)
{
    for (int v = from; v <= max; v++)
        if ((bits >> v) & 1)
            return v;
    return -1;
}

bool cron_next(const struct cron *c, const struct civil_minute *after, struct civil_minute *out)
{
    /* The minute after `after`, then the first match from there: the first matching day from
     * that date, and in it the first matching hour and minute (from the time of day only on
     * the starting day). */
    struct civil_minute t = *after;
    if (++t.minute == 60) {
        t.minute = 0;
        if (++t.hour == 24) {
            t.hour = 0;
            if (++t.day > civil_days_in_month(t.year, t.month)) {
                t.day = 1;
                if (++t.month == 13) {
                    t.month = 1;
                    t.year++;
                }
            }
        }
    }
    int limit_year = t.year + 8;
    bool first_day = true;
    for (int y = t.year; y <= limit_year && y <= 9999; y++) {
        for (int m = (y == t.year ? t.month : 1); m <= 12; m++) {
            if (!((c->months >> m) & 1)) {
                first_day = false;
                continue;
            }
            int dim = civil_days_in_month(y, m);
            int d0 = first_day && y == t.year && m == t.month ? t.day : 1;
            for (int d = d0; d <= dim; d++) {
                bool today = first_day && y == t.year && m == t.month && d == t.day;
                if (!day_matches(c, y, m, d))
                    continue;
                int h = first_bit(c->hours, today ? t.hour : 0, 23);
                while (h >= 0) {
                    int from = today && h == t.hour ? t.minute : 0;
                    int min = first_bit(c->minutes, from, 59);
                    if (min >= 0) {
                        *out = (struct civil_minute){y, m, d, h, min};
                        return true;
                    }
                    h = first_bit(c->hours, h + 1, 23);
                }
            }
            first_day = false;
        }
        first_day = false;
    }
    return false;
}
