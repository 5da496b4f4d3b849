/* Metrics that operators need (issue 12, point 6): per-workflow counters and histograms, webhook
 * results per host, the cluster-wide backlog gauges read from PostgreSQL (and a scrape that
 * still answers when PostgreSQL is down), the bound on workflow label values, and the sample
 * alert rules of docs/ using only metrics keeld serves. The exposition is parsed strictly
 * (prom.h) and every value is compared exactly, polling until it holds: metrics are counted
 * just after the commit that a long poll may already have reported. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "prom.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char *db;
static struct proc keeld, receiver;

static int group_setup(void **state)
{
    (void)state;
    stack_start("keel_it_metrics", NULL, &db, &keeld, &receiver);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    stack_stop(&db, &keeld, &receiver);
    return 0;
}

/* ---- scraping ------------------------------------------------------------------------------ */

/* One expected value: the sample named name with exactly labels ("k=v,..."), or with sum set
 * the sum of the samples whose labels include labels; absent: no such sample at all. */
struct want {
    const char *name;
    const char *labels;
    double value;
    bool sum;
    bool absent;
};

/* Scrapes /metrics of k and parses it strictly; fails the test on a bad exposition. */
static void scrape(const struct proc *k, struct prom *p)
{
    struct hreply r;
    http_get(k->base_url, "/metrics", &r);
    if (r.status != 200)
        fail_msg("/metrics: %ld %s", r.status, r.body);
    char ct[128];
    assert_true(hreply_header(&r, "Content-Type", ct, sizeof ct));
    assert_non_null(strstr(ct, "text/plain; version=0.0.4"));
    char *why = NULL;
    if (prom_parse(r.body, p, &why) < 0 || prom_check_histograms(p, &why) < 0)
        fail_msg("/metrics is not a valid exposition: %s\n%s", why, r.body);
    hreply_free(&r);
}

/* NULL when every want holds, else a description of the first that does not (caller frees). */
static char *mismatch(const struct prom *p, const struct want *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *m = NULL;
        double v = 0;
        if (w[i].absent) {
            if (prom_count(p, w[i].name, w[i].labels) > 0 &&
                asprintf(&m, "%s{%s} should be absent", w[i].name, w[i].labels) < 0)
                abort();
        } else if (w[i].sum) {
            v = prom_sum(p, w[i].name, w[i].labels);
            if (v != w[i].value && asprintf(&m, "sum of %s{%s...} is %g, want %g", w[i].name,
                                            w[i].labels, v, w[i].value) < 0)
                abort();
        } else if (!prom_get(p, w[i].name, w[i].labels, &v)) {
            if (asprintf(&m, "no %s{%s}", w[i].name, w[i].labels) < 0)
                abort();
        } else if (v != w[i].value) {
            if (asprintf(&m, "%s{%s} is %g, want %g", w[i].name, w[i].labels, v, w[i].value) < 0)
                abort();
        }
        if (m)
            return m;
    }
    return NULL;
}

/* Scrapes k until every want holds (failing the test after timeout_ms, with the last
 * mismatch); the last scrape goes to out when it is not NULL (caller prom_frees it). */
static void scrape_until(const struct proc *k, const struct want *w, size_t n, int timeout_ms,
                         struct prom *out)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        struct prom p;
        scrape(k, &p);
        char *m = mismatch(&p, w, n);
        if (!m) {
            if (out)
                *out = p;
            else
                prom_free(&p);
            return;
        }
        prom_free(&p);
        if (now_ms() > deadline)
            fail_msg("/metrics of %s after %d ms: %s", k->base_url, timeout_ms, m);
        free(m);
        usleep(200 * 1000);
    }
}

#define N_WANTS(w) (sizeof(w) / sizeof((w)[0]))

static double value_of(const struct prom *p, const char *name, const char *labels)
{
    double v = NAN;
    if (!prom_get(p, name, labels, &v))
        fail_msg("no %s{%s}", name, labels);
    return v;
}

static void register_def(const struct proc *k, const char *def)
{
    char *text = harness_subst_r(def, receiver.base_url);
    http_post_expect(k->base_url, "/v1/workflows", text, 201, NULL);
    free(text);
}

static void start_exec(const struct proc *k, const char *workflow, const char *id,
                       const char *input)
{
    char path[256], *body = NULL;
    snprintf(path, sizeof path, "/v1/workflows/%s/executions", workflow);
    assert_true(asprintf(&body, "{\"id\": \"%s\", \"input\": %s}", id, input) > 0);
    http_post_expect(k->base_url, path, body, 201, NULL);
    free(body);
}

static void assert_ended(const char *id, const char *status)
{
    json_t *e = wait_result(keeld.base_url, id);
    if (strcmp(json_str(e, "status"), status))
        fail_msg("%s ended %s, want %s", id, json_str(e, "status"), status);
    json_decref(e);
}

/* ---- per workflow and per host ------------------------------------------------------------- */

/* Two workflows, one of whose executions fail in every way a webhook can, on four hosts: the
 * receiver as 127.0.0.1 and as localhost, a port that refuses connections, and a link-local
 * address that the destination policy refuses. */
static void test_workflows_and_hosts(void **state)
{
    (void)state;
    /* A bound socket that never listens: connections are refused, and no one takes the port. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    unsigned closed = ntohs(a.sin_port);

    register_def(&keeld, "{\"name\": \"m-orders\", \"steps\": [{\"id\": \"charge\", "
                         "\"activity\": {\"url\": \"%R/ok\", \"input\": \"${input}\"}}]}");
    register_def(&keeld, "{\"name\": \"m-refunds\", \"defaults\": {\"timeout\": \"1s\", "
                         "\"retry\": {\"max_attempts\": 1}}, \"steps\": [{\"id\": \"refund\", "
                         "\"activity\": {\"url\": \"${input.url}\", \"input\": \"${input}\"}}]}");
    assert_int_equal(start_range(&keeld, "m-orders", "m-orders", 0, 4, NULL), 4);
    struct {
        const char *id;
        const char *path; /* on localhost:<receiver port>, or a whole URL */
        const char *status;
    } refunds[] = {
        {"refund-ok", "/ok", "completed"},
        {"refund-async", "/token/after", "completed"},
        {"refund-404", "/fail/404", "failed"},
        {"refund-410", "/gone", "failed"},
        {"refund-500", "/fail/500", "failed"},
        {"refund-timeout", "/slow/3000", "failed"},
        {"refund-closed", NULL, "failed"},
        {"refund-policy", "http://169.254.169.254/latest/meta-data", "failed"},
    };
    for (size_t i = 0; i < N_WANTS(refunds); i++) {
        char url[128], input[512];
        if (!refunds[i].path)
            snprintf(url, sizeof url, "http://127.0.0.1:%u/x", closed);
        else if (refunds[i].path[0] == '/')
            snprintf(url, sizeof url, "http://localhost:%u%s", receiver.port, refunds[i].path);
        else
            snprintf(url, sizeof url, "%s", refunds[i].path);
        snprintf(input, sizeof input, "{\"url\": \"%s\", \"keeld\": \"%s\"}", url, keeld.base_url);
        start_exec(&keeld, "m-refunds", refunds[i].id, input);
    }
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof id, "m-orders-%d", i);
        assert_ended(id, "completed");
    }
    for (size_t i = 0; i < N_WANTS(refunds); i++)
        assert_ended(refunds[i].id, refunds[i].status);
    close(fd);

    char h1[64], h2[64], h3[64];
    snprintf(h1, sizeof h1, "host=127.0.0.1:%u", receiver.port);
    snprintf(h2, sizeof h2, "host=localhost:%u", receiver.port);
    snprintf(h3, sizeof h3, "host=127.0.0.1:%u", closed);
    char h1_2xx[96], h2_2xx[96], h2_202[96], h2_4xx[96], h2_5xx[96], h2_timeout[96], h3_connect[96];
    snprintf(h1_2xx, sizeof h1_2xx, "%s,result=2xx", h1);
    snprintf(h2_2xx, sizeof h2_2xx, "%s,result=2xx", h2);
    snprintf(h2_202, sizeof h2_202, "%s,result=202", h2);
    snprintf(h2_4xx, sizeof h2_4xx, "%s,result=4xx", h2);
    snprintf(h2_5xx, sizeof h2_5xx, "%s,result=5xx", h2);
    snprintf(h2_timeout, sizeof h2_timeout, "%s,result=timeout", h2);
    snprintf(h3_connect, sizeof h3_connect, "%s,result=connect_error", h3);
    const struct want wants[] = {
        {"keel_executions_started_total", "workflow=m-orders", 4, false, false},
        {"keel_executions_started_total", "workflow=m-refunds", 8, false, false},
        {"keel_executions_ended_total", "workflow=m-orders,status=completed", 4, false, false},
        {"keel_executions_ended_total", "workflow=m-orders,status=failed", 0, false, false},
        {"keel_executions_ended_total", "workflow=m-refunds,status=completed", 2, false, false},
        {"keel_executions_ended_total", "workflow=m-refunds,status=failed", 6, false, false},
        {"keel_executions_ended_total", "workflow=m-refunds,status=cancelled", 0, false, false},
        {"keel_executions_ended_total", "workflow=m-refunds,status=terminated", 0, false, false},
        {"keel_execution_duration_seconds_count", "workflow=m-orders", 4, false, false},
        {"keel_execution_duration_seconds_count", "workflow=m-refunds", 8, false, false},
        {"keel_execution_duration_seconds_bucket", "workflow=m-refunds,le=+Inf", 8, false, false},
        {"keel_activity_attempt_duration_seconds_count", "workflow=m-orders", 4, false, false},
        {"keel_activity_attempt_duration_seconds_count", "workflow=m-refunds", 8, false, false},
        /* Every result of every host, exactly. */
        {"keel_webhook_results_total", h1_2xx, 4, false, false},
        {"keel_webhook_results_total", h1, 4, true, false},
        {"keel_webhook_results_total", h2_2xx, 1, false, false},
        {"keel_webhook_results_total", h2_202, 1, false, false},
        {"keel_webhook_results_total", h2_4xx, 2, false, false},
        {"keel_webhook_results_total", h2_5xx, 1, false, false},
        {"keel_webhook_results_total", h2_timeout, 1, false, false},
        {"keel_webhook_results_total", h2, 6, true, false},
        {"keel_webhook_results_total", h3_connect, 1, false, false},
        {"keel_webhook_results_total", h3, 1, true, false},
        {"keel_webhook_results_total", "host=169.254.169.254,result=refused", 1, false, false},
        {"keel_webhook_results_total", "host=169.254.169.254", 1, true, false},
        {"keel_webhook_results_total", "", 4 + 6 + 1 + 1, true, false},
        {"keel_webhook_host_duration_seconds_count", h1, 4, false, false},
        {"keel_webhook_host_duration_seconds_count", h2, 6, false, false},
        {"keel_webhook_host_duration_seconds_count", h3, 1, false, false},
        {"keel_metrics_label_values", "label=host", 4, false, false},
        {"keel_executions_started_total", "workflow=_other", 0, false, true},
    };
    struct prom p;
    scrape_until(&keeld, wants, N_WANTS(wants), 60000, &p);
    /* Two workflow labels on the histograms' series, and no other. */
    assert_int_equal(prom_distinct(&p, "keel_execution_duration_seconds_count", "workflow"), 2);
    /* The one attempt that timed out took at least its timeout of 1 s. */
    assert_true(value_of(&p, "keel_activity_attempt_duration_seconds_sum", "workflow=m-refunds") >=
                1.0);
    assert_true(value_of(&p, "keel_execution_duration_seconds_sum", "workflow=m-refunds") >= 1.0);
    prom_free(&p);
}

/* ---- the backlog --------------------------------------------------------------------------- */

/* The alert rules of docs/ use only metrics that keeld declares. */
static void check_alert_metrics(const struct prom *p)
{
    char path[512];
    snprintf(path, sizeof path, "%s/docs/prometheus-alerts.yml", harness_env("KEEL_SOURCE_DIR"));
    char *text = read_file(path);
    assert_non_null(text);
    int found = 0;
    for (const char *s = strstr(text, "keel_"); s; s = strstr(s + 1, "keel_")) {
        if (s > text && (s[-1] == '_' || (s[-1] >= 'a' && s[-1] <= 'z')))
            continue;
        size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz_");
        if (s[n - 1] == '_')
            continue; /* a prefix in a comment: keel_tasks_* */
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)n, s);
        if (!json_object_get(p->types, name))
            fail_msg("docs/prometheus-alerts.yml uses %s, which /metrics does not declare", name);
        found++;
    }
    assert_true(found >= 8);
    free(text);
}

/* Timers pending, tasks due and overdue (of a keeld that stopped with its executions' timers
 * due), their end once it goes on, and a scrape that answers while PostgreSQL is down. */
static void test_backlog(void **state)
{
    (void)state;
    const struct want idle[] = {
        {"keel_backlog_read_ok", "", 1, false, false},
        {"keel_executions_running", "", 0, false, false},
        {"keel_tasks_due", "", 0, false, false},
        {"keel_tasks_overdue", "", 0, false, false},
        {"keel_tasks_oldest_due_age_seconds", "", 0, false, false},
        {"keel_tasks_pending", "kind=timer", 0, false, false},
        {"keel_tasks_pending", "", 0, true, false},
    };
    struct prom p;
    scrape_until(&keeld, idle, N_WANTS(idle), 60000, &p);
    check_alert_metrics(&p);
    assert_true(value_of(&p, "keel_backlog_read_age_seconds", "") >= 0);
    assert_true(value_of(&p, "keel_tasks_leased", "") >= 0);
    prom_free(&p);

    /* Three executions asleep for an hour: three timers pending. */
    register_def(&keeld, "{\"name\": \"m-sleepy\", \"steps\": [{\"id\": \"nap\", \"sleep\": "
                         "\"1h\"}]}");
    assert_int_equal(start_range(&keeld, "m-sleepy", "m-sleepy", 0, 3, NULL), 3);
    const struct want sleeping[] = {
        {"keel_executions_running", "", 3, false, false},
        {"keel_tasks_pending", "kind=timer", 3, false, false},
        {"keel_tasks_pending", "", 3, true, false},
        {"keel_tasks_due", "", 0, false, false},
    };
    scrape_until(&keeld, sleeping, N_WANTS(sleeping), 60000, NULL);

    /* A second keeld starts four executions whose timers it owns, then stops (SIGSTOP: its
     * session and heartbeat stay, for the long lease grace given, so no one takes them over).
     * Their timers are made due five minutes ago: due and overdue, with no keeld to claim
     * them. */
    struct proc b;
    const char *env_b[] = {"KEEL_LEASE_GRACE_MS=600000", NULL};
    keeld_start(&b, db, env_b, NULL);
    register_def(&b, "{\"name\": \"m-due\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"1h\"}]}");
    assert_int_equal(start_range(&b, "m-due", "m-due", 0, 4, NULL), 4);
    proc_signal(&b, SIGSTOP);
    char *moved = harness_sql_value(db, "WITH m AS (UPDATE tasks SET due_at = now() - interval "
                                        "'5 minutes' WHERE execution_id LIKE 'm-due-%' "
                                        "RETURNING 1) SELECT count(*) FROM m");
    assert_string_equal(moved, "4");
    free(moved);
    const struct want stuck[] = {
        {"keel_executions_running", "", 7, false, false},
        {"keel_tasks_due", "", 4, false, false},
        {"keel_tasks_overdue", "", 4, false, false},
        {"keel_tasks_pending", "kind=timer", 3, false, false},
        {"keel_tasks_pending", "", 3, true, false},
    };
    scrape_until(&keeld, stuck, N_WANTS(stuck), 60000, &p);
    assert_true(value_of(&p, "keel_tasks_oldest_due_age_seconds", "") >= 300);
    prom_free(&p);

    /* It goes on: it fires them at once, and the backlog is back to the three sleepers. */
    proc_signal(&b, SIGCONT);
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof id, "m-due-%d", i);
        json_t *e = wait_result(b.base_url, id);
        assert_string_equal(json_str(e, "status"), "completed");
        json_decref(e);
    }
    scrape_until(&keeld, sleeping, N_WANTS(sleeping), 60000, NULL);
    keeld_stop(&b);

    /* PostgreSQL down: /metrics still answers, with the process's metrics and a backlog read
     * that failed (its values left out, not stale), then recovers once it is back. */
    harness_pg("stop");
    int64_t t0 = now_ms();
    const struct want down[] = {
        {"keel_backlog_read_ok", "", 0, false, false},
        {"keel_build_info", "version=" KEEL_VERSION, 1, false, false},
        {"keel_executions_started_total", "workflow=m-sleepy", 3, false, false},
        {"keel_tasks_due", "", 0, false, true},
        {"keel_executions_running", "", 0, false, true},
    };
    scrape_until(&keeld, down, N_WANTS(down), 60000, &p);
    print_message("# the backlog read failed %lld ms after PostgreSQL stopped\n",
                  (long long)(now_ms() - t0));
    assert_true(value_of(&p, "keel_backlog_read_errors_total", "") >= 1);
    assert_true(value_of(&p, "keel_backlog_read_age_seconds", "") >= 0);
    prom_free(&p);
    /* Every scrape meanwhile answers: time a few (printed, not bounded: the machine may be
     * busy). */
    for (int i = 0; i < 3; i++) {
        t0 = now_ms();
        scrape(&keeld, &p);
        prom_free(&p);
        print_message("# a scrape with PostgreSQL down took %lld ms\n", (long long)(now_ms() - t0));
    }
    harness_pg("start");
    scrape_until(&keeld, sleeping, N_WANTS(sleeping), 60000, NULL);
    const struct want up[] = {{"keel_backlog_read_ok", "", 1, false, false}};
    scrape_until(&keeld, up, N_WANTS(up), 60000, NULL);
}

/* ---- the bound ----------------------------------------------------------------------------- */

/* 150 more workflows: the first ones up to 100 label values get their own, the rest share
 * _other, and the exposition does not grow further. */
static void test_workflow_label_bound(void **state)
{
    (void)state;
    enum { N = 150 };
    struct prom p;
    scrape(&keeld, &p);
    double used = value_of(&p, "keel_metrics_label_values", "label=workflow");
    double started_before = prom_sum(&p, "keel_executions_started_total", "");
    prom_free(&p);
    assert_true(used >= 3 && used < 100);
    for (int i = 0; i < N; i++) {
        char def[256], name[32], id[48];
        snprintf(name, sizeof name, "m-bound-%03d", i);
        snprintf(def, sizeof def,
                 "{\"name\": \"%s\", \"steps\": [{\"id\": \"v\", \"set\": {\"i\": "
                 "\"${input.i}\"}}]}",
                 name);
        register_def(&keeld, def);
        snprintf(id, sizeof id, "%s-0", name);
        start_exec(&keeld, name, id, "{\"i\": 1}");
    }
    double other = N - (100 - used);
    const struct want wants[] = {
        {"keel_metrics_label_values", "label=workflow", 100, false, false},
        {"keel_executions_started_total", "", started_before + N, true, false},
        {"keel_executions_started_total", "workflow=_other", other, false, false},
        {"keel_executions_ended_total", "workflow=_other,status=completed", other, false, false},
        {"keel_execution_duration_seconds_count", "workflow=_other", other, false, false},
        {"keel_executions_started_total", "workflow=m-bound-000", 1, false, false},
        {"keel_executions_started_total", "workflow=m-bound-149", 0, false, true},
    };
    scrape_until(&keeld, wants, N_WANTS(wants), 120000, &p);
    /* 100 values and _other, on every per-workflow metric. */
    assert_int_equal(prom_distinct(&p, "keel_executions_started_total", "workflow"), 101);
    assert_int_equal(prom_distinct(&p, "keel_execution_duration_seconds_count", "workflow"), 101);
    assert_int_equal(prom_distinct(&p, "keel_activity_attempt_duration_seconds_count", "workflow"),
                     101);
    assert_int_equal(prom_count(&p, "keel_executions_ended_total", ""), 101 * 4);
    prom_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workflows_and_hosts),
        cmocka_unit_test(test_backlog),
        cmocka_unit_test(test_workflow_label_bound),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
