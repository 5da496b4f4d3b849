/* Turns one webhook attempt's transport result and HTTP answer into a step outcome. */
#include "webhook/classify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/jsonlimits.h"

/* How much of a response body goes into an error message. */
#define EXCERPT_BYTES 200
/* Retry-After values are capped so that the arithmetic cannot overflow (about 30 years). */
#define RETRY_AFTER_MAX_S 1000000000LL

/* ---- helpers ----------------------------------------------------------------------------- */

/* application/json, application/problem+json and any other +json type. */
static bool media_type_is_json(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    return (n == 16 && strncasecmp(ct, "application/json", n) == 0) ||
           (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

static bool all_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    size_t len;
    if (s[0] < 0x80)
        return 1;
    else if ((s[0] & 0xE0) == 0xC0 && s[0] >= 0xC2)
        len = 2;
    else if ((s[0] & 0xF0) == 0xE0)
        len = 3;
    else if ((s[0] & 0xF8) == 0xF0 && s[0] <= 0xF4)
        len = 4;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* Appends a short, printable, valid UTF-8 excerpt of a body (JSON strings must be UTF-8, and a
 * message with raw control bytes is no use in a log or the UI). */
static void append_excerpt(struct buf *b, const char *body, size_t len)
{
    const unsigned char *s = (const unsigned char *)body;
    size_t i = 0;
    while (i < len && all_space(body + i, 1))
        i++;
    size_t start = i, taken = 0;
    bool last_space = false;
    while (i < len && taken < EXCERPT_BYTES) {
        size_t n = utf8_seq_len(s + i, len - i);
        if (n == 0) {
            buf_putc(b, '?');
            i++;
            taken++;
            last_space = false;
            continue;
        }
        if (n == 1 && (s[i] < 0x20 || s[i] == 0x7F)) {
            if (!last_space)
                buf_putc(b, ' ');
            last_space = true;
        } else {
            buf_append(b, s + i, n);
            last_space = false;
        }
        i += n;
        taken += n;
    }
    if (i < len && i > start)
        buf_puts(b, "...");
}

static void set_failure(struct wh_result *out, const char *type, char *message, bool retryable)
{
    wh_result_set_error(out, WH_FAILED, type, message, retryable);
    free(message);
}

/* ---- transport errors -------------------------------------------------------------------- */

static void classify_transport(const struct wh_response *r, struct wh_result *out)
{
    CURLcode code = (CURLcode)r->curl_code;
    const char *detail =
        r->curl_detail && r->curl_detail[0] ? r->curl_detail : curl_easy_strerror(code);

    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        set_failure(out, "timeout", xasprintf("request timed out: %s", detail), true);
        return;
    case CURLE_COULDNT_CONNECT:
        if (r->os_errno == 0 || r->os_errno == ECONNREFUSED)
            set_failure(out, "connection_refused", xasprintf("connection refused: %s", detail),
                        true);
        else
            set_failure(out, "connection_failed", xasprintf("could not connect: %s", detail), true);
        return;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        set_failure(out, "invalid_url",
                    xasprintf("the activity URL cannot be used (only http and https): %s", detail),
                    false);
        return;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
        set_failure(out, "invalid_response", xasprintf("malformed HTTP response: %s", detail),
                    true);
        return;
    case CURLE_FILESIZE_EXCEEDED:
        set_failure(out, "invalid_response", xstrdup("response body exceeds 1 MiB"), true);
        return;
    default:
        set_failure(out, "connection_failed", xasprintf("request failed: %s", detail), true);
        return;
    }
}

/* ---- HTTP answers ------------------------------------------------------------------------ */

static void classify_success(const struct wh_response *r, struct wh_result *out)
{
    if (r->body_truncated) {
        set_failure(out, "invalid_response",
                    xasprintf("HTTP %ld: response body exceeds 1 MiB", r->http_status), true);
        return;
    }
    if (r->body_len == 0 || !r->body || all_space(r->body, r->body_len)) {
        out->outcome = WH_OK;
        out->output = json_null();
        return;
    }
    json_error_t err;
    json_t *v = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, &err);
    if (!v && json_error_code(&err) == json_error_null_character) {
        /* PostgreSQL's jsonb cannot hold it, so the output could never be journaled. */
        set_failure(out, "invalid_response",
                    xasprintf("HTTP %ld with a JSON body holding \\u0000 (a NUL character), "
                              "which cannot be stored",
                              r->http_status),
                    true);
        return;
    }
    if (!v && json_error_code(&err) == json_error_stack_overflow) {
        set_failure(out, "invalid_response",
                    xasprintf("HTTP %ld with a JSON body nested deeper than %d levels",
                              r->http_status, JSON_LIMIT_MAX_DEPTH),
                    true);
        return;
    }
    if (!v) {
        struct buf m = BUF_INIT;
        buf_printf(&m, "HTTP %ld with a body that is not JSON (Content-Type: %s): ", r->http_status,
                   r->content_type ? r->content_type : "none");
        append_excerpt(&m, r->body, r->body_len);
        set_failure(out, "invalid_response", buf_steal(&m), true);
        return;
    }
    if (json_depth_exceeds(v, JSON_LIMIT_MAX_DEPTH)) {
        /* Journaled, it would not read back once wrapped in the API's and the history's
         * envelopes (jansson stops at 2048 levels). */
        json_decref(v);
        set_failure(out, "invalid_response",
                    xasprintf("HTTP %ld with a JSON body nested deeper than %d levels",
                              r->http_status, JSON_LIMIT_MAX_DEPTH),
                    true);
        return;
    }
    out->outcome = WH_OK;
    out->output = v;
}

/* Reads an RFC 9457 problem from an error body. Returns a new reference or NULL. */
static json_t *parse_problem(const struct wh_response *r)
{
    if (!r->body || r->body_len == 0 || r->body_truncated)
        return NULL;
    if (r->content_type && !media_type_is_json(r->content_type))
        return NULL;
    json_t *v = json_loadb(r->body, r->body_len, 0, NULL);
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

static void classify_error_status(const struct wh_response *r, struct wh_result *out)
{
    long status = r->http_status;
    bool retryable = status != 410;
    json_t *problem = parse_problem(r);
    const char *ptype = problem ? json_string_value(json_object_get(problem, "type")) : NULL;

    if (ptype && ptype[0] && strcmp(ptype, "about:blank") != 0) {
        const char *detail = json_string_value(json_object_get(problem, "detail"));
        const char *title = json_string_value(json_object_get(problem, "title"));
        char *msg;
        if (detail && title)
            msg = xasprintf("HTTP %ld: %s: %s", status, title, detail);
        else if (detail || title)
            msg = xasprintf("HTTP %ld: %s", status, detail ? detail : title);
        else
            msg = xasprintf("HTTP %ld", status);
        if (json_is_true(json_object_get(problem, "non_retryable")))
            retryable = false;
        set_failure(out, ptype, msg, retryable);
    } else {
        if (problem && json_is_true(json_object_get(problem, "non_retryable")))
            retryable = false;
        struct buf m = BUF_INIT;
        buf_printf(&m, "HTTP %ld", status);
        if (r->body && r->body_len > 0 && !all_space(r->body, r->body_len)) {
            buf_puts(&m, ": ");
            append_excerpt(&m, r->body, r->body_len);
        }
        set_failure(out, status < 500 ? "http_4xx" : "http_5xx", buf_steal(&m), retryable);
    }
    json_decref(problem);

    if ((status == 429 || status == 503) && r->retry_after)
        out->retry_after_ms = wh_parse_retry_after(r->retry_after, r->now_ms);
}

/* ---- public ------------------------------------------------------------------------------ */

void wh_classify(const struct wh_response *resp, struct wh_result *out)
{
    memset(out, 0, sizeof(*out));
    out->retry_after_ms = -1;
    if (!resp) {
        wh_result_set_error(out, WH_FAILED, "connection_failed", "no response", true);
        return;
    }
    out->http_status = resp->http_status;

    /* A body cut off at the cap ends the transfer with a write error even though a status line
     * came, so the status decides. */
    bool answered =
        resp->http_status > 0 && (resp->curl_code == CURLE_OK ||
                                  (resp->curl_code == CURLE_WRITE_ERROR && resp->body_truncated));
    if (!answered) {
        classify_transport(resp, out);
        return;
    }

    long status = resp->http_status;
    if (status == 202) {
        out->outcome = WH_ASYNC;
    } else if (status >= 200 && status < 300) {
        classify_success(resp, out);
    } else if (status >= 300 && status < 400) {
        set_failure(
            out, "redirect",
            xasprintf("HTTP %ld: the receiver redirected; redirects are not followed", status),
            true);
    } else if (status >= 400 && status < 600) {
        classify_error_status(resp, out);
    } else {
        set_failure(out, "invalid_response", xasprintf("unexpected HTTP status %ld", status), true);
    }
}

void wh_result_set_error(struct wh_result *out, enum wh_outcome outcome, const char *type,
                         const char *message, bool retryable)
{
    json_decref(out->output);
    out->output = NULL;
    json_decref(out->error);
    out->outcome = outcome;
    out->error =
        json_pack("{s:s, s:s}", "type", type ? type : "unknown", "message", message ? message : "");
    if (!out->error) /* only when a string is not valid UTF-8 */
        out->error = json_pack("{s:s, s:s}", "type", "invalid_response", "message",
                               "the receiver's error could not be represented as UTF-8");
    out->retryable = retryable;
}

void wh_result_clear(struct wh_result *res)
{
    if (!res)
        return;
    json_decref(res->output);
    json_decref(res->error);
    memset(res, 0, sizeof(*res));
    res->retry_after_ms = -1;
}

const char *wh_result_error_type(const struct wh_result *res)
{
    if (!res || !res->error)
        return NULL;
    return json_string_value(json_object_get(res->error, "type"));
}

int64_t wh_parse_retry_after(const char *value, int64_t now_ms)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strlen(value);
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    if (n == 0)
        return -1;
    if (strspn(value, "0123456789") >= n) {
        long long s = 0;
        for (size_t i = 0; i < n; i++) {
            s = s * 10 + (value[i] - '0');
            if (s > RETRY_AFTER_MAX_S) {
                s = RETRY_AFTER_MAX_S;
                break;
            }
        }
        return (int64_t)s * 1000;
    }
    /* An HTTP-date (IMF-fixdate, RFC 850 or asctime), which curl_getdate() reads. It also
     * accepts looser shapes, so the value must at least name a month to count. */
    bool has_letter = false;
    for (size_t i = 0; i < n; i++)
        if ((value[i] >= 'A' && value[i] <= 'Z') || (value[i] >= 'a' && value[i] <= 'z'))
            has_letter = true;
    if (!has_letter)
        return -1;
    char *copy = xstrndup(value, n);
    time_t t = curl_getdate(copy, NULL);
    free(copy);
    if (t == (time_t)-1)
        return -1;
    /* In seconds first: t * 1000 overflows for a date far enough ahead (a fuzzer found one).
     * A date further than RETRY_AFTER_MAX_S away means the same as that many seconds. */
    int64_t now_s = now_ms / 1000; /* |now_s| < 2^54: adding the cap cannot overflow */
    if ((int64_t)t <= now_s)
        return 0;
    if ((int64_t)t > now_s + RETRY_AFTER_MAX_S)
        return RETRY_AFTER_MAX_S * 1000;
    int64_t delay = ((int64_t)t - now_s) * 1000 - now_ms % 1000;
    return delay > 0 ? delay : 0;
}
