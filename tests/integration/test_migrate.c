/* A database made by the schema before steps held steps (migrations 0001-0003, with the
 * interpreter state of every execution in one JSON value) is migrated by a new keeld, and the
 * executions in it go on: one half-way (a step completed, the next attempt due), one waiting
 * for a signal, one completed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char secret_env[256];

static int group_setup(void **state)
{
    (void)state;
    snprintf(secret_env, sizeof secret_env, "KEEL_WEBHOOK_SECRET=%s",
             harness_env("KEEL_TEST_WEBHOOK_SECRET"));
    return 0;
}

/* The folder of the migrations, beside this file's folder. */
static char *migration_text(const char *name)
{
    char *dir = strdup(__FILE__);
    char *cut = strstr(dir, "tests/integration/");
    assert_non_null(cut);
    *cut = '\0';
    char *path = NULL;
    assert_true(asprintf(&path, "%smigrations/%s", dir, name) > 0);
    char *text = read_file(path);
    if (!text)
        fail_msg("cannot read %s", path);
    free(path);
    free(dir);
    return text;
}

static void run_sql(const char *db, const char *sql)
{
    char *q = NULL;
    assert_true(asprintf(&q, "%s;\nSELECT 1", sql) > 0);
    free(harness_sql_value(db, q));
    free(q);
}

static void test_old_schema_migrates_and_runs_on(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_migrate");
    struct proc receiver, k;
    receiver_start(&receiver, harness_env("KEEL_TEST_WEBHOOK_SECRET"));

    /* The old schema, as keeld applied it then. */
    static const char *const old[] = {"0001_init.sql", "0002_step_details.sql",
                                      "0003_task_token_hashes.sql"};
    run_sql(db, "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT "
                "NULL, applied_at timestamptz NOT NULL DEFAULT now())");
    for (int i = 0; i < 3; i++) {
        char *text = migration_text(old[i]);
        run_sql(db, text);
        free(text);
        char *mark = NULL;
        assert_true(
            asprintf(&mark, "INSERT INTO schema_migrations VALUES (%d, '%s')", i + 1, old[i]) > 0);
        run_sql(db, mark);
        free(mark);
    }

    /* Data as the old keeld wrote it. */
    char *sql = NULL;
    assert_true(
        asprintf(
            &sql,
            "INSERT INTO workflows VALUES ('mig', 1, '{\"name\": \"mig\", \"steps\": ["
            "{\"id\": \"a\", \"activity\": {\"url\": \"%s/ok\"}},"
            "{\"id\": \"approve\", \"wait\": {\"signal\": \"go\"}},"
            "{\"id\": \"b\", \"activity\": {\"url\": \"%s/ok\", \"input\": "
            "\"${steps.a.output.key}\"}}], \"output\": \"${steps.b.output.echo}\"}', 'x');"
            /* m-half: a completed, approve got its signal, b's attempt 1 is due now. */
            "INSERT INTO executions (id, workflow, version, status, input, state, last_seq) "
            "VALUES ('m-half', 'mig', 1, 'running', '{}', '{\"v\": 1, \"status\": "
            "\"running\", \"current\": 2, \"completions\": 2, \"steps\": ["
            "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 1767225600000, "
            "\"started_at\": 1767225600001, \"completed_at\": 1767225600002, \"order\": 1},"
            "{\"status\": \"completed\", \"scheduled_at\": 1767225600002, \"started_at\": "
            "1767225600002, \"completed_at\": 1767225600003, \"order\": 2},"
            "{\"status\": \"scheduled\", \"attempt\": 1, \"scheduled_at\": 1767225600003}]}', 3);"
            "INSERT INTO steps (execution_id, step_id, position, status, attempts, output) "
            "VALUES ('m-half', 'a', 0, 'completed', 1, '{\"key\": \"m-half/a\"}'),"
            " ('m-half', 'approve', 1, 'completed', 0, '{\"ok\": 1}'),"
            " ('m-half', 'b', 2, 'scheduled', 0, NULL);"
            "INSERT INTO events (execution_id, seq, type, step, attempt, data) VALUES "
            "('m-half', 1, 'execution_started', NULL, NULL, '{}'),"
            "('m-half', 2, 'step_completed', 'a', 1, '{\"output\": {\"key\": \"m-half/a\"}}'),"
            "('m-half', 3, 'step_completed', 'approve', NULL, '{\"output\": {\"ok\": 1}}');"
            "INSERT INTO tasks (execution_id, kind, step, attempt, due_at, payload) VALUES "
            "('m-half', 'activity', 'b', 1, now(), '{\"url\": \"%s/ok\", \"input\": "
            "\"m-half/a\", \"timeout_ms\": 5000}');"
            /* m-wait: a completed, approve waits for its signal. */
            "INSERT INTO executions (id, workflow, version, status, input, state, last_seq) "
            "VALUES ('m-wait', 'mig', 1, 'running', '{}', '{\"v\": 1, \"status\": "
            "\"running\", \"current\": 1, \"completions\": 1, \"steps\": ["
            "{\"status\": \"completed\", \"attempt\": 1, \"scheduled_at\": 1767225600000, "
            "\"started_at\": 1767225600001, \"completed_at\": 1767225600002, \"order\": 1},"
            "{\"status\": \"waiting\", \"scheduled_at\": 1767225600002, \"started_at\": "
            "1767225600002}, {\"status\": \"pending\"}]}', 2);"
            "INSERT INTO steps (execution_id, step_id, position, status, attempts, output) "
            "VALUES ('m-wait', 'a', 0, 'completed', 1, '{\"key\": \"m-wait/a\"}'),"
            " ('m-wait', 'approve', 1, 'waiting', 0, NULL),"
            " ('m-wait', 'b', 2, 'pending', 0, NULL);"
            "INSERT INTO events (execution_id, seq, type, step, attempt, data) VALUES "
            "('m-wait', 1, 'execution_started', NULL, NULL, '{}'),"
            "('m-wait', 2, 'step_completed', 'a', 1, '{\"output\": {\"key\": \"m-wait/a\"}}');"
            /* m-flight: a's attempt 1 is in flight, its task leased by a keeld of before
             * (migration 0007 moves the lease to the execution's owner). */
            "INSERT INTO executions (id, workflow, version, status, input, state, last_seq) "
            "VALUES ('m-flight', 'mig', 1, 'running', '{}', '{\"v\": 1, \"status\": "
            "\"running\", \"current\": 0, \"completions\": 0, \"steps\": ["
            "{\"status\": \"running\", \"attempt\": 1, \"scheduled_at\": 1767225600000, "
            "\"started_at\": 1767225600001}, {\"status\": \"pending\"}, "
            "{\"status\": \"pending\"}]}', 2);"
            "INSERT INTO steps (execution_id, step_id, position, status, attempts) VALUES "
            "('m-flight', 'a', 0, 'running', 1), ('m-flight', 'approve', 1, 'pending', 0),"
            " ('m-flight', 'b', 2, 'pending', 0);"
            "INSERT INTO events (execution_id, seq, type, step, attempt, data) VALUES "
            "('m-flight', 1, 'execution_started', NULL, NULL, '{}'),"
            "('m-flight', 2, 'attempt_started', 'a', 1, '{}');"
            "INSERT INTO tasks (execution_id, kind, step, attempt, due_at, payload, lease_owner, "
            "lease_until, token_hash) VALUES ('m-flight', 'activity', 'a', 1, now(), "
            "'{\"url\": \"%s/ok\", \"input\": null, \"timeout_ms\": 30000}', 'old-keeld', "
            "now() + interval '1 hour', 'feed')",
            receiver.base_url, receiver.base_url, receiver.base_url, receiver.base_url) > 0);
    run_sql(db, sql);
    free(sql);

    /* The new keeld migrates at start, then finishes m-half on its own. */
    const char *const env[] = {secret_env, "KEEL_LEASE_GRACE_MS=300", NULL};
    keeld_start(&k, db, env, NULL);
    assert_sql(db, "4", "SELECT count(*) FROM schema_migrations WHERE version IN (4, 5, 6, 7)");
    json_t *done = wait_result(k.base_url, "m-half");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    assert_string_equal(json_string_value(json_object_get(done, "output")), "m-half/a");
    json_decref(done);

    /* m-wait takes its signal and goes on. */
    http_post_expect(k.base_url, "/v1/executions/m-wait/signals/go", "{\"by\": \"me\"}", 202, NULL);
    done = wait_result(k.base_url, "m-wait");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    assert_string_equal(json_string_value(json_object_get(done, "output")), "m-wait/a");
    json_decref(done);

    /* m-flight's attempt is sent again by the new owner, once, and is then the only one. */
    for (int tries = 0;; tries++) {
        char *v = harness_sql_value(db, "SELECT status FROM steps WHERE execution_id = "
                                        "'m-flight' AND path = 'approve'");
        bool waiting = !strcmp(v, "waiting");
        free(v);
        if (waiting)
            break;
        if (tries > 300)
            fail_msg("m-flight's attempt in flight was not sent again");
        usleep(100 * 1000);
    }
    assert_sql(db, "1",
               "SELECT count(*) FROM events WHERE execution_id = 'm-flight' AND type = "
               "'attempt_started' AND data ? 'redelivery'");
    http_post_expect(k.base_url, "/v1/executions/m-flight/signals/go", "{}", 202, NULL);
    done = wait_result(k.base_url, "m-flight");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_decref(done);
    assert_sql(db, "0", "SELECT count(*) FROM tasks WHERE execution_id = 'm-flight'");
    /* The keeld of before owns nothing any more and is forgotten. */
    assert_sql(db, "0", "SELECT count(*) FROM keelds WHERE owner = 'keel:before-0007'");

    /* The rows carry the new columns; the execution row keeps only the header. */
    assert_sql(db, "0",
               "SELECT count(*) FROM steps WHERE path IS NULL OR engine IS NULL OR kind IS NULL");
    assert_sql(db, "0", "SELECT count(*) FROM executions WHERE state ? 'steps'");
    assert_sql(db, "activity",
               "SELECT kind FROM steps WHERE execution_id = 'm-half' AND "
               "path = 'b'");
    /* The history reads on: old events by their step, new ones with their path too. */
    struct hreply r;
    http_get(k.base_url, "/v1/executions/m-half/history", &r);
    assert_int_equal(r.status, 200);
    json_t *h = json_loads(r.body, 0, NULL);
    json_t *events = json_object_get(h, "events");
    assert_true(json_array_size(events) > 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(events, 1), "path")), "a");
    /* New events store no output their step row or execution holds; the history puts it back,
     * so old and new events read alike. */
    assert_sql(db, "0",
               "SELECT count(*) FROM events WHERE execution_id = 'm-half' AND type IN "
               "('step_completed', 'execution_completed') AND seq > 3 AND data ? 'output'");
    size_t i_ev;
    json_t *ev;
    int outputs_seen = 0;
    json_array_foreach(events, i_ev, ev)
    {
        const char *type = json_string_value(json_object_get(ev, "type"));
        json_t *data = json_object_get(ev, "data");
        if (!strcmp(type, "step_completed") &&
            !strcmp(json_string_value(json_object_get(ev, "path")), "b")) {
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(data, "output"), "echo")),
                "m-half/a");
            outputs_seen++;
        } else if (!strcmp(type, "execution_completed")) {
            assert_string_equal(json_string_value(json_object_get(data, "output")), "m-half/a");
            outputs_seen++;
        }
    }
    assert_int_equal(outputs_seen, 2);
    json_decref(h);
    hreply_free(&r);
    /* Every key once. */
    json_t *stats = receiver_stats(&receiver, "?key=m-half/b");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(stats, "keys"), "m-half/b"), "applied")),
                     1);
    json_decref(stats);
    assert_key_counts(&receiver, "m-flight/a", 1, 1);

    stack_stop(&db, &k, &receiver);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_schema_migrates_and_runs_on),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
