/* Task tokens against a real keeld, receiver and PostgreSQL (issue 13, issue 8 point 11): a
 * token completes its attempt at any moment after the request carrying it left keeld, through
 * any keeld, once; only its hash is stored; a resend carries a new token and both stay valid
 * while the attempt is in flight. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Executions per burst (the issue asks for 500). KEEL_TEST_TOKEN_BURST overrides it. */
#define BURST_DEFAULT  500
#define START_THREADS  8
#define BURST_DEADLINE 240000

static char *db;
static struct proc keeld, receiver;
static const char *const env[] = {"KEEL_LEASE_GRACE_MS=300", NULL};

static int setup(void **state)
{
    (void)state;
    /* A database of its own per process, so that two copies of this test can run at once. */
    char name[64];
    snprintf(name, sizeof name, "keel_it_tokens_%d", (int)getpid());
    stack_start(name, env, &db, &keeld, &receiver);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stack_stop(&db, &keeld, &receiver);
    return 0;
}

/* Registers a definition whose "%R" placeholders become the receiver's base URL. */
static void define(const char *json)
{
    char *text = harness_subst_r(json, receiver.base_url);
    struct hreply r;
    http_post_json(keeld.base_url, "/v1/workflows", text, &r);
    if (r.status != 201 && r.status != 200)
        fail_msg("define: %ld %s", r.status, r.body);
    hreply_free(&r);
    free(text);
}

/* The number the query (printf-style, with one string argument) answers; -1 for no row. */
__attribute__((format(printf, 1, 2))) static long sql_long(const char *fmt, ...)
{
    char *q = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(&q, fmt, ap);
    va_end(ap);
    assert_true(rc >= 0);
    char *v = harness_sql_value(db, q);
    long n = v ? atol(v) : -1;
    free(v);
    free(q);
    return n;
}

#define assert_sql_long(want, ...)                                                                 \
    do {                                                                                           \
        long got_ = sql_long(__VA_ARGS__);                                                         \
        if (got_ != (long)(want))                                                                  \
            fail_msg("want %ld, got %ld (line %d)", (long)(want), got_, __LINE__);                 \
    } while (0)

/* Fails with the whole execution unless it completed. */
static void assert_completed(json_t *execution)
{
    const char *status = json_string_value(json_object_get(execution, "status"));
    if (!status || strcmp(status, "completed") != 0) {
        char *text = json_dumps(execution, JSON_COMPACT);
        fail_msg("not completed: %s", text);
    }
}

static json_t *key_stats(const char *key)
{
    char q[256];
    snprintf(q, sizeof q, "?key=%s", key);
    json_t *stats = receiver_stats(&receiver, q);
    json_t *k = json_incref(json_object_get(json_object_get(stats, "keys"), key));
    json_decref(stats);
    return k;
}

/* ---- the burst ------------------------------------------------------------------------------ */

/* Starts executions [from, to) of the burst: i % 4 picks the receiver's moment (0, 2: from
 * inside its handler before the 202; 1, 3: just after the 202) and whether it completes (0, 1)
 * or fails (2, 3). The webhook goes out from the keeld that starts the execution (bases[i % n])
 * and the receiver completes through the other one (bases[(i + 1) % n]). */
struct starter {
    const char *prefix;
    const char *const *bases;
    int n_bases;
    int from, to, step;
    int errors;
    char last_error[256];
};

static void *start_some(void *arg)
{
    struct starter *s = arg;
    for (int i = s->from; i < s->to; i += s->step) {
        const char *via = s->bases[i % s->n_bases];
        const char *other = s->bases[(i + 1) % s->n_bases];
        char path[128], body[512];
        snprintf(path, sizeof path, "/v1/workflows/%s/executions",
                 i % 2 == 0 ? "tok-inside" : "tok-after");
        snprintf(body, sizeof body,
                 "{\"id\": \"%s-%d\", \"input\": {\"keeld\": \"%s\", \"fail\": %s, \"n\": %d}}",
                 s->prefix, i, other, i % 4 >= 2 ? "true" : "false", i);
        struct hreply r;
        int rc =
            http_do(via, "POST", path, "application/json", body, strlen(body), NULL, 60000, &r);
        if (rc < 0 || r.status != 201) {
            s->errors++;
            snprintf(s->last_error, sizeof s->last_error, "%s-%d: %ld %s", s->prefix, i,
                     rc < 0 ? -1L : r.status, rc < 0 ? "(no answer)" : r.body);
        }
        if (rc == 0)
            hreply_free(&r);
    }
    return NULL;
}

static int burst_size(void)
{
    const char *v = getenv("KEEL_TEST_TOKEN_BURST");
    int n = v ? atoi(v) : BURST_DEFAULT;
    return n >= 4 ? n : BURST_DEFAULT;
}

static void define_burst(void)
{
    /* One attempt only and a long timeout: a completion that were lost would show as a hang
     * (caught by the deadline) or a timeout error, never be covered by a retry. */
    define("{\"name\": \"tok-inside\", \"steps\": [{\"id\": \"work\", \"activity\": {\"url\": "
           "\"%R/token/inside\", \"input\": \"${input}\"}, \"timeout\": \"5m\", \"retry\": "
           "{\"max_attempts\": 1}}], "
           "\"output\": \"${steps.work.output}\"}");
    define("{\"name\": \"tok-after\", \"steps\": [{\"id\": \"work\", \"activity\": {\"url\": "
           "\"%R/token/after\", \"input\": \"${input}\"}, \"timeout\": \"5m\", \"retry\": "
           "{\"max_attempts\": 1}}], "
           "\"output\": \"${steps.work.output}\"}");
}

struct burst_wait {
    const char *prefix;
    json_int_t refused_before;
};

/* Done when no execution of the burst runs any more, or as soon as a completion is refused. */
static bool burst_over(void *arg)
{
    const struct burst_wait *w = arg;
    json_t *stats = receiver_stats(&receiver, "?keys=0");
    json_int_t refused = json_integer_value(json_object_get(stats, "token_calls_failed"));
    json_decref(stats);
    return refused > w->refused_before ||
           sql_long("SELECT count(*) FROM executions WHERE id LIKE '%s-%%' AND status = "
                    "'running'",
                    w->prefix) == 0;
}

struct calls_wait {
    json_int_t calls, refused_before;
};

/* Done when the receiver has counted that many token calls, or refused one. */
static bool token_calls_reach(void *arg)
{
    const struct calls_wait *w = arg;
    json_t *stats = receiver_stats(&receiver, "?keys=0");
    bool done =
        json_integer_value(json_object_get(stats, "token_calls")) >= w->calls ||
        json_integer_value(json_object_get(stats, "token_calls_failed")) > w->refused_before;
    json_decref(stats);
    return done;
}

static void run_burst(const char *prefix, const char *const *bases, int n_bases)
{
    int n = burst_size();
    json_t *before = receiver_stats(&receiver, "?keys=0");
    json_int_t calls0 = json_integer_value(json_object_get(before, "token_calls"));
    json_int_t failed0 = json_integer_value(json_object_get(before, "token_calls_failed"));
    json_int_t dup0 = json_integer_value(json_object_get(before, "duplicates"));
    json_decref(before);

    struct starter s[START_THREADS];
    pthread_t th[START_THREADS];
    for (int t = 0; t < START_THREADS; t++) {
        s[t] = (struct starter){.prefix = prefix,
                                .bases = bases,
                                .n_bases = n_bases,
                                .from = t,
                                .to = n,
                                .step = START_THREADS};
        pthread_create(&th[t], NULL, start_some, &s[t]);
    }
    for (int t = 0; t < START_THREADS; t++) {
        pthread_join(th[t], NULL);
        if (s[t].errors)
            fail_msg("%d starts failed, e.g. %s", s[t].errors, s[t].last_error);
    }
    struct burst_wait w = {.prefix = prefix, .refused_before = failed0};
    if (!wait_for(burst_over, &w, BURST_DEADLINE))
        fail_msg("%ld executions still running after %d s",
                 sql_long("SELECT count(*) FROM executions WHERE id LIKE '%s-%%' AND status = "
                          "'running'",
                          prefix),
                 BURST_DEADLINE / 1000);

    /* Every completion was accepted (2xx), exactly once per execution. The receiver counts a
     * call when its answer arrives, which keeld sends after the commit that ended the
     * execution: the last ones may still be on their way. */
    struct calls_wait cw = {calls0 + n, failed0};
    (void)wait_for(token_calls_reach, &cw, 10000);
    json_t *after = receiver_stats(&receiver, "?keys=0");
    json_int_t calls = json_integer_value(json_object_get(after, "token_calls")) - calls0;
    json_int_t failed = json_integer_value(json_object_get(after, "token_calls_failed")) - failed0;
    json_int_t dups = json_integer_value(json_object_get(after, "duplicates")) - dup0;
    json_decref(after);
    if (failed != 0 || calls != n) {
        char *one = harness_sqlf(db,
                                 "SELECT json_build_object('status', status, 'output', output, "
                                 "'error', error)::text FROM executions WHERE id LIKE '%s-%%' "
                                 "ORDER BY id LIMIT 1",
                                 prefix);
        fail_msg("%lld of %d token calls made, %lld refused; e.g. %s", (long long)calls, n,
                 (long long)failed, one ? one : "(none)");
    }
    assert_int_equal(dups, 0);

    /* Every execution ended with the receiver's output or error. */
    long completed = sql_long("SELECT count(*) FROM executions WHERE id LIKE '%s-%%' AND status = "
                              "'completed' AND output->>'via' = 'token' AND output->>'key' = id "
                              "|| '/work' AND (output->'echo'->>'n')::int %% 4 < 2",
                              prefix);
    long failed_ok = sql_long("SELECT count(*) FROM executions WHERE id LIKE '%s-%%' AND status = "
                              "'failed' AND error->>'type' = 'ReceiverFailed' AND "
                              "(input->>'n')::int %% 4 >= 2",
                              prefix);
    long want_completed = 0;
    for (int i = 0; i < n; i++)
        want_completed += i % 4 < 2;
    assert_int_equal(completed, want_completed);
    assert_int_equal(failed_ok, n - want_completed);

    /* No attempt was sent or applied twice; no 202 or result was left over. */
    assert_sql_long(n,
                    "SELECT count(*) FROM events WHERE execution_id LIKE '%s-%%' AND type = "
                    "'attempt_started'",
                    prefix);
    assert_sql_long(n,
                    "SELECT count(*) FROM events WHERE execution_id LIKE '%s-%%' AND type IN "
                    "('step_completed', 'step_failed')",
                    prefix);
    assert_sql_long(0,
                    "SELECT count(*) FROM events WHERE execution_id LIKE '%s-%%' AND type = "
                    "'result_ignored'",
                    prefix);
    /* Every token was spent, and its task is gone once the 202 was journaled. */
    assert_sql_long(n,
                    "SELECT count(*) FROM attempt_tokens WHERE execution_id LIKE '%s-%%' AND "
                    "used_at IS NOT NULL",
                    prefix);
}

static void test_burst_one_keeld(void **state)
{
    (void)state;
    define_burst();
    const char *bases[] = {keeld.base_url};
    run_burst("one", bases, 1);
}

static void test_burst_two_keelds(void **state)
{
    (void)state;
    define_burst();
    struct proc second;
    keeld_start(&second, db, env, NULL);
    const char *bases[] = {keeld.base_url, second.base_url};
    run_burst("two", bases, 2);
    proc_signal(&second, SIGTERM);
    assert_int_equal(proc_wait(&second, 20000), 0);
}

/* ---- the other cases ------------------------------------------------------------------------ */

/* The receiver completes through the token, then answers 200 with a result of its own: the
 * first result wins and the second is journaled as result_ignored. */
static void test_token_then_200(void **state)
{
    (void)state;
    define("{\"name\": \"tok-200\", \"steps\": [{\"id\": \"work\", \"activity\": {\"url\": "
           "\"%R/token/then-200\", \"input\": \"${input}\"}, \"retry\": {\"max_attempts\": 1}}, "
           "{\"id\": \"next\", "
           "\"activity\": {\"url\": \"%R/ok\"}}], \"output\": \"${steps.work.output}\"}");
    char body[256];
    snprintf(body, sizeof body, "{\"id\": \"t200-1\", \"input\": {\"keeld\": \"%s\"}}",
             keeld.base_url);
    http_post_expect(keeld.base_url, "/v1/workflows/tok-200/executions", body, 201, NULL);
    json_t *done = wait_result(keeld.base_url, "t200-1");
    assert_completed(done);
    assert_string_equal(json_string_value(json_object_get(json_object_get(done, "output"), "via")),
                        "token");
    json_decref(done);
    json_t *k = key_stats("t200-1/work");
    assert_int_equal(json_integer_value(json_object_get(k, "token_status")), 202);
    json_decref(k);
    /* The 200 arrives after the token's completion was journaled (the receiver waited for
     * its answer); its journaling may still be under way. */
    char *why = NULL;
    for (int i = 0; i < 1500; i++) {
        free(why);
        why = harness_sqlf(db, "SELECT data->'output'->>'via' FROM events WHERE execution_id = "
                               "'t200-1' AND type = 'result_ignored'");
        if (why)
            break;
        usleep(20000);
    }
    assert_non_null(why);
    assert_string_equal(why, "response");
    free(why);
    assert_sql_long(1,
                    "SELECT count(*) FROM events WHERE execution_id = '%s' AND type = "
                    "'step_completed' AND step = 'work'",
                    "t200-1");
}

/* Tokens are 32 hex digits (128 random bits), stored only as their SHA-256, and spent once. */
static void test_tokens_stored_hashed(void **state)
{
    (void)state;
    define("{\"name\": \"tok-hash\", \"steps\": [{\"id\": \"review\", \"activity\": {\"url\": "
           "\"%R/async\"}, \"timeout\": \"1h\"}], \"output\": \"${steps.review.output}\"}");
    http_post_expect(keeld.base_url, "/v1/workflows/tok-hash/executions", "{\"id\": \"hash-1\"}",
                     201, NULL);
    char *token = receiver_task_token(&receiver, "hash-1/review", 0);
    assert_int_equal(strlen(token), 32);
    assert_int_equal(strspn(token, "0123456789abcdef"), 32);
    /* Valid from the moment it was sent: a heartbeat works whatever the 202's progress. */
    char path[256];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", token);
    http_post_expect(keeld.base_url, path, "{}", 200, NULL);
    assert_sql_long(1,
                    "SELECT count(*) FROM attempt_tokens WHERE token_hash = "
                    "encode(sha256(convert_to('%s', 'UTF8')), 'hex')",
                    token);
    /* The token itself is in no table. */
    static const char *const tables[] = {"attempt_tokens", "tasks", "events",
                                         "executions",     "steps", "signals"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char *n = harness_sqlf(db, "SELECT count(*) FROM %s t WHERE t::text LIKE '%%%s%%'",
                               tables[i], token);
        if (!n || strcmp(n, "0") != 0)
            fail_msg("the token is stored in %s", tables[i]);
        free(n);
    }
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", token);
    http_post_expect(keeld.base_url, path, "{\"output\": {\"ok\": true}}", 202, NULL);
    json_t *done = wait_result(keeld.base_url, "hash-1");
    assert_completed(done);
    json_decref(done);
    struct hreply r;
    http_post_expect(keeld.base_url, path, "{\"output\": 2}", 409, &r);
    assert_problem(&r, 409, "token-used");
    hreply_free(&r);
    /* A token of the old shape (hex.base64 of the execution id) is unknown like any other. */
    http_post_expect(keeld.base_url, "/v1/tasks/0123456789abcdef0123456789abcdef.aGFzaC0x/complete",
                     "{}", 404, &r);
    assert_problem(&r, 404, "unknown-token");
    hreply_free(&r);
    free(token);
}

/* keeld A sends an attempt and dies before the receiver answers; keeld B takes it over and
 * sends it again with a new token. Both tokens are valid while the attempt is in flight: the
 * receiver completes with the first one, through B, and the second is then over. */
static void test_resend_after_takeover_new_token(void **state)
{
    (void)state;
    define("{\"name\": \"tok-takeover\", \"steps\": [{\"id\": \"work\", \"activity\": {\"url\": "
           "\"%R/async-late/1500\"}, \"timeout\": \"3s\"}], \"output\": "
           "\"${steps.work.output}\"}");
    struct proc a;
    keeld_start(&a, db, env, NULL);
    http_post_expect(a.base_url, "/v1/workflows/tok-takeover/executions",
                     "{\"id\": \"takeover-1\"}", 201, NULL);
    char *first = receiver_task_token(&receiver, "takeover-1/work", 0);
    proc_kill9(&a);
    /* The lease runs out (3 s + 300 ms) and the main keeld sends the attempt again. */
    char *second = receiver_task_token(&receiver, "takeover-1/work", 1);
    assert_string_not_equal(first, second);
    assert_sql_long(1,
                    "SELECT count(*) FROM events WHERE execution_id = '%s' AND type = "
                    "'attempt_started' AND (data->>'redelivery')::bool",
                    "takeover-1");
    assert_sql_long(2, "SELECT count(*) FROM attempt_tokens WHERE execution_id = '%s'",
                    "takeover-1");
    char path[256];
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", first);
    http_post_expect(keeld.base_url, path, "{\"output\": \"first\"}", 202, NULL);
    json_t *done = wait_result(keeld.base_url, "takeover-1");
    assert_completed(done);
    assert_string_equal(json_string_value(json_object_get(done, "output")), "first");
    json_decref(done);
    struct hreply r;
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", second);
    http_post_expect(keeld.base_url, path, "{\"output\": \"second\"}", 409, &r);
    assert_problem(&r, 409, "attempt-over");
    hreply_free(&r);
    free(first);
    free(second);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens_stored_hashed),
        cmocka_unit_test(test_token_then_200),
        cmocka_unit_test(test_resend_after_takeover_new_token),
        cmocka_unit_test(test_burst_one_keeld),
        cmocka_unit_test(test_burst_two_keelds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
