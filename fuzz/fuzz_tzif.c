/* Fuzzes time zones: the input as a TZif file (tz_parse_tzif), and as a POSIX TZ string
 * (tz_rule_parse, then as the footer of a TZif file with no transitions) and a zone name
 * (tz_name_check). Checks tz.h and schedule_time.h: a refused input says why and yields no zone;
 * a loaded zone's offsets are within TZ_OFFSET_MIN..TZ_OFFSET_MAX and among tz_offsets; a local
 * time maps to its first occurrence, or, when it does not exist, to a shift forward over it
 * (checked by brute force against every offset the zone has); due times come later than
 * `after` and strictly increase, and any instant formats within SCHED_DUE_MAX; an accepted rule
 * gives the same offsets alone and as a footer. */
#include "fuzz.h"

#include "sched/schedule_time.h"
#include "sched/tz.h"

/* Instants every zone is asked about, besides ones taken from the input. */
static const int64_t FIXED[] = {INT64_MIN,
                                -((int64_t)1 << 62),
                                -2208988800 /* 1900 */,
                                -1,
                                0,
                                1774746000 /* 2026-03-29T01:00Z */,
                                1792890000 /* 2026-10-25T01:00Z */,
                                2216250000 /* 2040-03-25T01:00Z */,
                                (int64_t)1 << 40,
                                (int64_t)1 << 62,
                                INT64_MAX};

/* Up to max instants read from the input, 8 bytes each, and as many near 2026 (the input
 * modulo 200 years), where real and fuzzed transitions are. */
static size_t instants_of(const uint8_t *data, size_t size, int64_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i + 8 <= size && n + 2 <= max; i += 8) {
        uint64_t u = 0;
        for (size_t k = 0; k < 8; k++)
            u = u << 8 | data[i + k];
        int64_t t;
        memcpy(&t, &u, sizeof t);
        out[n++] = t;
        out[n++] = 946684800 + (int64_t)(u % ((uint64_t)200 * 31556952));
    }
    return n;
}

static bool has_offset(const int32_t *offs, size_t n, int32_t o)
{
    for (size_t i = 0; i < n; i++)
        if (offs[i] == o)
            return true;
    return false;
}

/* tz_local_to_instant against its definition. */
static void check_local(const struct tz *z, const int32_t *offs, size_t n, int64_t local)
{
    if (local > ((int64_t)1 << 62) || local < -((int64_t)1 << 62))
        return;
    int64_t got = tz_local_to_instant(z, local), best = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        int64_t c = local - offs[i];
        if (tz_offset_at(z, c) == offs[i] && c < best)
            best = c;
    }
    if (best != INT64_MAX) {
        FUZZ_CHECK(got == best);
    } else {
        FUZZ_CHECK(got + tz_offset_at(z, got - 1) <= local);
        FUZZ_CHECK(local < got + tz_offset_at(z, got));
    }
}

static void check_schedule(const struct tz *z, const char *expr, int64_t after)
{
    struct cron c;
    char why[CRON_ERROR_MAX];
    FUZZ_CHECK(cron_parse(expr, &c, why));
    int64_t due[6];
    size_t n = sched_next_n(&c, z, after, due, 6);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(due[i] > (i ? due[i - 1] : after));
        char buf[SCHED_DUE_MAX];
        sched_format_due(due[i], buf);
        FUZZ_CHECK(strlen(buf) == 20 && buf[19] == 'Z');
    }
}

static void check_zone(const struct tz *z, const uint8_t *data, size_t size)
{
    size_t n = tz_offsets(z, NULL, 0);
    FUZZ_CHECK(n >= 1);
    int32_t *offs = malloc(n * sizeof *offs);
    FUZZ_CHECK(offs != NULL);
    FUZZ_CHECK(tz_offsets(z, offs, n) == n);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(offs[i] >= TZ_OFFSET_MIN && offs[i] <= TZ_OFFSET_MAX);
        FUZZ_CHECK(i == 0 || offs[i] > offs[i - 1]);
    }
    int64_t instants[64];
    size_t count = sizeof FIXED / sizeof FIXED[0];
    memcpy(instants, FIXED, sizeof FIXED);
    count += instants_of(data, size, instants + count, 64 - count);
    for (size_t i = 0; i < count; i++) {
        int64_t t = instants[i];
        int32_t off = tz_offset_at(z, t);
        FUZZ_CHECK(has_offset(offs, n, off));
        char buf[SCHED_DUE_MAX];
        memset(buf, 'x', sizeof buf);
        sched_format_due(t, buf);
        FUZZ_CHECK(memchr(buf, '\0', sizeof buf) != NULL);
        check_local(z, offs, n, t);
        if (t > INT64_MIN + 200000 && t < INT64_MAX - 200000) {
            check_local(z, offs, n, t + off);
            check_local(z, offs, n, t + off - 1800);
        }
        struct civil_minute m;
        if (sched_civil_at(z, t, &m)) {
            FUZZ_CHECK(m.year >= 1 && m.year <= 9999 && m.hour < 24 && m.minute < 60);
            if (i % 4 == 0) {
                check_schedule(z, "*/15 * * * *", t);
                check_schedule(z, "30 2 * * *", t);
            }
        }
    }
    free(offs);
}

/* A version 2 TZif file with no transitions, one time type of std_offset, and this footer. */
static uint8_t *footer_file(const char *footer, int32_t std_offset, size_t *len)
{
    size_t n = strlen(footer);
    size_t block = 6 + 4; /* one time type, "UTC\0" */
    *len = 2 * (44 + block) + n + 2;
    uint8_t *f = calloc(1, *len);
    FUZZ_CHECK(f != NULL);
    for (int h = 0; h < 2; h++) {
        uint8_t *p = f + h * (44 + block);
        memcpy(p, "TZif2", 5);
        p[39] = 1; /* typecnt */
        p[43] = 4; /* charcnt */
        uint32_t u = (uint32_t)std_offset;
        p[44] = (uint8_t)(u >> 24);
        p[45] = (uint8_t)(u >> 16);
        p[46] = (uint8_t)(u >> 8);
        p[47] = (uint8_t)u;
        memcpy(p + 50, "UTC", 4);
    }
    uint8_t *p = f + 2 * (44 + block);
    p[0] = '\n';
    memcpy(p + 1, footer, n);
    p[n + 1] = '\n';
    return f;
}

static void check_rule(const char *text, const uint8_t *data, size_t size)
{
    struct tz_rule r;
    char why[TZ_ERROR_MAX];
    memset(why, 'x', sizeof why);
    if (!tz_rule_parse(text, &r, why)) {
        FUZZ_CHECK(memchr(why, '\0', sizeof why) != NULL && why[0] != '\0');
        return;
    }
    FUZZ_CHECK(r.std_offset >= TZ_OFFSET_MIN && r.std_offset <= TZ_OFFSET_MAX);
    FUZZ_CHECK(r.dst_offset >= TZ_OFFSET_MIN && r.dst_offset <= TZ_OFFSET_MAX);
    FUZZ_CHECK(r.has_dst || r.dst_offset == r.std_offset);
    size_t len;
    uint8_t *file = footer_file(text, r.std_offset, &len);
    struct tz *z = NULL;
    bool ok = tz_parse_tzif("Fuzz/Rule", file, len, &z, why);
    FUZZ_CHECK(ok == (strlen(text) <= 255));
    if (ok) {
        int64_t instants[32];
        size_t count = instants_of(data, size, instants, 32);
        for (size_t i = 0; i < count; i++) {
            int32_t o = tz_rule_offset_at(&r, instants[i]);
            FUZZ_CHECK(o == r.std_offset || o == r.dst_offset);
            FUZZ_CHECK(tz_offset_at(z, instants[i]) == o);
        }
        check_zone(z, data, size);
        tz_free(z);
    }
    free(file);
}

static void check_name(const char *name)
{
    char why[TZ_ERROR_MAX];
    if (!tz_name_check(name, why))
        return;
    size_t n = strlen(name);
    FUZZ_CHECK(n >= 1 && n <= TZ_NAME_MAX);
    FUZZ_CHECK(name[0] != '/' && name[n - 1] != '/');
    FUZZ_CHECK(!strstr(name, "..") && !strstr(name, "//") && !strchr(name, '.'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tz *z = (struct tz *)1;
    char why[TZ_ERROR_MAX];
    memset(why, 'x', sizeof why);
    if (tz_parse_tzif("Fuzz/Zone", data, size, &z, why)) {
        FUZZ_CHECK(z != NULL && strcmp(tz_name(z), "Fuzz/Zone") == 0);
        check_zone(z, data, size);
        tz_free(z);
    } else {
        FUZZ_CHECK(z == NULL);
        FUZZ_CHECK(memchr(why, '\0', sizeof why) != NULL && why[0] != '\0');
    }
    char *text = fuzz_strndup(data, size);
    check_rule(text, data, size);
    check_name(text);
    free(text);
    return 0;
}
