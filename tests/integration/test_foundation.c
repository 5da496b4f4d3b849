/* The foundation end to end: a real keeld against the test PostgreSQL. Errors of the HTTP
 * layer, readiness across a PostgreSQL restart, draining on SIGTERM, migrations run by two
 * daemons at once, and the command line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char *db;

static int setup(void **state)
{
    (void)state;
    db = harness_create_db("keel_it_foundation");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(db);
    return 0;
}

static void test_http_errors_are_problems(void **state)
{
    (void)state;
    struct proc k;
    keeld_start(&k, db, NULL, NULL);
    struct hreply r;

    http_get(k.base_url, "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "ok");
    hreply_free(&r);

    http_get(k.base_url, "/v1/no-such-thing", &r);
    assert_problem(&r, 404, "not-found");
    hreply_free(&r);

    assert_int_equal(http_do(k.base_url, "DELETE", "/readyz", NULL, NULL, 0, NULL, 5000, &r), 0);
    assert_problem(&r, 405, "method-not-allowed");
    char allow[64];
    assert_true(hreply_header(&r, "Allow", allow, sizeof allow));
    assert_string_equal(allow, "GET");
    hreply_free(&r);

    /* 2 MiB against the 1 MiB default cap. */
    size_t big_len = 2u << 20;
    char *big = calloc(1, big_len + 1);
    memset(big, ' ', big_len);
    assert_int_equal(http_do(k.base_url, "POST", "/v1/workflows", "application/json", big, big_len,
                             NULL, 10000, &r),
                     0);
    assert_problem(&r, 413, "payload-too-large");
    hreply_free(&r);
    free(big);

    proc_signal(&k, SIGTERM);
    assert_int_equal(proc_wait(&k, 15000), 0);
}

static bool readyz_is(void *arg)
{
    struct proc *k = ((void **)arg)[0];
    long want = *(long *)((void **)arg)[1];
    struct hreply r;
    if (http_do(k->base_url, "GET", "/readyz", NULL, NULL, 0, NULL, 10000, &r) < 0)
        return false;
    bool ok = r.status == want;
    hreply_free(&r);
    return ok;
}

static void test_readyz_follows_database(void **state)
{
    (void)state;
    struct proc k;
    keeld_start(&k, db, NULL, NULL);
    struct hreply r;
    http_get(k.base_url, "/readyz", &r);
    assert_int_equal(r.status, 200);
    hreply_free(&r);

    harness_pg("stop");
    /* During the outage: a prompt 503 problem, not a hang or a crash. */
    int64_t t0 = now_ms();
    http_get(k.base_url, "/readyz", &r);
    int64_t took = now_ms() - t0;
    assert_problem(&r, 503, "database-unavailable");
    assert_true(took < 8000);
    hreply_free(&r);
    /* Inputs go through the runner's workers, which answer them with the same prompt 503. */
    static const char *const inputs[] = {"/v1/workflows/w/executions",
                                         "/v1/executions/x/signals/go", "/v1/executions/x/cancel",
                                         "/v1/tasks/0123456789abcdef0123456789abcdef/complete"};
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        t0 = now_ms();
        http_post_json(k.base_url, inputs[i], "{}", &r);
        took = now_ms() - t0;
        if (r.status != 503)
            fail_msg("POST %s during the outage: %ld %s", inputs[i], r.status, r.body);
        assert_problem(&r, 503, "database-unavailable");
        assert_true(took < 8000);
        hreply_free(&r);
    }
    http_get(k.base_url, "/healthz", &r);
    assert_int_equal(r.status, 200);
    hreply_free(&r);

    harness_pg("start");
    long want = 200;
    void *arg[] = {&k, &want};
    assert_true(wait_for(readyz_is, arg, 20000));
    assert_true(proc_alive(&k));

    /* And again with a restart while connections sit idle in the pool: the very first
     * request afterwards is served, because a pooled connection the server closed is noticed
     * and replaced before use. */
    for (int i = 0; i < 4; i++) {
        http_get(k.base_url, "/v1/workflows", &r);
        assert_int_equal(r.status, 200);
        hreply_free(&r);
    }
    harness_pg("restart");
    http_get(k.base_url, "/v1/workflows", &r);
    assert_int_equal(r.status, 200);
    hreply_free(&r);
    assert_true(wait_for(readyz_is, arg, 20000));

    proc_signal(&k, SIGTERM);
    assert_int_equal(proc_wait(&k, 15000), 0);
}

/* A request whose body is still arriving when SIGTERM comes is finished, then keeld exits 0. */
static void test_sigterm_drains_in_flight(void **state)
{
    (void)state;
    struct proc k;
    keeld_start(&k, db, NULL, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(k.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *head = "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                       "Content-Length: 10\r\nConnection: close\r\n\r\n12345";
    assert_int_equal(write(fd, head, strlen(head)), (ssize_t)strlen(head));
    usleep(200 * 1000);

    proc_signal(&k, SIGTERM);
    usleep(300 * 1000);
    assert_true(proc_alive(&k)); /* still draining our request */

    /* New connections are refused while draining. */
    struct hreply r;
    assert_int_equal(http_do(k.base_url, "GET", "/healthz", NULL, NULL, 0, NULL, 2000, &r), -1);
    hreply_free(&r);

    assert_int_equal(write(fd, "67890", 5), 5);
    char resp[4096] = "";
    size_t got = 0;
    ssize_t n;
    while ((n = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    assert_non_null(strstr(resp, "HTTP/1.1 405"));
    assert_int_equal(proc_wait(&k, 15000), 0);
}

static void test_sigint_exits_zero(void **state)
{
    (void)state;
    struct proc k;
    keeld_start(&k, db, NULL, NULL);
    proc_signal(&k, SIGINT);
    assert_int_equal(proc_wait(&k, 15000), 0);
    char *log = read_file(k.log_path);
    assert_non_null(strstr(log, "\"msg\":\"keeld stopped\""));
    free(log);
}

/* Two daemons on a fresh database: both come up, each migration is recorded once. */
static void test_concurrent_migrations(void **state)
{
    (void)state;
    char *fresh = harness_create_db("keel_it_migrate_race");
    struct proc a, b;
    keeld_spawn(&a, fresh, NULL, NULL);
    keeld_spawn(&b, fresh, NULL, NULL);
    struct hreply r;
    long want = 200;
    void *arg_a[] = {&a, &want}, *arg_b[] = {&b, &want};
    assert_true(wait_for(readyz_is, arg_a, 60000));
    assert_true(wait_for(readyz_is, arg_b, 60000));
    char *dups = harness_sql_value(
        fresh, "SELECT count(*) - count(DISTINCT version) FROM schema_migrations");
    assert_string_equal(dups, "0");
    free(dups);
    char *tables = harness_sql_value(
        fresh, "SELECT count(*) FROM information_schema.tables WHERE table_name IN "
               "('workflows','executions','steps','events','tasks','signals')");
    assert_string_equal(tables, "6");
    free(tables);
    proc_signal(&a, SIGTERM);
    proc_signal(&b, SIGTERM);
    assert_int_equal(proc_wait(&a, 15000), 0);
    assert_int_equal(proc_wait(&b, 15000), 0);
    (void)r;
    free(fresh);
}

static void test_migrate_command(void **state)
{
    (void)state;
    char *fresh = harness_create_db("keel_it_migrate_cmd");
    char dbenv[1024];
    snprintf(dbenv, sizeof dbenv, "KEEL_DATABASE_URL=%s", fresh);
    const char *env[] = {dbenv, NULL};
    const char *argv[] = {harness_env("KEELD_BIN"), "migrate", NULL};
    assert_int_equal(run_command(argv, env, "migrate-1.log"), 0);
    char *n = harness_sql_value(fresh, "SELECT count(*) FROM schema_migrations");
    assert_true(atoi(n) >= 1);
    /* A second run finds nothing to do and changes nothing. */
    assert_int_equal(run_command(argv, env, "migrate-2.log"), 0);
    char *n2 = harness_sql_value(fresh, "SELECT count(*) FROM schema_migrations");
    assert_string_equal(n, n2);
    free(n);
    free(n2);
    char *log = read_file("migrate-2.log");
    assert_non_null(strstr(log, "\"applied\":\"0\""));
    free(log);
    free(fresh);
}

static void test_command_line(void **state)
{
    (void)state;
    unlink("cli.log");
    const char *help[] = {harness_env("KEELD_BIN"), "--help", NULL};
    assert_int_equal(run_command(help, NULL, "cli.log"), 0);
    char *out = read_file("cli.log");
    const char *vars[] = {"KEEL_DATABASE_URL",      "KEEL_LISTEN",    "KEEL_WEBHOOK_SECRET",
                          "KEEL_API_TOKENS",        "KEEL_LOG_LEVEL", "KEEL_WORKERS",
                          "Default: 127.0.0.1:8080"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        assert_non_null(strstr(out, vars[i]));
    free(out);

    unlink("cli.log");
    const char *bad_flag[] = {harness_env("KEELD_BIN"), "--no-such-flag", NULL};
    assert_int_equal(run_command(bad_flag, NULL, "cli.log"), 2);
    out = read_file("cli.log");
    assert_non_null(strstr(out, "--no-such-flag"));
    free(out);

    unlink("cli.log");
    const char *bad_value[] = {harness_env("KEELD_BIN"), "--workers", "lots", NULL};
    assert_int_equal(run_command(bad_value, NULL, "cli.log"), 2);
    out = read_file("cli.log");
    assert_non_null(strstr(out, "--workers"));
    free(out);

    unlink("cli.log");
    const char *no_db[] = {harness_env("KEELD_BIN"), NULL};
    const char *env[] = {"KEEL_DATABASE_URL=", NULL};
    assert_int_equal(run_command(no_db, env, "cli.log"), 2);
    out = read_file("cli.log");
    assert_non_null(strstr(out, "KEEL_DATABASE_URL"));
    free(out);
}

static void test_bearer_tokens(void **state)
{
    (void)state;
    struct proc k;
    const char *env[] = {"KEEL_API_TOKENS=tok-one,tok-two", NULL};
    keeld_start(&k, db, env, NULL);
    struct hreply r;
    http_get(k.base_url, "/v1/workflows", &r);
    assert_problem(&r, 401, "unauthorized");
    hreply_free(&r);
    const char *auth[] = {"Authorization: Bearer tok-two", NULL};
    assert_int_equal(http_do(k.base_url, "GET", "/v1/nothing-here", NULL, NULL, 0, auth, 5000, &r),
                     0);
    assert_problem(&r, 404, "not-found");
    hreply_free(&r);
    http_get(k.base_url, "/readyz", &r); /* health checks need no token */
    assert_int_equal(r.status, 200);
    hreply_free(&r);
    proc_signal(&k, SIGTERM);
    assert_int_equal(proc_wait(&k, 15000), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_errors_are_problems),
        cmocka_unit_test(test_readyz_follows_database),
        cmocka_unit_test(test_sigterm_drains_in_flight),
        cmocka_unit_test(test_sigint_exits_zero),
        cmocka_unit_test(test_concurrent_migrations),
        cmocka_unit_test(test_migrate_command),
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_bearer_tokens),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
