/* Limits per destination (issue 12, point 4) against a real keeld, PostgreSQL and receiver:
 * KEEL_HOST_LIMITS=@file caps the receiver's host at 3 requests at once under 100 activity steps
 * (the receiver sees exactly 3 at once, never more), every step completes, and the waits are
 * journaled (waiting_for_capacity, once per waiting attempt) and shown on the step while they
 * last; a rate of 5/s spaces 20 requests (checked from below only); SIGHUP reads the file again
 * (1 -> 4 while requests wait; a bad file keeps the limit in force); a backlog for one host
 * does not stop the claiming of a timer (KEEL_MAX_IN_FLIGHT); two keelds divide a limit;
 * a bad entry stops keeld at start, naming it. Nothing here bounds how long the machine takes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *db;
static struct proc keeld, receiver;
static char limits_path[512];
static char limits_env[600];

/* ---- helpers ----------------------------------------------------------------------------- */

static void write_limits(const char *text)
{
    FILE *f = fopen(limits_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* GET /metrics of k (caller frees). */
static char *metrics_of(const struct proc *k)
{
    struct hreply r;
    http_get(k->base_url, "/metrics", &r);
    assert_int_equal(r.status, 200);
    char *text = strdup(r.body);
    hreply_free(&r);
    return text;
}

/* The value of name{host="127.0.0.1"} in k's metrics, or -1 when the series is not there. */
static double host_metric(const struct proc *k, const char *name)
{
    char *text = metrics_of(k);
    char needle[160];
    snprintf(needle, sizeof needle, "\n%s{host=\"127.0.0.1\"} ", name);
    const char *at = strstr(text, needle);
    double v = at ? strtod(at + strlen(needle), NULL) : -1;
    free(text);
    return v;
}

struct metric_wait {
    const struct proc *k;
    const char *name;
    double want;
};

static bool metric_is(void *arg)
{
    struct metric_wait *w = arg;
    return host_metric(w->k, w->name) == w->want;
}

static void wait_metric(const struct proc *k, const char *name, double want)
{
    struct metric_wait w = {k, name, want};
    if (!wait_for(metric_is, &w, 60000))
        fail_msg("%s{host=\"127.0.0.1\"} stayed %g, not %g", name, host_metric(k, name), want);
}

/* Writes the limits file, sends SIGHUP and waits until keeld's share of the concurrency is
 * concurrency (or, with concurrency 0, its rate per second is rate). */
static void reload(const char *text, double concurrency, double rate)
{
    write_limits(text);
    proc_signal(&keeld, SIGHUP);
    wait_metric(&keeld, "keel_host_limit_concurrency", concurrency);
    wait_metric(&keeld, "keel_host_limit_rate_per_second", rate);
}

struct log_wait {
    const char *path, *needle;
};

static bool log_has(void *arg)
{
    struct log_wait *w = arg;
    char *log = read_file(w->path);
    bool found = log && strstr(log, w->needle);
    free(log);
    return found;
}

static void wait_log(const struct proc *p, const char *needle)
{
    struct log_wait w = {p->log_path, needle};
    if (!wait_for(log_has, &w, 30000))
        fail_msg("no \"%s\" in %s", needle, p->log_path);
}

static json_int_t receiver_number(const char *name)
{
    json_t *s = receiver_stats(&receiver, "?keys=0");
    json_int_t v = json_integer_value(json_object_get(s, name));
    json_decref(s);
    return v;
}

static void receiver_reset(void)
{
    http_post_expect(receiver.base_url, "/_reset", "{}", 200, NULL);
}

/* Registers a workflow whose one step is a for_each over input.items, all at once, each
 * iteration an activity to path. */
static void register_loop(const char *name, const char *path)
{
    char def[1024];
    snprintf(def, sizeof def,
             "{\"name\": \"%s\", \"steps\": [{\"id\": \"all\", \"for_each\": {\"items\": "
             "\"${input.items}\", \"concurrency\": 1000, \"steps\": [{\"id\": \"call\", "
             "\"activity\": {\"url\": \"%s%s\"}, \"timeout\": \"5m\", \"retry\": "
             "{\"max_attempts\": 1}}]}}]}",
             name, receiver.base_url, path);
    http_post_expect(keeld.base_url, "/v1/workflows", def, 201, NULL);
}

/* Starts execution id of workflow with items 0..n-1. */
static void start_loop(const char *workflow, const char *id, int n)
{
    char *body = malloc(64 + (size_t)n * 8);
    int len = sprintf(body, "{\"id\": \"%s\", \"input\": {\"items\": [", id);
    for (int i = 0; i < n; i++)
        len += sprintf(body + len, i ? ", %d" : "%d", i);
    strcpy(body + len, "]}}");
    char path[128];
    snprintf(path, sizeof path, "/v1/workflows/%s/executions", workflow);
    http_post_expect(keeld.base_url, path, body, 201, NULL);
    free(body);
}

static bool ended(void *arg)
{
    char *status =
        harness_sqlf(db, "SELECT status FROM executions WHERE id = '%s'", (const char *)arg);
    bool done = status && strcmp(status, "running") != 0;
    free(status);
    return done;
}

/* Waits for the execution to end (however long the machine takes) and asserts it completed
 * with its n calls completed at their first attempt, none failed. */
static void assert_completed(const char *id, int n)
{
    if (!wait_for(ended, (void *)id, 300000))
        fail_msg("%s did not end", id);
    char *status = harness_sqlf(db, "SELECT status FROM executions WHERE id = '%s'", id);
    assert_string_equal(status, "completed");
    free(status);
    char want[16];
    snprintf(want, sizeof want, "%d", n);
    char *sql = NULL;
    assert_true(asprintf(&sql,
                         "SELECT count(*) FROM steps WHERE execution_id = '%s' AND step_id = "
                         "'call' AND status = 'completed' AND attempts = 1",
                         id) > 0);
    assert_sql(db, want, sql);
    free(sql);
    assert_true(asprintf(&sql,
                         "SELECT count(*) FROM events WHERE execution_id = '%s' AND type IN "
                         "('attempt_failed', 'step_failed', 'result_ignored')",
                         id) > 0);
    assert_sql(db, "0", sql);
    free(sql);
    /* No step says it waits any more. */
    assert_true(asprintf(&sql,
                         "SELECT count(*) FROM steps WHERE execution_id = '%s' AND capacity_wait "
                         "IS NOT NULL",
                         id) > 0);
    assert_sql(db, "0", sql);
    free(sql);
}

/* A step of execution id that GET /v1/executions/{id} shows waiting for capacity (a new
 * reference), or NULL. */
static json_t *waiting_step(const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/executions/%s", id);
    struct hreply r;
    http_get(keeld.base_url, path, &r);
    assert_int_equal(r.status, 200);
    json_t *found = NULL;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(r.json, "steps"), i, s)
    {
        json_t *w = json_object_get(s, "waiting_for_capacity");
        if (!json_is_object(w) && !json_is_null(w))
            fail_msg("waiting_for_capacity is neither an object nor null");
        if (!found && json_is_object(w))
            found = json_incref(s);
    }
    hreply_free(&r);
    return found;
}

static bool shows_waiting(void *arg)
{
    json_t *s = waiting_step(arg);
    bool yes = s != NULL;
    json_decref(s);
    return yes;
}

/* The waiting_for_capacity events of id in its history, read a page at a time. */
static int waiting_events_in_history(const char *id, json_t **first)
{
    int n = 0;
    char cursor[128] = "";
    *first = NULL;
    for (;;) {
        char path[300];
        snprintf(path, sizeof path, "/v1/executions/%s/history?limit=500%s%s", id,
                 cursor[0] ? "&cursor=" : "", cursor);
        struct hreply r;
        http_get(keeld.base_url, path, &r);
        assert_int_equal(r.status, 200);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(r.json, "events"), i, e)
        {
            if (strcmp(json_str(e, "type"), "waiting_for_capacity") != 0)
                continue;
            if (!*first)
                *first = json_incref(e);
            n++;
        }
        const char *next = json_str(r.json, "next_cursor");
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        hreply_free(&r);
        if (!cursor[0])
            return n;
    }
}

/* ---- setup ------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    char cwd[400];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(limits_path, sizeof limits_path, "%s/host-limits-%d.txt", cwd, (int)getpid());
    write_limits("# the receiver\n127.0.0.1=3\n");
    snprintf(limits_env, sizeof limits_env, "KEEL_HOST_LIMITS=@%s", limits_path);
    /* A small KEEL_MAX_IN_FLIGHT: attempts waiting for a host must not use it up. */
    static const char *env[] = {"KEEL_LEASE_GRACE_MS=300", "KEEL_MAX_IN_FLIGHT=8", NULL, NULL};
    env[2] = limits_env;
    stack_start("keel_it_host_limits", env, &db, &keeld, &receiver);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stack_stop(&db, &keeld, &receiver);
    unlink(limits_path);
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------- */

/* 100 activity steps at once (a for_each) to a slow receiver whose host is limited to 3: the
 * receiver sees exactly 3 at once at most, and 3 are reached; every step completes at its first
 * attempt; while they wait, steps show waiting_for_capacity; each attempt that waited is
 * journaled once, as many as the dispatcher counted, with its host and limit. */
static void test_concurrency_limit(void **state)
{
    (void)state;
    enum { N = 100 };
    reload("127.0.0.1=3\n", 3, 0);
    receiver_reset();
    double waited_before = host_metric(&keeld, "keel_host_limit_waited_total");
    register_loop("capped", "/slow/150");
    start_loop("capped", "cap-1", N);

    /* The API shows a step waiting, with its host and limit. */
    char id[] = "cap-1";
    if (!wait_for(shows_waiting, id, 120000))
        fail_msg("no step of cap-1 showed waiting_for_capacity");
    json_t *s = waiting_step("cap-1");
    if (s) {
        json_t *w = json_object_get(s, "waiting_for_capacity");
        assert_string_equal(json_str(s, "status"), "running");
        assert_string_equal(json_str(s, "id"), "call");
        assert_string_equal(json_str(w, "host"), "127.0.0.1");
        assert_string_equal(json_str(w, "limit"), "127.0.0.1=3");
        assert_int_equal(json_integer_value(json_object_get(w, "concurrency")), 3);
        assert_true(json_is_null(json_object_get(w, "rate")));
        assert_int_equal(json_integer_value(json_object_get(w, "attempt")), 1);
        assert_non_null(json_str(w, "since"));
        json_decref(s);
    }

    assert_completed("cap-1", N);
    assert_int_equal(receiver_number("max_in_progress"), 3);
    assert_int_equal(receiver_number("deliveries"), N);

    /* One event per attempt that waited, on its step and attempt, as many as were counted. */
    char *waited = harness_sql_value(db, "SELECT count(*) FROM events WHERE execution_id = "
                                         "'cap-1' AND type = 'waiting_for_capacity'");
    int n_waited = atoi(waited);
    free(waited);
    assert_true(n_waited >= 1 && n_waited <= N - 3);
    print_message("cap-1: %d of %d attempts waited; the receiver saw at most 3 at once\n", n_waited,
                  N);
    wait_metric(&keeld, "keel_host_limit_waited_total", waited_before + n_waited);
    assert_sql(db, "0",
               "SELECT count(*) FROM (SELECT path, attempt FROM events WHERE execution_id = "
               "'cap-1' AND type = 'waiting_for_capacity' GROUP BY path, attempt HAVING count(*) "
               "> 1) x");
    assert_sql(db, "0",
               "SELECT count(*) FROM events WHERE execution_id = 'cap-1' AND type = "
               "'waiting_for_capacity' AND (step <> 'call' OR attempt <> 1 OR path NOT LIKE "
               "'all/%/call')");
    /* Each comes before its step's completion. */
    assert_sql(db, "0",
               "SELECT count(*) FROM events w JOIN events c ON c.execution_id = w.execution_id "
               "AND c.path = w.path AND c.type = 'step_completed' WHERE w.execution_id = "
               "'cap-1' AND w.type = 'waiting_for_capacity' AND w.seq > c.seq");
    json_t *first = NULL;
    assert_int_equal(waiting_events_in_history("cap-1", &first), n_waited);
    json_t *data = json_object_get(first, "data");
    assert_string_equal(json_str(data, "host"), "127.0.0.1");
    assert_string_equal(json_str(data, "limit"), "127.0.0.1=3");
    assert_int_equal(json_integer_value(json_object_get(data, "concurrency")), 3);
    json_decref(first);
    wait_metric(&keeld, "keel_host_limit_in_flight", 0);
    wait_metric(&keeld, "keel_host_limit_waiting", 0);
}

/* 5 a second: 20 requests that could all go at once arrive spaced. Checked from below only and
 * loosely (a busy machine may delay one arrival, never bring two closer than sent): the 20 take
 * at least 80% of 19 spacings, and no 6 arrive within half a second. */
static void test_rate_limit(void **state)
{
    (void)state;
    enum { N = 20 };
    reload("127.0.0.1=5/s\n", 0, 5);
    receiver_reset();
    register_loop("rated", "/ok");
    start_loop("rated", "rate-1", N);
    assert_completed("rate-1", N);
    json_t *stats = receiver_stats(&receiver, "?keys=0&arrivals=1");
    json_t *arrivals = json_object_get(stats, "arrivals");
    int64_t at[N];
    int n = 0;
    size_t i;
    json_t *a;
    json_array_foreach(arrivals, i, a)
    {
        if (!strncmp(json_str(a, "key"), "rate-1/", 7) && n < N)
            at[n++] = json_integer_value(json_object_get(a, "at_ms"));
    }
    json_decref(stats);
    assert_int_equal(n, N);
    int64_t span = at[N - 1] - at[0];
    int64_t closest = INT64_MAX;
    for (int k = 1; k < N; k++)
        closest = at[k] - at[k - 1] < closest ? at[k] - at[k - 1] : closest;
    print_message("rate-1: %d requests at 5/s arrived over %lld ms, the closest two %lld ms "
                  "apart\n",
                  N, (long long)span, (long long)closest);
    if (span < (N - 1) * 200 * 8 / 10)
        fail_msg("%d requests at 5/s arrived within %lld ms", N, (long long)span);
    for (int k = 0; k + 5 < N; k++)
        if (at[k + 5] - at[k] < 500)
            fail_msg("6 requests arrived within %lld ms at 5/s", (long long)(at[k + 5] - at[k]));
    /* Waiting for a rate is journaled too. */
    assert_sql(db, "t",
               "SELECT count(*) > 0 FROM events WHERE execution_id = 'rate-1' AND type = "
               "'waiting_for_capacity' AND data->>'rate' = '5/s'");
}

struct number_wait {
    const char *name;
    json_int_t at_least;
};

static bool receiver_at_least(void *arg)
{
    struct number_wait *w = arg;
    return receiver_number(w->name) >= w->at_least;
}

/* A limit of 1 raised to 4 by SIGHUP while requests wait: the waiting requests get it at once
 * (the receiver sees 4 at once, never more); a bad file in between changes nothing. */
static void test_reload_while_waiting(void **state)
{
    (void)state;
    enum { N = 12 };
    reload("127.0.0.1=1\n", 1, 0);
    receiver_reset();
    register_loop("reloaded", "/slow/400");
    start_loop("reloaded", "reload-1", N);
    struct number_wait one = {"in_progress", 1};
    if (!wait_for(receiver_at_least, &one, 60000))
        fail_msg("no request of reload-1 reached the receiver");
    wait_metric(&keeld, "keel_host_limit_waiting", N - 1);
    assert_int_equal(receiver_number("max_in_progress"), 1);

    /* A bad file: an error line, and the limit of 1 stays. */
    write_limits("127.0.0.1=4 oops=\n");
    proc_signal(&keeld, SIGHUP);
    wait_log(&keeld, "the host limits were not reloaded");
    wait_log(&keeld, "entry \\\"oops=\\\" on line 1: no limit after");
    assert_int_equal(host_metric(&keeld, "keel_host_limit_concurrency"), 1);

    reload("127.0.0.1=4\n", 4, 0);
    struct number_wait four = {"max_in_progress", 4};
    if (!wait_for(receiver_at_least, &four, 60000))
        fail_msg("the receiver never saw 4 at once after the reload");
    assert_completed("reload-1", N);
    assert_int_equal(receiver_number("max_in_progress"), 4);
}

static bool released_until_ended(void *arg)
{
    http_post_expect(receiver.base_url, "/_release", "{}", 200, NULL);
    return ended(arg);
}

/* A backlog waiting for one host (more than KEEL_MAX_IN_FLIGHT) does not hold up the rest: a
 * timer due meanwhile is claimed and fires, and its execution ends while the backlog waits. */
static void test_backlog_holds_up_nothing_else(void **state)
{
    (void)state;
    enum { N = 12 };
    reload("127.0.0.1=1\n", 1, 0);
    receiver_reset();
    register_loop("backlog", "/hold/600000");
    http_post_expect(keeld.base_url, "/v1/workflows",
                     "{\"name\": \"napper\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"100ms\"}]}",
                     201, NULL);
    start_loop("backlog", "backlog-1", N);
    wait_metric(&keeld, "keel_host_limit_waiting", N - 1);
    http_post_expect(keeld.base_url, "/v1/workflows/napper/executions", "{\"id\": \"nap-1\"}", 201,
                     NULL);
    char nap[] = "nap-1";
    if (!wait_for(ended, nap, 60000))
        fail_msg("a timer did not fire while %d attempts waited for another host", N - 1);
    assert_sql(db, "completed", "SELECT status FROM executions WHERE id = 'nap-1'");
    assert_int_equal(host_metric(&keeld, "keel_host_limit_waiting"), N - 1);
    /* Let the backlog go, one held request after another. */
    char id[] = "backlog-1";
    if (!wait_for(released_until_ended, id, 300000))
        fail_msg("backlog-1 did not end");
    assert_completed("backlog-1", N);
    assert_int_equal(receiver_number("max_in_progress"), 1);
}

/* Two keelds on one database divide a limit of 3: 2 and 1 (the shares add up to it), each
 * shown in its metrics; once the second stops, the first has it whole again. */
static void test_two_keelds_divide(void **state)
{
    (void)state;
    reload("127.0.0.1=3\n", 3, 0);
    struct proc second;
    const char *const env[] = {"KEEL_LEASE_GRACE_MS=300", limits_env, NULL};
    keeld_start(&second, db, env, NULL);
    struct {
        double a, b;
    } seen = {0, 0};
    for (int i = 0; i < 3000; i++) {
        seen.a = host_metric(&keeld, "keel_host_limit_concurrency");
        seen.b = host_metric(&second, "keel_host_limit_concurrency");
        if (seen.a + seen.b == 3 && seen.a >= 1 && seen.b >= 1)
            break;
        usleep(20 * 1000);
    }
    if (seen.a + seen.b != 3 || seen.a < 1 || seen.b < 1)
        fail_msg("two keelds hold %g and %g of a limit of 3", seen.a, seen.b);
    wait_log(&keeld, "host limits divided among the live keelds");
    keeld_stop(&second);
    wait_metric(&keeld, "keel_host_limit_concurrency", 3);
}

/* A bad entry, or a file that cannot be read, stops keeld at start with exit code 2 and a line
 * naming the entry or the file. */
static void test_bad_limits_refused_at_start(void **state)
{
    (void)state;
    const char *const cases[][2] = {
        {"KEEL_HOST_LIMITS=127.0.0.1=3 payments.internal=20,50/x",
         "entry \\\"payments.internal=20,50/x\\\": \\\"x\\\" is not a unit of a rate"},
        {"KEEL_HOST_LIMITS=@/nonexistent/keel-limits", "cannot read /nonexistent/keel-limits"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const env[] = {cases[i][0], NULL};
        struct proc k;
        keeld_spawn(&k, db, env, NULL);
        assert_int_equal(proc_wait(&k, 30000), 2);
        char *log = read_file(k.log_path);
        if (!log || !strstr(log, "KEEL_HOST_LIMITS (--host-limits) is refused") ||
            !strstr(log, cases[i][1]))
            fail_msg("keeld's refusal does not say \"%s\":\n%s", cases[i][1], log ? log : "");
        free(log);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrency_limit),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_reload_while_waiting),
        cmocka_unit_test(test_backlog_holds_up_nothing_else),
        cmocka_unit_test(test_two_keelds_divide),
        cmocka_unit_test(test_bad_limits_refused_at_start),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
