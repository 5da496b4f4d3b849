/* A TZif file is read whole and checked against its own counts before any field is used; what
 * a zone keeps of it is only what offsets need: the instants at which the offset changes, and the
 * footer's rule for the instants from the last transition on. A rule is evaluated on the instant
 * reduced modulo 400 Gregorian years (which repeat exactly, weekdays included), so no arithmetic
 * overflows whatever the instant. */
#include "sched/tz.h"

#include "util/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY 86400
/* 400 Gregorian years: 146097 days, a whole number of weeks. */
#define YEARS400 ((int64_t)146097 * DAY)
/* Instants and local times are clamped to +-2^62 where an offset or a day is added to them. */
#define TZ_CLAMP ((int64_t)1 << 62)
/* No real TZif file comes near this (the largest are a few kilobytes). */
#define TZIF_FILE_MAX (256 * 1024)
/* A footer longer than this is refused (real ones are under 50 characters). */
#define FOOTER_MAX 255

struct tz {
    char name[TZ_NAME_MAX + 1];
    int32_t initial_offset; /* before the first transition: time type 0 */
    size_t count;           /* transitions that change the offset */
    int64_t *at;            /* their instants, strictly ascending */
    int32_t *offset;        /* the offset from each on */
    bool has_rule;          /* the footer holds a rule... */
    int64_t rule_from;      /* ...that applies from here on (the file's last transition) */
    struct tz_rule rule;
};

/* ---- calendar ------------------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

int64_t tz_days_from_civil(int64_t year, int month, int day)
{
    /* Howard Hinnant's days_from_civil: years start in March, so February's length only
     * matters at the end of one. */
    int64_t y = year - (month <= 2);
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int weekday_of(int64_t days)
{
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

/* ---- POSIX TZ rules ------------------------------------------------------------------- */

/* ASCII only: the C library's ctype functions follow the locale. */
static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A zone abbreviation at *p: three or more letters, or "<...>" around three or more letters,
 * digits, '+' and '-'. */
static bool parse_abbr(const char *text, const char **p, const char *what, char *why)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '<') {
        s++;
        while (is_alpha(s[n]) || is_digit(s[n]) || s[n] == '+' || s[n] == '-')
            n++;
        if (s[n] != '>') {
            snprintf(why, TZ_ERROR_MAX,
                     "POSIX TZ string \"%.60s\": the %s name in \"<...>\" may hold only letters, "
                     "digits, '+' and '-' and must end with '>'",
                     text, what);
            return false;
        }
        *p = s + n + 1;
    } else {
        while (is_alpha(s[n]))
            n++;
        *p = s + n;
    }
    if (n < 3) {
        snprintf(why, TZ_ERROR_MAX,
                 "POSIX TZ string \"%.60s\": the %s name must have at least 3 letters (or be "
                 "quoted as \"<+0330>\")",
                 text, what);
        return false;
    }
    return true;
}

/* Up to `max_digits` digits at *p as a number (at least one digit). */
static bool parse_number(const char **p, int max_digits, int *out)
{
    int v = 0, n = 0;
    while (is_digit(**p)) {
        if (++n > max_digits)
            return false;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return n > 0;
}

/* Steps over c at *p when it is there (never over the end of the string). */
static bool expect(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

/* [+|-]hh[:mm[:ss]] with hh at most max_hours, as signed seconds. */
static bool parse_hms(const char *text, const char **p, int max_hours, const char *what,
                      int32_t *out, char *why)
{
    int sign = 1, h, m = 0, s = 0;
    if (**p == '+' || **p == '-')
        sign = *(*p)++ == '-' ? -1 : 1;
    bool ok = parse_number(p, 3, &h) && h <= max_hours;
    if (ok && expect(p, ':')) {
        ok = parse_number(p, 2, &m) && m <= 59;
        if (ok && expect(p, ':'))
            ok = parse_number(p, 2, &s) && s <= 59;
    }
    if (!ok) {
        snprintf(why, TZ_ERROR_MAX,
                 "POSIX TZ string \"%.60s\": the %s must be [+|-]hh[:mm[:ss]] with hours up to "
                 "%d and minutes and seconds up to 59",
                 text, what, max_hours);
        return false;
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
}

/* A rule date and its optional "/time". */
static bool parse_rule_date(const char *text, const char **p, const char *what,
                            struct tz_rule_date *out, char *why)
{
    bool ok;
    if (expect(p, 'J')) {
        out->kind = TZ_DATE_JULIAN;
        ok = parse_number(p, 3, &out->day) && out->day >= 1 && out->day <= 365;
    } else if (is_digit(**p)) {
        out->kind = TZ_DATE_ZERO;
        ok = parse_number(p, 3, &out->day) && out->day <= 365;
    } else if (expect(p, 'M')) {
        out->kind = TZ_DATE_MONTH;
        ok = parse_number(p, 2, &out->month) && out->month >= 1 && out->month <= 12 &&
             expect(p, '.') && parse_number(p, 1, &out->week) && out->week >= 1 && out->week <= 5 &&
             expect(p, '.') && parse_number(p, 1, &out->weekday) && out->weekday <= 6;
    } else {
        ok = false;
    }
    if (!ok) {
        snprintf(why, TZ_ERROR_MAX,
                 "POSIX TZ string \"%.60s\": the %s date must be Jn (1-365), n (0-365) or "
                 "Mm.w.d (month 1-12, week 1-5, weekday 0-6)",
                 text, what);
        return false;
    }
    out->time = 2 * 3600;
    if (expect(p, '/')) {
        char label[32];
        snprintf(label, sizeof label, "%s time", what);
        return parse_hms(text, p, 167, label, &out->time, why);
    }
    return true;
}

bool tz_rule_parse(const char *text, struct tz_rule *out, char *why)
{
    memset(out, 0, sizeof *out);
    if (!text) {
        snprintf(why, TZ_ERROR_MAX, "no POSIX TZ string");
        return false;
    }
    const char *p = text;
    int32_t off;
    if (!parse_abbr(text, &p, "standard time", why) ||
        !parse_hms(text, &p, 24, "standard time's offset", &off, why))
        return false;
    /* POSIX counts hours west of Greenwich; we count seconds east. */
    out->std_offset = -off;
    out->dst_offset = out->std_offset;
    if (*p == '\0')
        return true;
    if (!parse_abbr(text, &p, "daylight-saving time", why))
        return false;
    out->has_dst = true;
    out->dst_offset = out->std_offset + 3600;
    if (*p != ',' && *p != '\0') {
        if (!parse_hms(text, &p, 24, "daylight-saving time's offset", &off, why))
            return false;
        out->dst_offset = -off;
    }
    if (*p != ',') {
        snprintf(why, TZ_ERROR_MAX,
                 "POSIX TZ string \"%.60s\": a daylight-saving time needs its rule "
                 "(\",start[/time],end[/time]\")",
                 text);
        return false;
    }
    p++;
    if (!parse_rule_date(text, &p, "start", &out->start, why))
        return false;
    if (*p != ',') {
        snprintf(why, TZ_ERROR_MAX,
                 "POSIX TZ string \"%.60s\": expected \",\" and the end date after the start",
                 text);
        return false;
    }
    p++;
    if (!parse_rule_date(text, &p, "end", &out->end, why))
        return false;
    if (*p != '\0') {
        snprintf(why, TZ_ERROR_MAX,
                 "POSIX TZ string \"%.60s\": unexpected text \"%.20s\" at the end", text, p);
        return false;
    }
    return true;
}

/* The local day (days since 1970-01-01) of a rule date in a year. */
static int64_t rule_day(const struct tz_rule_date *d, int64_t year)
{
    int64_t jan1 = tz_days_from_civil(year, 1, 1);
    switch (d->kind) {
    case TZ_DATE_JULIAN:
        return jan1 + d->day - 1 + (leap_year(year) && d->day >= 60);
    case TZ_DATE_ZERO:
        return jan1 + d->day;
    case TZ_DATE_MONTH:
    default: {
        int64_t first = tz_days_from_civil(year, d->month, 1);
        int day = (d->weekday - weekday_of(first) + 7) % 7 + 7 * (d->week - 1);
        while (day >= month_days(year, d->month))
            day -= 7;
        return first + day;
    }
    }
}

struct rule_change {
    int64_t at;
    bool to_dst;
};

/* The two changes of year y: to daylight-saving time (its time given in standard time), and
 * back (given in daylight-saving time). */
static void rule_changes_of_year(const struct tz_rule *r, int64_t y, struct rule_change out[2])
{
    out[0] =
        (struct rule_change){rule_day(&r->start, y) * DAY + r->start.time - r->std_offset, true};
    out[1] = (struct rule_change){rule_day(&r->end, y) * DAY + r->end.time - r->dst_offset, false};
}

/* The year of t (within a few 400-year cycles of 1970) in local standard time. */
static int64_t standard_year(const struct tz_rule *r, int64_t t)
{
    int64_t y;
    int m, d;
    tz_civil_from_days(floor_div(t + r->std_offset, DAY), &y, &m, &d);
    return y;
}

/* Whether daylight-saving time is in effect at t (within a few 400-year cycles of 1970): the last
 * change at or before t among all years' changes in time order (changes at one instant in year
 * order, the start of a year before its end). A change of year y lies within y's dates moved by
 * a rule time (167 h at most) and an offset (26 h), so every change of the years before Y-2
 * precedes those of Y-2, which all precede t, and the changes after Y+1 all follow t: the
 * answer is among the years Y-2 to Y+1, whatever the rule. */
static bool rule_dst_at(const struct tz_rule *r, int64_t t)
{
    int64_t y = standard_year(r, t);
    bool found = false, dst = false;
    int64_t best = 0;
    for (int64_t k = y - 2; k <= y + 1; k++) {
        struct rule_change c[2];
        rule_changes_of_year(r, k, c);
        for (int i = 0; i < 2; i++) {
            if (c[i].at <= t && (!found || c[i].at >= best)) {
                found = true;
                best = c[i].at;
                dst = c[i].to_dst;
            }
        }
    }
    return dst;
}

static int64_t mod_years400(int64_t t)
{
    int64_t r = t % YEARS400;
    return r < 0 ? r + YEARS400 : r;
}

int32_t tz_rule_offset_at(const struct tz_rule *r, int64_t unix_seconds)
{
    if (!r->has_dst)
        return r->std_offset;
    return rule_dst_at(r, mod_years400(unix_seconds)) ? r->dst_offset : r->std_offset;
}

/* The first instant in (t, t + span] at which r's offset changes; |t| <= 2^62, span at most a
 * few days. The changes there are among those of the years Y-2 to Y+2 around t. */
static bool rule_next_change(const struct tz_rule *r, int64_t t, int64_t span, int64_t *out)
{
    if (!r->has_dst || r->std_offset == r->dst_offset)
        return false;
    int64_t t0 = mod_years400(t), base = t - t0;
    int64_t y = standard_year(r, t0);
    struct rule_change c[10];
    for (int k = 0; k < 5; k++)
        rule_changes_of_year(r, y - 2 + k, &c[2 * k]);
    /* In time order; equal instants keep their year order (insertion sort is stable). */
    for (int i = 1; i < 10; i++) {
        struct rule_change x = c[i];
        int j = i;
        for (; j > 0 && c[j - 1].at > x.at; j--)
            c[j] = c[j - 1];
        c[j] = x;
    }
    for (int i = 0; i < 10; i++) {
        if (c[i].at <= t0 || c[i].at > t0 + span)
            continue;
        if (rule_dst_at(r, c[i].at) != rule_dst_at(r, c[i].at - 1)) {
            *out = base + c[i].at;
            return true;
        }
    }
    return false;
}

/* ---- offsets -------------------------------------------------------------------------- */

/* How many of the table's transitions are at or before t. */
static size_t transitions_until(const struct tz *z, int64_t t)
{
    size_t lo = 0, hi = z->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The offset of the transitions table alone at t. */
static int32_t table_offset_at(const struct tz *z, int64_t t)
{
    size_t n = transitions_until(z, t);
    return n == 0 ? z->initial_offset : z->offset[n - 1];
}

int32_t tz_offset_at(const struct tz *z, int64_t unix_seconds)
{
    if (z->has_rule && unix_seconds >= z->rule_from)
        return tz_rule_offset_at(&z->rule, unix_seconds);
    return table_offset_at(z, unix_seconds);
}

/* The first instant in (t, t + span] at which z's offset changes; |t| <= 2^62, span at most a
 * few days: a change of the table before the rule takes over, the takeover itself when the
 * rule disagrees with the table there, or a change of the rule. */
static bool next_change(const struct tz *z, int64_t t, int64_t span, int64_t *out)
{
    int64_t end = t + span;
    size_t i = transitions_until(z, t);
    if (i < z->count && (!z->has_rule || z->at[i] < z->rule_from)) {
        if (z->at[i] > end)
            return false;
        *out = z->at[i];
        return true;
    }
    if (!z->has_rule)
        return false;
    if (t < z->rule_from) {
        if (z->rule_from > end)
            return false;
        if (table_offset_at(z, z->rule_from - 1) != tz_rule_offset_at(&z->rule, z->rule_from)) {
            *out = z->rule_from;
            return true;
        }
        return rule_next_change(&z->rule, z->rule_from, end - z->rule_from, out);
    }
    return rule_next_change(&z->rule, t, span, out);
}

int64_t tz_local_to_instant(const struct tz *z, int64_t local_seconds)
{
    int64_t local = local_seconds;
    if (local > TZ_CLAMP)
        local = TZ_CLAMP;
    if (local < -TZ_CLAMP)
        local = -TZ_CLAMP;
    /* Every instant whose local time is `local` lies within a window wider than any offset.
     * Walk its intervals of constant offset in time order: the first that holds one is the
     * first occurrence. When none does, the local time is skipped by a shift forward: the
     * first transition that jumps over it. */
    const int64_t window = 2 * DAY;
    int64_t cur = local - window, end = local + window;
    int32_t off = tz_offset_at(z, cur);
    bool have_gap = false;
    int64_t gap = 0;
    for (;;) {
        int64_t next;
        bool more = next_change(z, cur, end - cur, &next);
        int64_t candidate = local - off;
        if (candidate >= cur && (more ? candidate < next : candidate <= end))
            return candidate;
        if (!more)
            break;
        int32_t after = tz_offset_at(z, next);
        if (!have_gap && next + off <= local && local < next + after) {
            have_gap = true;
            gap = next;
        }
        cur = next;
        off = after;
    }
    /* The function t -> t + offset(t) runs from below `local` to above it across the window,
     * so it meets it or jumps over it: the last line is never reached. */
    return have_gap ? gap : local - tz_offset_at(z, local);
}

static int compare_int32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

size_t tz_offsets(const struct tz *z, int32_t *out, size_t cap)
{
    int32_t *all = xmalloc((z->count + 3) * sizeof *all);
    size_t n = 0;
    all[n++] = z->initial_offset;
    for (size_t i = 0; i < z->count; i++)
        all[n++] = z->offset[i];
    if (z->has_rule) {
        all[n++] = z->rule.std_offset;
        all[n++] = z->rule.dst_offset;
    }
    qsort(all, n, sizeof *all, compare_int32);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && all[i] == all[i - 1])
            continue;
        if (distinct < cap)
            out[distinct] = all[i];
        distinct++;
    }
    free(all);
    return distinct;
}

const char *tz_name(const struct tz *z)
{
    return z->name;
}

void tz_free(struct tz *z)
{
    if (!z)
        return;
    free(z->at);
    free(z->offset);
    free(z);
}

/* ---- TZif files ----------------------------------------------------------------------- */

struct tzif_counts {
    char version; /* '\0' (1), '2', '3' or '4' */
    uint32_t isut, isstd, leap, time, type, chars;
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64_signed(const uint8_t *p)
{
    uint64_t u = (uint64_t)be32(p) << 32 | be32(p + 4);
    int64_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static int32_t be32_signed(const uint8_t *p)
{
    uint32_t u = be32(p);
    int32_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* The 44-byte header at data + pos. */
static bool read_header(const char *name, const uint8_t *data, size_t len, size_t pos,
                        struct tzif_counts *c, char *why)
{
    if (len - pos < 44) {
        snprintf(why, TZ_ERROR_MAX, "time zone \"%s\": the file is too short for a TZif header",
                 name);
        return false;
    }
    const uint8_t *h = data + pos;
    if (memcmp(h, "TZif", 4) != 0) {
        snprintf(why, TZ_ERROR_MAX,
                 "time zone \"%s\": the file is not a compiled time zone (no TZif header)", name);
        return false;
    }
    c->version = (char)h[4];
    if (c->version != '\0' && (c->version < '2' || c->version > '4')) {
        snprintf(why, TZ_ERROR_MAX, "time zone \"%s\": unknown TZif version (byte 0x%02x)", name,
                 h[4]);
        return false;
    }
    c->isut = be32(h + 20);
    c->isstd = be32(h + 24);
    c->leap = be32(h + 28);
    c->time = be32(h + 32);
    c->type = be32(h + 36);
    c->chars = be32(h + 40);
    return true;
}

/* The size of a data block with these counts and transition times of time_size bytes. */
static uint64_t block_size(const struct tzif_counts *c, unsigned time_size)
{
    return (uint64_t)c->time * time_size + c->time + (uint64_t)c->type * 6 + c->chars +
           (uint64_t)c->leap * (time_size + 4) + c->isstd + c->isut;
}

static bool check_counts(const char *name, const struct tzif_counts *c, char *why)
{
    const char *problem = NULL;
    if (c->type == 0)
        problem = "it has no time type";
    else if (c->chars == 0)
        problem = "it has no abbreviation characters";
    else if (c->isut != 0 && c->isut != c->type)
        problem = "its UT indicator count is neither 0 nor its time type count";
    else if (c->isstd != 0 && c->isstd != c->type)
        problem = "its standard indicator count is neither 0 nor its time type count";
    else if (c->leap != 0)
        problem = "it counts leap seconds (a \"right/\" zone); use the zone without them";
    if (problem)
        snprintf(why, TZ_ERROR_MAX, "time zone \"%s\": %s", name, problem);
    return problem == NULL;
}

/* The pointers into one data block, which block_size bytes hold. */
struct tzif_block {
    const uint8_t *times, *indexes, *types, *chars, *isstd, *isut;
    unsigned time_size;
};

/* Checks every time type, index and indicator of a block, and that transitions ascend. */
static bool check_block(const char *name, const struct tzif_counts *c, const struct tzif_block *b,
                        char *why)
{
    const char *problem = NULL;
    for (uint32_t i = 0; i < c->type && !problem; i++) {
        const uint8_t *t = b->types + 6 * (size_t)i;
        int32_t utoff = be32_signed(t);
        if (utoff < TZ_OFFSET_MIN || utoff > TZ_OFFSET_MAX)
            problem = "a time type's UTC offset is beyond 25:59:59 east or 24:59:59 west";
        else if (t[4] > 1)
            problem = "a time type's daylight-saving flag is neither 0 nor 1";
        else if (t[5] >= c->chars)
            problem = "a time type's abbreviation index is beyond its abbreviations";
    }
    if (!problem && b->chars[c->chars - 1] != '\0')
        problem = "its abbreviations do not end with a NUL byte";
    for (uint32_t i = 0; i < c->isstd && !problem; i++)
        if (b->isstd[i] > 1)
            problem = "a standard/wall indicator is neither 0 nor 1";
    for (uint32_t i = 0; i < c->isut && !problem; i++)
        if (b->isut[i] > 1 || (b->isut[i] == 1 && (c->isstd == 0 || b->isstd[i] != 1)))
            problem = "a UT/local indicator is neither 0 nor 1, or is 1 for a wall-clock type";
    int64_t prev = 0;
    for (uint32_t i = 0; i < c->time && !problem; i++) {
        const uint8_t *p = b->times + (size_t)i * b->time_size;
        int64_t at = b->time_size == 8 ? be64_signed(p) : be32_signed(p);
        if (b->indexes[i] >= c->type)
            problem = "a transition's time type index is beyond its time types";
        else if (i > 0 && at <= prev)
            problem = "its transition times do not strictly ascend";
        prev = at;
    }
    if (problem)
        snprintf(why, TZ_ERROR_MAX, "time zone \"%s\": %s", name, problem);
    return problem == NULL;
}

/* The footer of a version 2+ file at data + pos: "\n" TZ-string "\n". */
static bool read_footer(const char *name, const uint8_t *data, size_t len, size_t pos, struct tz *z,
                        char *why)
{
    if (pos >= len || data[pos] != '\n') {
        snprintf(why, TZ_ERROR_MAX,
                 "time zone \"%s\": the file has no TZ string footer after its data (a TZif "
                 "version 2+ file ends with one)",
                 name);
        return false;
    }
    const uint8_t *start = data + pos + 1;
    const uint8_t *nl = memchr(start, '\n', len - pos - 1);
    size_t n = nl ? (size_t)(nl - start) : 0;
    if (!nl || n > FOOTER_MAX || memchr(start, '\0', n)) {
        snprintf(why, TZ_ERROR_MAX, "time zone \"%s\": its TZ string footer is %s", name,
                 !nl              ? "not ended by a newline"
                 : n > FOOTER_MAX ? "too long"
                                  : "broken by a NUL byte");
        return false;
    }
    if (n == 0)
        return true; /* no rule: the last transition's type lasts */
    char text[FOOTER_MAX + 1];
    memcpy(text, start, n);
    text[n] = '\0';
    char rule_why[TZ_ERROR_MAX];
    if (!tz_rule_parse(text, &z->rule, rule_why)) {
        snprintf(why, TZ_ERROR_MAX, "time zone \"%s\": its footer's %.180s", name, rule_why);
        return false;
    }
    z->has_rule = true;
    return true;
}

/* Keeps the transitions of a checked block that change the offset. */
static void keep_transitions(struct tz *z, const struct tzif_counts *c, const struct tzif_block *b)
{
    z->initial_offset = be32_signed(b->types);
    z->at = xmalloc(((size_t)c->time + 1) * sizeof *z->at);
    z->offset = xmalloc(((size_t)c->time + 1) * sizeof *z->offset);
    int32_t prev = z->initial_offset;
    for (uint32_t i = 0; i < c->time; i++) {
        const uint8_t *p = b->times + (size_t)i * b->time_size;
        int64_t at = b->time_size == 8 ? be64_signed(p) : be32_signed(p);
        int32_t off = be32_signed(b->types + 6 * (size_t)b->indexes[i]);
        if (off != prev) {
            z->at[z->count] = at;
            z->offset[z->count] = off;
            z->count++;
            prev = off;
        }
        z->rule_from = at;
    }
}

bool tz_parse_tzif(const char *name, const uint8_t *data, size_t len, struct tz **out, char *why)
{
    *out = NULL;
    if (!name)
        name = "";
    if (!data)
        len = 0;
    struct tz *z = NULL;
    struct tzif_counts c;
    bool ok = false;
    if (!read_header(name, data, len, 0, &c, why))
        goto done;
    size_t pos = 44;
    unsigned time_size = 4;
    if (c.version != '\0') {
        /* Skip the version 1 block (32-bit times) for the second header and its 64-bit
         * block. */
        uint64_t v1 = block_size(&c, 4);
        if (v1 > len - pos) {
            snprintf(why, TZ_ERROR_MAX,
                     "time zone \"%s\": the file is truncated (its version 1 data needs %llu "
                     "bytes, %zu remain)",
                     name, (unsigned long long)v1, len - pos);
            goto done;
        }
        pos += (size_t)v1;
        if (!read_header(name, data, len, pos, &c, why))
            goto done;
        if (c.version == '\0') {
            snprintf(why, TZ_ERROR_MAX,
                     "time zone \"%s\": its second header says version 1 (a version 2+ file "
                     "repeats its version)",
                     name);
            goto done;
        }
        pos += 44;
        time_size = 8;
    }
    if (!check_counts(name, &c, why))
        goto done;
    uint64_t need = block_size(&c, time_size);
    if (need > len - pos) {
        snprintf(why, TZ_ERROR_MAX,
                 "time zone \"%s\": the file is truncated (its data needs %llu bytes, %zu remain)",
                 name, (unsigned long long)need, len - pos);
        goto done;
    }
    struct tzif_block b = {.times = data + pos, .time_size = time_size};
    b.indexes = b.times + (size_t)c.time * time_size;
    b.types = b.indexes + c.time;
    b.chars = b.types + (size_t)c.type * 6;
    b.isstd = b.chars + c.chars + (size_t)c.leap * (time_size + 4);
    b.isut = b.isstd + c.isstd;
    pos += (size_t)need;
    if (!check_block(name, &c, &b, why))
        goto done;

    z = xcalloc(1, sizeof *z);
    snprintf(z->name, sizeof z->name, "%s", name);
    z->rule_from = INT64_MIN;
    keep_transitions(z, &c, &b);
    if (c.version != '\0' && !read_footer(name, data, len, pos, z, why))
        goto done;
    *out = z;
    z = NULL;
    ok = true;
done:
    tz_free(z);
    return ok;
}

/* ---- names and files ------------------------------------------------------------------ */

bool tz_name_check(const char *name, char *why)
{
    if (!name || name[0] == '\0') {
        snprintf(why, TZ_ERROR_MAX, "a time zone name must not be empty (e.g. \"Europe/Berlin\")");
        return false;
    }
    size_t len = strnlen(name, TZ_NAME_MAX + 1);
    if (len > TZ_NAME_MAX) {
        snprintf(why, TZ_ERROR_MAX, "time zone name \"%.40s...\" must be at most %d characters",
                 name, TZ_NAME_MAX);
        return false;
    }
    const char *problem = NULL;
    if (name[0] == '/')
        problem = "must not start with \"/\"";
    else if (strstr(name, ".."))
        problem = "must not contain \"..\"";
    else if (strstr(name, "//") || name[len - 1] == '/')
        problem = "must not have an empty part (\"//\" or a trailing \"/\")";
    for (size_t i = 0; !problem && i < len; i++) {
        char ch = name[i];
        if (!is_alpha(ch) && !is_digit(ch) && ch != '/' && ch != '_' && ch != '-' && ch != '+') {
            snprintf(why, TZ_ERROR_MAX,
                     "time zone name \"%.60s\" must hold only letters, digits, '/', '_', '-' and "
                     "'+' (it holds byte 0x%02x)",
                     name, (unsigned char)ch);
            return false;
        }
        if ((i == 0 || name[i - 1] == '/') && !is_alpha(ch))
            problem = "must start each part with a letter";
    }
    if (problem) {
        snprintf(why, TZ_ERROR_MAX, "time zone name \"%.60s\" %s", name, problem);
        return false;
    }
    return true;
}

/* Reads a whole zone file (at most TZIF_FILE_MAX bytes) into a new buffer. */
static bool read_zone_file(const char *name, const char *path, uint8_t **data, size_t *len,
                           char *why)
{
    *data = NULL;
    *len = 0;
    bool ok = false;
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            snprintf(why, TZ_ERROR_MAX, "unknown time zone \"%s\"", name);
        } else {
            char err[128];
            snprintf(why, TZ_ERROR_MAX, "time zone \"%s\": cannot open %.100s: %.60s", name, path,
                     strerror_r(errno, err, sizeof err));
        }
        goto done;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, TZ_ERROR_MAX, "unknown time zone \"%s\" (%.100s is not a zone file)", name,
                 path);
        goto done;
    }
    if (st.st_size > TZIF_FILE_MAX) {
        snprintf(why, TZ_ERROR_MAX, "time zone \"%s\": %.100s is too large for a zone file", name,
                 path);
        goto done;
    }
    /* One byte more than the size, to notice a file that grew. */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    buf = xmalloc(cap);
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            char err[128];
            snprintf(why, TZ_ERROR_MAX, "time zone \"%s\": cannot read %.100s: %.60s", name, path,
                     strerror_r(errno, err, sizeof err));
            goto done;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap) {
            snprintf(why, TZ_ERROR_MAX, "time zone \"%s\": %.100s changed while it was read", name,
                     path);
            goto done;
        }
    }
    *data = buf;
    *len = n;
    buf = NULL;
    ok = true;
done:
    free(buf);
    if (fd >= 0)
        close(fd);
    return ok;
}

bool tz_load(const char *name, struct tz **out, char *why)
{
    *out = NULL;
    if (!tz_name_check(name, why))
        return false;
    if (strcmp(name, "localtime") == 0) {
        snprintf(why, TZ_ERROR_MAX,
                 "time zone \"localtime\" is the server's own zone; name a zone such as "
                 "\"Europe/Berlin\"");
        return false;
    }
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
        struct tz *z = xcalloc(1, sizeof *z);
        snprintf(z->name, sizeof z->name, "%s", name);
        z->rule_from = INT64_MIN;
        *out = z;
        return true;
    }
    const char *dir = getenv("TZDIR");
    if (!dir || dir[0] == '\0')
        dir = "/usr/share/zoneinfo";
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(why, TZ_ERROR_MAX, "time zone \"%s\": the path of its file is too long", name);
        return false;
    }
    uint8_t *data;
    size_t len;
    if (!read_zone_file(name, path, &data, &len, why))
        return false;
    bool ok = tz_parse_tzif(name, data, len, out, why);
    free(data);
    return ok;
}
