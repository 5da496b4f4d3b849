/* Schedules (issue 12) against real keelds and PostgreSQL: the API (create, the same again,
 * conflicts, 422 naming the field, get, list with the next 5 due times, pause, resume, trigger,
 * history, delete); after downtime only the latest missed due time starts and a "missed" event
 * counts the others; the overlap policies. (A schedule every minute across a kill -9 is
 * test_schedule_minutes.c.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void define(const struct proc *k)
{
    http_post_expect(k->base_url, "/v1/workflows",
                     "{\"name\": \"napper\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"1h\"}]}",
                     201, NULL);
    http_post_expect(k->base_url, "/v1/workflows",
                     "{\"name\": \"quick\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"1ms\"}]}",
                     201, NULL);
}

static void expect_bad(const struct proc *k, const char *body, const char *pointer,
                       const char *words)
{
    struct hreply r = http_post_want(k->base_url, "/v1/schedules", body, 422);
    assert_problem(&r, 422, "validation");
    bool found = false;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(r.json, "errors"), i, e)
    {
        if (!strcmp(json_str(e, "pointer"), pointer) &&
            (!words || strstr(json_str(e, "message"), words)))
            found = true;
    }
    if (!found)
        fail_msg("%s: no error at %s saying \"%s\" in %s", body, pointer, words ? words : "",
                 r.body);
    hreply_free(&r);
}

static int64_t parse_due(const char *text)
{
    struct tm tm = {0};
    if (!text || !strptime(text, "%Y-%m-%dT%H:%M:%S", &tm))
        fail_msg("not a due time: %s", text ? text : "(null)");
    return (int64_t)timegm(&tm);
}

static void test_api(void **state)
{
    (void)state;
    char *db = NULL;
    struct proc k, receiver;
    stack_start("keel_it_sched_api", NULL, &db, &k, &receiver);
    define(&k);
    const char *body = "{\"id\": \"nightly\", \"workflow\": \"napper\", \"cron\": \"30 2 * * *\", "
                       "\"timezone\": \"Europe/Berlin\", \"input\": {\"a\": 1}, \"tags\": "
                       "{\"team\": \"ops\"}}";
    struct hreply r = http_post_want(k.base_url, "/v1/schedules", body, 201);
    char loc[128];
    assert_true(hreply_header(&r, "Location", loc, sizeof loc));
    assert_string_equal(loc, "/v1/schedules/nightly");
    assert_string_equal(json_str(r.json, "overlap"), "skip");
    assert_string_equal(json_str(r.json, "timezone"), "Europe/Berlin");
    assert_true(json_is_false(json_object_get(r.json, "paused")));
    json_t *next = json_object_get(r.json, "next_due");
    assert_int_equal(json_array_size(next), 5);
    int64_t prev = 0;
    for (size_t i = 0; i < 5; i++) {
        const char *t = json_string_value(json_array_get(next, i));
        int64_t at = parse_due(t);
        /* 02:30 in Berlin: 00:30 or 01:30 UTC, a day apart (23 or 25 hours over a shift). */
        assert_true(strstr(t, "T00:30:00Z") || strstr(t, "T01:30:00Z"));
        if (i > 0)
            assert_true(at - prev >= 23 * 3600 && at - prev <= 25 * 3600);
        prev = at;
    }
    /* next_due_at is the first of them (with milliseconds). */
    assert_int_equal(parse_due(json_str(r.json, "next_due_at")),
                     parse_due(json_string_value(json_array_get(next, 0))));
    hreply_free(&r);
    /* The same again is 200; another body with that id is 409. */
    http_post_expect(k.base_url, "/v1/schedules", body, 200, NULL);
    r = http_post_want(k.base_url, "/v1/schedules",
                       "{\"id\": \"nightly\", \"workflow\": \"napper\", \"cron\": \"30 3 * * *\", "
                       "\"timezone\": \"Europe/Berlin\", \"input\": {\"a\": 1}, \"tags\": "
                       "{\"team\": \"ops\"}}",
                       409);
    assert_problem(&r, 409, "schedule-exists");
    hreply_free(&r);

    expect_bad(&k, "{}", "/id", "required");
    expect_bad(&k, "{\"id\": \"x\", \"workflow\": \"napper\"}", "/cron", "required");
    expect_bad(&k, "{\"id\": \"a:b\", \"workflow\": \"napper\", \"cron\": \"@daily\"}", "/id",
               NULL);
    expect_bad(&k, "{\"id\": \"x\", \"workflow\": \"napper\", \"cron\": \"0 24 * * *\"}", "/cron",
               "hour");
    expect_bad(&k, "{\"id\": \"x\", \"workflow\": \"napper\", \"cron\": \"* * *\"}", "/cron", NULL);
    expect_bad(&k, "{\"id\": \"x\", \"workflow\": \"napper\", \"cron\": \"0 0 30 2 *\"}", "/cron",
               "never");
    expect_bad(&k,
               "{\"id\": \"x\", \"workflow\": \"napper\", \"cron\": \"@daily\", \"timezone\": "
               "\"Mars/Base\"}",
               "/timezone", "Mars/Base");
    expect_bad(&k,
               "{\"id\": \"x\", \"workflow\": \"napper\", \"cron\": \"@daily\", \"timezone\": "
               "\"../../etc/passwd\"}",
               "/timezone", NULL);
    expect_bad(&k,
               "{\"id\": \"x\", \"workflow\": \"napper\", \"cron\": \"@daily\", \"overlap\": "
               "\"queue\"}",
               "/overlap", NULL);
    expect_bad(&k, "{\"id\": \"x\", \"workflow\": \"nobody\", \"cron\": \"@daily\"}", "/workflow",
               "registered");
    expect_bad(&k, "{\"id\": \"x\", \"workflow\": \"napper\", \"cron\": \"@daily\", \"when\": 1}",
               "/when", "unknown");
    expect_bad(&k,
               "{\"id\": \"x\", \"workflow\": \"napper\", \"cron\": \"@daily\", \"tags\": {\"a\": "
               "2}}",
               "/tags/a", NULL);
    expect_bad(&k,
               "{\"id\": \"x\", \"workflow\": \"napper\", \"cron\": \"@daily\", \"tags\": "
               "{\"keel.schedule\": \"y\"}}",
               "/tags/keel.schedule", "Keel's own");
    assert_sql(db, "1", "SELECT count(*) FROM schedules");

    http_post_expect(k.base_url, "/v1/schedules",
                     "{\"id\": \"hourly\", \"workflow\": \"quick\", \"cron\": \"@hourly\"}", 201,
                     NULL);
    http_get(k.base_url, "/v1/schedules?limit=1", &r);
    json_t *items = json_object_get(r.json, "schedules");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_str(json_array_get(items, 0), "id"), "hourly");
    assert_int_equal(json_array_size(json_object_get(json_array_get(items, 0), "next_due")), 5);
    assert_string_equal(json_str(r.json, "next_cursor"), "hourly");
    hreply_free(&r);
    http_get(k.base_url, "/v1/schedules?cursor=hourly", &r);
    assert_string_equal(json_str(json_array_get(json_object_get(r.json, "schedules"), 0), "id"),
                        "nightly");
    hreply_free(&r);

    /* Pause and resume, journaled; pausing twice changes nothing more. */
    r = http_post_want(k.base_url, "/v1/schedules/nightly/pause", "", 200);
    assert_true(json_is_true(json_object_get(r.json, "paused")));
    hreply_free(&r);
    http_post_expect(k.base_url, "/v1/schedules/nightly/pause", "", 200, NULL);
    r = http_post_want(k.base_url, "/v1/schedules/nightly/resume", "", 200);
    assert_true(json_is_false(json_object_get(r.json, "paused")));
    hreply_free(&r);
    http_get(k.base_url, "/v1/schedules/nightly/history", &r);
    json_t *events = json_object_get(r.json, "events");
    assert_int_equal(json_array_size(events), 3);
    assert_string_equal(json_str(json_array_get(events, 0), "type"), "resumed");
    assert_string_equal(json_str(json_array_get(events, 1), "type"), "paused");
    assert_string_equal(json_str(json_array_get(events, 2), "type"), "created");
    hreply_free(&r);

    /* Trigger now: an execution "<id>:<now>" with the schedule's input and tags; with overlap
     * skip, a second trigger while it runs is 409 and starts nothing. */
    r = http_post_want(k.base_url, "/v1/schedules/nightly/trigger", "", 201);
    char exec_id[160];
    snprintf(exec_id, sizeof exec_id, "%s", json_str(r.json, "execution_id"));
    assert_true(!strncmp(exec_id, "nightly:", 8));
    hreply_free(&r);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT status || ' ' || input::text || ' ' || tags::text FROM executions WHERE id = "
             "'%s'",
             exec_id);
    wait_sql(db, "running {\"a\": 1} {\"team\": \"ops\", \"keel.schedule\": \"nightly\"}", sql);
    /* Its schedule's tag finds it; a start may not set a keel. tag itself. */
    http_get(k.base_url, "/v1/executions?tag=keel.schedule:nightly", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "executions")), 1);
    assert_string_equal(json_str(json_array_get(json_object_get(r.json, "executions"), 0), "id"),
                        exec_id);
    hreply_free(&r);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM events WHERE execution_id = '%s' AND type = "
             "'execution_started'",
             exec_id);
    wait_sql(db, "1", sql);
    /* In the same second it is the same execution (200); in another, overlap skip refuses. */
    http_post_json(k.base_url, "/v1/schedules/nightly/trigger", "", &r);
    if (r.status == 200)
        assert_string_equal(json_str(r.json, "execution_id"), exec_id);
    else
        assert_problem(&r, 409, "schedule-overlap");
    hreply_free(&r);
    sleep(1);
    r = http_post_want(k.base_url, "/v1/schedules/nightly/trigger", "", 409);
    assert_problem(&r, 409, "schedule-overlap");
    hreply_free(&r);
    assert_sql(db, "1", "SELECT count(*) FROM executions WHERE id LIKE 'nightly:%'");

    /* Delete: gone, with its history; its executions stay. */
    r = http_post_want(k.base_url, "/v1/schedules/nope/pause", "", 404);
    hreply_free(&r);
    struct hreply d;
    assert_int_equal(
        http_do(k.base_url, "DELETE", "/v1/schedules/nightly", NULL, NULL, 0, NULL, 10000, &d), 0);
    assert_int_equal(d.status, 200);
    hreply_free(&d);
    assert_int_equal(
        http_do(k.base_url, "DELETE", "/v1/schedules/nightly", NULL, NULL, 0, NULL, 10000, &d), 0);
    assert_int_equal(d.status, 404);
    hreply_free(&d);
    assert_sql(db, "0", "SELECT count(*) FROM schedule_events WHERE schedule_id = 'nightly'");
    assert_sql(db, "1", "SELECT count(*) FROM executions WHERE id LIKE 'nightly:%'");
    stack_stop(&db, &k, &receiver);
}

/* Downtime, simulated by moving a schedule's next due time back: only the latest due time at
 * or before now starts, and one "missed" event counts the others. Then the overlap policies. */
static void test_missed_and_overlap(void **state)
{
    (void)state;
    char *db = NULL;
    struct proc k, receiver;
    stack_start("keel_it_sched_missed", NULL, &db, &k, &receiver);
    define(&k);
    const char *policies[] = {"skip", "allow", "cancel_previous"};
    for (int i = 0; i < 3; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"id\": \"every-%s\", \"workflow\": \"napper\", \"cron\": \"* * * * *\", "
                 "\"overlap\": \"%s\"}",
                 policies[i], policies[i]);
        http_post_expect(k.base_url, "/v1/schedules", body, 201, NULL);
    }
    /* Ten minutes of downtime: due ten minutes ago, on a minute. */
    free(harness_sql_value(db, "UPDATE schedules SET next_due_at = date_trunc('minute', now()) - "
                               "interval '10 minutes' RETURNING 1"));
    wait_sql(db, "3", "SELECT count(*) FROM executions");
    for (int i = 0; i < 3; i++) {
        char sql[512];
        /* Started: the latest due time at or before now (this minute or, if the minute turned
         * meanwhile, the one before). */
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM executions WHERE id LIKE 'every-%s:%%' AND "
                 "substr(id, length('every-%s:') + 1)::timestamptz >= date_trunc('minute', now()) "
                 "- interval '1 minute'",
                 policies[i], policies[i]);
        assert_sql(db, "1", sql);
        snprintf(sql, sizeof sql,
                 "SELECT (data->>'count')::int BETWEEN 9 AND 11 FROM schedule_events WHERE "
                 "schedule_id = 'every-%s' AND type = 'missed'",
                 policies[i]);
        assert_sql(db, "t", sql);
    }
    /* Due again while the first still runs (sleeping an hour). */
    wait_sql(db, "3", "SELECT count(*) FROM steps WHERE status = 'sleeping'");
    free(harness_sql_value(db, "UPDATE schedules SET next_due_at = date_trunc('second', now()) "
                               "RETURNING 1"));
    /* skip: a "skipped" event, no start. allow: a second one runs beside it. cancel_previous:
     * the first is cancelled, the second runs. */
    wait_sql(db, "1",
             "SELECT count(*) FROM schedule_events WHERE schedule_id = 'every-skip' AND type = "
             "'skipped'");
    wait_sql(db, "2",
             "SELECT count(*) FROM executions WHERE id LIKE 'every-allow:%' AND status = "
             "'running'");
    wait_sql(db, "cancelled,running",
             "SELECT string_agg(status, ',' ORDER BY created_at) FROM executions WHERE id LIKE "
             "'every-cancel_previous:%'");
    assert_sql(db, "1", "SELECT count(*) FROM executions WHERE id LIKE 'every-skip:%'");
    stack_stop(&db, &k, &receiver);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api),
        cmocka_unit_test(test_missed_and_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
