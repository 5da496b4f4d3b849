/* Retention (issue 12) against a real keeld and PostgreSQL: DELETE /v1/executions/{id} removes an
 * ended execution with every row of its own (events, steps, signals, tasks, task tokens, tags)
 * and is 409 while it runs, changing nothing; KEEL_RETENTION purges what ended while executions
 * keep running and starting, touching none of the running ones and leaving no orphan row; a bad
 * KEEL_RETENTION stops keeld at start naming it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows of any table that belong to no execution. */
static const char orphans_sql[] =
    "SELECT (SELECT count(*) FROM events v WHERE NOT EXISTS (SELECT 1 FROM executions e WHERE "
    "e.id = v.execution_id)) + (SELECT count(*) FROM steps v WHERE NOT EXISTS (SELECT 1 FROM "
    "executions e WHERE e.id = v.execution_id)) + (SELECT count(*) FROM signals v WHERE NOT "
    "EXISTS (SELECT 1 FROM executions e WHERE e.id = v.execution_id)) + (SELECT count(*) FROM "
    "tasks v WHERE NOT EXISTS (SELECT 1 FROM executions e WHERE e.id = v.execution_id)) + "
    "(SELECT count(*) FROM attempt_tokens v WHERE NOT EXISTS (SELECT 1 FROM executions e WHERE "
    "e.id = v.execution_id)) + (SELECT count(*) FROM execution_tags v WHERE NOT EXISTS (SELECT 1 "
    "FROM executions e WHERE e.id = v.execution_id))";

/* Fails unless the exposition has the line "<series> <want>". */
static void assert_metric(const char *exposition, const char *series, const char *want)
{
    const char *at = strstr(exposition, series);
    if (!at)
        fail_msg("no %s in /metrics", series);
    const char *end = strchr(at, '\n');
    int len = end ? (int)(end - at) : (int)strlen(at);
    char line[256];
    snprintf(line, sizeof line, "%s %s", series, want);
    if ((size_t)len != strlen(line) || strncmp(at, line, (size_t)len) != 0)
        fail_msg("/metrics has \"%.*s\", want \"%s\"", len, at, line);
}

static void define(const struct proc *k, const struct proc *receiver)
{
    http_post_expect(k->base_url, "/v1/workflows",
                     "{\"name\": \"napper\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"1h\"}]}",
                     201, NULL);
    http_post_expect(k->base_url, "/v1/workflows",
                     "{\"name\": \"gate\", \"steps\": [{\"id\": \"w\", \"wait\": {\"signal\": "
                     "\"go\"}}]}",
                     201, NULL);
    char *def = harness_subst_r("{\"name\": \"call\", \"steps\": [{\"id\": \"a\", \"activity\": "
                                "{\"url\": \"%R/async\"}}]}",
                                receiver->base_url);
    http_post_expect(k->base_url, "/v1/workflows", def, 201, NULL);
    free(def);
    http_post_expect(k->base_url, "/v1/workflows",
                     "{\"name\": \"quick\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"1ms\"}]}",
                     201, NULL);
}

static void http_delete(const struct proc *k, const char *id, long want, struct hreply *out)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/executions/%s", id);
    struct hreply r;
    if (http_do(k->base_url, "DELETE", path, NULL, NULL, 0, NULL, 10000, &r) != 0)
        fail_msg("DELETE %s: no answer", path);
    if (r.status != want)
        fail_msg("DELETE %s: %ld %s (want %ld)", path, r.status, r.body, want);
    if (out)
        *out = r;
    else
        hreply_free(&r);
}

static void test_delete(void **state)
{
    (void)state;
    char *db = NULL;
    struct proc k, receiver;
    stack_start("keel_it_retention_delete", NULL, &db, &k, &receiver);
    define(&k, &receiver);

    /* Running: 409, nothing changes. */
    http_post_expect(k.base_url, "/v1/workflows/napper/executions",
                     "{\"id\": \"run-1\", \"tags\": {\"team\": \"a\"}}", 201, NULL);
    wait_sql(db, "sleeping", "SELECT status FROM steps WHERE execution_id = 'run-1'");
    char *before = harness_sql_value(
        db, "SELECT (SELECT count(*) FROM events WHERE execution_id = 'run-1') || '/' || (SELECT "
            "count(*) FROM tasks WHERE execution_id = 'run-1')");
    struct hreply r;
    http_delete(&k, "run-1", 409, &r);
    assert_problem(&r, 409, "execution-running");
    hreply_free(&r);
    assert_sql(db, before,
               "SELECT (SELECT count(*) FROM events WHERE execution_id = 'run-1') || '/' || "
               "(SELECT count(*) FROM tasks WHERE execution_id = 'run-1')");
    free(before);

    /* Ended with a consumed signal and tags; another with a task token (an async attempt,
     * completed by its token); a terminated one with its timer task left. */
    http_post_expect(k.base_url, "/v1/workflows/gate/executions",
                     "{\"id\": \"gate-1\", \"tags\": {\"team\": \"a\", \"kind\": \"gate\"}}", 201,
                     NULL);
    http_post_expect(k.base_url, "/v1/executions/gate-1/signals/go", "{\"ok\": true}", 202, NULL);
    json_decref(wait_result(k.base_url, "gate-1"));
    http_post_expect(k.base_url, "/v1/workflows/call/executions", "{\"id\": \"call-1\"}", 201,
                     NULL);
    char *token = receiver_task_token(&receiver, "call-1/a", 0);
    char path[512];
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", token);
    http_post_expect(k.base_url, path, "{\"output\": 1}", 202, NULL);
    free(token);
    json_decref(wait_result(k.base_url, "call-1"));
    assert_sql(db, "1", "SELECT count(*) FROM attempt_tokens WHERE execution_id = 'call-1'");
    assert_sql(db, "1", "SELECT count(*) FROM signals WHERE execution_id = 'gate-1'");

    http_delete(&k, "gate-1", 200, &r);
    assert_string_equal(json_str(r.json, "id"), "gate-1");
    json_t *removed = json_object_get(r.json, "removed");
    assert_true(json_integer_value(json_object_get(removed, "events")) >= 3);
    assert_int_equal(json_integer_value(json_object_get(removed, "steps")), 1);
    /* The signal and the two tag rows. */
    assert_int_equal(json_integer_value(json_object_get(removed, "other")), 3);
    hreply_free(&r);
    http_delete(&k, "call-1", 200, NULL);
    http_delete(&k, "gate-1", 404, &r);
    assert_problem(&r, 404, "not-found");
    hreply_free(&r);
    http_delete(&k, "never-was", 404, NULL);
    assert_sql(db, "0", "SELECT count(*) FROM executions WHERE id IN ('gate-1', 'call-1')");
    assert_sql(db, "0", orphans_sql);
    /* Gone from the lists and the tag's rows; the running one is still there. */
    http_get(k.base_url, "/v1/executions?tag=team:a", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "executions")), 1);
    hreply_free(&r);
    http_get(k.base_url, "/v1/executions/gate-1", &r);
    assert_int_equal(r.status, 404);
    hreply_free(&r);

    /* Terminated, with its timer's task still there: removed with it. */
    http_post_expect(k.base_url, "/v1/executions/run-1/terminate", "{}", 202, NULL);
    json_decref(wait_result(k.base_url, "run-1"));
    http_delete(&k, "run-1", 200, NULL);
    assert_sql(db, "0", orphans_sql);
    assert_sql(db, "0", "SELECT count(*) FROM executions");

    /* DELETE takes no body or query. */
    http_post_expect(k.base_url, "/v1/workflows/quick/executions", "{\"id\": \"q-1\"}", 201, NULL);
    json_decref(wait_result(k.base_url, "q-1"));
    if (http_do(k.base_url, "DELETE", "/v1/executions/q-1?force=1", NULL, NULL, 0, NULL, 10000,
                &r) != 0)
        fail_msg("no answer");
    assert_problem(&r, 400, "invalid-parameter");
    hreply_free(&r);
    assert_sql(db, "1", "SELECT count(*) FROM executions WHERE id = 'q-1'");
    http_get(k.base_url, "/metrics", &r);
    assert_metric(r.body, "keel_executions_purged_total{reason=\"api\"}", "3");
    hreply_free(&r);
    stack_stop(&db, &k, &receiver);
}

static void test_retention_purge(void **state)
{
    (void)state;
    char *db = NULL;
    struct proc k, receiver;
    const char *env[] = {"KEEL_RETENTION=2s", NULL};
    stack_start("keel_it_retention_purge", env, &db, &k, &receiver);
    define(&k, &receiver);
    /* Running ones that must survive every round, and their row counts. */
    start_range(&k, "napper", "keep", 0, 20, NULL);
    start_range(&k, "gate", "wait", 0, 10, NULL);
    wait_sql(db, "30",
             "SELECT count(*) FROM steps WHERE status IN ('sleeping', 'waiting') AND "
             "execution_id ~ '^(keep|wait)-'");
    char *kept = harness_sql_value(
        db, "SELECT (SELECT count(*) FROM events WHERE execution_id ~ '^(keep|wait)-') || '/' || "
            "(SELECT count(*) FROM steps WHERE execution_id ~ '^(keep|wait)-') || '/' || (SELECT "
            "count(*) FROM tasks WHERE execution_id ~ '^keep-')");
    /* Ended ones, in three waves while the purge runs: 250 quick executions, signals ending
     * some of the waiting ones' neighbours, terminates. */
    for (int wave = 0; wave < 3; wave++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "q%d", wave);
        start_range(&k, "quick", prefix, 0, 250, NULL);
        char id[32];
        snprintf(id, sizeof id, "t%d", wave);
        char body[64];
        snprintf(body, sizeof body, "{\"id\": \"%s\"}", id);
        http_post_expect(k.base_url, "/v1/workflows/napper/executions", body, 201, NULL);
        char path[96];
        snprintf(path, sizeof path, "/v1/executions/%s/terminate", id);
        http_post_expect(k.base_url, path, "{}", 202, NULL);
    }
    /* Every ended execution goes; none of the running ones. */
    wait_sql(db, "0", "SELECT count(*) FROM executions WHERE status <> 'running'");
    assert_sql(db, "30", "SELECT count(*) FROM executions WHERE status = 'running'");
    assert_sql(db, kept,
               "SELECT (SELECT count(*) FROM events WHERE execution_id ~ '^(keep|wait)-') || "
               "'/' || (SELECT count(*) FROM steps WHERE execution_id ~ '^(keep|wait)-') || '/' "
               "|| (SELECT count(*) FROM tasks WHERE execution_id ~ '^keep-')");
    free(kept);
    wait_sql(db, "0", orphans_sql);
    /* The running ones still run: a signal ends one, and it is purged in its turn. */
    http_post_expect(k.base_url, "/v1/executions/wait-3/signals/go", "{}", 202, NULL);
    json_decref(wait_result(k.base_url, "wait-3"));
    wait_sql(db, "0", "SELECT count(*) FROM executions WHERE id = 'wait-3'");
    assert_sql(db, "29", "SELECT count(*) FROM executions WHERE status = 'running'");
    struct hreply r;
    http_get(k.base_url, "/metrics", &r);
    assert_metric(r.body, "keel_executions_purged_total{reason=\"retention\"}", "754");
    hreply_free(&r);
    stack_stop(&db, &k, &receiver);
}

/* Only what ended longer ago than the retention goes: of two ended executions, the one whose
 * end is moved two hours back is purged under KEEL_RETENTION=1h, the other stays. */
static void test_retention_age(void **state)
{
    (void)state;
    char *db = NULL;
    struct proc k, receiver;
    const char *env[] = {"KEEL_RETENTION=1h", NULL};
    stack_start("keel_it_retention_age", env, &db, &k, &receiver);
    define(&k, &receiver);
    start_range(&k, "quick", "age", 0, 2, NULL);
    json_decref(wait_result(k.base_url, "age-0"));
    json_decref(wait_result(k.base_url, "age-1"));
    free(harness_sql_value(db, "UPDATE executions SET completed_at = now() - interval '2 hours' "
                               "WHERE id = 'age-0' RETURNING id"));
    wait_sql(db, "0", "SELECT count(*) FROM executions WHERE id = 'age-0'");
    assert_sql(db, "completed", "SELECT status FROM executions WHERE id = 'age-1'");
    assert_sql(db, "0", orphans_sql);

    /* A schedule's old events and an old completed batch go too; recent ones stay. */
    http_post_expect(k.base_url, "/v1/schedules",
                     "{\"id\": \"s\", \"workflow\": \"quick\", \"cron\": \"@yearly\"}", 201, NULL);
    http_post_expect(k.base_url, "/v1/schedules/s/pause", "", 200, NULL);
    struct hreply r =
        http_post_want(k.base_url, "/v1/executions/terminate", "{\"ids\": [\"age-1\"]}", 202);
    hreply_free(&r);
    wait_sql(db, "1", "SELECT count(*) FROM batches WHERE status = 'completed'");
    wait_sql(db, "1", "SELECT count(*) FROM batch_items");
    free(harness_sql_value(db, "UPDATE schedule_events SET at = now() - interval '2 hours' "
                               "WHERE type = 'created' RETURNING 1"));
    free(harness_sql_value(db, "UPDATE batches SET completed_at = now() - interval '2 hours' "
                               "RETURNING 1"));
    wait_sql(db, "0", "SELECT count(*) FROM batches");
    wait_sql(db, "0", "SELECT count(*) FROM batch_items");
    wait_sql(db, "paused", "SELECT string_agg(type, ',') FROM schedule_events");
    stack_stop(&db, &k, &receiver);
}

static void test_bad_retention(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_retention_bad");
    static const char *const bad[] = {"KEEL_RETENTION=30x", "KEEL_RETENTION=-1d",
                                      "KEEL_RETENTION=500ms", "KEEL_RETENTION=1h30m"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *env[] = {bad[i], NULL};
        struct proc p;
        keeld_spawn(&p, db, env, NULL);
        int rc = proc_wait(&p, 20000);
        assert_true(rc > 0 && rc < 128);
        char *log = read_file(p.log_path);
        if (!log || !strstr(log, "KEEL_RETENTION"))
            fail_msg("%s: keeld's log does not name it: %s", bad[i], log ? log : "");
        free(log);
    }
    free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_retention_purge),
        cmocka_unit_test(test_retention_age),
        cmocka_unit_test(test_bad_retention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
