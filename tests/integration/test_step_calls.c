/* Step calls (issue 10) against a real keeld and PostgreSQL: output, sleep, sleep_until and wait
 * steps by key; a replay answered from the row with no write (the rows' xmin and the event
 * count do not move); another request for a journaled key marked once; conflicts, bad input
 * and unknown executions refused with nothing journaled; cancel, retry and the end of the
 * execution as the contract says; concurrent first calls of the same keys sharing one step; a
 * sleep that outlives a kill -9 of keeld. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const *env(void)
{
    static const char *e[] = {"KEEL_LEASE_GRACE_MS=300", NULL};
    return e;
}

static struct hreply post(const struct proc *k, const char *path, const char *body, long want)
{
    return http_post_want(k->base_url, path, body, want);
}

static const char *str(const json_t *o, const char *key)
{
    return json_str(o, key);
}

static bool has_header(const struct hreply *r, const char *name, const char *value)
{
    char v[64];
    return hreply_header(r, name, v, sizeof v) && !strcmp(v, value);
}

/* The count of events and the row versions of the execution and its steps: what a write
 * would change. */
static char *footprint(const char *db, const char *id)
{
    return harness_sqlf(db,
                        "SELECT (SELECT count(*) FROM events WHERE execution_id = '%s') || ':' || "
                        "(SELECT xmin FROM executions WHERE id = '%s') || ':' || (SELECT "
                        "string_agg(xmin::text, ',' ORDER BY path) FROM steps WHERE "
                        "execution_id = '%s')",
                        id, id, id);
}

static void expect(const struct proc *k, const char *path, const char *body, long want)
{
    struct hreply r = post(k, path, body, want);
    hreply_free(&r);
}

struct poll {
    const struct proc *k;
    const char *path, *body;
    long want;
};

static bool answered(void *arg)
{
    struct poll *p = arg;
    struct hreply r;
    http_post_json(p->k->base_url, p->path, p->body, &r);
    bool ok = r.status == p->want;
    hreply_free(&r);
    return ok;
}

/* Calls until the answer is want (a pending step ends), within timeout_ms. */
static void call_until(const struct proc *k, const char *path, const char *body, long want,
                       int timeout_ms)
{
    struct poll p = {k, path, body, want};
    if (!wait_for(answered, &p, timeout_ms))
        fail_msg("POST %s %s never answered %ld", path, body, want);
}

static void test_kinds_and_replays(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_steps_kinds");
    struct proc k;
    keeld_start(&k, db, env(), NULL);
    struct hreply r =
        post(&k, "/v1/executions", "{\"id\": \"o-1\", \"name\": \"order\", \"input\": 1}", 201);
    hreply_free(&r);

    /* An output is journaled at once, as sent: "${...}" is data. */
    const char *charge = "{\"output\": {\"id\": \"ch_1\", \"note\": \"${input}\"}}";
    r = post(&k, "/v1/executions/o-1/steps/charge", charge, 200);
    assert_false(has_header(&r, "Keel-Replayed", "true"));
    assert_string_equal(str(json_object_get(r.json, "output"), "note"), "${input}");
    assert_string_equal(str(r.json, "kind"), "output");
    assert_string_equal(str(r.json, "status"), "completed");
    assert_string_equal(str(r.json, "key"), "charge");
    hreply_free(&r);
    /* A replay is answered from the row and writes nothing. */
    char *before = footprint(db, "o-1");
    r = post(&k, "/v1/executions/o-1/steps/charge", charge, 200);
    assert_true(has_header(&r, "Keel-Replayed", "true"));
    assert_false(has_header(&r, "Keel-Request-Differs", "true"));
    hreply_free(&r);
    char *after = footprint(db, "o-1");
    assert_string_equal(before, after);
    free(after);
    /* Another value: the journaled one comes back, marked; the history says so once. */
    r = post(&k, "/v1/executions/o-1/steps/charge", "{\"output\": 2}", 200);
    assert_true(has_header(&r, "Keel-Request-Differs", "true"));
    assert_true(has_header(&r, "Keel-Replayed", "true"));
    assert_string_equal(str(json_object_get(r.json, "output"), "id"), "ch_1");
    hreply_free(&r);
    free(before);
    before = footprint(db, "o-1");
    r = post(&k, "/v1/executions/o-1/steps/charge", "{\"output\": 3}", 200);
    assert_true(has_header(&r, "Keel-Request-Differs", "true"));
    hreply_free(&r);
    after = footprint(db, "o-1");
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_sql(db, "1",
               "SELECT count(*) FROM events WHERE execution_id = 'o-1' AND type = "
               "'request_differs'");
    /* Another kind for the key is a program bug. */
    r = post(&k, "/v1/executions/o-1/steps/charge", "{\"sleep\": \"1s\"}", 409);
    assert_problem(&r, 409, "key-conflict");
    hreply_free(&r);

    /* A sleep is pending (202, or 503 for curl --retry), then completes. */
    r = post(&k, "/v1/executions/o-1/steps/nap", "{\"sleep\": \"1s\"}", 202);
    assert_string_equal(str(r.json, "status"), "sleeping");
    assert_non_null(str(r.json, "due_at"));
    char retry_after[16];
    assert_true(hreply_header(&r, "Retry-After", retry_after, sizeof retry_after));
    hreply_free(&r);
    r = post(&k, "/v1/executions/o-1/steps/nap?pending=503", "{\"sleep\": \"1s\"}", 503);
    assert_problem(&r, 503, "step-pending");
    hreply_free(&r);
    call_until(&k, "/v1/executions/o-1/steps/nap", "{\"sleep\": \"1s\"}", 200, 20000);

    /* sleep_until a time already past completes at its timer. */
    call_until(&k, "/v1/executions/o-1/steps/past", "{\"sleep_until\": \"2020-01-01T00:00:00Z\"}",
               200, 20000);

    /* A signal sent before its wait is kept for it; one sent during the wait ends it. */
    http_post_expect(k.base_url, "/v1/executions/o-1/signals/early", "{\"n\": 1}", 202, NULL);
    call_until(&k, "/v1/executions/o-1/steps/w-early", "{\"wait\": {\"signal\": \"early\"}}", 200,
               20000);
    r = post(&k, "/v1/executions/o-1/steps/approval",
             "{\"wait\": {\"signal\": \"approve\", \"timeout\": \"1h\"}}", 202);
    assert_string_equal(str(r.json, "status"), "waiting");
    /* A signal may come at any moment: call again in a second. */
    assert_true(has_header(&r, "Retry-After", "1"));
    hreply_free(&r);
    http_post_expect(k.base_url, "/v1/executions/o-1/signals/approve", "{\"by\": \"ann\"}", 202,
                     NULL);
    r = post(&k, "/v1/executions/o-1/steps/approval",
             "{\"wait\": {\"signal\": \"approve\", \"timeout\": \"1h\"}}", 200);
    assert_string_equal(str(json_object_get(r.json, "output"), "by"), "ann");
    hreply_free(&r);

    /* A wait that times out fails for good: 424 with its error. */
    const char *short_wait = "{\"wait\": {\"signal\": \"never\", \"timeout\": \"1s\"}}";
    call_until(&k, "/v1/executions/o-1/steps/deadline", short_wait, 424, 20000);
    r = post(&k, "/v1/executions/o-1/steps/deadline", short_wait, 424);
    assert_problem(&r, 424, "step-failed");
    assert_string_equal(str(json_object_get(r.json, "error"), "type"), "timeout");
    hreply_free(&r);

    /* GET of one key; the execution lists its keys in first-call order. */
    struct hreply g;
    http_get(k.base_url, "/v1/executions/o-1/steps/nap", &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(str(g.json, "status"), "completed");
    assert_int_equal(json_integer_value(json_object_get(g.json, "position")), 1);
    hreply_free(&g);
    http_get(k.base_url, "/v1/executions/o-1/steps/none", &g);
    assert_problem(&g, 404, "not-found");
    hreply_free(&g);
    http_get(k.base_url, "/v1/executions/o-1", &g);
    json_t *steps = json_object_get(g.json, "steps");
    assert_int_equal(json_array_size(steps), 6);
    assert_string_equal(str(json_array_get(steps, 0), "id"), "charge");
    assert_string_equal(str(json_array_get(steps, 5), "id"), "deadline");
    hreply_free(&g);
    assert_sql(db, "charge,nap,past,w-early,approval,deadline",
               "SELECT string_agg(path, ',' ORDER BY position) FROM steps WHERE execution_id = "
               "'o-1' AND parent_path = ''");

    /* The program completes it; later calls are refused. */
    r = post(&k, "/v1/executions/o-1/complete", "{\"output\": \"shipped\"}", 200);
    hreply_free(&r);
    r = post(&k, "/v1/executions/o-1/steps/more", "{\"output\": 1}", 409);
    assert_problem(&r, 409, "execution-ended");
    hreply_free(&r);
    /* A journaled key still answers after the end. */
    r = post(&k, "/v1/executions/o-1/steps/charge", charge, 200);
    hreply_free(&r);
    keeld_stop(&k);
    free(db);
}

static void test_bad_calls(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_steps_bad");
    struct proc k;
    keeld_start(&k, db, env(), NULL);
    struct hreply r = post(&k, "/v1/executions", "{\"id\": \"b-1\"}", 201);
    hreply_free(&r);
    http_post_expect(k.base_url, "/v1/workflows",
                     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"sleep\": \"1h\"}]}", 201,
                     NULL);
    http_post_expect(k.base_url, "/v1/workflows/w/executions", "{\"id\": \"w-1\"}", 201, NULL);
    char *before = footprint(db, "b-1");
    static const struct {
        const char *path, *body;
        long status;
        const char *slug, *pointer;
    } cases[] = {
        {"/v1/executions/b-1/steps/a", "{}", 422, "validation", ""},
        {"/v1/executions/b-1/steps/a", "[1]", 422, "validation", ""},
        {"/v1/executions/b-1/steps/a", "{\"output\": 1, \"sleep\": \"1s\"}", 422, "validation", ""},
        {"/v1/executions/b-1/steps/a", "{\"sleep\": \"soon\"}", 422, "validation", "/sleep"},
        {"/v1/executions/b-1/steps/a", "{\"wait\": {\"signal\": \"a b\"}}", 422, "validation",
         "/wait/signal"},
        {"/v1/executions/b-1/steps/a", "{\"activity\": {\"url\": \"ftp://x\"}}", 422, "validation",
         "/activity/url"},
        {"/v1/executions/b-1/steps/a", "{\"output\": 1, \"retry\": 2}", 422, "validation",
         "/retry"},
        {"/v1/executions/b-1/steps/a*b", "{\"output\": 1}", 400, "invalid-parameter", NULL},
        {"/v1/executions/b-1/steps/a?pending=502", "{\"output\": 1}", 400, "invalid-parameter",
         NULL},
        {"/v1/executions/b-1/steps/a?wiat=5", "{\"output\": 1}", 400, "invalid-parameter", NULL},
        {"/v1/executions/nope/steps/a", "{\"output\": 1}", 404, "not-found", NULL},
        {"/v1/executions/w-1/steps/a", "{\"output\": 1}", 409, "not-a-code-execution", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hreply x;
        http_post_json(k.base_url, cases[i].path, cases[i].body, &x);
        if (x.status != cases[i].status)
            fail_msg("%s %s: got %ld: %s", cases[i].path, cases[i].body, x.status, x.body);
        assert_problem(&x, cases[i].status, cases[i].slug);
        if (cases[i].pointer) {
            json_t *errors = json_object_get(x.json, "errors");
            bool found = false;
            size_t n;
            json_t *e;
            json_array_foreach(errors, n, e)
            {
                found = found || !strcmp(str(e, "pointer"), cases[i].pointer);
            }
            if (!found)
                fail_msg("%s %s: no error at \"%s\": %s", cases[i].path, cases[i].body,
                         cases[i].pointer, x.body);
        }
        hreply_free(&x);
    }
    char *after = footprint(db, "b-1");
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_sql(db, "0", "SELECT count(*) FROM steps WHERE execution_id = 'b-1' AND path <> ''");
    keeld_stop(&k);
    free(db);
}

static void test_cancel_and_retry(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_steps_cancel");
    struct proc k;
    keeld_start(&k, db, env(), NULL);
    struct hreply r = post(&k, "/v1/executions", "{\"id\": \"c-1\"}", 201);
    hreply_free(&r);
    expect(&k, "/v1/executions/c-1/steps/one", "{\"output\": 1}", 200);
    expect(&k, "/v1/executions/c-1/steps/two", "{\"output\": 2}", 200);
    r = post(&k, "/v1/executions/c-1/steps/w", "{\"wait\": {\"signal\": \"go\"}}", 202);
    hreply_free(&r);
    r = post(&k, "/v1/executions/c-1/cancel", "{}", 202);
    hreply_free(&r);
    /* The wait stopped; a new key is refused with the keys to undo, last completed first. */
    r = post(&k, "/v1/executions/c-1/steps/w", "{\"wait\": {\"signal\": \"go\"}}", 409);
    assert_problem(&r, 409, "step-stopped");
    hreply_free(&r);
    r = post(&k, "/v1/executions/c-1/steps/three", "{\"output\": 3}", 409);
    assert_problem(&r, 409, "cancel-requested");
    json_t *done = json_object_get(r.json, "completed_keys");
    assert_int_equal(json_array_size(done), 2);
    assert_string_equal(json_string_value(json_array_get(done, 0)), "two");
    assert_string_equal(json_string_value(json_array_get(done, 1)), "one");
    hreply_free(&r);
    r = post(&k, "/v1/executions/c-1/fail", "{\"error\": {\"type\": \"Cancelled\"}}", 200);
    assert_string_equal(str(r.json, "status"), "cancelled");
    hreply_free(&r);

    keeld_stop(&k);
    free(db);
}

/* A cancel runs the compensations of the completed steps, last completed first, once the
 * program ends the execution (complete here; fail alike; the 5-minute deadline when it never
 * comes back is tested in the engine's unit tests), which ends cancelled. */
static void test_cancel_compensates(void **state)
{
    (void)state;
    char *db;
    struct proc k, rcv;
    stack_start("keel_it_steps_cancel_comp", env(), &db, &k, &rcv);
    struct hreply r = post(&k, "/v1/executions", "{\"id\": \"cc-1\"}", 201);
    hreply_free(&r);
    for (int i = 1; i <= 2; i++) {
        char path[64], body[256];
        snprintf(path, sizeof path, "/v1/executions/cc-1/steps/a%d", i);
        snprintf(body, sizeof body,
                 "{\"activity\": {\"url\": \"%s/ok\"}, \"compensate\": {\"url\": \"%s/ok\"}}",
                 rcv.base_url, rcv.base_url);
        call_until(&k, path, body, 200, 20000);
    }
    r = post(&k, "/v1/executions/cc-1/cancel", "{}", 202);
    hreply_free(&r);
    r = post(&k, "/v1/executions/cc-1/complete", "{}", 202);
    hreply_free(&r);
    json_t *done = wait_result(k.base_url, "cc-1");
    assert_string_equal(str(done, "status"), "cancelled");
    json_decref(done);
    assert_sql(db, "a2,a1",
               "SELECT string_agg(path, ',' ORDER BY seq) FROM events WHERE execution_id = "
               "'cc-1' AND type = 'compensation_completed'");
    assert_key_counts(&rcv, "cc-1/a1/compensate", 1, 1);
    assert_key_counts(&rcv, "cc-1/a2/compensate", 1, 1);
    stack_stop(&db, &k, &rcv);
}

static void test_retry_runs_failed_keys(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_steps_retry");
    struct proc k;
    keeld_start(&k, db, env(), NULL);
    struct hreply r;
    /* A failed key runs again after a retry; completed keys replay. */
    r = post(&k, "/v1/executions", "{\"id\": \"c-2\"}", 201);
    hreply_free(&r);
    expect(&k, "/v1/executions/c-2/steps/paid", "{\"output\": 1}", 200);
    const char *ok_wait = "{\"wait\": {\"signal\": \"ok\", \"timeout\": \"1s\"}}";
    call_until(&k, "/v1/executions/c-2/steps/ok", ok_wait, 424, 20000);
    r = post(&k, "/v1/executions/c-2/fail", "{\"error\": {\"type\": \"NotOk\"}}", 200);
    assert_string_equal(str(r.json, "status"), "failed");
    hreply_free(&r);
    r = post(&k, "/v1/executions/c-2/retry", "{}", 202);
    hreply_free(&r);
    r = post(&k, "/v1/executions/c-2/steps/paid", "{\"output\": 1}", 200);
    assert_true(has_header(&r, "Keel-Replayed", "true"));
    hreply_free(&r);
    r = post(&k, "/v1/executions/c-2/steps/ok", ok_wait, 202);
    assert_string_equal(str(r.json, "status"), "waiting");
    hreply_free(&r);
    http_post_expect(k.base_url, "/v1/executions/c-2/signals/ok", "true", 202, NULL);
    r = post(&k, "/v1/executions/c-2/steps/ok", ok_wait, 200);
    hreply_free(&r);
    assert_sql(db, "2",
               "SELECT count(*) FROM events WHERE execution_id = 'c-2' AND type = "
               "'step_scheduled' AND path = 'ok'");
    keeld_stop(&k);
    free(db);
}

struct racer {
    const struct proc *k;
    const char *receiver;
    int failures;
};

/* Calls keys r0..r19 of execution race-1 once each, in order, every third an activity (held
 * until it answered); another thread does the same. */
static void *race(void *arg)
{
    struct racer *x = arg;
    for (int i = 0; i < 20; i++) {
        char path[64], body[256];
        snprintf(path, sizeof path, "/v1/executions/race-1/steps/r%d", i);
        if (i % 3 == 0)
            snprintf(body, sizeof body, "{\"activity\": {\"url\": \"%s/ok\", \"input\": %d}}",
                     x->receiver, i);
        else
            snprintf(body, sizeof body, "{\"output\": %d}", i);
        struct hreply r;
        const char *headers[] = {"Prefer: wait=30", NULL};
        if (http_do(x->k->base_url, "POST", path, "application/json", body, strlen(body), headers,
                    60000, &r) != 0 ||
            r.status != 200)
            x->failures++;
        hreply_free(&r);
    }
    return NULL;
}

/* Two copies of a program racing on one execution share each step. */
static void test_concurrent_first_calls(void **state)
{
    (void)state;
    char *db;
    struct proc k, rcv;
    stack_start("keel_it_steps_race", env(), &db, &k, &rcv);
    struct hreply r = post(&k, "/v1/executions", "{\"id\": \"race-1\"}", 201);
    hreply_free(&r);
    struct racer a = {&k, rcv.base_url, 0}, b = {&k, rcv.base_url, 0};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, race, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, race, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.failures + b.failures, 0);
    assert_sql(db, "20",
               "SELECT count(*) FROM events WHERE execution_id = 'race-1' AND type = "
               "'step_scheduled'");
    assert_sql(db, "20", "SELECT count(*) FROM steps WHERE execution_id = 'race-1' AND path <> ''");
    /* One delivery per activity step, whichever copy asked first. */
    for (int i = 0; i < 20; i += 3) {
        char key[64];
        snprintf(key, sizeof key, "race-1/r%d", i);
        assert_key_counts(&rcv, key, 1, 1);
    }
    stack_stop(&db, &k, &rcv);
}

/* A sleep journaled before a kill -9 of keeld ends on time after the restart, once. */
static void test_sleep_outlives_kill(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_steps_kill");
    struct proc k;
    keeld_start(&k, db, env(), NULL);
    struct hreply r = post(&k, "/v1/executions", "{\"id\": \"s-1\"}", 201);
    hreply_free(&r);
    r = post(&k, "/v1/executions/s-1/steps/nap", "{\"sleep\": \"2s\"}", 202);
    hreply_free(&r);
    proc_kill9(&k);
    keeld_start(&k, db, env(), NULL);
    r = post(&k, "/v1/executions/s-1/steps/nap", "{\"sleep\": \"2s\"}", 202);
    assert_true(has_header(&r, "Keel-Replayed", "true"));
    hreply_free(&r);
    call_until(&k, "/v1/executions/s-1/steps/nap", "{\"sleep\": \"2s\"}", 200, 30000);
    assert_sql(db, "1",
               "SELECT count(*) FROM events WHERE execution_id = 's-1' AND type = 'timer_fired'");
    keeld_stop(&k);
    free(db);
}

/* Activity steps: the webhook is called with retries, once per attempt, keyed
 * <execution>/<key>; a step failing for good is 424; the program's fail runs the compensations
 * of the completed steps, last completed first. */
static void test_activities(void **state)
{
    (void)state;
    char *db;
    struct proc k, rcv;
    stack_start("keel_it_steps_activity", env(), &db, &k, &rcv);
    struct hreply r = post(&k, "/v1/executions", "{\"id\": \"a-1\", \"name\": \"shop\"}", 201);
    hreply_free(&r);
    char charge[512], flaky[512], broken[512], other[512];
    snprintf(charge, sizeof charge,
             "{\"activity\": {\"url\": \"%s/ok\", \"input\": {\"amount\": \"${5}\"}}, "
             "\"compensate\": {\"url\": \"%s/ok\", \"input\": \"refund\"}}",
             rcv.base_url, rcv.base_url);
    snprintf(flaky, sizeof flaky,
             "{\"activity\": {\"url\": \"%s/flaky/2\", \"retry\": {\"initial_interval\": "
             "\"100ms\"}}, \"compensate\": {\"url\": \"%s/ok\"}}",
             rcv.base_url, rcv.base_url);
    snprintf(broken, sizeof broken,
             "{\"activity\": {\"url\": \"%s/fail/500\", \"retry\": {\"max_attempts\": 2, "
             "\"initial_interval\": \"100ms\"}}}",
             rcv.base_url);
    snprintf(other, sizeof other, "{\"activity\": {\"url\": \"%s/flaky/1\"}}", rcv.base_url);

    r = post(&k, "/v1/executions/a-1/steps/charge", charge, 202);
    hreply_free(&r);
    call_until(&k, "/v1/executions/a-1/steps/charge", charge, 200, 20000);
    r = post(&k, "/v1/executions/a-1/steps/charge", charge, 200);
    json_t *out = json_object_get(r.json, "output");
    assert_string_equal(str(json_object_get(out, "echo"), "amount"), "${5}");
    assert_string_equal(str(out, "key"), "a-1/charge");
    assert_int_equal(json_integer_value(json_object_get(r.json, "attempts")), 1);
    hreply_free(&r);
    /* The same key with another URL is a program bug. */
    r = post(&k, "/v1/executions/a-1/steps/charge", other, 409);
    assert_problem(&r, 409, "key-conflict");
    hreply_free(&r);

    call_until(&k, "/v1/executions/a-1/steps/reserve", flaky, 200, 20000);
    r = post(&k, "/v1/executions/a-1/steps/reserve", flaky, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "attempts")), 3);
    hreply_free(&r);
    call_until(&k, "/v1/executions/a-1/steps/ship", broken, 424, 20000);
    r = post(&k, "/v1/executions/a-1/steps/ship", broken, 424);
    assert_problem(&r, 424, "step-failed");
    assert_string_equal(str(json_object_get(r.json, "error"), "type"), "test_error");
    hreply_free(&r);

    /* An asynchronous receiver (202) completes through its task token; a slow one times out. */
    char async[256], slow[256];
    snprintf(async, sizeof async, "{\"activity\": {\"url\": \"%s/async\"}}", rcv.base_url);
    snprintf(slow, sizeof slow,
             "{\"activity\": {\"url\": \"%s/slow/3000\", \"timeout\": \"300ms\", "
             "\"retry\": {\"max_attempts\": 1}}}",
             rcv.base_url);
    r = post(&k, "/v1/executions/a-1/steps/confirm", async, 202);
    hreply_free(&r);
    char *token = receiver_task_token(&rcv, "a-1/confirm", 0);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", token);
    http_post_expect(k.base_url, path, "{\"output\": {\"confirmed\": true}}", 202, NULL);
    free(token);
    r = post(&k, "/v1/executions/a-1/steps/confirm", async, 200);
    assert_true(json_is_true(json_object_get(json_object_get(r.json, "output"), "confirmed")));
    hreply_free(&r);
    call_until(&k, "/v1/executions/a-1/steps/slow", slow, 424, 20000);
    r = post(&k, "/v1/executions/a-1/steps/slow", slow, 424);
    assert_string_equal(str(json_object_get(r.json, "error"), "type"), "timeout");
    hreply_free(&r);

    /* The program gives up: reserve is undone, then charge; the execution ends failed. */
    r = post(&k, "/v1/executions/a-1/fail", "{\"error\": {\"type\": \"ShipFailed\"}}", 202);
    hreply_free(&r);
    json_t *done = wait_result(k.base_url, "a-1");
    assert_string_equal(str(done, "status"), "failed");
    assert_string_equal(str(json_object_get(done, "error"), "type"), "ShipFailed");
    json_decref(done);
    assert_sql(db, "reserve,charge",
               "SELECT string_agg(path, ',' ORDER BY seq) FROM events WHERE execution_id = 'a-1' "
               "AND type = 'compensation_completed'");
    assert_key_counts(&rcv, "a-1/charge", 1, 1);
    assert_key_counts(&rcv, "a-1/charge/compensate", 1, 1);
    assert_key_counts(&rcv, "a-1/reserve/compensate", 1, 1);
    assert_key_counts(&rcv, "a-1/ship", 0, 2);
    assert_sql(db, "compensated,compensated,failed,completed,failed",
               "SELECT string_agg(status, ',' ORDER BY position) FROM steps WHERE execution_id = "
               "'a-1' AND parent_path = ''");
    stack_stop(&db, &k, &rcv);
}

/* POSTs body with a Prefer header; returns the reply (caller frees). */
static struct hreply post_prefer(const struct proc *k, const char *path, const char *body,
                                 const char *prefer)
{
    struct hreply r;
    const char *headers[] = {prefer, NULL};
    if (http_do(k->base_url, "POST", path, "application/json", body, strlen(body), headers, 90000,
                &r) != 0)
        r.status = 0;
    return r;
}

struct held_call {
    const struct proc *k;
    const char *path, *body, *prefer;
    struct hreply reply;
    int64_t took_ms;
};

static void *held_call_run(void *arg)
{
    struct held_call *h = arg;
    int64_t t0 = now_ms();
    h->reply = post_prefer(h->k, h->path, h->body, h->prefer);
    h->took_ms = now_ms() - t0;
    return NULL;
}

/* Prefer: wait= holds a pending step until it ends (or the wait runs out), with no thread of
 * keeld; GET ?wait= likewise. */
static void test_held_calls(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_steps_held");
    struct proc k;
    keeld_start(&k, db, env(), NULL);
    struct hreply r = post(&k, "/v1/executions", "{\"id\": \"h-1\"}", 201);
    hreply_free(&r);
    /* A first call held until its sleep ends. */
    r = post_prefer(&k, "/v1/executions/h-1/steps/nap", "{\"sleep\": \"1s\"}", "Prefer: wait=30");
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Preference-Applied", "wait=30"));
    assert_string_equal(str(r.json, "status"), "completed");
    hreply_free(&r);
    /* A wait with nothing to end it: 202 once the wait runs out. */
    r = post_prefer(&k, "/v1/executions/h-1/steps/approval", "{\"wait\": {\"signal\": \"ok\"}}",
                    "Prefer: respond-async, wait=1");
    assert_int_equal(r.status, 202);
    assert_string_equal(str(r.json, "status"), "waiting");
    hreply_free(&r);
    /* Held replays wake when a signal ends the wait: several at once. */
    struct held_call calls[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        calls[i] = (struct held_call){.k = &k,
                                      .path = "/v1/executions/h-1/steps/approval",
                                      .body = "{\"wait\": {\"signal\": \"ok\"}}",
                                      .prefer = "Prefer: wait=60"};
        assert_int_equal(pthread_create(&t[i], NULL, held_call_run, &calls[i]), 0);
    }
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    http_post_expect(k.base_url, "/v1/executions/h-1/signals/ok", "\"yes\"", 202, NULL);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(calls[i].reply.status, 200);
        assert_string_equal(json_string_value(json_object_get(calls[i].reply.json, "output")),
                            "yes");
        assert_true(calls[i].took_ms < 50000);
        hreply_free(&calls[i].reply);
    }
    /* GET ?wait= of a sleeping key. */
    r = post(&k, "/v1/executions/h-1/steps/nap2", "{\"sleep\": \"1s\"}", 202);
    hreply_free(&r);
    struct hreply g;
    http_get(k.base_url, "/v1/executions/h-1/steps/nap2?wait=30", &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(str(g.json, "status"), "completed");
    hreply_free(&g);
    /* Bad waits. */
    r = post_prefer(&k, "/v1/executions/h-1/steps/x", "{\"output\": 1}", "Prefer: wait=61");
    assert_problem(&r, 400, "invalid-header");
    hreply_free(&r);
    r = post_prefer(&k, "/v1/executions/h-1/steps/x", "{\"output\": 1}", "Prefer: wait=soon");
    assert_problem(&r, 400, "invalid-header");
    hreply_free(&r);
    http_get(k.base_url, "/v1/executions/h-1/steps/nap2?wait=-1", &g);
    assert_problem(&g, 400, "invalid-parameter");
    hreply_free(&g);
    assert_sql(db, "0", "SELECT count(*) FROM steps WHERE execution_id = 'h-1' AND path = 'x'");
    keeld_stop(&k);
    free(db);
}

/* keeld killed while step calls are held: the program's calls fail, it calls again, and the
 * step ends once (no timer fired twice, no step doubled). */
static void test_kill_while_held(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_steps_held_kill");
    struct proc k;
    keeld_start(&k, db, env(), NULL);
    struct hreply r = post(&k, "/v1/executions", "{\"id\": \"hk-1\"}", 201);
    hreply_free(&r);
    struct held_call c = {.k = &k,
                          .path = "/v1/executions/hk-1/steps/nap",
                          .body = "{\"sleep\": \"2s\"}",
                          .prefer = "Prefer: wait=60"};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, held_call_run, &c), 0);
    wait_sql(db, "1", "SELECT count(*) FROM steps WHERE execution_id = 'hk-1' AND path = 'nap'");
    proc_kill9(&k);
    pthread_join(t, NULL);
    assert_true(c.reply.status == 0 || c.reply.status >= 500);
    hreply_free(&c.reply);
    keeld_start(&k, db, env(), NULL);
    r = post_prefer(&k, "/v1/executions/hk-1/steps/nap", "{\"sleep\": \"2s\"}", "Prefer: wait=60");
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Keel-Replayed", "true"));
    hreply_free(&r);
    assert_sql(db, "1",
               "SELECT count(*) FROM events WHERE execution_id = 'hk-1' AND type = 'timer_fired'");
    assert_sql(db, "1",
               "SELECT count(*) FROM events WHERE execution_id = 'hk-1' AND type = "
               "'step_scheduled'");
    keeld_stop(&k);
    free(db);
}

/* Replays are counted and the last call is timed, off the calls' path (written about once a
 * second); GET .../steps pages through the keys in first-call order. */
static void test_counts_and_list(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_steps_list");
    struct proc k;
    keeld_start(&k, db, env(), NULL);
    struct hreply r = post(&k, "/v1/executions", "{\"id\": \"l-1\"}", 201);
    hreply_free(&r);
    for (int i = 0; i < 5; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/executions/l-1/steps/k%d", i);
        expect(&k, path, "{\"output\": 1}", 200);
    }
    expect(&k, "/v1/executions/l-1/steps/k1", "{\"output\": 1}", 200);
    expect(&k, "/v1/executions/l-1/steps/k1", "{\"output\": 1}", 200);
    expect(&k, "/v1/executions/l-1/steps/k3", "{\"output\": 1}", 200);
    wait_sql(db, "k1:2,k3:1",
             "SELECT string_agg(path || ':' || replays, ',' ORDER BY path) FROM steps "
             "WHERE execution_id = 'l-1' AND replays > 0");
    wait_sql(db, "true",
             "SELECT (last_call_at IS NOT NULL)::text FROM executions WHERE id = 'l-1'");
    struct hreply g;
    http_get(k.base_url, "/v1/executions/l-1/steps/k1", &g);
    assert_int_equal(json_integer_value(json_object_get(g.json, "replays")), 2);
    assert_false(json_is_true(json_object_get(g.json, "request_differs")));
    hreply_free(&g);
    http_get(k.base_url, "/v1/executions/l-1", &g);
    assert_non_null(str(g.json, "last_call_at"));
    hreply_free(&g);

    /* Pages of two, in first-call order, to the end. */
    char path[256] = "/v1/executions/l-1/steps?limit=2";
    int seen = 0;
    for (;;) {
        http_get(k.base_url, path, &g);
        assert_int_equal(g.status, 200);
        json_t *steps = json_object_get(g.json, "steps");
        size_t i;
        json_t *st;
        json_array_foreach(steps, i, st)
        {
            char want[16];
            snprintf(want, sizeof want, "k%d", seen++);
            assert_string_equal(str(st, "key"), want);
        }
        const char *next = str(g.json, "next_cursor");
        if (!next) {
            hreply_free(&g);
            break;
        }
        snprintf(path, sizeof path, "/v1/executions/l-1/steps?limit=2&cursor=%s", next);
        hreply_free(&g);
    }
    assert_int_equal(seen, 5);
    http_get(k.base_url, "/v1/executions/l-1/steps?cursor=bm9wZQ", &g);
    assert_problem(&g, 400, "invalid-parameter");
    hreply_free(&g);
    http_get(k.base_url, "/v1/executions/l-1/steps?limit=0", &g);
    assert_problem(&g, 400, "invalid-parameter");
    hreply_free(&g);
    http_get(k.base_url, "/v1/executions/nope/steps", &g);
    assert_problem(&g, 404, "not-found");
    hreply_free(&g);
    http_post_expect(k.base_url, "/v1/workflows",
                     "{\"name\": \"w\", \"steps\": [{\"id\": \"s\", \"sleep\": \"1h\"}]}", 201,
                     NULL);
    http_post_expect(k.base_url, "/v1/workflows/w/executions", "{\"id\": \"w-1\"}", 201, NULL);
    http_get(k.base_url, "/v1/executions/w-1/steps", &g);
    assert_problem(&g, 409, "not-a-code-execution");
    hreply_free(&g);
    keeld_stop(&k);
    free(db);
}

struct filler {
    const struct proc *k;
    int from, to, failures;
};

static void *fill(void *arg)
{
    struct filler *f = arg;
    for (int i = f->from; i < f->to; i++) {
        char path[64], body[64];
        snprintf(path, sizeof path, "/v1/executions/big-1/steps/s%05d", i);
        snprintf(body, sizeof body, "{\"output\": %d}", i);
        struct hreply r;
        http_post_json(f->k->base_url, path, body, &r);
        if (r.status != 200)
            f->failures++;
        hreply_free(&r);
    }
    return NULL;
}

/* 10,000 steps in one execution: every key journaled once, the list and the history page
 * through all of it, and a key at the end still answers (and replays) as the first did. */
static void test_ten_thousand_steps(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_steps_big");
    struct proc k;
    keeld_start(&k, db, env(), NULL);
    struct hreply r = post(&k, "/v1/executions", "{\"id\": \"big-1\"}", 201);
    hreply_free(&r);
    enum { N = 10000, THREADS = 4 };
    struct filler f[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        f[i] = (struct filler){&k, i * (N / THREADS), (i + 1) * (N / THREADS), 0};
        assert_int_equal(pthread_create(&t[i], NULL, fill, &f[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(f[i].failures, 0);
    }
    assert_sql(db, "10000",
               "SELECT count(*) FROM steps WHERE execution_id = 'big-1' AND parent_path = ''");
    assert_sql(db, "10000",
               "SELECT count(DISTINCT position) FROM steps WHERE execution_id = 'big-1' AND "
               "parent_path = ''");
    r = post(&k, "/v1/executions/big-1/steps/s09999", "{\"output\": 9999}", 200);
    assert_true(has_header(&r, "Keel-Replayed", "true"));
    hreply_free(&r);
    r = post(&k, "/v1/executions/big-1/steps/last", "{\"sleep\": \"0s\"}", 202);
    assert_int_equal(json_integer_value(json_object_get(r.json, "position")), 10000);
    hreply_free(&r);
    /* The list pages through every key, in position order. */
    char path[256] = "/v1/executions/big-1/steps?limit=500";
    long seen = 0, last = -1;
    for (;;) {
        struct hreply g;
        http_get(k.base_url, path, &g);
        assert_int_equal(g.status, 200);
        size_t i;
        json_t *st;
        json_array_foreach(json_object_get(g.json, "steps"), i, st)
        {
            long pos = (long)json_integer_value(json_object_get(st, "position"));
            assert_true(pos > last);
            last = pos;
            seen++;
        }
        const char *next = str(g.json, "next_cursor");
        if (next)
            snprintf(path, sizeof path, "/v1/executions/big-1/steps?limit=500&cursor=%s", next);
        hreply_free(&g);
        if (!next)
            break;
    }
    assert_int_equal(seen, N + 1);
    /* The history pages too (two events per key). */
    char hpath[256] = "/v1/executions/big-1/history?limit=500";
    long events = 0;
    for (;;) {
        struct hreply g;
        http_get(k.base_url, hpath, &g);
        assert_int_equal(g.status, 200);
        events += (long)json_array_size(json_object_get(g.json, "events"));
        const char *next = str(g.json, "next_cursor");
        if (next)
            snprintf(hpath, sizeof hpath, "/v1/executions/big-1/history?limit=500&cursor=%s", next);
        hreply_free(&g);
        if (!next)
            break;
    }
    assert_true(events >= 2 * N + 1);
    keeld_stop(&k);
    free(db);
}

/* The events of type of execution id, as [data, ...] (new reference). */
static json_t *events_of(const char *db, const char *id, const char *type)
{
    char *v = harness_sqlf(db,
                           "SELECT coalesce(json_agg(data ORDER BY seq), '[]')::text FROM events "
                           "WHERE execution_id = '%s' AND type = '%s'",
                           id, type);
    json_t *j = json_loads(v ? v : "[]", 0, NULL);
    free(v);
    return j;
}

/* The handler: called at start, when a key ends that no held call waits for, after the
 * program has been idle with steps pending, on cancel and after retry, with a run counter;
 * retried with backoff while it fails. */
static void test_handler(void **state)
{
    (void)state;
    char *db;
    struct proc k, rcv;
    stack_start("keel_it_steps_handler", env(), &db, &k, &rcv);
    char body[512];
    snprintf(body, sizeof body,
             "{\"id\": \"h-1\", \"name\": \"shop\", \"handler\": {\"url\": \"%s/ok\", "
             "\"inactivity_timeout\": \"1s\"}}",
             rcv.base_url);
    struct hreply r = post(&k, "/v1/executions", body, 201);
    assert_string_equal(str(json_object_get(r.json, "handler"), "inactivity_timeout"), "1s");
    hreply_free(&r);
    /* Called at start. */
    struct delivery_check first = {&rcv, "h-1/run/1", 1};
    assert_true(wait_for(receiver_delivered, &first, 20000));
    wait_sql(db, "start",
             "SELECT string_agg(data->>'reason', ',' ORDER BY seq) FROM events WHERE "
             "execution_id = 'h-1' AND type = 'handler_called'");
    /* A key that ends by itself (its timer) while nobody waits: the handler is told. */
    r = post(&k, "/v1/executions/h-1/steps/nap", "{\"sleep\": \"1s\"}", 202);
    hreply_free(&r);
    wait_sql(db, "nap",
             "SELECT string_agg(data->>'key', ',') FROM events WHERE execution_id = "
             "'h-1' AND type = 'handler_called' AND data->>'reason' = 'step_ended'");
    /* A key a held call waits for: no call for it. */
    r = post_prefer(&k, "/v1/executions/h-1/steps/nap2", "{\"sleep\": \"1s\"}", "Prefer: wait=30");
    assert_int_equal(r.status, 200);
    hreply_free(&r);
    /* Idle with a step pending: called for inactivity (the program's last call is at most a
     * second late in the table, so this comes a few seconds on). */
    r = post(&k, "/v1/executions/h-1/steps/approval", "{\"wait\": {\"signal\": \"ok\"}}", 202);
    hreply_free(&r);
    wait_sql(db, "true",
             "SELECT (count(*) > 0)::text FROM events WHERE execution_id = 'h-1' AND "
             "type = 'handler_called' AND data->>'reason' = 'inactivity'");
    /* Cancel and retry call it too; each call has the next run. */
    r = post(&k, "/v1/executions/h-1/cancel", "{}", 202);
    hreply_free(&r);
    wait_sql(db, "1",
             "SELECT count(*) FROM events WHERE execution_id = 'h-1' AND type = "
             "'handler_called' AND data->>'reason' = 'cancel'");
    r = post(&k, "/v1/executions/h-1/fail", "{\"error\": {\"type\": \"Stopped\"}}", 200);
    hreply_free(&r);
    /* Each call has its own run (calls in flight at once may be journaled in either order). */
    assert_sql(db, "0",
               "SELECT count(*) - count(DISTINCT data->'run') FROM events WHERE execution_id = "
               "'h-1' AND type = 'handler_called'");
    assert_sql(db, "0",
               "SELECT count(*) FROM events WHERE execution_id = 'h-1' AND type = "
               "'handler_called' AND data->>'key' = 'nap2'");
    assert_sql(db, "0", "SELECT count(*) FROM tasks WHERE execution_id = 'h-1'");

    /* A handler that fails is called again after a backoff, and its failures are journaled. */
    snprintf(body, sizeof body, "{\"id\": \"h-2\", \"handler\": {\"url\": \"%s/flaky/2\"}}",
             rcv.base_url);
    r = post(&k, "/v1/executions", body, 201);
    hreply_free(&r);
    wait_sql(db, "1",
             "SELECT count(*) FROM events WHERE execution_id = 'h-2' AND type = "
             "'handler_called'");
    json_t *failed = events_of(db, "h-2", "handler_failed");
    assert_int_equal(json_array_size(failed), 2);
    assert_non_null(
        json_string_value(json_object_get(json_array_get(failed, 0), "next_attempt_at")));
    json_decref(failed);
    assert_key_counts(&rcv, "h-2/run/1", 1, 3);
    r = post(&k, "/v1/executions/h-2/complete", "{}", 200);
    hreply_free(&r);
    /* A retry calls it, so that the program runs again. */
    snprintf(body, sizeof body, "{\"id\": \"h-3\", \"handler\": {\"url\": \"%s/ok\"}}",
             rcv.base_url);
    r = post(&k, "/v1/executions", body, 201);
    hreply_free(&r);
    wait_sql(db, "start",
             "SELECT string_agg(data->>'reason', ',' ORDER BY seq) FROM events WHERE "
             "execution_id = 'h-3' AND type = 'handler_called'");
    r = post(&k, "/v1/executions/h-3/fail", "{\"error\": {\"type\": \"Oops\"}}", 200);
    hreply_free(&r);
    r = post(&k, "/v1/executions/h-3/retry", "{}", 202);
    hreply_free(&r);
    wait_sql(db, "start,retry",
             "SELECT string_agg(data->>'reason', ',' ORDER BY seq) FROM events WHERE "
             "execution_id = 'h-3' AND type = 'handler_called'");
    /* The execution shows its handler and how many times it was called. */
    struct hreply g;
    http_get(k.base_url, "/v1/executions/h-2", &g);
    assert_int_equal(json_integer_value(json_object_get(g.json, "run")), 1);
    assert_non_null(json_object_get(g.json, "handler"));
    assert_null(json_object_get(json_object_get(g.json, "handler"), "inactivity_timeout_ms"));
    hreply_free(&g);
    stack_stop(&db, &k, &rcv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds_and_replays),
        cmocka_unit_test(test_bad_calls),
        cmocka_unit_test(test_cancel_and_retry),
        cmocka_unit_test(test_cancel_compensates),
        cmocka_unit_test(test_retry_runs_failed_keys),
        cmocka_unit_test(test_concurrent_first_calls),
        cmocka_unit_test(test_sleep_outlives_kill),
        cmocka_unit_test(test_activities),
        cmocka_unit_test(test_held_calls),
        cmocka_unit_test(test_kill_while_held),
        cmocka_unit_test(test_counts_and_list),
        cmocka_unit_test(test_ten_thousand_steps),
        cmocka_unit_test(test_handler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
