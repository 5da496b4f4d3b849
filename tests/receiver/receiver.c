/* keel-test-receiver: a real webhook receiver for the integration tests and the benchmark. It
 * verifies Standard Webhooks signatures, counts deliveries per Idempotency-Key, applies each
 * key once, and misbehaves on request according to the path (see usage()). */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/timeutil.h"
#include "webhook/sign.h"

#define MAX_BODY_BYTES (8 * 1024 * 1024)
#define MAX_ARRIVALS   100000

static void usage(FILE *out)
{
    fputs(
        "usage: keel-test-receiver [--port N] [--bind ADDR] [--secret \"whsec_...\"]\n"
        "                          [--tolerance SECONDS]\n"
        "\n"
        "  --port N         port to listen on; 0 (the default) picks a free one\n"
        "  --bind ADDR      IPv4 address to listen on (default 127.0.0.1)\n"
        "  --secret S       verify webhook signatures with S (space-separated secrets); bad or\n"
        "                   missing signatures get 401 and are counted as bad_signatures\n"
        "  --tolerance S    accepted webhook-timestamp skew in seconds (default 300; 0 = any)\n"
        "\n"
        "Prints {\"port\": N} as its first line on stdout. Runs until SIGINT or SIGTERM.\n"
        "\n"
        "Webhook paths (POST; every accepted request counts as a delivery of its key):\n"
        "  /ok                 200 {\"echo\": <body.input>, \"key\": <key>, \"attempt\": n}\n"
        "  /flaky/N            503 for the first N deliveries of each key, then as /ok\n"
        "  /fail/STATUS        STATUS with a problem {\"type\": \"test_error\", ...}\n"
        "  /problem/TYPE       422 (or ?status=NNN) with a problem of that type;\n"
        "                      ?non_retryable=1 adds \"non_retryable\": true\n"
        "  /slow/MS            sleeps MS milliseconds, then as /ok\n"
        "  /hold/MS            waits until POST /_release (or MS milliseconds), then as /ok\n"
        "  /async              202; the body's task_token is kept and shown by /_stats\n"
        "  /async-late/MS      as /async, but answers MS milliseconds after keeping the token\n"
        "  /token/WHEN         completes the attempt itself through POST <input.keeld>/v1/tasks/\n"
        "                      <task_token>/complete (or /fail, non-retryable, when input.fail\n"
        "                      is true); WHEN is \"inside\" (from the handler, then 202),\n"
        "                      \"after\" (202 first, then the call at once) or \"then-200\"\n"
        "                      (the call, then 200 with a body of its own); the output is\n"
        "                      {\"echo\": input, \"key\", \"attempt\", \"via\": \"token\"}"
        "  /gone               410\n"
        "  /redirect           302 to /ok\n"
        "  /notjson            200 text/plain\n"
        "  /empty              200 with no body\n"
        "  /slow-first/MS      the first delivery of a key waits MS, later ones answer at once\n"
        "  /retry-after/S      429 with Retry-After: S on a key's first delivery, then as /ok\n"
        "  /deep/N             200 with a JSON body nested N levels deep ([[...]])\n"
        "  /nul                200 with a JSON body holding \"\\u0000\"\n"
        "Control:\n"
        "  GET /_stats         {\"deliveries\", \"bad_signatures\", \"applied\", \"duplicates\",\n"
        "                       \"token_calls\", \"token_calls_failed\",\n"
        "                       \"in_progress\" (webhooks being answered now),\n"
        "                       \"max_in_progress\" (the most at once since the start or reset),\n"
        "                       \"keys\": {key: {\"deliveries\", \"applied\", \"task_token\"?,\n"
        "                       \"task_tokens\"?: [every token, in order], \"token_status\"?}}}\n"
        "                      ?keys=0 leaves out \"keys\"; ?key=K shows only that key;\n"
        "                      ?arrivals=1 adds \"arrivals\": [{\"key\", \"at_ms\"}] (Unix ms),\n"
        "                      every webhook in the order it arrived (the first 100,000)\n"
        "  POST /_release      lets every /hold/ request waiting now answer\n"
        "  POST /_reset        forgets everything (max_in_progress starts again from the\n"
        "                      webhooks being answered)\n"
        "  GET /healthz        200\n",
        out);
}

/* ---- state ------------------------------------------------------------------------------- */

struct key_entry {
    struct key_entry *next;
    uint64_t hash;
    int64_t deliveries;
    int applied; /* 0 or 1: the effect of a key is applied once, however often it comes */
    char *task_token;
    json_t *task_tokens; /* every token received for the key, in order */
    long token_status;   /* HTTP status of the last /token/ completion call (-1: no answer) */
    char key[];
};

/* A webhook as it arrived: its Idempotency-Key and when (Unix ms). */
struct arrival {
    char *key;
    int64_t at_ms;
};

static struct {
    pthread_mutex_t mu;
    struct key_entry **buckets;
    size_t nbuckets;
    size_t nkeys;
    int64_t deliveries;
    int64_t bad_signatures;
    int64_t applied;
    int64_t duplicates;
    int64_t token_calls;        /* completions the receiver sent through task tokens */
    int64_t token_calls_failed; /* ...answered other than 2xx, or not at all */
    int64_t in_progress;        /* webhooks being answered now */
    int64_t max_in_progress;    /* the most at once since the start or the last reset */
    struct arrival *arrivals;   /* every webhook in order of arrival (at most MAX_ARRIVALS) */
    size_t n_arrivals, arrivals_cap;
    uint64_t releases; /* POST /_release calls: /hold/ waits for the next one */
    pthread_cond_t released;
} st = {.mu = PTHREAD_MUTEX_INITIALIZER, .released = PTHREAD_COND_INITIALIZER};

static struct wh_secrets *secrets;
static int64_t tolerance_s = 300;

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* Finds or adds key; call with st.mu held. */
static struct key_entry *key_get(const char *key)
{
    uint64_t h = hash_key(key);
    if (st.nbuckets) {
        for (struct key_entry *e = st.buckets[h % st.nbuckets]; e; e = e->next)
            if (e->hash == h && strcmp(e->key, key) == 0)
                return e;
    }
    if (st.nkeys >= st.nbuckets) {
        size_t nb = st.nbuckets ? st.nbuckets * 2 : 1024;
        struct key_entry **b = xcalloc(nb, sizeof(*b));
        for (size_t i = 0; i < st.nbuckets; i++) {
            struct key_entry *e = st.buckets[i];
            while (e) {
                struct key_entry *next = e->next;
                e->next = b[e->hash % nb];
                b[e->hash % nb] = e;
                e = next;
            }
        }
        free(st.buckets);
        st.buckets = b;
        st.nbuckets = nb;
    }
    size_t n = strlen(key);
    struct key_entry *e = xcalloc(1, sizeof(*e) + n + 1);
    memcpy(e->key, key, n + 1);
    e->hash = h;
    e->next = st.buckets[h % st.nbuckets];
    st.buckets[h % st.nbuckets] = e;
    st.nkeys++;
    return e;
}

static void state_reset(void)
{
    pthread_mutex_lock(&st.mu);
    for (size_t i = 0; i < st.nbuckets; i++) {
        struct key_entry *e = st.buckets[i];
        while (e) {
            struct key_entry *next = e->next;
            free(e->task_token);
            json_decref(e->task_tokens);
            free(e);
            e = next;
        }
    }
    free(st.buckets);
    st.buckets = NULL;
    st.nbuckets = st.nkeys = 0;
    st.deliveries = st.bad_signatures = st.applied = st.duplicates = 0;
    st.token_calls = st.token_calls_failed = 0;
    st.max_in_progress = st.in_progress;
    for (size_t i = 0; i < st.n_arrivals; i++)
        free(st.arrivals[i].key);
    free(st.arrivals);
    st.arrivals = NULL;
    st.n_arrivals = st.arrivals_cap = 0;
    pthread_mutex_unlock(&st.mu);
}

/* Counts a delivery of key; returns how many deliveries of it there have been. */
static int64_t count_delivery(const char *key)
{
    pthread_mutex_lock(&st.mu);
    struct key_entry *e = key_get(key);
    int64_t n = ++e->deliveries;
    st.deliveries++;
    pthread_mutex_unlock(&st.mu);
    return n;
}

/* Applies key's effect unless it already was (the dedupe a real receiver does). */
static void apply_once(const char *key, const char *task_token)
{
    pthread_mutex_lock(&st.mu);
    struct key_entry *e = key_get(key);
    if (e->applied) {
        st.duplicates++;
    } else {
        e->applied = 1;
        st.applied++;
    }
    if (task_token) {
        free(e->task_token);
        e->task_token = xstrdup(task_token);
        if (!e->task_tokens)
            e->task_tokens = json_array();
        json_array_append_new(e->task_tokens, json_string(task_token));
    }
    pthread_mutex_unlock(&st.mu);
}

static void stats_entry(struct buf *b, const struct key_entry *e, bool *first)
{
    buf_puts(b, *first ? "\"" : ",\"");
    *first = false;
    buf_json_escape(b, e->key);
    buf_printf(b, "\":{\"deliveries\":%" PRId64 ",\"applied\":%d", e->deliveries, e->applied);
    if (e->task_token) {
        buf_puts(b, ",\"task_token\":\"");
        buf_json_escape(b, e->task_token);
        buf_putc(b, '"');
    }
    if (e->task_tokens) {
        char *list = json_dumps(e->task_tokens, JSON_COMPACT);
        buf_printf(b, ",\"task_tokens\":%s", list);
        free(list);
    }
    if (e->token_status)
        buf_printf(b, ",\"token_status\":%ld", e->token_status);
    buf_putc(b, '}');
}

static char *stats_json(bool with_keys, const char *only_key, bool with_arrivals)
{
    struct buf b = BUF_INIT;
    pthread_mutex_lock(&st.mu);
    buf_printf(&b,
               "{\"deliveries\":%" PRId64 ",\"bad_signatures\":%" PRId64 ",\"applied\":%" PRId64
               ",\"duplicates\":%" PRId64 ",\"token_calls\":%" PRId64
               ",\"token_calls_failed\":%" PRId64 ",\"in_progress\":%" PRId64
               ",\"max_in_progress\":%" PRId64,
               st.deliveries, st.bad_signatures, st.applied, st.duplicates, st.token_calls,
               st.token_calls_failed, st.in_progress, st.max_in_progress);
    if (with_arrivals) {
        buf_puts(&b, ",\"arrivals\":[");
        for (size_t i = 0; i < st.n_arrivals; i++) {
            buf_puts(&b, i ? ",{\"key\":\"" : "{\"key\":\"");
            buf_json_escape(&b, st.arrivals[i].key);
            buf_printf(&b, "\",\"at_ms\":%" PRId64 "}", st.arrivals[i].at_ms);
        }
        buf_putc(&b, ']');
    }
    if (with_keys) {
        bool first = true;
        buf_puts(&b, ",\"keys\":{");
        for (size_t i = 0; i < st.nbuckets; i++)
            for (struct key_entry *e = st.buckets[i]; e; e = e->next)
                if (!only_key || strcmp(e->key, only_key) == 0)
                    stats_entry(&b, e, &first);
        buf_putc(&b, '}');
    }
    buf_putc(&b, '}');
    pthread_mutex_unlock(&st.mu);
    return buf_steal(&b);
}

/* ---- replies ----------------------------------------------------------------------------- */

/* Queues a reply whose body (malloc'd, may be NULL) the response takes over. */
static enum MHD_Result reply_owned(struct MHD_Connection *c, unsigned status, const char *ctype,
                                   char *body)
{
    struct MHD_Response *r =
        body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (ctype)
        MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *ctype,
                                  const char *body)
{
    return reply_owned(c, status, ctype, body ? xstrdup(body) : NULL);
}

static enum MHD_Result reply_problem(struct MHD_Connection *c, unsigned status, const char *type,
                                     const char *title, const char *detail, bool non_retryable)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"type\":\"");
    buf_json_escape(&b, type);
    buf_puts(&b, "\",\"title\":\"");
    buf_json_escape(&b, title);
    buf_printf(&b, "\",\"status\":%u", status);
    if (detail) {
        buf_puts(&b, ",\"detail\":\"");
        buf_json_escape(&b, detail);
        buf_putc(&b, '"');
    }
    if (non_retryable)
        buf_puts(&b, ",\"non_retryable\":true");
    buf_putc(&b, '}');
    return reply_owned(c, status, "application/problem+json", buf_steal(&b));
}

/* The /ok answer: the request's input, its key and the attempt header. */
static enum MHD_Result reply_ok(struct MHD_Connection *c, const char *key, json_t *body)
{
    const char *attempt_hdr = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Keel-Attempt");
    json_t *input = body ? json_object_get(body, "input") : NULL;
    json_t *v = json_pack("{s:O, s:s, s:I}", "echo", input ? input : json_null(), "key", key,
                          "attempt", (json_int_t)(attempt_hdr ? atoll(attempt_hdr) : 0));
    if (!v)
        return reply_problem(c, 500, "receiver_error", "could not build the reply", NULL, false);
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    return reply_owned(c, 200, "application/json", s);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- completing through the task token --------------------------------------------------- */

/* A call to keeld's /v1/tasks/{token}/complete or /fail, as a receiver's worker would make. */
struct token_call {
    char *url;
    char *body;
    char *key;
};

static void token_call_free(struct token_call *tc)
{
    if (!tc)
        return;
    free(tc->url);
    free(tc->body);
    free(tc->key);
    free(tc);
}

/* The call a /token/ webhook asks for: complete with {"echo": input, "key", "attempt", "via":
 * "token"}, or fail (non-retryable) when input.fail is true. NULL when the body has no
 * input.keeld (keeld's base URL) or no task_token. */
static struct token_call *token_call_new(const char *key, const json_t *doc)
{
    json_t *input = json_object_get(doc, "input");
    const char *keeld = json_string_value(json_object_get(input, "keeld"));
    const char *token = json_string_value(json_object_get(doc, "task_token"));
    if (!keeld || !token || !*token)
        return NULL;
    bool fail = json_is_true(json_object_get(input, "fail"));
    json_t *body = fail ? json_pack("{s:{s:s, s:s}, s:b}", "error", "type", "ReceiverFailed",
                                    "message", "failed through the task token", "non_retryable", 1)
                        : json_pack("{s:{s:O, s:s, s:O, s:s}}", "output", "echo", input, "key", key,
                                    "attempt", json_object_get(doc, "attempt"), "via", "token");
    if (!body)
        return NULL;
    struct token_call *tc = xcalloc(1, sizeof(*tc));
    tc->url = xasprintf("%s/v1/tasks/%s/%s", keeld, token, fail ? "fail" : "complete");
    tc->body = json_dumps(body, JSON_COMPACT);
    tc->key = xstrdup(key);
    json_decref(body);
    return tc;
}

static size_t discard_reply(char *ptr, size_t size, size_t n, void *user)
{
    (void)ptr;
    (void)user;
    return size * n;
}

/* Sends the call and records its answer under the key (token_status, token_calls...). */
static void token_call_run(const struct token_call *tc)
{
    long status = -1;
    CURL *c = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (c && headers) {
        curl_easy_setopt(c, CURLOPT_URL, tc->url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, tc->body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_reply);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    bool ok = status >= 200 && status < 300;
    if (!ok)
        fprintf(stderr, "keel-test-receiver: task token call for %s answered %ld\n", tc->key,
                status);
    pthread_mutex_lock(&st.mu);
    key_get(tc->key)->token_status = status;
    st.token_calls++;
    if (!ok)
        st.token_calls_failed++;
    pthread_mutex_unlock(&st.mu);
}

/* ---- routing ----------------------------------------------------------------------------- */

struct request {
    struct buf body;
    bool too_large;
    struct token_call *after; /* /token/after: made once the 202 has been sent */
};

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static enum MHD_Result answer_control(struct MHD_Connection *c, const char *method, const char *url)
{
    if (strcmp(url, "/_stats") == 0 && strcmp(method, "GET") == 0) {
        const char *keys = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "keys");
        const char *only = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "key");
        const char *arrivals = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "arrivals");
        bool with_keys = !(keys && strcmp(keys, "0") == 0);
        bool with_arrivals = arrivals && strcmp(arrivals, "1") == 0;
        return reply_owned(c, 200, "application/json", stats_json(with_keys, only, with_arrivals));
    }
    if (strcmp(url, "/_release") == 0 && strcmp(method, "POST") == 0) {
        pthread_mutex_lock(&st.mu);
        st.releases++;
        pthread_cond_broadcast(&st.released);
        pthread_mutex_unlock(&st.mu);
        return reply_text(c, 200, "application/json", "{\"released\":true}");
    }
    if (strcmp(url, "/_reset") == 0 && strcmp(method, "POST") == 0) {
        state_reset();
        return reply_text(c, 200, "application/json", "{\"reset\":true}");
    }
    if (strcmp(url, "/healthz") == 0)
        return reply_text(c, 200, "application/json", "{\"ok\":true}");
    return reply_problem(c, 404, "not_found", "no such control endpoint", url, false);
}

static enum MHD_Result answer_webhook_path(struct MHD_Connection *c, const char *url,
                                           struct request *req);

/* Answers a webhook, counting it in_progress meanwhile and recording its arrival. */
static enum MHD_Result answer_webhook(struct MHD_Connection *c, const char *url,
                                      struct request *req)
{
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    pthread_mutex_lock(&st.mu);
    if (++st.in_progress > st.max_in_progress)
        st.max_in_progress = st.in_progress;
    if (st.n_arrivals < MAX_ARRIVALS) {
        if (st.n_arrivals == st.arrivals_cap) {
            st.arrivals_cap = st.arrivals_cap ? st.arrivals_cap * 2 : 256;
            st.arrivals = xrealloc(st.arrivals, st.arrivals_cap * sizeof(*st.arrivals));
        }
        st.arrivals[st.n_arrivals++] = (struct arrival){xstrdup(key ? key : ""), time_now_ms()};
    }
    pthread_mutex_unlock(&st.mu);
    enum MHD_Result ret = answer_webhook_path(c, url, req);
    pthread_mutex_lock(&st.mu);
    st.in_progress--;
    pthread_mutex_unlock(&st.mu);
    return ret;
}

static enum MHD_Result answer_webhook_path(struct MHD_Connection *c, const char *url,
                                           struct request *req)
{
    const char *body = req->body.data ? req->body.data : "";
    size_t len = req->body.len;

    if (secrets) {
        const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
        const char *ts = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-timestamp");
        const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-signature");
        if (!wh_verify(secrets, id, ts, body, len, sig, time_now_ms() / 1000, tolerance_s)) {
            pthread_mutex_lock(&st.mu);
            st.bad_signatures++;
            pthread_mutex_unlock(&st.mu);
            return reply_problem(c, 401, "bad_signature", "Invalid webhook signature",
                                 sig ? "no signature matches" : "webhook-signature is missing",
                                 true);
        }
    }

    const char *key_hdr = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    const char *key = key_hdr ? key_hdr : "";
    int64_t n = count_delivery(key);
    long arg = 0;

    if (strncmp(url, "/flaky/", 7) == 0) {
        if (!parse_long(url + 7, 0, 1000000, &arg))
            return reply_problem(c, 400, "bad_path", "Bad /flaky/N", url, true);
        if (n <= arg)
            return reply_text(c, 503, "text/plain", "flaky: failing this delivery on purpose");
    } else if (strncmp(url, "/fail/", 6) == 0) {
        if (!parse_long(url + 6, 100, 599, &arg))
            return reply_problem(c, 400, "bad_path", "Bad /fail/STATUS", url, true);
        return reply_problem(c, (unsigned)arg, "test_error", "Test failure",
                             "the receiver fails this path on purpose", false);
    } else if (strncmp(url, "/problem/", 9) == 0) {
        const char *type = url + 9;
        const char *nr = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "non_retryable");
        const char *status = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status");
        long code = 422;
        if (status && !parse_long(status, 400, 599, &code))
            return reply_problem(c, 400, "bad_path", "Bad ?status", status, true);
        bool non_retryable = nr && (strcmp(nr, "1") == 0 || strcmp(nr, "true") == 0);
        return reply_problem(c, (unsigned)code, type[0] ? type : "test_problem", "Test problem",
                             NULL, non_retryable);
    } else if (strncmp(url, "/slow-first/", 12) == 0) {
        /* Holds a key's first delivery MS (a request in flight when its sender dies); later
         * deliveries answer at once. */
        if (!parse_long(url + 12, 0, 3600000, &arg))
            return reply_problem(c, 400, "bad_path", "Bad /slow-first/MS", url, true);
        if (n == 1)
            sleep_ms(arg);
    } else if (strncmp(url, "/hold/", 6) == 0) {
        /* Held until the next POST /_release, or MS at most: a request kept on the wire for as
         * long as a test needs, then let go at a moment it chooses. */
        if (!parse_long(url + 6, 0, 3600000, &arg))
            return reply_problem(c, 400, "bad_path", "Bad /hold/MS", url, true);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += arg / 1000;
        until.tv_nsec += (arg % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&st.mu);
        uint64_t seen = st.releases;
        while (st.releases == seen &&
               pthread_cond_timedwait(&st.released, &st.mu, &until) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&st.mu);
    } else if (strncmp(url, "/slow/", 6) == 0) {
        if (!parse_long(url + 6, 0, 3600000, &arg))
            return reply_problem(c, 400, "bad_path", "Bad /slow/MS", url, true);
        sleep_ms(arg);
    } else if (strcmp(url, "/async") == 0 || strncmp(url, "/async-late/", 12) == 0) {
        /* /async-late/MS keeps the token first and answers 202 only MS later, so a test can
         * complete the attempt before keeld has seen the 202. */
        if (url[6] == '-' && !parse_long(url + 12, 0, 3600000, &arg))
            return reply_problem(c, 400, "bad_path", "Bad /async-late/MS", url, true);
        json_t *doc = json_loadb(body, len, 0, NULL);
        apply_once(key, json_string_value(json_object_get(doc, "task_token")));
        json_decref(doc);
        sleep_ms(arg);
        return reply_text(c, 202, "application/json", "{\"accepted\":true}");
    } else if (strncmp(url, "/token/", 7) == 0) {
        const char *when = url + 7;
        bool after = strcmp(when, "after") == 0, then_200 = strcmp(when, "then-200") == 0;
        if (!after && !then_200 && strcmp(when, "inside") != 0)
            return reply_problem(c, 400, "bad_path", "Bad /token/WHEN", url, true);
        json_t *doc = json_loadb(body, len, 0, NULL);
        struct token_call *tc = token_call_new(key, doc);
        if (!tc) {
            json_decref(doc);
            return reply_problem(c, 400, "bad_body", "/token/ needs input.keeld and a task_token",
                                 NULL, true);
        }
        apply_once(key, json_string_value(json_object_get(doc, "task_token")));
        if (after) {
            json_decref(doc);
            token_call_free(req->after);
            req->after = tc;
            return reply_text(c, 202, "application/json", "{\"accepted\":true}");
        }
        token_call_run(tc);
        token_call_free(tc);
        if (then_200) {
            /* A result of its own after the token's: keeld keeps the first one. */
            json_t *v = json_pack("{s:O, s:s, s:s}", "echo", json_object_get(doc, "input"), "key",
                                  key, "via", "response");
            json_decref(doc);
            char *text = json_dumps(v, JSON_COMPACT);
            json_decref(v);
            return reply_owned(c, 200, "application/json", text);
        }
        json_decref(doc);
        return reply_text(c, 202, "application/json", "{\"accepted\":true}");
    } else if (strcmp(url, "/gone") == 0) {
        return reply_problem(c, 410, "about:blank", "Gone", NULL, false);
    } else if (strcmp(url, "/redirect") == 0) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Location", "/ok");
        enum MHD_Result ret = MHD_queue_response(c, 302, r);
        MHD_destroy_response(r);
        return ret;
    } else if (strcmp(url, "/notjson") == 0) {
        return reply_text(c, 200, "text/plain", "this is not JSON\n");
    } else if (strcmp(url, "/empty") == 0) {
        apply_once(key, NULL);
        return reply_text(c, 200, NULL, NULL);
    } else if (strncmp(url, "/retry-after/", 13) == 0) {
        if (!parse_long(url + 13, 0, 86400 * 365, &arg))
            return reply_problem(c, 400, "bad_path", "Bad /retry-after/SECONDS", url, true);
        if (n == 1) {
            struct MHD_Response *r =
                MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
            char value[24];
            snprintf(value, sizeof(value), "%ld", arg);
            MHD_add_response_header(r, "Retry-After", value);
            enum MHD_Result ret = MHD_queue_response(c, 429, r);
            MHD_destroy_response(r);
            return ret;
        }
    } else if (strncmp(url, "/deep/", 6) == 0) {
        /* 200 with a JSON body nested N levels deep: [[[...]]]. */
        if (!parse_long(url + 6, 1, 100000, &arg))
            return reply_problem(c, 400, "bad_path", "Bad /deep/N", url, true);
        apply_once(key, NULL);
        char *deep = xmalloc(2 * (size_t)arg + 1);
        memset(deep, '[', (size_t)arg);
        memset(deep + arg, ']', (size_t)arg);
        deep[2 * arg] = '\0';
        return reply_owned(c, 200, "application/json", deep);
    } else if (strcmp(url, "/nul") == 0) {
        apply_once(key, NULL);
        return reply_text(c, 200, "application/json", "{\"text\":\"nul\\u0000here\"}");
    } else if (strcmp(url, "/ok") != 0) {
        return reply_problem(c, 404, "not_found", "No such receiver path", url, true);
    }

    /* Success: apply once and echo. */
    apply_once(key, NULL);
    json_t *doc = len ? json_loadb(body, len, 0, NULL) : NULL;
    enum MHD_Result ret = reply_ok(c, key, doc);
    json_decref(doc);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *http_version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)http_version;
    struct request *req = *con_cls;
    if (!req) {
        req = xcalloc(1, sizeof(*req));
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (req->body.len + *upload_size > MAX_BODY_BYTES)
            req->too_large = true;
        else
            buf_append(&req->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (req->too_large)
        return reply_problem(c, 413, "too_large", "Request body too large", NULL, true);
    if (url[0] == '/' && (url[1] == '_' || strcmp(url, "/healthz") == 0))
        return answer_control(c, method, url);
    if (strcmp(method, "POST") != 0)
        return reply_problem(c, 405, "method_not_allowed", "Webhooks are POSTed", NULL, true);
    return answer_webhook(c, url, req);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    struct request *req = *con_cls;
    if (req) {
        /* /token/after: the 202 is on the wire now; complete at once, racing keeld's journaling
         * of it (this holds only this connection's thread). */
        if (req->after && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
            token_call_run(req->after);
        token_call_free(req->after);
        buf_free(&req->body);
        free(req);
        *con_cls = NULL;
    }
}

/* ---- main -------------------------------------------------------------------------------- */

/* SIGINT and SIGTERM write a byte here; main waits for it. */
static int stop_pipe[2] = {-1, -1};

static void on_stop_signal(int sig)
{
    (void)sig;
    int saved = errno;
    char byte = 1;
    ssize_t n = write(stop_pipe[1], &byte, 1);
    (void)n;
    errno = saved;
}

/* Many keep-alive connections at once need many descriptors. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    long port = 0;
    const char *bind_addr = "127.0.0.1";
    const char *secret = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--port") == 0 && v) {
            if (!parse_long(v, 0, 65535, &port)) {
                fprintf(stderr, "keel-test-receiver: --port: not a port: %s\n", v);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--bind") == 0 && v) {
            bind_addr = v;
            i++;
        } else if (strcmp(a, "--secret") == 0 && v) {
            secret = v;
            i++;
        } else if (strcmp(a, "--tolerance") == 0 && v) {
            long t = 0;
            if (!parse_long(v, 0, 86400 * 365, &t)) {
                fprintf(stderr, "keel-test-receiver: --tolerance: not a number: %s\n", v);
                return 2;
            }
            tolerance_s = t;
            i++;
        } else {
            fprintf(stderr, "keel-test-receiver: unknown or incomplete option: %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (secret) {
        char *why = NULL;
        if (wh_secrets_parse(secret, &secrets, &why) != 0) {
            fprintf(stderr, "keel-test-receiver: --secret: %s\n", why);
            free(why);
            return 2;
        }
    }

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, bind_addr, &addr.sin_addr) != 1) {
        fprintf(stderr, "keel-test-receiver: --bind: not an IPv4 address: %s\n", bind_addr);
        return 2;
    }

    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (pipe(stop_pipe) != 0) {
        fprintf(stderr, "keel-test-receiver: pipe: %s\n", strerror(errno));
        return 1;
    }
    /* MHD's threads start with the stop signals blocked, so the handler runs on the main
     * thread or on a thread the runtime made before main (sanitizers do), never in the middle
     * of a request. */
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, &old);

    /* A thread per connection: /slow must not hold up other connections, and the dispatcher
     * keeps a bounded number of keep-alive connections, so threads are few and long-lived. */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)20000, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "keel-test-receiver: cannot listen on %s:%ld: %s\n", bind_addr, port,
                strerror(errno));
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("{\"port\": %u}\n", info ? (unsigned)info->port : (unsigned)port);
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    char byte;
    while (read(stop_pipe[0], &byte, 1) < 0 && errno == EINTR)
        ;
    MHD_stop_daemon(d);
    state_reset();
    wh_secrets_free(secrets);
    return 0;
}
