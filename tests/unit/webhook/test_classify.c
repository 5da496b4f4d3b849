/* Response classification: every rule of the contract's "Activity webhooks" section. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "webhook/classify.h"

/* 2023-11-14T22:13:20Z, a Tuesday. */
#define NOW_MS 1700000000000LL

#define PROBLEM "application/problem+json"
#define JSON    "application/json"

struct cls_case {
    const char *name;
    /* input */
    CURLcode curl;
    long os_errno;
    long status;
    const char *content_type;
    const char *retry_after;
    const char *body;
    bool truncated;
    /* expected */
    enum wh_outcome outcome;
    const char *output;          /* WH_OK: the output as compact JSON */
    const char *type;            /* WH_FAILED: error type */
    bool retryable;              /* WH_FAILED */
    int64_t want_retry_after_ms; /* WH_FAILED */
    const char *message;         /* WH_FAILED: a part of the message, or NULL */
};

/* Rows give the input, then the expectation; these fill in the fields an outcome leaves out. */
#define OK_ROW(...)                                                                                \
    {                                                                                              \
        __VA_ARGS__, NULL, false, -1, NULL                                                         \
    }
#define ASYNC_ROW(...)                                                                             \
    {                                                                                              \
        __VA_ARGS__, NULL, NULL, false, -1, NULL                                                   \
    }

static const struct cls_case cases[] = {
    /* 2xx: the output */
    OK_ROW("200 object", CURLE_OK, 0, 200, JSON, NULL, "{\"id\": 1}", false, WH_OK, "{\"id\":1}"),
    OK_ROW("201 array", CURLE_OK, 0, 201, JSON, NULL, "[1,2]", false, WH_OK, "[1,2]"),
    OK_ROW("200 scalar", CURLE_OK, 0, 200, JSON, NULL, "42", false, WH_OK, "42"),
    OK_ROW("200 empty", CURLE_OK, 0, 200, NULL, NULL, "", false, WH_OK, "null"),
    OK_ROW("204 no body", CURLE_OK, 0, 204, NULL, NULL, NULL, false, WH_OK, "null"),
    OK_ROW("200 whitespace", CURLE_OK, 0, 200, JSON, NULL, " \r\n", false, WH_OK, "null"),
    OK_ROW("200 JSON sent as text/plain", CURLE_OK, 0, 200, "text/plain", NULL, "{\"a\":true}",
           false, WH_OK, "{\"a\":true}"),
    {"200 not JSON", CURLE_OK, 0, 200, "text/plain", NULL, "hello", false, WH_FAILED, NULL,
     "invalid_response", true, -1, "not JSON (Content-Type: text/plain): hello"},
    {"200 broken JSON", CURLE_OK, 0, 200, JSON, NULL, "{\"a\":", false, WH_FAILED, NULL,
     "invalid_response", true, -1, "HTTP 200"},
    {"200 oversized", CURLE_WRITE_ERROR, 0, 200, JSON, NULL, "{\"a\":", true, WH_FAILED, NULL,
     "invalid_response", true, -1, "exceeds 1 MiB"},
    {"curl size limit", CURLE_FILESIZE_EXCEEDED, 0, 200, JSON, NULL, NULL, false, WH_FAILED, NULL,
     "invalid_response", true, -1, "exceeds 1 MiB"},
    /* 202: asynchronous, body ignored */
    ASYNC_ROW("202", CURLE_OK, 0, 202, JSON, NULL, "{\"accepted\":true}", false, WH_ASYNC),
    ASYNC_ROW("202 not JSON", CURLE_OK, 0, 202, "text/plain", NULL, "queued", false, WH_ASYNC),
    /* 3xx: never followed */
    {"302", CURLE_OK, 0, 302, NULL, NULL, NULL, false, WH_FAILED, NULL, "redirect", true, -1,
     "HTTP 302"},
    {"308", CURLE_OK, 0, 308, NULL, NULL, NULL, false, WH_FAILED, NULL, "redirect", true, -1,
     "not followed"},
    /* 4xx and 5xx with a problem */
    {"400 problem type", CURLE_OK, 0, 400, PROBLEM, NULL,
     "{\"type\":\"PaymentDeclined\",\"title\":\"Declined\",\"detail\":\"card expired\"}", false,
     WH_FAILED, NULL, "PaymentDeclined", true, -1, "HTTP 400: Declined: card expired"},
    {"422 problem non_retryable", CURLE_OK, 0, 422, PROBLEM "; charset=utf-8", NULL,
     "{\"type\":\"bad_order\",\"title\":\"Bad order\",\"non_retryable\":true}", false, WH_FAILED,
     NULL, "bad_order", false, -1, "HTTP 422: Bad order"},
    {"500 problem retryable false-ish", CURLE_OK, 0, 500, PROBLEM, NULL,
     "{\"type\":\"db_down\",\"non_retryable\":false}", false, WH_FAILED, NULL, "db_down", true, -1,
     "HTTP 500"},
    {"problem in application/json", CURLE_OK, 0, 409, JSON, NULL,
     "{\"type\":\"conflict\",\"detail\":\"already shipped\"}", false, WH_FAILED, NULL, "conflict",
     true, -1, "already shipped"},
    {"problem about:blank", CURLE_OK, 0, 404, PROBLEM, NULL,
     "{\"type\":\"about:blank\",\"title\":\"Not Found\"}", false, WH_FAILED, NULL, "http_4xx", true,
     -1, "HTTP 404"},
    {"problem without type, non_retryable", CURLE_OK, 0, 503, PROBLEM, NULL,
     "{\"title\":\"maintenance\",\"non_retryable\":true}", false, WH_FAILED, NULL, "http_5xx",
     false, -1, "maintenance"},
    {"problem JSON in text/html is not read", CURLE_OK, 0, 500, "text/html", NULL,
     "{\"type\":\"x\"}", false, WH_FAILED, NULL, "http_5xx", true, -1, "HTTP 500: {\"type\""},
    {"problem JSON without content type", CURLE_OK, 0, 400, NULL, NULL, "{\"type\":\"nope\"}",
     false, WH_FAILED, NULL, "nope", true, -1, NULL},
    {"problem type not a string", CURLE_OK, 0, 400, PROBLEM, NULL, "{\"type\":5}", false, WH_FAILED,
     NULL, "http_4xx", true, -1, NULL},
    /* 4xx and 5xx without a problem */
    {"500 html", CURLE_OK, 0, 500, "text/html", NULL, "<h1>oops</h1>\n", false, WH_FAILED, NULL,
     "http_5xx", true, -1, "HTTP 500: <h1>oops</h1>"},
    {"404 empty", CURLE_OK, 0, 404, NULL, NULL, "", false, WH_FAILED, NULL, "http_4xx", true, -1,
     "HTTP 404"},
    {"500 oversized", CURLE_WRITE_ERROR, 0, 500, "text/plain", NULL, "xxxx", true, WH_FAILED, NULL,
     "http_5xx", true, -1, "HTTP 500: xxxx"},
    {"500 control bytes", CURLE_OK, 0, 500, "text/plain", NULL,
     "a\x01\x02"
     "b\tc",
     false, WH_FAILED, NULL, "http_5xx", true, -1, "HTTP 500: a b c"},
    {"500 invalid UTF-8", CURLE_OK, 0, 500, "text/plain", NULL,
     "a\xff\xfe\xc3\xa9"
     "z",
     false, WH_FAILED, NULL, "http_5xx", true, -1,
     "HTTP 500: a??\xc3\xa9"
     "z"},
    /* 410 */
    {"410", CURLE_OK, 0, 410, NULL, NULL, "gone", false, WH_FAILED, NULL, "http_4xx", false, -1,
     "HTTP 410: gone"},
    {"410 problem", CURLE_OK, 0, 410, PROBLEM, NULL, "{\"type\":\"account_closed\"}", false,
     WH_FAILED, NULL, "account_closed", false, -1, NULL},
    /* Retry-After on 429 and 503 only */
    {"429 delta", CURLE_OK, 0, 429, NULL, "7", NULL, false, WH_FAILED, NULL, "http_4xx", true, 7000,
     "HTTP 429"},
    {"503 date", CURLE_OK, 0, 503, NULL, "Tue, 14 Nov 2023 22:13:50 GMT", NULL, false, WH_FAILED,
     NULL, "http_5xx", true, 30000, NULL},
    {"503 date in the past", CURLE_OK, 0, 503, NULL, "Tue, 14 Nov 2023 22:00:00 GMT", NULL, false,
     WH_FAILED, NULL, "http_5xx", true, 0, NULL},
    {"503 garbage", CURLE_OK, 0, 503, NULL, "soon", NULL, false, WH_FAILED, NULL, "http_5xx", true,
     -1, NULL},
    {"429 problem keeps Retry-After", CURLE_OK, 0, 429, PROBLEM, "2", "{\"type\":\"rate_limited\"}",
     false, WH_FAILED, NULL, "rate_limited", true, 2000, NULL},
    {"500 ignores Retry-After", CURLE_OK, 0, 500, NULL, "5", NULL, false, WH_FAILED, NULL,
     "http_5xx", true, -1, NULL},
    /* odd statuses */
    {"status 600", CURLE_OK, 0, 600, NULL, NULL, NULL, false, WH_FAILED, NULL, "invalid_response",
     true, -1, "600"},
    {"status 101", CURLE_OK, 0, 101, NULL, NULL, NULL, false, WH_FAILED, NULL, "invalid_response",
     true, -1, "101"},
    /* transport failures */
    {"timeout", CURLE_OPERATION_TIMEDOUT, 0, 0, NULL, NULL, NULL, false, WH_FAILED, NULL, "timeout",
     true, -1, "timed out"},
    {"timeout after headers", CURLE_OPERATION_TIMEDOUT, 0, 200, JSON, NULL, "{", false, WH_FAILED,
     NULL, "timeout", true, -1, NULL},
    {"refused", CURLE_COULDNT_CONNECT, ECONNREFUSED, 0, NULL, NULL, NULL, false, WH_FAILED, NULL,
     "connection_refused", true, -1, "refused"},
    {"refused, errno unknown", CURLE_COULDNT_CONNECT, 0, 0, NULL, NULL, NULL, false, WH_FAILED,
     NULL, "connection_refused", true, -1, NULL},
    {"unreachable", CURLE_COULDNT_CONNECT, ENETUNREACH, 0, NULL, NULL, NULL, false, WH_FAILED, NULL,
     "connection_failed", true, -1, NULL},
    {"dns", CURLE_COULDNT_RESOLVE_HOST, 0, 0, NULL, NULL, NULL, false, WH_FAILED, NULL,
     "connection_failed", true, -1, NULL},
    {"tls", CURLE_SSL_CONNECT_ERROR, 0, 0, NULL, NULL, NULL, false, WH_FAILED, NULL,
     "connection_failed", true, -1, NULL},
    {"tls verify", CURLE_PEER_FAILED_VERIFICATION, 0, 0, NULL, NULL, NULL, false, WH_FAILED, NULL,
     "connection_failed", true, -1, NULL},
    {"reset", CURLE_RECV_ERROR, ECONNRESET, 0, NULL, NULL, NULL, false, WH_FAILED, NULL,
     "connection_failed", true, -1, NULL},
    {"empty reply", CURLE_GOT_NOTHING, 0, 0, NULL, NULL, NULL, false, WH_FAILED, NULL,
     "connection_failed", true, -1, NULL},
    {"garbage reply", CURLE_WEIRD_SERVER_REPLY, 0, 0, NULL, NULL, NULL, false, WH_FAILED, NULL,
     "invalid_response", true, -1, NULL},
    {"write error without truncation", CURLE_WRITE_ERROR, 0, 200, NULL, NULL, NULL, false,
     WH_FAILED, NULL, "connection_failed", true, -1, NULL},
    {"ftp url", CURLE_UNSUPPORTED_PROTOCOL, 0, 0, NULL, NULL, NULL, false, WH_FAILED, NULL,
     "invalid_url", false, -1, "only http and https"},
    {"malformed url", CURLE_URL_MALFORMAT, 0, 0, NULL, NULL, NULL, false, WH_FAILED, NULL,
     "invalid_url", false, -1, NULL},
};

static void check_case(const struct cls_case *c)
{
    struct wh_response r;
    memset(&r, 0, sizeof(r));
    r.curl_code = (int)c->curl;
    r.os_errno = c->os_errno;
    r.http_status = c->status;
    r.content_type = c->content_type;
    r.retry_after = c->retry_after;
    r.body = c->body;
    r.body_len = c->body ? strlen(c->body) : 0;
    r.body_truncated = c->truncated;
    r.now_ms = NOW_MS;

    struct wh_result res;
    wh_classify(&r, &res);
    if (res.outcome != c->outcome)
        fail_msg("%s: outcome %d, want %d", c->name, res.outcome, c->outcome);
    assert_int_equal(res.http_status, c->status);
    switch (c->outcome) {
    case WH_OK: {
        assert_non_null(res.output);
        assert_null(res.error);
        char *got = json_dumps(res.output, JSON_COMPACT | JSON_ENCODE_ANY);
        if (strcmp(got, c->output) != 0)
            fail_msg("%s: output %s, want %s", c->name, got, c->output);
        free(got);
        break;
    }
    case WH_ASYNC:
        assert_null(res.output);
        assert_null(res.error);
        break;
    case WH_FAILED:
    case WH_ABORTED: {
        assert_null(res.output);
        assert_non_null(res.error);
        const char *type = wh_result_error_type(&res);
        const char *msg = json_string_value(json_object_get(res.error, "message"));
        assert_non_null(msg);
        if (!type || strcmp(type, c->type) != 0)
            fail_msg("%s: type %s, want %s", c->name, type ? type : "(null)", c->type);
        if (res.retryable != c->retryable)
            fail_msg("%s: retryable %d, want %d", c->name, res.retryable, c->retryable);
        if (res.retry_after_ms != c->want_retry_after_ms)
            fail_msg("%s: retry_after_ms %lld, want %lld", c->name, (long long)res.retry_after_ms,
                     (long long)c->want_retry_after_ms);
        if (c->message && !strstr(msg, c->message))
            fail_msg("%s: message \"%s\" lacks \"%s\"", c->name, msg, c->message);
        break;
    }
    }
    wh_result_clear(&res);
    assert_null(res.output);
    assert_null(res.error);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_case(&cases[i]);
}

static void test_long_body_excerpt(void **state)
{
    (void)state;
    char body[2000];
    memset(body, 'x', sizeof(body));
    struct wh_response r;
    memset(&r, 0, sizeof(r));
    r.http_status = 502;
    r.body = body;
    r.body_len = sizeof(body);
    struct wh_result res;
    wh_classify(&r, &res);
    const char *msg = json_string_value(json_object_get(res.error, "message"));
    assert_non_null(msg);
    assert_true(strlen(msg) < 300);
    assert_non_null(strstr(msg, "xxx..."));
    assert_string_equal(wh_result_error_type(&res), "http_5xx");
    wh_result_clear(&res);
}

static void test_retry_after_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t want;
    } cases2[] = {
        {"0", 0},
        {" 120 ", 120000},
        {"99999999999999999999", 1000000000LL * 1000},
        {"Tue, 14 Nov 2023 22:13:50 GMT", 30000},   /* IMF-fixdate */
        {"Tuesday, 14-Nov-23 22:13:50 GMT", 30000}, /* RFC 850 */
        {"Tue Nov 14 22:13:50 2023", 30000},        /* asctime */
        {"Sun, 06 Nov 1994 08:49:37 GMT", 0},       /* in the past */
        {"", -1},
        {"-5", -1},
        {"1.5", -1},
        {"soon", -1},
    };
    for (size_t i = 0; i < sizeof(cases2) / sizeof(cases2[0]); i++) {
        int64_t got = wh_parse_retry_after(cases2[i].in, NOW_MS);
        if (got != cases2[i].want)
            fail_msg("\"%s\": %lld, want %lld", cases2[i].in, (long long)got,
                     (long long)cases2[i].want);
    }
    assert_int_equal(wh_parse_retry_after(NULL, NOW_MS), -1);
}

/* HTTP-dates far from now_ms, and now_ms far from any date: no signed overflow (the UBSan build
 * aborts on one), and the delay stays within the cap (about 31 years). */
static void test_retry_after_extremes(void **state)
{
    (void)state;
    const int64_t cap = 1000000000LL * 1000;
    const char *date = "Tue, 14 Nov 2023 22:13:50 GMT";
    assert_int_equal(wh_parse_retry_after(date, INT64_MIN), cap);
    assert_int_equal(wh_parse_retry_after(date, INT64_MIN + 1), cap);
    assert_int_equal(wh_parse_retry_after(date, INT64_MAX), 0);
    assert_int_equal(wh_parse_retry_after(date, -1), cap);
    /* The furthest date curl reads is still capped, whatever the clock says. */
    const char *far = "Fri, 31 Dec 9999 23:59:59 GMT";
    assert_int_equal(wh_parse_retry_after(far, NOW_MS), cap);
    assert_int_equal(wh_parse_retry_after(far, 0), cap);
    /* Milliseconds of now are subtracted exactly. */
    assert_int_equal(wh_parse_retry_after(date, NOW_MS + 250), 29750);
}

/* A 2xx body that nests deeper than JSON_LIMIT_MAX_DEPTH (64) would be journaled and then not
 * read back inside the API's envelopes: an invalid_response failure, naming the limit. */
static void test_deep_body(void **state)
{
    (void)state;
    for (int depth = 63; depth <= 2100; depth = depth < 66 ? depth + 1 : depth * 2) {
        char *body = malloc(2 * (size_t)depth + 1);
        memset(body, '[', (size_t)depth);
        memset(body + depth, ']', (size_t)depth);
        body[2 * depth] = '\0';
        struct wh_response r = {.http_status = 200,
                                .content_type = JSON,
                                .body = body,
                                .body_len = strlen(body),
                                .now_ms = NOW_MS};
        struct wh_result res;
        wh_classify(&r, &res);
        if (depth <= 64) {
            if (res.outcome != WH_OK)
                fail_msg("depth %d: not accepted", depth);
        } else {
            if (res.outcome != WH_FAILED)
                fail_msg("depth %d: accepted", depth);
            assert_string_equal(wh_result_error_type(&res), "invalid_response");
            const char *msg = json_string_value(json_object_get(res.error, "message"));
            if (!strstr(msg, "deeper than 64 levels"))
                fail_msg("depth %d: message %s", depth, msg);
            assert_true(res.retryable);
        }
        wh_result_clear(&res);
        free(body);
    }
}

/* jsonb refuses "\u0000": such a body is an invalid_response failure that says so (rather
 * than calling valid JSON "not JSON"). */
static void test_nul_body(void **state)
{
    (void)state;
    const char *bodies[] = {"{\"text\": \"a\\u0000b\"}", "\"\\u0000\"",
                            "[1, {\"k\": [\"\\u0000\"]}]"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct wh_response r = {.http_status = 200,
                                .content_type = JSON,
                                .body = bodies[i],
                                .body_len = strlen(bodies[i]),
                                .now_ms = NOW_MS};
        struct wh_result res;
        wh_classify(&r, &res);
        assert_int_equal(res.outcome, WH_FAILED);
        assert_string_equal(wh_result_error_type(&res), "invalid_response");
        const char *msg = json_string_value(json_object_get(res.error, "message"));
        if (!strstr(msg, "NUL character") || strstr(msg, "not JSON"))
            fail_msg("%s: message %s", bodies[i], msg);
        wh_result_clear(&res);
    }
}

static void test_set_error_and_clear(void **state)
{
    (void)state;
    struct wh_result res;
    memset(&res, 0, sizeof(res));
    wh_result_set_error(&res, WH_ABORTED, "aborted", "stopped", true);
    assert_int_equal(res.outcome, WH_ABORTED);
    assert_string_equal(wh_result_error_type(&res), "aborted");
    /* Setting again replaces the error without leaking it. */
    wh_result_set_error(&res, WH_FAILED, "timeout", "slow", true);
    assert_string_equal(wh_result_error_type(&res), "timeout");
    wh_result_clear(&res);
    assert_int_equal(res.retry_after_ms, -1);
    assert_null(wh_result_error_type(&res));
    wh_result_clear(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_long_body_excerpt),
        cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test(test_retry_after_extremes),
        cmocka_unit_test(test_deep_body),
        cmocka_unit_test(test_nul_body),
        cmocka_unit_test(test_set_error_and_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
