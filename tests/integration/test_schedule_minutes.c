/* Schedules on the real clock (issue 12): a schedule every minute on two keelds across a kill -9.
 * It waits for minute boundaries (one to two minutes), so it has a file of its own, which runs in
 * the plain build only; the schedules' code runs under the sanitizers in test_schedules.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool minute_starts(void *arg)
{
    void **a = arg;
    char *v = harness_sql_value(a[0], "SELECT count(*) FROM executions WHERE id LIKE 'tick:%'");
    bool ok = v && atoi(v) >= *(int *)a[1];
    free(v);
    return ok;
}

/* A schedule every minute on two keelds, one killed -9 right after the first start and started
 * again: the next minute starts exactly once, and none between is lost. */
static void test_every_minute_kill9(void **state)
{
    (void)state;
    static const char *const env[] = {"KEEL_LEASE_GRACE_MS=1000", NULL};
    char *db = NULL;
    struct proc a, b, receiver;
    stack_start("keel_it_sched_kill", env, &db, &a, &receiver);
    keeld_start(&b, db, env, NULL);
    http_post_expect(a.base_url, "/v1/workflows",
                     "{\"name\": \"quick\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"1ms\"}]}",
                     201, NULL);
    http_post_expect(a.base_url, "/v1/schedules",
                     "{\"id\": \"tick\", \"workflow\": \"quick\", \"cron\": \"* * * * *\", "
                     "\"overlap\": \"allow\"}",
                     201, NULL);
    int want = 1;
    void *arg[] = {db, &want};
    if (!wait_for(minute_starts, arg, 90000))
        fail_msg("no start within 90 s");
    proc_kill9(&a);
    keeld_start(&a, db, env, NULL);
    want = 2;
    if (!wait_for(minute_starts, arg, 130000))
        fail_msg("no second start within 130 s");
    /* Consecutive minutes, each once; each ran. */
    assert_sql(db, "t",
               "SELECT count(*) = 1 + extract(epoch FROM max(substr(id, 6)::timestamptz) - "
               "min(substr(id, 6)::timestamptz)) / 60 FROM executions WHERE id LIKE 'tick:%'");
    assert_sql(db, "t",
               "SELECT count(*) = (SELECT count(*) FROM executions WHERE id LIKE 'tick:%') FROM "
               "schedule_events WHERE schedule_id = 'tick' AND type = 'started'");
    assert_sql(db, "0",
               "SELECT count(*) FROM schedule_events WHERE schedule_id = 'tick' AND type IN "
               "('missed', 'skipped', 'start_failed')");
    wait_sql(db, "0",
             "SELECT count(*) FROM executions WHERE id LIKE 'tick:%' AND status <> 'completed'");
    keeld_stop(&b);
    stack_stop(&db, &a, &receiver);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_minute_kill9),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
