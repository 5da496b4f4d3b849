/* Cancel, terminate, redrive, sagas and asynchronous activities against a real keeld, receiver
 * and PostgreSQL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *db;
static struct proc keeld, receiver;
static const char *const env[] = {"KEEL_LEASE_GRACE_MS=300", NULL};

static int setup(void **state)
{
    (void)state;
    stack_start("keel_it_control", env, &db, &keeld, &receiver);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stack_stop(&db, &keeld, &receiver);
    return 0;
}

__attribute__((format(printf, 3, 4))) static void post(long want, struct hreply *out,
                                                       const char *path_fmt, ...);

static void post_body(const char *path, const char *body, long want, struct hreply *out)
{
    struct hreply r;
    http_post_json(keeld.base_url, path, body, &r);
    if (r.status != want)
        fail_msg("POST %s: want %ld, got %ld %s", path, want, r.status, r.body);
    if (out)
        *out = r;
    else
        hreply_free(&r);
}

static void post(long want, struct hreply *out, const char *path_fmt, ...)
{
    char path[512];
    va_list ap;
    va_start(ap, path_fmt);
    vsnprintf(path, sizeof path, path_fmt, ap);
    va_end(ap);
    post_body(path, NULL, want, out);
}

/* Registers a definition whose "%R" placeholders become the receiver's base URL. */
static void define(const char *json)
{
    char *text = harness_subst_r(json, receiver.base_url);
    post_body("/v1/workflows", text, 201, NULL);
    free(text);
}

static void start(const char *workflow, const char *id)
{
    char path[256], body[256];
    snprintf(path, sizeof path, "/v1/workflows/%s/executions", workflow);
    snprintf(body, sizeof body, "{\"id\": \"%s\", \"input\": {\"order\": \"%s\"}}", id, id);
    post_body(path, body, 201, NULL);
}

static void assert_value(const char *want, const char *got)
{
    if (!got || strcmp(want, got) != 0)
        fail_msg("want \"%s\", got \"%s\"", want, got ? got : "(null)");
}

/* Waits until a step of the execution has the status. */
static void wait_step(const char *id, const char *step, const char *status)
{
    for (int i = 0; i < 500; i++) {
        char *v =
            harness_sqlf(db,
                         "SELECT 1 FROM steps WHERE execution_id = '%s' AND step_id = '%s' AND "
                         "status = '%s'",
                         id, step, status);
        if (v) {
            free(v);
            return;
        }
        usleep(20000);
    }
    fail_msg("step %s of %s never became %s", step, id, status);
}

static json_int_t key_field(const char *key, const char *field)
{
    char q[256];
    snprintf(q, sizeof q, "?key=%s", key);
    json_t *stats = receiver_stats(&receiver, q);
    json_int_t v = json_integer_value(
        json_object_get(json_object_get(json_object_get(stats, "keys"), key), field));
    json_decref(stats);
    return v;
}

static const char *saga_def =
    "{\"name\": \"saga\", \"defaults\": {\"retry\": {\"initial_interval\": \"20ms\"}},"
    " \"steps\": ["
    "{\"id\": \"reserve\", \"activity\": {\"url\": \"%R/ok\"}, \"compensate\": {\"url\": "
    "\"%R/slow/400\", \"timeout\": \"2s\", \"input\": {\"undo\": "
    "\"${steps.reserve.output.key}\"}}},"
    "{\"id\": \"charge\", \"activity\": {\"url\": \"%R/ok\"}, \"compensate\": {\"url\": "
    "\"%R/flaky/1\", \"input\": {\"refund\": \"${steps.charge.output.key}\"}}},"
    "{\"id\": \"ship\", \"activity\": {\"url\": \"%R/problem/OutOfStock?non_retryable=1\"}},"
    "{\"id\": \"notify\", \"activity\": {\"url\": \"%R/ok\"}}]}";

static void test_saga_compensates_in_reverse_once(void **state)
{
    (void)state;
    define(saga_def);
    start("saga", "saga-1");
    json_t *done = wait_result(keeld.base_url, "saga-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "failed");
    json_t *err = json_object_get(done, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "OutOfStock");
    assert_string_equal(json_string_value(json_object_get(err, "step")), "ship");
    json_decref(done);
    /* compensation_started is journaled per attempt: the refund needed two. */
    char *order =
        harness_sqlf(db, "SELECT string_agg(type || ':' || step || ':' || attempt, ',' ORDER BY "
                         "seq) FROM events WHERE execution_id = 'saga-1' AND type LIKE "
                         "'compensation_%%'");
    assert_value("compensation_started:charge:1,compensation_started:charge:2,"
               "compensation_completed:charge:2,compensation_started:reserve:1,"
               "compensation_completed:reserve:1",
               order);
    free(order);
    char *statuses =
        harness_sqlf(db, "SELECT string_agg(step_id || '=' || status, ',' ORDER BY position) "
                         "FROM steps WHERE execution_id = 'saga-1'");
    assert_value("reserve=compensated,charge=compensated,ship=failed,notify=skipped", statuses);
    free(statuses);
    /* The refund failed once (flaky) and was retried; each compensation applied exactly once. */
    assert_int_equal(key_field("saga-1/charge/compensate", "deliveries"), 2);
    assert_int_equal(key_field("saga-1/charge/compensate", "applied"), 1);
    assert_int_equal(key_field("saga-1/reserve/compensate", "applied"), 1);
    char *retried =
        harness_sqlf(db, "SELECT count(*) FROM events WHERE execution_id = 'saga-1' AND type = "
                         "'attempt_failed' AND step = 'charge' AND data->>'compensation' = 'true'");
    assert_value("1", retried);
    free(retried);
}

static void test_saga_survives_kill9_during_compensation(void **state)
{
    (void)state;
    start("saga", "saga-2");
    /* The reserve compensation takes 400 ms: kill keeld while it is on the wire. */
    char *started = NULL;
    for (int i = 0; i < 500 && !started; i++) {
        started = harness_sqlf(db, "SELECT 1 FROM events WHERE execution_id = 'saga-2' AND type = "
                                   "'compensation_started' AND step = 'reserve'");
        if (!started)
            usleep(10000);
    }
    assert_non_null(started);
    free(started);
    proc_kill9(&keeld);
    keeld_start(&keeld, db, env, NULL);
    json_t *done = wait_result(keeld.base_url, "saga-2");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "failed");
    json_decref(done);
    char *n =
        harness_sqlf(db, "SELECT count(*) FROM events WHERE execution_id = 'saga-2' AND type = "
                         "'compensation_completed'");
    assert_value("2", n);
    free(n);
    assert_int_equal(key_field("saga-2/reserve/compensate", "applied"), 1);
    assert_int_equal(key_field("saga-2/charge/compensate", "applied"), 1);
}

/* A compensation that fails for good: the saga goes on with the others, and the execution ends
 * failed with both the step's error and the compensation's. */
static void test_compensation_failing_for_good(void **state)
{
    (void)state;
    define("{\"name\": \"brokensaga\", \"steps\": ["
           "{\"id\": \"a\", \"activity\": {\"url\": \"%R/ok\"}, \"compensate\": {\"url\": "
           "\"%R/ok\"}},"
           "{\"id\": \"b\", \"activity\": {\"url\": \"%R/ok\"}, \"compensate\": {\"url\": "
           "\"%R/gone\"}},"
           "{\"id\": \"c\", \"activity\": {\"url\": \"%R/problem/Declined?non_retryable=1\"}}]}");
    start("brokensaga", "broken-1");
    json_t *done = wait_result(keeld.base_url, "broken-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "failed");
    json_t *err = json_object_get(done, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "Declined");
    assert_string_equal(json_string_value(json_object_get(err, "step")), "c");
    json_t *comp = json_object_get(err, "compensation_errors");
    assert_int_equal(json_array_size(comp), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(comp, 0), "step")), "b");
    json_decref(done);
    char *order =
        harness_sqlf(db, "SELECT string_agg(type || ':' || step, ',' ORDER BY seq) FROM events "
                         "WHERE execution_id = 'broken-1' AND type IN ('compensation_failed', "
                         "'compensation_completed')");
    assert_value("compensation_failed:b,compensation_completed:a", order);
    free(order);
    char *st = harness_sqlf(
        db, "SELECT string_agg(step_id || '=' || status, ',' ORDER BY position) FROM steps "
            "WHERE execution_id = 'broken-1'");
    assert_value("a=compensated,b=completed,c=failed", st);
    free(st);
}

static void test_cancel_during_activity_and_sleep(void **state)
{
    (void)state;
    define("{\"name\": \"cancellable\", \"steps\": ["
           "{\"id\": \"book\", \"activity\": {\"url\": \"%R/slow/600\"}, \"compensate\": "
           "{\"url\": \"%R/ok\"}},"
           "{\"id\": \"nap\", \"sleep\": \"1h\"}]}");
    /* During the activity: the attempt finishes, its result is journaled, then it is undone. */
    start("cancellable", "cancel-1");
    wait_step("cancel-1", "book", "running");
    struct hreply r;
    post(202, &r, "/v1/executions/%s/cancel", "cancel-1");
    hreply_free(&r);
    post(409, &r, "/v1/executions/%s/cancel", "cancel-1");
    assert_problem(&r, 409, "already-cancelling");
    hreply_free(&r);
    json_t *done = wait_result(keeld.base_url, "cancel-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "cancelled");
    json_decref(done);
    char *types =
        harness_sqlf(db, "SELECT string_agg(type, ',' ORDER BY seq) FROM events WHERE execution_id "
                         "= 'cancel-1' AND seq > (SELECT seq FROM events WHERE execution_id = "
                         "'cancel-1' AND type = 'cancel_requested')");
    assert_non_null(strstr(types, "step_completed"));
    assert_non_null(strstr(types, "compensation_completed"));
    assert_non_null(strstr(types, "execution_cancelled"));
    free(types);

    /* During a sleep: stops at once. */
    start("cancellable", "cancel-2");
    wait_step("cancel-2", "nap", "sleeping");
    post_body("/v1/executions/cancel-2/cancel", "{\"reason\": \"customer asked\"}", 202, NULL);
    done = wait_result(keeld.base_url, "cancel-2");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "cancelled");
    json_decref(done);
    char *st =
        harness_sqlf(db, "SELECT status FROM steps WHERE execution_id = 'cancel-2' AND step_id = "
                         "'nap'");
    assert_value("skipped", st);
    free(st);
    char *left = harness_sqlf(db, "SELECT count(*) FROM tasks WHERE execution_id = 'cancel-2'");
    assert_value("0", left);
    free(left);
    post(409, &r, "/v1/executions/%s/cancel", "cancel-2");
    assert_problem(&r, 409, "execution-ended");
    hreply_free(&r);
    post(404, NULL, "/v1/executions/%s/cancel", "nobody");
    post_body("/v1/executions/cancel-2/cancel", "{\"why\": 1}", 422, NULL);
}

static void test_terminate_ignores_late_results(void **state)
{
    (void)state;
    define("{\"name\": \"terminable\", \"steps\": [{\"id\": \"slow\", \"activity\": {\"url\": "
           "\"%R/slow/500\"}, \"compensate\": {\"url\": \"%R/ok\"}}]}");
    start("terminable", "term-1");
    wait_step("term-1", "slow", "running");
    post(202, NULL, "/v1/executions/%s/terminate", "term-1");
    json_t *done = wait_result(keeld.base_url, "term-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "terminated");
    json_decref(done);
    /* The webhook answers after the end: kept in the history, never applied. */
    char *ignored = NULL;
    for (int i = 0; i < 300 && !ignored; i++) {
        ignored =
            harness_sqlf(db, "SELECT type FROM events WHERE execution_id = 'term-1' AND type = "
                             "'result_ignored'");
        if (!ignored)
            usleep(20000);
    }
    assert_value("result_ignored", ignored);
    free(ignored);
    char *n =
        harness_sqlf(db, "SELECT count(*) FROM events WHERE execution_id = 'term-1' AND type IN "
                         "('step_completed', 'compensation_started')");
    assert_value("0", n);
    free(n);
    post(409, NULL, "/v1/executions/%s/terminate", "term-1");
}

static void test_retry_resumes_at_failed_step(void **state)
{
    (void)state;
    define("{\"name\": \"redrive\", \"steps\": ["
           "{\"id\": \"first\", \"activity\": {\"url\": \"%R/ok\"}},"
           "{\"id\": \"second\", \"activity\": {\"url\": \"%R/flaky/2\"}, \"retry\": "
           "{\"max_attempts\": 2, \"initial_interval\": \"10ms\"}}],"
           "\"output\": \"${steps.second.output.echo}\"}");
    start("redrive", "redrive-1");
    json_t *done = wait_result(keeld.base_url, "redrive-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "failed");
    json_decref(done);
    post(202, NULL, "/v1/executions/%s/retry", "redrive-1");
    done = wait_result(keeld.base_url, "redrive-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    assert_true(json_is_null(json_object_get(done, "error")));
    json_t *steps = json_object_get(done, "steps");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(steps, 1), "attempts")), 1);
    json_decref(done);
    /* The first step ran once; its result was kept. */
    assert_int_equal(key_field("redrive-1/first", "deliveries"), 1);
    char *n =
        harness_sqlf(db, "SELECT count(*) FROM events WHERE execution_id = 'redrive-1' AND type = "
                         "'execution_retried'");
    assert_value("1", n);
    free(n);
    struct hreply r;
    post(409, &r, "/v1/executions/%s/retry", "redrive-1");
    assert_problem(&r, 409, "not-failed");
    hreply_free(&r);
}

static const char *token_of(const char *key)
{
    static char token[256];
    token[0] = '\0';
    for (int i = 0; i < 500 && !token[0]; i++) {
        char q[256];
        snprintf(q, sizeof q, "?key=%s", key);
        json_t *stats = receiver_stats(&receiver, q);
        const char *t = json_string_value(
            json_object_get(json_object_get(json_object_get(stats, "keys"), key), "task_token"));
        if (t)
            snprintf(token, sizeof token, "%s", t);
        json_decref(stats);
        if (!token[0])
            usleep(20000);
    }
    if (!token[0])
        fail_msg("no task token for %s", key);
    return token;
}

static void test_async_completion_and_tokens(void **state)
{
    (void)state;
    define("{\"name\": \"async\", \"steps\": [{\"id\": \"review\", \"activity\": {\"url\": "
           "\"%R/async\"}, \"timeout\": \"1h\"}], \"output\": \"${steps.review.output}\"}");
    start("async", "async-1");
    char token[256];
    snprintf(token, sizeof token, "%s", token_of("async-1/review"));
    wait_step("async-1", "review", "running");
    char path[512];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", token);
    post_body(path, "{\"details\": {\"progress\": 0.5}}", 200, NULL);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", token);
    post_body(path, "{\"output\": {\"approved\": true}}", 202, NULL);
    json_t *done = wait_result(keeld.base_url, "async-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    assert_true(json_is_true(json_object_get(json_object_get(done, "output"), "approved")));
    json_decref(done);
    struct hreply r;
    post_body(path, "{\"output\": 2}", 409, &r); /* replayed */
    assert_problem(&r, 409, "token-used");
    hreply_free(&r);
    post_body("/v1/tasks/00000000000000000000000000000000/complete", "{}", 404, &r); /* forged */
    assert_problem(&r, 404, "unknown-token");
    hreply_free(&r);
    snprintf(path, sizeof path, "/v1/tasks/%s/fail", token);
    post_body(path, "{\"error\": {\"message\": \"no type\"}}", 422, NULL);
}

/* The receiver completes the attempt before it has even answered 202 (a fast background job):
 * the token is already valid, and the 202 that follows changes nothing. */
static void test_async_completed_before_accept(void **state)
{
    (void)state;
    define("{\"name\": \"eager\", \"steps\": [{\"id\": \"job\", \"activity\": {\"url\": "
           "\"%R/async-late/700\"}}, {\"id\": \"after\", \"activity\": {\"url\": \"%R/ok\"}}],"
           " \"output\": \"${steps.job.output}\"}");
    start("eager", "eager-1");
    char token[256];
    snprintf(token, sizeof token, "%s", token_of("eager-1/job"));
    char path[512];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", token);
    post_body(path, "{}", 200, NULL);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", token);
    post_body(path, "{\"output\": \"early\"}", 202, NULL);
    json_t *done = wait_result(keeld.base_url, "eager-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    assert_string_equal(json_string_value(json_object_get(done, "output")), "early");
    json_decref(done);
    post_body(path, "{\"output\": 2}", 409, NULL);
    /* The late 202 is not applied: the step completed once, with the early output. */
    usleep(900 * 1000);
    char *n =
        harness_sqlf(db, "SELECT count(*) FROM events WHERE execution_id = 'eager-1' AND type = "
                         "'step_completed' AND step = 'job'");
    assert_value("1", n);
    free(n);
}

static void test_async_heartbeat_timeout_retries(void **state)
{
    (void)state;
    define("{\"name\": \"hb\", \"steps\": [{\"id\": \"work\", \"activity\": {\"url\": "
           "\"%R/async\"}, \"timeout\": \"1h\", \"heartbeat_timeout\": \"300ms\", \"retry\": "
           "{\"initial_interval\": \"10ms\", \"max_attempts\": 3}}]}");
    start("hb", "hb-1");
    /* No heartbeat comes: attempt 1 times out and attempt 2 is sent. */
    for (int i = 0; i < 300; i++) {
        if (key_field("hb-1/work", "deliveries") >= 2)
            break;
        usleep(20000);
    }
    assert_true(key_field("hb-1/work", "deliveries") >= 2);
    char *t = harness_sqlf(
        db, "SELECT data->'error'->>'type' FROM events WHERE execution_id = 'hb-1' AND "
            "type = 'attempt_failed' AND attempt = 1");
    assert_value("heartbeat_timeout", t);
    free(t);
    /* The stale token of attempt 1 no longer completes anything. (Tokens are stored hashed:
     * take them from the receiver, in the order it got them.) */
    char *old = receiver_task_token(&receiver, "hb-1/work", 0);
    char path[256];
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", old);
    struct hreply r;
    post_body(path, "{\"output\": 1}", 409, &r);
    assert_problem(&r, 409, "attempt-over");
    hreply_free(&r);
    free(old);
    char *cur = receiver_task_token(&receiver, "hb-1/work", 1);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", cur);
    post_body(path, "{\"output\": 1}", 202, NULL);
    free(cur);
    json_t *done = wait_result(keeld.base_url, "hb-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_decref(done);
}

struct poller {
    char base[64];
    char path[128];
    long status;
};

static void *long_poll(void *arg)
{
    struct poller *p = arg;
    struct hreply r;
    if (http_do(p->base, "GET", p->path, NULL, NULL, 0, NULL, 30000, &r) == 0)
        p->status = r.status;
    hreply_free(&r);
    return NULL;
}

static size_t discard(char *ptr, size_t size, size_t n, void *user)
{
    (void)ptr;
    (void)user;
    return size * n;
}

/* Keeps asking for a long poll on one keep-alive connection until the daemon is gone. */
static void *keep_alive_poller(void *arg)
{
    struct poller *p = arg;
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s%s", p->base, p->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    for (int i = 0; i < 2000 && curl_easy_perform(c) == CURLE_OK; i++)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &p->status);
    curl_easy_cleanup(c);
    return NULL;
}

/* SIGTERM while long polls are suspended and requests keep coming on open connections: keeld
 * answers the polls (202), refuses new work with 503, and exits 0 (libmicrohttpd aborts the
 * process if stopped with a suspended connection). */
static void test_sigterm_with_long_polls(void **state)
{
    (void)state;
    struct proc k;
    keeld_start(&k, db, env, NULL);
    define("{\"name\": \"lingering\", \"steps\": [{\"id\": \"w\", \"wait\": {\"signal\": "
           "\"never\"}}]}");
    enum { N = 12 };
    pthread_t t[N];
    struct poller p[N];
    for (int i = 0; i < N; i++) {
        char id[32], path[128], body[64];
        snprintf(id, sizeof id, "linger-%d", i);
        snprintf(path, sizeof path, "/v1/workflows/lingering/executions");
        snprintf(body, sizeof body, "{\"id\": \"%s\"}", id);
        struct hreply r;
        http_post_json(k.base_url, path, body, &r);
        assert_int_equal(r.status, 201);
        hreply_free(&r);
        snprintf(p[i].base, sizeof p[i].base, "%s", k.base_url);
        snprintf(p[i].path, sizeof p[i].path, "/v1/executions/%s/result?wait=30", id);
        p[i].status = 0;
        pthread_create(&t[i], NULL, long_poll, &p[i]);
    }
    struct poller again = {.status = 0};
    snprintf(again.base, sizeof again.base, "%s", k.base_url);
    snprintf(again.path, sizeof again.path, "/v1/executions/linger-0/result?wait=1");
    pthread_t again_thread;
    pthread_create(&again_thread, NULL, keep_alive_poller, &again);
    usleep(300 * 1000);
    proc_signal(&k, SIGTERM);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(p[i].status, 202);
    }
    pthread_join(again_thread, NULL);
    assert_true(again.status == 202 || again.status == 503);
    assert_int_equal(proc_wait(&k, 20000), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_saga_compensates_in_reverse_once),
        cmocka_unit_test(test_saga_survives_kill9_during_compensation),
        cmocka_unit_test(test_compensation_failing_for_good),
        cmocka_unit_test(test_cancel_during_activity_and_sleep),
        cmocka_unit_test(test_terminate_ignores_late_results),
        cmocka_unit_test(test_retry_resumes_at_failed_step),
        cmocka_unit_test(test_async_completion_and_tokens),
        cmocka_unit_test(test_async_completed_before_accept),
        cmocka_unit_test(test_async_heartbeat_timeout_retries),
        cmocka_unit_test(test_sigterm_with_long_polls),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
