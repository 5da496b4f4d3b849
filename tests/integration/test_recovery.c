/* The guarantees, broken on purpose: kill -9 of keeld mid-run, a PostgreSQL restart, a receiver
 * that is down for a while, and two keeld on one database with one killed. Every execution must
 * still complete, every step's result must be journaled exactly once, and the receiver (which
 * verifies signatures and dedupes on Idempotency-Key) must have applied each key once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Short leases so that the attempts of a killed keeld are taken over within seconds. */
static const char *const fast_env[] = {"KEEL_LEASE_GRACE_MS=300", "KEEL_WORKERS=4", NULL};

static char secret_env[256];
static const char *secret;

static int group_setup(void **state)
{
    (void)state;
    secret = harness_env("KEEL_TEST_WEBHOOK_SECRET");
    snprintf(secret_env, sizeof secret_env, "KEEL_WEBHOOK_SECRET=%s", secret);
    return 0;
}

static const char *const *env_with_secret(void)
{
    static const char *env[8];
    size_t k = 0;
    for (size_t i = 0; fast_env[i]; i++)
        env[k++] = fast_env[i];
    env[k++] = secret_env;
    env[k] = NULL;
    return env;
}

static void register_workflow(const struct proc *k, const char *name, const char *base,
                              const char *path, const char *retry)
{
    char *def = NULL;
    assert_true(asprintf(&def,
                         "{\"name\": \"%s\", \"defaults\": {\"timeout\": \"2s\", \"retry\": %s},"
                         " \"steps\": ["
                         "{\"id\": \"s1\", \"activity\": {\"url\": \"%s%s\", \"input\": "
                         "\"${input}\"}},"
                         "{\"id\": \"s2\", \"activity\": {\"url\": \"%s%s\", \"input\": "
                         "\"${steps.s1.output.echo}\"}},"
                         "{\"id\": \"s3\", \"activity\": {\"url\": \"%s%s\", \"input\": "
                         "\"${steps.s2.output.echo}\"}}]}",
                         name, retry, base, path, base, path, base, path) > 0);
    struct hreply r;
    http_post_json(k->base_url, "/v1/workflows", def, &r);
    if (r.status != 201)
        fail_msg("register %s: %ld %s", name, r.status, r.body);
    hreply_free(&r);
    free(def);
}

struct done_check {
    const char *db;
    const char *workflow;
    int n;
};

static bool all_completed(void *arg)
{
    struct done_check *c = arg;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM executions WHERE workflow = '%s' AND status = 'completed'",
             c->workflow);
    char *v = harness_sql_value(c->db, sql);
    bool ok = atoi(v) == c->n;
    free(v);
    return ok;
}

/* The journal and the receiver agree: n executions x 3 steps, each completed exactly once. */
static void check_exactly_once(const char *db, const char *workflow, const char *prefix, int n,
                               const struct proc *receiver)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM executions WHERE workflow = '%s' AND status <> 'completed'",
             workflow);
    char *v = harness_sql_value(db, sql);
    assert_string_equal(v, "0");
    free(v);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM (SELECT 1 FROM events e JOIN executions x ON x.id = "
             "e.execution_id WHERE x.workflow = '%s' AND e.type = 'step_completed' GROUP BY "
             "e.execution_id, e.step HAVING count(*) <> 1) d",
             workflow);
    v = harness_sql_value(db, sql);
    assert_string_equal(v, "0");
    free(v);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM events e JOIN executions x ON x.id = e.execution_id WHERE "
             "x.workflow = '%s' AND e.type = 'step_completed'",
             workflow);
    v = harness_sql_value(db, sql);
    assert_int_equal(atoi(v), 3 * n);
    free(v);
    /* Sequence numbers have no gaps: nothing was half-written. */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM executions x WHERE x.workflow = '%s' AND x.last_seq <> "
             "(SELECT count(*) FROM events e WHERE e.execution_id = x.id)",
             workflow);
    v = harness_sql_value(db, sql);
    assert_string_equal(v, "0");
    free(v);

    json_t *stats = receiver_stats(receiver, "");
    assert_int_equal(json_integer_value(json_object_get(stats, "bad_signatures")), 0);
    json_t *keys = json_object_get(stats, "keys");
    int found = 0;
    const char *key;
    json_t *k;
    size_t plen = strlen(prefix);
    json_object_foreach(keys, key, k)
    {
        if (strncmp(key, prefix, plen) != 0 || key[plen] != '-')
            continue;
        found++;
        assert_true(json_integer_value(json_object_get(k, "deliveries")) >= 1);
        assert_int_equal(json_integer_value(json_object_get(k, "applied")), 1);
    }
    assert_int_equal(found, 3 * n);
    json_decref(stats);
}

static int redeliveries(const char *db, const char *workflow)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM events e JOIN executions x ON x.id = e.execution_id WHERE "
             "x.workflow = '%s' AND e.type = 'attempt_started' AND e.data ? 'redelivery'",
             workflow);
    char *v = harness_sql_value(db, sql);
    int n = atoi(v);
    free(v);
    return n;
}

static void test_kill9_repeatedly(void **state)
{
    (void)state;
    enum { N = 200 };
    char *db = harness_create_db("keel_it_kill9");
    struct proc receiver, k;
    receiver_start(&receiver, secret);
    keeld_start(&k, db, env_with_secret(), NULL);
    register_workflow(&k, "crashy", receiver.base_url, "/slow/300",
                      "{\"initial_interval\": \"50ms\"}");
    int started = start_range(&k, "crashy", "crash", 0, N, NULL);
    /* Kill it five times while executions run, restarting each time. */
    for (int round = 0; round < 5; round++) {
        usleep(500 * 1000);
        proc_kill9(&k);
        keeld_start(&k, db, env_with_secret(), NULL);
        if (started < N)
            started += start_range(&k, "crashy", "crash", started, N, NULL);
    }
    if (started < N)
        started += start_range(&k, "crashy", "crash", started, N, NULL);
    assert_int_equal(started, N);
    struct done_check c = {db, "crashy", N};
    if (!wait_for(all_completed, &c, 120000))
        fail_msg("not every execution completed after kill -9");
    check_exactly_once(db, "crashy", "crash", N, &receiver);
    /* The kills did land mid-attempt: some attempts were sent again after their lease. */
    assert_true(redeliveries(db, "crashy") > 0);
    proc_signal(&k, SIGTERM);
    assert_int_equal(proc_wait(&k, 20000), 0);
    proc_signal(&receiver, SIGTERM);
    proc_wait(&receiver, 5000);
    free(db);
}

static void test_postgres_restart_mid_run(void **state)
{
    (void)state;
    enum { N = 100 };
    char *db = harness_create_db("keel_it_pgrestart");
    struct proc receiver, k;
    receiver_start(&receiver, secret);
    keeld_start(&k, db, env_with_secret(), NULL);
    register_workflow(&k, "pgr", receiver.base_url, "/slow/200",
                      "{\"initial_interval\": \"100ms\"}");
    assert_int_equal(start_range(&k, "pgr", "pgr", 0, N, NULL), N);
    usleep(200 * 1000);
    harness_pg("restart");
    struct done_check c = {db, "pgr", N};
    if (!wait_for(all_completed, &c, 120000))
        fail_msg("not every execution completed after the PostgreSQL restart");
    check_exactly_once(db, "pgr", "pgr", N, &receiver);
    /* The restart came mid-run: executions were still running when the database went away. */
    char *after = harness_sql_value(db, "SELECT count(*) FROM executions WHERE completed_at > "
                                        "pg_postmaster_start_time()");
    assert_true(atoi(after) > 0);
    free(after);
    assert_true(proc_alive(&k));
    proc_signal(&k, SIGTERM);
    assert_int_equal(proc_wait(&k, 20000), 0);
    proc_signal(&receiver, SIGTERM);
    proc_wait(&receiver, 5000);
    free(db);
}

static void test_receiver_down_for_a_while(void **state)
{
    (void)state;
    enum { N = 20 };
    char *db = harness_create_db("keel_it_receiver_down");
    struct proc receiver, k;
    receiver_start(&receiver, secret);
    uint16_t port = receiver.port;
    char base[64];
    snprintf(base, sizeof base, "%s", receiver.base_url);
    proc_signal(&receiver, SIGTERM);
    proc_wait(&receiver, 5000);
    keeld_start(&k, db, env_with_secret(), NULL);
    register_workflow(&k, "down", base, "/ok",
                      "{\"initial_interval\": \"200ms\", \"backoff_coefficient\": 1.5, "
                      "\"max_interval\": \"1s\", \"max_attempts\": 30}");
    assert_int_equal(start_range(&k, "down", "down", 0, N, NULL), N);
    sleep(2);
    receiver_start_on(&receiver, secret, port);
    struct done_check c = {db, "down", N};
    if (!wait_for(all_completed, &c, 60000))
        fail_msg("not every execution completed once the receiver came back");
    check_exactly_once(db, "down", "down", N, &receiver);
    /* The history shows the refused attempts with their backoff. */
    char *v = harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id = 'down-0' "
                                    "AND step = 's1' AND type = 'attempt_failed' AND "
                                    "data->'error'->>'type' = 'connection_refused' AND "
                                    "data->>'next_attempt_at' IS NOT NULL");
    assert_true(atoi(v) >= 2);
    free(v);
    v = harness_sql_value(db, "SELECT attempts FROM steps WHERE execution_id = 'down-0' AND "
                              "step_id = 's1'");
    assert_true(atoi(v) >= 3);
    free(v);
    proc_signal(&k, SIGTERM);
    assert_int_equal(proc_wait(&k, 20000), 0);
    proc_signal(&receiver, SIGTERM);
    proc_wait(&receiver, 5000);
    free(db);
}

static void test_two_keeld_one_killed(void **state)
{
    (void)state;
    enum { N = 100 };
    char *db = harness_create_db("keel_it_two");
    struct proc receiver, a, b;
    receiver_start(&receiver, secret);
    keeld_start(&a, db, env_with_secret(), NULL);
    keeld_start(&b, db, env_with_secret(), NULL);
    register_workflow(&a, "pair", receiver.base_url, "/slow/200",
                      "{\"initial_interval\": \"50ms\"}");
    /* Half started through each; a is killed while work is in flight; b finishes all. */
    assert_int_equal(start_range(&a, "pair", "pair", 0, N / 2, NULL), N / 2);
    char path[64];
    (void)path;
    for (int i = N / 2; i < N; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"id\": \"pair-%d\", \"input\": {\"i\": %d}}", i, i);
        struct hreply r;
        http_post_json(b.base_url, "/v1/workflows/pair/executions", body, &r);
        assert_int_equal(r.status, 201);
        hreply_free(&r);
    }
    usleep(150 * 1000);
    proc_kill9(&a);
    struct done_check c = {db, "pair", N};
    if (!wait_for(all_completed, &c, 120000))
        fail_msg("the surviving keeld did not finish everything");
    check_exactly_once(db, "pair", "pair", N, &receiver);
    assert_true(redeliveries(db, "pair") > 0);
    proc_signal(&b, SIGTERM);
    assert_int_equal(proc_wait(&b, 20000), 0);
    proc_signal(&receiver, SIGTERM);
    proc_wait(&receiver, 5000);
    free(db);
}

/* Keeld a sends an attempt the receiver holds, and is killed. The attempt's lease (its 60 s
 * timeout plus a 30 s grace) is far from over, yet b must send it again soon: a's database
 * session ended, and its liveness lock with it. Without that, b would wait the 90 s out. */
static void test_takeover_when_session_ends(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_takeover");
    const char *const env[] = {secret_env, "KEEL_LEASE_GRACE_MS=30000", NULL};
    struct proc receiver, a, b;
    receiver_start(&receiver, secret);
    keeld_start(&a, db, env, NULL);
    char *def = NULL;
    assert_true(asprintf(&def,
                         "{\"name\": \"takeover\", \"steps\": [{\"id\": \"s1\", \"timeout\": "
                         "\"60s\", \"activity\": {\"url\": \"%s/slow-first/120000\", "
                         "\"input\": \"${input}\"}}]}",
                         receiver.base_url) > 0);
    http_post_expect(a.base_url, "/v1/workflows", def, 201, NULL);
    free(def);
    http_post_expect(a.base_url, "/v1/workflows/takeover/executions",
                     "{\"id\": \"takeover-1\", \"input\": {\"n\": 1}}", 201, NULL);
    struct delivery_check first = {&receiver, "takeover-1/s1", 1};
    if (!wait_for(receiver_delivered, &first, 30000))
        fail_msg("the first attempt never reached the receiver");

    keeld_start(&b, db, env, NULL);
    int64_t t0 = now_ms();
    proc_kill9(&a);
    /* Measured from the moment b notices (it logs the takeover) to the attempt sent again:
     * the bound is 5 s; noticing takes about a second (b's sweep), the rest is one
     * transition. */
    struct delivery_check again = {&receiver, "takeover-1/s1", 2};
    int64_t noticed = 0, resent = 0;
    while ((!noticed || !resent) && now_ms() - t0 < 30000) {
        if (!noticed) {
            char *log = read_file(b.log_path);
            if (log && strstr(log, "took over the executions of a keeld that died or stopped"))
                noticed = now_ms();
            free(log);
        }
        if (!resent && receiver_delivered(&again))
            resent = now_ms();
        usleep(10 * 1000);
    }
    if (!resent)
        fail_msg("b did not send the attempt again within 30 s of a's kill -9 (the lease alone "
                 "would have held it for 90 s)");
    if (!noticed)
        fail_msg("b sent the attempt again but never logged the takeover");
    print_message("# b noticed %lld ms after kill -9; attempt sent again %lld ms after that\n",
                  (long long)(noticed - t0), (long long)(resent - noticed));
    assert_true(resent - noticed <= 5000);
    json_t *done = wait_result(b.base_url, "takeover-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_decref(done);
    char *completed =
        harness_sqlf(db, "SELECT count(*) FROM events WHERE execution_id = 'takeover-1' "
                         "AND type = 'step_completed'");
    assert_string_equal(completed, "1");
    free(completed);
    proc_signal(&b, SIGTERM);
    assert_int_equal(proc_wait(&b, 20000), 0);
    proc_kill9(&receiver); /* it still holds the first delivery */
    free(db);
}

/* Keeld a is stopped with SIGTERM while it owns an attempt the receiver holds and a timer not
 * yet due. b would wait a minute (its heartbeat grace) for a keeld that merely went silent, yet
 * it takes both over as soon as a has exited: a's session, and its liveness lock with it, end
 * when it stops. */
static void test_sigterm_hands_work_back(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_handback");
    const char *const env_a[] = {secret_env, "KEEL_LEASE_GRACE_MS=60000",
                                 "KEEL_SHUTDOWN_GRACE_MS=500", NULL};
    const char *const env_b[] = {secret_env, "KEEL_LEASE_GRACE_MS=60000", NULL};
    struct proc receiver, a, b;
    receiver_start(&receiver, secret);
    keeld_start(&a, db, env_a, NULL);
    keeld_start(&b, db, env_b, NULL);
    char *def = NULL;
    assert_true(asprintf(&def,
                         "{\"name\": \"held\", \"steps\": [{\"id\": \"s1\", \"timeout\": \"60s\", "
                         "\"activity\": {\"url\": \"%s/slow-first/120000\"}}]}",
                         receiver.base_url) > 0);
    http_post_expect(a.base_url, "/v1/workflows", def, 201, NULL);
    free(def);
    assert_true(
        asprintf(&def,
                 "{\"name\": \"napping\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"3s\"}, "
                 "{\"id\": \"after\", \"activity\": {\"url\": \"%s/ok\"}}]}",
                 receiver.base_url) > 0);
    http_post_expect(a.base_url, "/v1/workflows", def, 201, NULL);
    free(def);
    http_post_expect(a.base_url, "/v1/workflows/held/executions", "{\"id\": \"held-1\"}", 201,
                     NULL);
    struct delivery_check first = {&receiver, "held-1/s1", 1};
    if (!wait_for(receiver_delivered, &first, 30000))
        fail_msg("the first attempt never reached the receiver");
    http_post_expect(a.base_url, "/v1/workflows/napping/executions", "{\"id\": \"nap-1\"}", 201,
                     NULL);

    proc_signal(&a, SIGTERM);
    assert_int_equal(proc_wait(&a, 20000), 0);
    int64_t t0 = now_ms();
    /* Well inside b's 60 s grace: only a's ended session can have told b. */
    struct delivery_check again = {&receiver, "held-1/s1", 2};
    if (!wait_for(receiver_delivered, &again, 20000))
        fail_msg("b did not send a's attempt again within 20 s of a's exit");
    print_message("# attempt sent again %lld ms after a exited\n", (long long)(now_ms() - t0));
    json_t *done = wait_result(b.base_url, "held-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_decref(done);
    done = wait_result(b.base_url, "nap-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_decref(done);
    assert_true(now_ms() - t0 < 20000);
    assert_key_counts(&receiver, "nap-1/after", 1, 1);
    char *n = harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id = 'held-1' "
                                    "AND type = 'attempt_started' AND data ? 'redelivery'");
    assert_string_equal(n, "1");
    free(n);
    n = harness_sql_value(db, "SELECT count(DISTINCT owner) FROM executions");
    assert_string_equal(n, "1");
    free(n);
    proc_signal(&b, SIGTERM);
    assert_int_equal(proc_wait(&b, 20000), 0);
    proc_kill9(&receiver); /* it still holds the first delivery */
    free(db);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_repeatedly),
        cmocka_unit_test(test_postgres_restart_mid_run),
        cmocka_unit_test(test_receiver_down_for_a_while),
        cmocka_unit_test(test_two_keeld_one_killed),
        cmocka_unit_test(test_takeover_when_session_ends),
        cmocka_unit_test(test_sigterm_hands_work_back),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, NULL);
    curl_global_cleanup();
    return rc;
}
