/* Fuzzes the response classifier (wh_classify) and the Retry-After parser on what a receiver
 * can send back. The input is text, so seeds are readable:
 *
 *   line 1: STATUS [CURLCODE [OS_ERRNO [TRUNCATED]]]   decimal numbers; missing ones are 0
 *   line 2: Content-Type header value (an empty line: no header)
 *   line 3: Retry-After header value (an empty line: no header)
 *   rest:   the response body (absent: no body)
 *
 * Checks classify.h: the result is one of the outcomes with exactly the fields that outcome
 * sets, a failure carries {"type", "message"} strings, an output reads back from its JSON
 * text (no NUL, not too deep for jansson), a Retry-After delay is within [-1, 10^9 s], and
 * wh_result_clear leaves a cleared result. */
#include "fuzz.h"

#include "webhook/classify.h"

#include <string.h>

#include <curl/curl.h>

/* 2023-11-14T22:13:20Z, the unit tests' clock. */
#define NOW_MS 1700000000000LL
/* classify.h: a Retry-After delay is "at most about 31 years" (10^9 s). */
#define RETRY_AFTER_MAX_MS (1000000000LL * 1000)

/* The next line of data[*pos..size) (without its '\n'); *pos moves past it. */
static const uint8_t *next_line(const uint8_t *data, size_t size, size_t *pos, size_t *len)
{
    const uint8_t *start = data + *pos;
    const uint8_t *nl = memchr(start, '\n', size - *pos);
    *len = nl ? (size_t)(nl - start) : size - *pos;
    *pos += *len + (nl ? 1 : 0);
    return start;
}

/* Up to four decimal numbers separated by anything else; each is capped so it stays small. */
static void parse_numbers(const uint8_t *s, size_t n, long out[4])
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < 4;) {
        if (s[i] < '0' || s[i] > '9') {
            i++;
            continue;
        }
        long v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (v < 100000)
                v = v * 10 + (s[i] - '0');
            i++;
        }
        out[k++] = v;
    }
}

static void check_result(const struct wh_response *resp, const struct wh_result *res)
{
    FUZZ_CHECK(res->http_status == resp->http_status);
    FUZZ_CHECK(res->retry_after_ms >= -1 && res->retry_after_ms <= RETRY_AFTER_MAX_MS);
    switch (res->outcome) {
    case WH_OK: {
        FUZZ_CHECK(res->output != NULL && res->error == NULL);
        FUZZ_CHECK(resp->http_status >= 200 && resp->http_status < 300);
        FUZZ_CHECK(res->retry_after_ms == -1);
        /* An output is journaled and read back: its text must parse again, without NULs. */
        char *text = json_dumps(res->output, JSON_ENCODE_ANY | JSON_COMPACT);
        FUZZ_CHECK(text != NULL);
        json_t *back = json_loads(text, JSON_DECODE_ANY, NULL);
        if (!back)
            fprintf(stderr, "output does not read back: %.200s\n", text);
        FUZZ_CHECK(back != NULL && json_equal(back, res->output));
        json_decref(back);
        free(text);
        break;
    }
    case WH_ASYNC:
        FUZZ_CHECK(res->output == NULL && res->error == NULL);
        FUZZ_CHECK(resp->http_status == 202);
        FUZZ_CHECK(res->retry_after_ms == -1);
        break;
    case WH_FAILED: {
        FUZZ_CHECK(res->output == NULL && json_is_object(res->error));
        const char *type = wh_result_error_type(res);
        FUZZ_CHECK(type != NULL && type[0] != '\0');
        FUZZ_CHECK(json_is_string(json_object_get(res->error, "message")));
        bool may_retry_after =
            (resp->http_status == 429 || resp->http_status == 503) && resp->retry_after;
        if (!may_retry_after)
            FUZZ_CHECK(res->retry_after_ms == -1);
        /* The error is journaled as JSON: it must serialise. */
        char *text = json_dumps(res->error, JSON_COMPACT);
        FUZZ_CHECK(text != NULL);
        free(text);
        break;
    }
    default:
        FUZZ_CHECK(!"an outcome the classifier can return (never WH_ABORTED)");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0, len;
    long nums[4] = {0, 0, 0, 0};
    const uint8_t *line = next_line(data, size, &pos, &len);
    parse_numbers(line, len, nums);

    line = next_line(data, size, &pos, &len);
    char *content_type = len ? fuzz_strndup(line, len) : NULL;
    line = next_line(data, size, &pos, &len);
    char *retry_after = len ? fuzz_strndup(line, len) : NULL;
    /* The body is exactly the rest, in a block of its own without a terminating NUL (the body
     * has none), so ASan sees a read even one byte past its end. */
    size_t body_len = size - pos;
    char *body = NULL;
    if (pos < size) {
        body = malloc(body_len);
        FUZZ_CHECK(body != NULL);
        memcpy(body, data + pos, body_len);
    }

    struct wh_response resp = {
        .curl_code = (int)(nums[1] % CURL_LAST),
        .os_errno = nums[2],
        .curl_detail = NULL,
        .http_status = nums[0],
        .content_type = content_type,
        .retry_after = retry_after,
        .body = body,
        .body_len = body ? body_len : 0,
        .body_truncated = nums[3] != 0,
        .now_ms = NOW_MS,
    };
    struct wh_result res;
    memset(&res, 0x55, sizeof res); /* wh_classify must overwrite every field */
    wh_classify(&resp, &res);
    check_result(&resp, &res);
    wh_result_clear(&res);
    FUZZ_CHECK(res.output == NULL && res.error == NULL && res.retry_after_ms == -1);

    /* Whatever the status, the header parser on its own. */
    if (retry_after) {
        int64_t ms = wh_parse_retry_after(retry_after, NOW_MS);
        FUZZ_CHECK(ms >= -1 && ms <= RETRY_AFTER_MAX_MS);
    }

    free(body);
    free(retry_after);
    free(content_type);
    return 0;
}
