/* Response classification: what one webhook attempt's transport result and HTTP answer mean
 * for the step (output, asynchronous, or a failure with a type and whether to retry). Pure: no
 * I/O and no clock, so every rule of the contract is tested with a table. */
#ifndef KEEL_WEBHOOK_CLASSIFY_H
#define KEEL_WEBHOOK_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Response bodies above this many bytes are not read further; on a 2xx they make the attempt
 * fail as invalid_response. */
#define WH_MAX_RESPONSE_BYTES (1024 * 1024)

enum wh_outcome {
    WH_OK,      /* a 2xx other than 202: output holds the JSON body (JSON null when empty) */
    WH_ASYNC,   /* 202: the activity completes later through the tasks API */
    WH_FAILED,  /* a failed attempt: error, retryable and retry_after_ms say what happened */
    WH_ABORTED, /* the dispatcher stopped before an answer came; the request may or may not
                 * have reached the receiver, so this is not a failed attempt to journal */
};

/* What came back from one attempt: the input of wh_classify(). Pointers are borrowed. */
struct wh_response {
    int curl_code;            /* a CURLcode; 0 (CURLE_OK) when a response was received */
    long os_errno;            /* CURLINFO_OS_ERRNO; 0 when unknown */
    const char *curl_detail;  /* curl's error buffer text, or NULL */
    long http_status;         /* 0 when there was no response */
    const char *content_type; /* the Content-Type header, or NULL */
    const char *retry_after;  /* the Retry-After header, or NULL */
    const char *body;         /* the response body (not NUL-terminated), or NULL */
    size_t body_len;
    bool body_truncated; /* the body exceeded WH_MAX_RESPONSE_BYTES and was cut off */
    int64_t now_ms;      /* wall clock, for a Retry-After given as an HTTP-date */
};

/* The outcome of one attempt. Fields not listed for an outcome are NULL, false or -1. */
struct wh_result {
    enum wh_outcome outcome;
    long http_status;       /* the receiver's status, 0 when none came */
    json_t *output;         /* WH_OK: the parsed body, JSON null for an empty one. Owned by the
                             * result; a consumer may take it by setting the field to NULL. */
    json_t *error;          /* WH_FAILED, WH_ABORTED: {"type": string, "message": string}. Owned
                             * like output. */
    bool retryable;         /* WH_FAILED: false for 410, for a problem with "non_retryable": true
                             * and for a URL that can never work (invalid_url); true otherwise */
    int64_t retry_after_ms; /* WH_FAILED on 429/503 with a valid Retry-After: the delay the
                             * receiver asked for (>= 0, at most about 31 years; the engine
                             * caps it further by the step's max_interval); otherwise -1 */
    int64_t duration_ms;    /* filled in by the dispatcher: time from send to answer */
};

/* Classifies resp into *out (which the function fully overwrites) following the contract's
 * "Activity webhooks" rules. A 2xx JSON body that nests deeper than JSON_LIMIT_MAX_DEPTH
 * (util/jsonlimits.h) or holds "\u0000" is an invalid_response failure: it could not be
 * journaled and read back. Error types: the receiver's problem+json "type" when present,
 * else http_4xx, http_5xx, redirect, timeout, connection_refused, connection_failed,
 * invalid_response, invalid_url. Free what it sets with wh_result_clear(). */
void wh_classify(const struct wh_response *resp, struct wh_result *out);

/* Builds a failure result (used for outcomes decided without a response). */
void wh_result_set_error(struct wh_result *out, enum wh_outcome outcome, const char *type,
                         const char *message, bool retryable);

/* Releases output and error and resets the result; safe on a zeroed or cleared result. */
void wh_result_clear(struct wh_result *res);

/* The error type of a failed result ("timeout", "http_5xx", ...), or NULL when it has none.
 * Borrowed from res->error. */
const char *wh_result_error_type(const struct wh_result *res);

/* Parses a Retry-After value (delta seconds or an HTTP-date) into milliseconds from now_ms
 * (never negative). Returns -1 when the value is neither. */
int64_t wh_parse_retry_after(const char *value, int64_t now_ms);

#endif
