/* Fuzzes durations: defn_parse_duration on a JSON value (when the input is JSON) or on the raw
 * bytes as one string (any bytes, NULs included), and defn_format_duration on any int64.
 * Checks duration.h: an accepted duration is within [0, DEFN_DURATION_MAX_MS] and its
 * formatted text parses back to the same value; a refused one leaves *ms untouched and says
 * why. */
#include "fuzz.h"

#include "defn/duration.h"

#include <string.h>

/* defn_format_duration(ms) is a string that parses back to ms. */
static void check_round_trip(int64_t ms)
{
    char text[32];
    memset(text, 'x', sizeof text);
    defn_format_duration(ms, text);
    FUZZ_CHECK(memchr(text, '\0', sizeof text) != NULL);
    if (ms < 0 || ms > DEFN_DURATION_MAX_MS)
        return;
    json_t *s = json_string(text);
    FUZZ_CHECK(s != NULL);
    int64_t back = -1;
    const char *why = NULL;
    if (!defn_parse_duration(s, &back, &why))
        fprintf(stderr, "\"%s\" (from %lld) does not parse: %s\n", text, (long long)ms, why);
    FUZZ_CHECK(back == ms);
    json_decref(s);
}

static void check_value(const json_t *v)
{
    const int64_t untouched = -12345;
    int64_t ms = untouched;
    const char *why = NULL;
    bool ok = defn_parse_duration(v, &ms, &why);
    if (ok) {
        FUZZ_CHECK(ms >= 0 && ms <= DEFN_DURATION_MAX_MS);
        check_round_trip(ms);
    } else {
        FUZZ_CHECK(ms == untouched);
        FUZZ_CHECK(why != NULL && why[0] != '\0');
    }
    /* The same answer without a reason asked for. */
    int64_t ms2 = untouched;
    FUZZ_CHECK(defn_parse_duration(v, &ms2, NULL) == ok);
    FUZZ_CHECK(ms2 == ms);
    FUZZ_CHECK(!defn_parse_duration(v, NULL, NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = json_loadb((const char *)data, size, FUZZ_JSON_BODY_FLAGS, NULL);
    if (v) {
        check_value(v);
        json_decref(v);
    }
    /* The raw bytes as a string, whether or not they are valid UTF-8: the parser reads bytes. */
    v = json_stringn_nocheck((const char *)data, size);
    FUZZ_CHECK(v != NULL);
    check_value(v);
    json_decref(v);

    if (size >= 8) {
        uint64_t u = 0;
        for (size_t i = 0; i < 8; i++)
            u = u << 8 | data[i];
        check_round_trip((int64_t)u);
        check_round_trip((int64_t)(u % ((uint64_t)DEFN_DURATION_MAX_MS + 1)));
    }
    return 0;
}
