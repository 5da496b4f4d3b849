/* The metrics registry: bounded label tables (the value after the bound is _other; values seen
 * first by several threads at once get one slot each), result classes, host labels, and the
 * exposition (cumulative buckets, _sum and _count, escapes), read back with the integration
 * tests' strict parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "metrics.c"

#include "../../integration/harness/prom.c"

#include <math.h>
#include <stdio.h>

/* Empties the registry (its label tables included) between tests. */
static void reset_registry(void)
{
    struct label_table *tables[] = {&registry.workflow_labels, &registry.host_labels};
    for (size_t t = 0; t < 2; t++) {
        size_t n = atomic_load(&tables[t]->n);
        for (size_t i = 0; i < n; i++) {
            free(tables[t]->values[i]);
            tables[t]->values[i] = NULL;
        }
        for (size_t i = 0; i < LABEL_HASH; i++)
            atomic_store(&tables[t]->hash[i], 0);
        atomic_store(&tables[t]->n, 0);
        atomic_store(&tables[t]->full, false);
    }
    memset(registry.workflows, 0, sizeof registry.workflows);
    memset(registry.hosts, 0, sizeof registry.hosts);
}

static int setup(void **state)
{
    (void)state;
    reset_registry();
    return 0;
}

/* Renders and parses the whole exposition, failing the test on any syntax error or on a
 * histogram that is not cumulative. */
static void render_parse(struct prom *p)
{
    struct buf b = BUF_INIT;
    metrics_render(&b, 1, 2, 3);
    char *why = NULL;
    if (prom_parse(b.data, p, &why) < 0)
        fail_msg("%s", why);
    if (prom_check_histograms(p, &why) < 0)
        fail_msg("%s", why);
    buf_free(&b);
}

static void test_workflow_bound(void **state)
{
    (void)state;
    char name[32];
    for (int i = 0; i < METRICS_MAX_WORKFLOWS; i++) {
        snprintf(name, sizeof name, "wf-%d", i);
        assert_int_equal(metrics_workflow_label(name, false), i);
    }
    /* Seen again: the same slots, found without the lock. */
    for (int i = 0; i < METRICS_MAX_WORKFLOWS; i++) {
        snprintf(name, sizeof name, "wf-%d", i);
        assert_int_equal(metrics_workflow_label(name, false), i);
    }
    /* The 101st and every later one: _other. */
    for (int i = METRICS_MAX_WORKFLOWS; i < 150; i++) {
        snprintf(name, sizeof name, "wf-%d", i);
        assert_int_equal(metrics_workflow_label(name, false), METRICS_MAX_WORKFLOWS);
        metrics_execution_started(metrics_workflow_label(name, false));
    }
    assert_int_equal(atomic_load(&registry.workflow_labels.n), METRICS_MAX_WORKFLOWS);
    /* Code executions have their own label, outside the table. */
    int code = metrics_workflow_label("wf-0", true);
    assert_int_equal(code, METRICS_MAX_WORKFLOWS + 1);
    metrics_execution_started(code);
    metrics_execution_started(metrics_workflow_label("wf-7", false));

    struct prom p;
    render_parse(&p);
    /* 100 values, _other and _code. */
    assert_int_equal(prom_distinct(&p, "keel_executions_started_total", "workflow"),
                     METRICS_MAX_WORKFLOWS + 2);
    double v;
    assert_true(prom_get(&p, "keel_executions_started_total", "workflow=_other", &v));
    assert_true(v == 50);
    assert_true(prom_get(&p, "keel_executions_started_total", "workflow=_code", &v));
    assert_true(v == 1);
    assert_true(prom_get(&p, "keel_executions_started_total", "workflow=wf-7", &v));
    assert_true(v == 1);
    assert_true(prom_get(&p, "keel_executions_started_total", "workflow=wf-8", &v));
    assert_true(v == 0);
    assert_false(prom_get(&p, "keel_executions_started_total", "workflow=wf-100", &v));
    assert_true(prom_get(&p, "keel_metrics_label_values", "label=workflow", &v));
    assert_true(v == METRICS_MAX_WORKFLOWS);
    /* Four statuses per workflow label. */
    assert_int_equal(prom_count(&p, "keel_executions_ended_total", ""),
                     (METRICS_MAX_WORKFLOWS + 2) * 4);
    prom_free(&p);
}

static void test_no_other_until_used(void **state)
{
    (void)state;
    metrics_execution_started(metrics_workflow_label("only", false));
    struct prom p;
    render_parse(&p);
    assert_int_equal(prom_count(&p, "keel_executions_started_total", ""), 1);
    assert_int_equal(prom_count(&p, "keel_executions_started_total", "workflow=_other"), 0);
    assert_int_equal(prom_count(&p, "keel_webhook_results_total", ""), 0);
    prom_free(&p);
}

/* ---- first sight from several threads ------------------------------------------------------ */

#define N_THREADS 8
#define N_NAMES   150 /* more than the host bound (50) and the workflow bound (100) */

struct sight {
    int index;
    int workflow[N_NAMES];
    int host[N_NAMES];
};

static void *look_up_all(void *arg)
{
    struct sight *s = arg;
    /* Each thread in its own order, so that they race on the first sight of every name. */
    for (int k = 0; k < N_NAMES; k++) {
        int i = (k * 7 + s->index * 31) % N_NAMES;
        char name[32], url[64];
        snprintf(name, sizeof name, "race-%d", i);
        snprintf(url, sizeof url, "http://host-%d.example:8080/path", i);
        s->workflow[i] = metrics_workflow_label(name, false);
        s->host[i] = metrics_host_label(url);
        metrics_webhook_host(s->host[i], METRICS_RESULT_2XX, 1000);
    }
    return NULL;
}

static void test_concurrent_first_sight(void **state)
{
    (void)state;
    pthread_t t[N_THREADS];
    struct sight s[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        s[i].index = i;
        pthread_create(&t[i], NULL, look_up_all, &s[i]);
    }
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&registry.workflow_labels.n), METRICS_MAX_WORKFLOWS);
    assert_int_equal(atomic_load(&registry.host_labels.n), METRICS_MAX_HOSTS);
    /* Every thread got the same slot for a name; each slot of the table went to one name. */
    int wf_owner[METRICS_MAX_WORKFLOWS], host_owner[METRICS_MAX_HOSTS];
    memset(wf_owner, -1, sizeof wf_owner);
    memset(host_owner, -1, sizeof host_owner);
    int wf_other = 0, host_other = 0;
    for (int i = 0; i < N_NAMES; i++) {
        for (int k = 1; k < N_THREADS; k++) {
            assert_int_equal(s[k].workflow[i], s[0].workflow[i]);
            assert_int_equal(s[k].host[i], s[0].host[i]);
        }
        int w = s[0].workflow[i], h = s[0].host[i];
        if (w == METRICS_MAX_WORKFLOWS) {
            wf_other++;
        } else {
            assert_in_range(w, 0, METRICS_MAX_WORKFLOWS - 1);
            assert_int_equal(wf_owner[w], -1);
            wf_owner[w] = i;
            char name[32];
            snprintf(name, sizeof name, "race-%d", i);
            assert_string_equal(registry.workflow_labels.values[w], name);
        }
        if (h == METRICS_MAX_HOSTS) {
            host_other++;
        } else {
            assert_in_range(h, 0, METRICS_MAX_HOSTS - 1);
            assert_int_equal(host_owner[h], -1);
            host_owner[h] = i;
        }
    }
    assert_int_equal(wf_other, N_NAMES - METRICS_MAX_WORKFLOWS);
    assert_int_equal(host_other, N_NAMES - METRICS_MAX_HOSTS);
    struct prom p;
    render_parse(&p);
    /* 50 hosts and _other; every request counted once. */
    assert_int_equal(prom_distinct(&p, "keel_webhook_results_total", "host"),
                     METRICS_MAX_HOSTS + 1);
    assert_true(prom_sum(&p, "keel_webhook_results_total", "result=2xx") == N_THREADS * N_NAMES);
    double v;
    assert_true(prom_get(&p, "keel_webhook_results_total", "host=_other,result=2xx", &v));
    assert_true(v == N_THREADS * (N_NAMES - METRICS_MAX_HOSTS));
    assert_true(prom_get(&p, "keel_metrics_label_values", "label=host", &v));
    assert_true(v == METRICS_MAX_HOSTS);
    prom_free(&p);
}

/* ---- histograms ---------------------------------------------------------------------------- */

static void test_histogram_rendering(void **state)
{
    (void)state;
    int w = metrics_workflow_label("orders", false);
    /* 30 ms, 200 ms, 2 s, 1 s exactly (on a bound: le is inclusive), and 2 days. */
    int64_t us[] = {30000, 200000, 2000000, 1000000, 172800000000};
    for (size_t i = 0; i < 5; i++)
        metrics_execution_ended(w, i == 1 ? "failed" : "completed", us[i]);
    metrics_activity_attempt(w, 7000);
    struct prom p;
    render_parse(&p);
    const char *name = "keel_execution_duration_seconds_bucket";
    struct {
        const char *le;
        double want;
    } buckets[] = {{"0.05", 1}, {"0.1", 1},   {"0.25", 2},  {"0.5", 2}, {"1", 3},   {"2.5", 4},
                   {"5", 4},    {"10", 4},    {"30", 4},    {"60", 4},  {"300", 4}, {"900", 4},
                   {"3600", 4}, {"21600", 4}, {"86400", 4}, {"+Inf", 5}};
    assert_int_equal(prom_count(&p, name, "workflow=orders"), 16);
    for (size_t i = 0; i < sizeof buckets / sizeof buckets[0]; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "workflow=orders,le=%s", buckets[i].le);
        double v;
        if (!prom_get(&p, name, labels, &v))
            fail_msg("no bucket le=%s", buckets[i].le);
        if (v != buckets[i].want)
            fail_msg("le=%s: %g, want %g", buckets[i].le, v, buckets[i].want);
    }
    double v;
    assert_true(prom_get(&p, "keel_execution_duration_seconds_count", "workflow=orders", &v));
    assert_true(v == 5);
    assert_true(prom_get(&p, "keel_execution_duration_seconds_sum", "workflow=orders", &v));
    assert_true(fabs(v - 172803.23) < 1e-6);
    assert_true(prom_get(&p, "keel_executions_ended_total", "workflow=orders,status=failed", &v));
    assert_true(v == 1);
    assert_true(
        prom_get(&p, "keel_executions_ended_total", "workflow=orders,status=completed", &v));
    assert_true(v == 4);
    assert_true(prom_get(&p, "keel_activity_attempt_duration_seconds_bucket",
                         "workflow=orders,le=0.005", &v));
    assert_true(v == 0);
    assert_true(prom_get(&p, "keel_activity_attempt_duration_seconds_bucket",
                         "workflow=orders,le=0.01", &v));
    assert_true(v == 1);
    /* The unlabelled histograms too. */
    assert_true(prom_get(&p, "keel_transition_duration_seconds_bucket", "le=+Inf", &v));
    assert_string_equal(json_string_value(json_object_get(p.types, "keel_execution_duration_"
                                                                   "seconds")),
                        "histogram");
    prom_free(&p);
}

/* Label values are escaped as the text format wants (\\, \" and \n). */
static void test_label_escapes(void **state)
{
    (void)state;
    const char *odd = "a\"b\\c\nd";
    metrics_execution_started(metrics_workflow_label(odd, false));
    struct buf b = BUF_INIT;
    metrics_render(&b, 0, 0, 0);
    assert_non_null(
        strstr(b.data, "keel_executions_started_total{workflow=\"a\\\"b\\\\c\\nd\"} 1\n"));
    struct prom p;
    char *why = NULL;
    if (prom_parse(b.data, &p, &why) < 0)
        fail_msg("%s", why);
    assert_int_equal(prom_count(&p, "keel_executions_started_total", ""), 1);
    bool found = false;
    for (size_t i = 0; i < p.n; i++)
        if (!strcmp(p.samples[i].name, "keel_executions_started_total"))
            found =
                !strcmp(json_string_value(json_object_get(p.samples[i].labels, "workflow")), odd);
    assert_true(found);
    prom_free(&p);
    buf_free(&b);
    /* Longer values are cut at 128 bytes, so a label never grows without bound. */
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    int w = metrics_workflow_label(longname, false);
    assert_int_equal(strlen(registry.workflow_labels.values[w]), LABEL_MAX_TEXT);
    assert_int_equal(metrics_workflow_label(longname, false), w);
}

/* ---- result classes and hosts -------------------------------------------------------------- */

static void test_result_classes(void **state)
{
    (void)state;
    struct {
        enum metrics_webhook outcome;
        long status;
        const char *type;
        enum metrics_webhook_result want;
    } cases[] = {
        {METRICS_WEBHOOK_OK, 200, NULL, METRICS_RESULT_2XX},
        {METRICS_WEBHOOK_ASYNC, 202, NULL, METRICS_RESULT_202},
        {METRICS_WEBHOOK_FAILED, 302, "redirect", METRICS_RESULT_3XX},
        {METRICS_WEBHOOK_FAILED, 404, "http_4xx", METRICS_RESULT_4XX},
        {METRICS_WEBHOOK_FAILED, 422, "PaymentDeclined", METRICS_RESULT_4XX},
        {METRICS_WEBHOOK_FAILED, 410, "gone", METRICS_RESULT_4XX},
        {METRICS_WEBHOOK_FAILED, 503, "http_5xx", METRICS_RESULT_5XX},
        {METRICS_WEBHOOK_FAILED, 200, "invalid_response", METRICS_RESULT_INVALID_RESPONSE},
        {METRICS_WEBHOOK_FAILED, 199, "invalid_response", METRICS_RESULT_INVALID_RESPONSE},
        {METRICS_WEBHOOK_FAILED, 0, "timeout", METRICS_RESULT_TIMEOUT},
        {METRICS_WEBHOOK_FAILED, 0, "connection_refused", METRICS_RESULT_CONNECT_ERROR},
        {METRICS_WEBHOOK_FAILED, 0, "connection_failed", METRICS_RESULT_CONNECT_ERROR},
        {METRICS_WEBHOOK_FAILED, 0, "destination_refused", METRICS_RESULT_REFUSED},
        {METRICS_WEBHOOK_FAILED, 0, "invalid_url", METRICS_RESULT_REFUSED},
        {METRICS_WEBHOOK_FAILED, 0, "signing_failed", METRICS_RESULT_OTHER},
        {METRICS_WEBHOOK_FAILED, 0, NULL, METRICS_RESULT_OTHER},
        {METRICS_WEBHOOK_ABORTED, 0, "aborted", METRICS_RESULT_ABORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum metrics_webhook_result got =
            metrics_webhook_result_of(cases[i].outcome, cases[i].status, cases[i].type);
        if (got != cases[i].want)
            fail_msg("case %zu (%ld %s): %s, want %s", i, cases[i].status,
                     cases[i].type ? cases[i].type : "-", result_names[got],
                     result_names[cases[i].want]);
    }
}

static void test_host_of_url(void **state)
{
    (void)state;
    struct {
        const char *url;
        const char *want; /* NULL: no host */
    } cases[] = {
        {"http://127.0.0.1:8080/ok", "127.0.0.1:8080"},
        {"https://Payments.Internal/charge?x=1", "payments.internal"},
        {"http://user:secret@example.com:81/x", "example.com:81"},
        {"http://[::1]:9000/a#b", "[::1]:9000"},
        {"http://example.com?q", "example.com"},
        {"http://ex\"am ple.com/", "ex_am_ple.com"},
        {"http:///nohost", NULL},
        {"not a url", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        bool ok = metrics_host_of_url(cases[i].url, out, sizeof out);
        if (!cases[i].want) {
            assert_false(ok);
            assert_string_equal(out, "");
        } else {
            assert_true(ok);
            assert_string_equal(out, cases[i].want);
        }
    }
    /* A URL without a host still counts, under _invalid. */
    int h = metrics_host_label("nothing");
    assert_string_equal(registry.host_labels.values[h], METRICS_LABEL_NO_HOST);
    char small[6];
    assert_true(metrics_host_of_url("http://example.com/", small, sizeof small));
    assert_string_equal(small, "examp");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_workflow_bound, setup),
        cmocka_unit_test_setup(test_no_other_until_used, setup),
        cmocka_unit_test_setup(test_concurrent_first_sight, setup),
        cmocka_unit_test_setup(test_histogram_rendering, setup),
        cmocka_unit_test_setup(test_label_escapes, setup),
        cmocka_unit_test_setup(test_result_classes, setup),
        cmocka_unit_test_setup(test_host_of_url, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
