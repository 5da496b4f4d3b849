/* Operations hardening (issue 8, points 3, 9 and 10): a keeld paused inside a transaction does
 * not hold its locks for long and loses its work cleanly, a lock held too long is a 503 with
 * Retry-After, SIGTERM during start-up ends keeld at once, and activity destinations are
 * checked at registration, at run time and on the resolved address. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static void register_def(const struct proc *k, const char *def, long want_status,
                         struct hreply *out)
{
    struct hreply r;
    http_post_json(k->base_url, "/v1/workflows", def, &r);
    if (r.status != want_status)
        fail_msg("register: %ld (want %ld) %s", r.status, want_status, r.body);
    if (out)
        *out = r;
    else
        hreply_free(&r);
}

static void start_exec(const struct proc *k, const char *workflow, const char *body)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/workflows/%s/executions", workflow);
    struct hreply r;
    http_post_json(k->base_url, path, body, &r);
    if (r.status != 201)
        fail_msg("start %s: %ld %s", body, r.status, r.body);
    hreply_free(&r);
}

struct log_wait {
    const char *path;
    const char *needle;
};

static bool log_has(void *arg)
{
    struct log_wait *w = arg;
    char *log = read_file(w->path);
    bool found = log && strstr(log, w->needle);
    free(log);
    return found;
}

static void wait_log(const struct proc *p, const char *needle, int timeout_ms)
{
    struct log_wait w = {p->log_path, needle};
    if (!wait_for(log_has, &w, timeout_ms)) {
        char *log = read_file(p->log_path);
        fail_msg("no \"%s\" in the log within %d ms:\n%s", needle, timeout_ms, log ? log : "");
    }
}

/* True when the pointer appears among the errors[] of a problem. */
static bool has_pointer(const struct hreply *r, const char *pointer)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(r->json, "errors"), i, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "pointer")), pointer))
            return true;
    }
    return false;
}

/* ---- point 9: SIGTERM while waiting for the database --------------------------------------- */

static void test_sigterm_while_waiting_for_database(void **state)
{
    (void)state;
    /* A bound socket that never listens: connections to it are refused, and no other process
     * can take the port meanwhile. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    char conninfo[128];
    snprintf(conninfo, sizeof conninfo, "postgresql://keel@127.0.0.1:%u/nothing",
             ntohs(a.sin_port));
    struct proc k;
    keeld_spawn(&k, conninfo, NULL, NULL);
    wait_log(&k, "database not reachable yet", 30000);
    int64_t t0 = now_ms();
    proc_signal(&k, SIGTERM);
    int rc = proc_wait(&k, 10000);
    int64_t took = now_ms() - t0;
    if (rc < 0) {
        proc_kill9(&k);
        fail_msg("keeld ignored SIGTERM while waiting for the database");
    }
    assert_int_equal(rc, 1);
    assert_true(took < 3000);
    wait_log(&k, "received while waiting for the database", 1000);
    close(fd);
}

/* ---- point 3: locks held too long ---------------------------------------------------------- */

#define WAIT_DEF                                                                                   \
    "{\"name\": \"%s\", \"defaults\": {\"timeout\": \"2s\", \"retry\": {\"initial_interval\": "    \
    "\"100ms\"}}, \"steps\": [{\"id\": \"s1\", \"activity\": {\"url\": \"%s/ok\", \"input\": "     \
    "\"${input}\"}}, {\"id\": \"s2\", \"wait\": {\"signal\": \"go\"}}]}"

static void register_wait_workflow(const struct proc *k, const char *name,
                                   const struct proc *receiver)
{
    char *def = NULL;
    assert_true(asprintf(&def, WAIT_DEF, name, receiver->base_url) > 0);
    register_def(k, def, 201, NULL);
    free(def);
}

struct step_check {
    const char *db;
    const char *id;
    const char *status;
};

static bool step_has_status(void *arg)
{
    struct step_check *c = arg;
    char *v = harness_sqlf(c->db,
                           "SELECT count(*) FROM steps WHERE execution_id = '%s' AND step_id = "
                           "'s1' AND status = '%s'",
                           c->id, c->status);
    bool ok = v && atoi(v) == 1;
    free(v);
    return ok;
}

/* A lock another session holds past the lock timeout: API calls answer 503 busy with
 * Retry-After at once instead of hanging, and work again once the lock is gone. */
static void test_locked_execution_is_503(void **state)
{
    (void)state;
    static const char *const env[] = {"KEEL_DB_LOCK_TIMEOUT_MS=300", NULL};
    char *db = NULL;
    struct proc k, receiver;
    stack_start("keel_it_ops_lock", env, &db, &k, &receiver);
    register_wait_workflow(&k, "locky", &receiver);
    start_exec(&k, "locky", "{\"id\": \"locked-1\", \"input\": 1}");
    struct step_check c = {db, "locked-1", "completed"};
    assert_true(wait_for(step_has_status, &c, 30000));

    PGconn *holder = PQconnectdb(db);
    assert_int_equal(PQstatus(holder), CONNECTION_OK);
    PQclear(PQexec(holder, "BEGIN"));
    PGresult *r = PQexec(holder, "SELECT 1 FROM executions WHERE id = 'locked-1' FOR UPDATE");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);

    static const char *const paths[] = {"/v1/executions/locked-1/signals/ping",
                                        "/v1/executions/locked-1/cancel"};
    for (size_t i = 0; i < 2; i++) {
        struct hreply h;
        int64_t t0 = now_ms();
        if (http_do(k.base_url, "POST", paths[i], "application/json", "{}", 2, NULL, 15000, &h) < 0)
            fail_msg("%s: no answer while the execution was locked", paths[i]);
        assert_true(now_ms() - t0 < 5000);
        assert_problem(&h, 503, "busy");
        char retry_after[16];
        assert_true(hreply_header(&h, "Retry-After", retry_after, sizeof retry_after));
        hreply_free(&h);
    }
    /* Nothing was written meanwhile. */
    char *n =
        harness_sqlf(db, "SELECT count(*) FROM signals WHERE execution_id = '%s'", "locked-1");
    assert_string_equal(n, "0");
    free(n);

    PQclear(PQexec(holder, "ROLLBACK"));
    PQfinish(holder);
    struct hreply h;
    http_post_json(k.base_url, "/v1/executions/locked-1/signals/go", "{}", &h);
    assert_int_equal(h.status, 202);
    hreply_free(&h);
    json_t *done = wait_result(k.base_url, "locked-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_decref(done);
    stack_stop(&db, &k, &receiver);
}

struct count_check {
    const char *db;
    const char *sql;
    int want;
};

static bool count_is(void *arg)
{
    struct count_check *c = arg;
    char *v = harness_sql_value(c->db, c->sql);
    bool ok = v && atoi(v) == c->want;
    free(v);
    return ok;
}

/* Keeld A stops (SIGSTOP, by a test-only hook) right after locking an execution to journal a
 * webhook result. B's API calls on it still answer within a bounded time; PostgreSQL ends A's
 * idle transaction, B takes the attempt over after A's lease and completes the step; A, once
 * continued, journals nothing over B's work. */
static void test_paused_keeld_loses_its_locks(void **state)
{
    (void)state;
    static const char *const env_a[] = {"KEEL_LEASE_GRACE_MS=1000", "KEEL_DB_LOCK_TIMEOUT_MS=500",
                                        "KEEL_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS=3000",
                                        "KEEL_TEST_SIGSTOP_IN_TRANSACTION=paused-1", NULL};
    static const char *const env_b[] = {"KEEL_LEASE_GRACE_MS=1000", "KEEL_DB_LOCK_TIMEOUT_MS=500",
                                        NULL};
    char *db = harness_create_db("keel_it_ops_pause");
    struct proc a, b, receiver;
    receiver_start(&receiver, NULL);
    keeld_start(&a, db, env_a, NULL);
    keeld_start(&b, db, env_b, NULL);
    register_wait_workflow(&a, "pausy", &receiver);
    /* A may stop (journaling the attempt's result) before it has written the start's answer:
     * the start is checked in the database instead of waiting for that answer. */
    struct hreply sr;
    const char *sbody = "{\"id\": \"paused-1\", \"input\": 7}";
    if (http_do(a.base_url, "POST", "/v1/workflows/pausy/executions", "application/json", sbody,
                strlen(sbody), NULL, 3000, &sr) == 0 &&
        sr.status != 201)
        fail_msg("start paused-1: %ld %s", sr.status, sr.body);
    hreply_free(&sr);
    struct count_check started = {db, "SELECT count(*) FROM executions WHERE id = 'paused-1'", 1};
    if (!wait_for(count_is, &started, 30000))
        fail_msg("paused-1 was not started");

    /* A got the receiver's answer and stopped while journaling it, the lock held. */
    if (!wait_for(proc_is_stopped, &a, 30000))
        fail_msg("keeld A did not stop in the transaction");
    wait_log(&a, "stopping this process inside a transaction", 1000);

    struct hreply h;
    int64_t t0 = now_ms();
    if (http_do(b.base_url, "POST", "/v1/executions/paused-1/signals/ping", "application/json",
                "{}", 2, NULL, 15000, &h) < 0)
        fail_msg("keeld B's API call hung on the execution A holds");
    int64_t took = now_ms() - t0;
    assert_true(took < 5000);
    /* 503 busy while A's session lives; 202 if PostgreSQL had already ended it. */
    print_message("keeld B answered %ld in %lld ms while A held the lock\n", h.status,
                  (long long)took);
    if (h.status != 202)
        assert_problem(&h, 503, "busy");
    hreply_free(&h);

    /* PostgreSQL ends A's transaction; B takes the attempt over and completes s1. */
    struct count_check idle = {db,
                               "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                               "current_database() AND state LIKE 'idle in transaction%'",
                               0};
    assert_true(wait_for(count_is, &idle, 30000));
    struct step_check c = {db, "paused-1", "completed"};
    if (!wait_for(step_has_status, &c, 60000))
        fail_msg("B did not complete the step of the paused keeld");
    char *before = harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id = "
                                         "'paused-1'");
    char *redelivered =
        harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id = 'paused-1' AND "
                              "type = 'attempt_started' AND data ? 'redelivery'");
    assert_int_equal(atoi(redelivered), 1);
    free(redelivered);

    /* A continues: its journaling fails (its session is gone) and then finds the task no
     * longer its own. Nothing of it reaches the journal. */
    proc_signal(&a, SIGCONT);
    wait_log(&a, "result dropped", 30000);
    char *after = harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id = "
                                        "'paused-1'");
    assert_string_equal(before, after);
    free(before);
    free(after);
    char *completions =
        harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id = 'paused-1' AND "
                              "type = 'step_completed' AND step = 's1'");
    assert_string_equal(completions, "1");
    free(completions);

    http_post_json(a.base_url, "/v1/executions/paused-1/signals/go", "{}", &h);
    assert_int_equal(h.status, 202);
    hreply_free(&h);
    json_t *done = wait_result(b.base_url, "paused-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_decref(done);
    assert_key_counts(&receiver, "paused-1/s1", 1, 2);

    keeld_stop(&a);
    stack_stop(&db, &b, &receiver);
}

/* Keeld A sends an attempt that the receiver holds, and is paused (SIGSTOP) with it in flight,
 * its database sessions alive. Its heartbeat stops: after the lease grace B owns the execution,
 * sends the attempt again and completes the step. A, continued, gets the first answer and is
 * fenced: it journals nothing, and it does not take the execution back. */
static void test_paused_keeld_with_attempt_in_flight(void **state)
{
    (void)state;
    static const char *const env[] = {"KEEL_LEASE_GRACE_MS=1000", NULL};
    char *db = harness_create_db("keel_it_ops_pause_flight");
    struct proc a, b, receiver;
    receiver_start(&receiver, NULL);
    keeld_start(&a, db, env, NULL);
    keeld_start(&b, db, env, NULL);
    char *def = NULL;
    assert_true(asprintf(&def,
                         "{\"name\": \"held\", \"steps\": [{\"id\": \"s1\", \"timeout\": "
                         "\"60s\", \"activity\": {\"url\": \"%s/slow-first/4000\"}}, {\"id\": "
                         "\"s2\", \"activity\": {\"url\": \"%s/ok\"}}]}",
                         receiver.base_url, receiver.base_url) > 0);
    register_def(&a, def, 201, NULL);
    free(def);
    start_exec(&a, "held", "{\"id\": \"held-1\"}");
    struct delivery_check first = {&receiver, "held-1/s1", 1};
    if (!wait_for(receiver_delivered, &first, 30000))
        fail_msg("the first attempt never reached the receiver");
    proc_signal(&a, SIGSTOP);

    json_t *done = wait_result(b.base_url, "held-1");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_decref(done);
    char *owner = harness_sql_value(db, "SELECT owner FROM executions WHERE id = 'held-1'");
    char *events = harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id = "
                                         "'held-1'");
    char *redelivered =
        harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id = 'held-1' AND "
                              "type = 'attempt_started' AND data ? 'redelivery'");
    assert_string_equal(redelivered, "1");
    free(redelivered);

    /* A continues, gets the held answer of its attempt and drops it. */
    proc_signal(&a, SIGCONT);
    wait_log(&a, "result dropped", 30000);
    char *events_after = harness_sql_value(db, "SELECT count(*) FROM events WHERE "
                                               "execution_id = 'held-1'");
    assert_string_equal(events, events_after);
    char *owner_after = harness_sql_value(db, "SELECT owner FROM executions WHERE id = 'held-1'");
    assert_string_equal(owner, owner_after);
    free(events);
    free(events_after);
    free(owner);
    free(owner_after);
    char *completions =
        harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id = 'held-1' AND "
                              "type = 'step_completed'");
    assert_string_equal(completions, "2");
    free(completions);
    assert_key_counts(&receiver, "held-1/s1", 1, 2);

    keeld_stop(&a);
    stack_stop(&db, &b, &receiver);
}

/* ---- point 10: activity destinations ------------------------------------------------------- */

static void test_registration_refuses_bad_destinations(void **state)
{
    (void)state;
    char *db = NULL;
    struct proc k, receiver;
    stack_start("keel_it_ops_dest", NULL, &db, &k, &receiver);
    struct hreply r;
    /* Syntax: port range, no host, scheme. */
    register_def(&k,
                 "{\"name\": \"bad-urls\", \"steps\": ["
                 "{\"id\": \"a\", \"activity\": {\"url\": \"http://example.com:99999/x\"}},"
                 "{\"id\": \"b\", \"activity\": {\"url\": \"http://@/\"},"
                 " \"compensate\": {\"url\": \"ftp://example.com/\"}},"
                 "{\"id\": \"c\", \"activity\": {\"url\": \"http://exa mple.com/\"}}]}",
                 422, &r);
    assert_true(has_pointer(&r, "/steps/0/activity/url"));
    assert_true(has_pointer(&r, "/steps/1/activity/url"));
    assert_true(has_pointer(&r, "/steps/1/compensate/url"));
    assert_true(has_pointer(&r, "/steps/2/activity/url"));
    assert_non_null(strstr(r.body, "65535"));
    hreply_free(&r);
    /* Policy: metadata addresses in any spelling, and keeld itself. */
    char *def = NULL;
    assert_true(asprintf(&def,
                         "{\"name\": \"refused-urls\", \"steps\": ["
                         "{\"id\": \"a\", \"activity\": {\"url\": "
                         "\"http://169.254.169.254/latest/meta-data/\"}},"
                         "{\"id\": \"b\", \"activity\": {\"url\": \"http://2852039166/\"},"
                         " \"compensate\": {\"url\": \"http://[::ffff:169.254.169.254]/\"}},"
                         "{\"id\": \"c\", \"activity\": {\"url\": \"http://0x7f.1:%u/v1\"}},"
                         "{\"id\": \"d\", \"activity\": {\"url\": \"%s/ok\"}}]}",
                         k.port, receiver.base_url) > 0);
    register_def(&k, def, 422, &r);
    free(def);
    assert_true(has_pointer(&r, "/steps/0/activity/url"));
    assert_true(has_pointer(&r, "/steps/1/activity/url"));
    assert_true(has_pointer(&r, "/steps/1/compensate/url"));
    assert_true(has_pointer(&r, "/steps/2/activity/url"));
    assert_false(has_pointer(&r, "/steps/3/activity/url"));
    assert_non_null(strstr(r.body, "link-local"));
    assert_non_null(strstr(r.body, "own listen address"));
    hreply_free(&r);
    /* Nothing was stored. */
    char *n = harness_sql_value(db, "SELECT count(*) FROM workflows");
    assert_string_equal(n, "0");
    free(n);
    stack_stop(&db, &k, &receiver);
}

/* The step's error, from GET /v1/executions/{id} of an ended execution. */
static void assert_step_error(const struct proc *k, const char *id, const char *type, int attempts)
{
    json_t *e = wait_result(k->base_url, id);
    assert_string_equal(json_string_value(json_object_get(e, "status")), "failed");
    json_t *step = json_array_get(json_object_get(e, "steps"), 0);
    json_t *err = json_object_get(step, "error");
    if (!json_is_object(err) || strcmp(json_string_value(json_object_get(err, "type")), type))
        fail_msg("%s: step error %s, want type %s", id, json_dumps(err, 0), type);
    assert_int_equal(json_integer_value(json_object_get(step, "attempts")), attempts);
    json_decref(e);
}

#define EXPR_DEF                                                                                   \
    "{\"name\": \"%s\", \"defaults\": {\"retry\": {\"max_attempts\": 3, \"initial_interval\": "    \
    "\"50ms\"}}, \"steps\": [{\"id\": \"call\", \"activity\": {\"url\": \"${input.url}\", "        \
    "\"input\": null}}]}"

/* A URL computed at run time is checked when sent: the step fails for good. */
static void test_runtime_url_refused(void **state)
{
    (void)state;
    char *db = NULL;
    struct proc k, receiver;
    stack_start("keel_it_ops_runtime", NULL, &db, &k, &receiver);
    char *def = NULL;
    assert_true(asprintf(&def, EXPR_DEF, "by-input") > 0);
    register_def(&k, def, 201, NULL);
    free(def);
    start_exec(&k, "by-input",
               "{\"id\": \"meta-1\", \"input\": {\"url\": \"http://169.254.169.254/latest/\"}}");
    start_exec(&k, "by-input",
               "{\"id\": \"meta-2\", \"input\": {\"url\": \"http://0xa9fea9fe/\"}}");
    char body[256];
    snprintf(body, sizeof body, "{\"id\": \"self-1\", \"input\": {\"url\": \"%s/v1/workflows\"}}",
             k.base_url);
    start_exec(&k, "by-input", body);
    start_exec(&k, "by-input", "{\"id\": \"port-1\", \"input\": {\"url\": \"http://a:99999/\"}}");
    snprintf(body, sizeof body, "{\"id\": \"fine-1\", \"input\": {\"url\": \"%s/ok\"}}",
             receiver.base_url);
    start_exec(&k, "by-input", body);
    assert_step_error(&k, "meta-1", "destination_refused", 1);
    assert_step_error(&k, "meta-2", "destination_refused", 1);
    assert_step_error(&k, "self-1", "destination_refused", 1);
    assert_step_error(&k, "port-1", "invalid_url", 1);
    json_t *e = wait_result(k.base_url, "fine-1");
    assert_string_equal(json_string_value(json_object_get(e, "status")), "completed");
    json_decref(e);
    stack_stop(&db, &k, &receiver);
}

/* A name that resolves to an address outside the allow list is refused when connecting:
 * "localhost" resolves to loopback, which a list of 10.0.0.0/8 does not hold, so the receiver
 * listening there never hears of it. */
static void test_resolved_address_refused(void **state)
{
    (void)state;
    struct proc receiver;
    receiver_start(&receiver, NULL);
    char allow[128];
    snprintf(allow, sizeof allow, "KEEL_ACTIVITY_ALLOW=10.0.0.0/8, 192.0.2.7:%u", receiver.port);
    const char *const env[] = {allow, NULL};
    char *db = harness_create_db("keel_it_ops_resolve");
    struct proc k;
    keeld_start(&k, db, env, NULL);
    char *def = NULL;
    assert_true(asprintf(&def, EXPR_DEF, "by-name") > 0);
    register_def(&k, def, 201, NULL);
    free(def);
    /* A literal name is accepted at registration: only its addresses can tell. */
    assert_true(asprintf(&def,
                         "{\"name\": \"named\", \"steps\": [{\"id\": \"call\", \"activity\": "
                         "{\"url\": \"http://localhost:%u/ok\"}}]}",
                         receiver.port) > 0);
    register_def(&k, def, 201, NULL);
    free(def);
    /* A literal address outside the list is not. */
    register_def(&k,
                 "{\"name\": \"unlisted\", \"steps\": [{\"id\": \"call\", \"activity\": "
                 "{\"url\": \"http://192.0.2.1/ok\"}}]}",
                 422, NULL);
    char body[256];
    snprintf(body, sizeof body,
             "{\"id\": \"name-1\", \"input\": {\"url\": \"http://localhost:%u/ok\"}}",
             receiver.port);
    start_exec(&k, "by-name", body);
    start_exec(&k, "named", "{\"id\": \"name-2\"}");
    assert_step_error(&k, "name-1", "destination_refused", 1);
    assert_step_error(&k, "name-2", "destination_refused", 1);
    /* Nothing reached the receiver. */
    json_t *stats = receiver_stats(&receiver, "?keys=0");
    assert_int_equal(json_integer_value(json_object_get(stats, "deliveries")), 0);
    json_decref(stats);
    proc_signal(&k, SIGTERM);
    assert_int_equal(proc_wait(&k, 20000), 0);
    proc_signal(&receiver, SIGTERM);
    proc_wait(&receiver, 5000);
    free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_while_waiting_for_database),
        cmocka_unit_test(test_locked_execution_is_503),
        cmocka_unit_test(test_paused_keeld_loses_its_locks),
        cmocka_unit_test(test_paused_keeld_with_attempt_in_flight),
        cmocka_unit_test(test_registration_refuses_bad_destinations),
        cmocka_unit_test(test_runtime_url_refused),
        cmocka_unit_test(test_resolved_address_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
