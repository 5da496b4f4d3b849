/* The executions are loaded with SQL, not started through the API: a million starts would take
 * the benchmark most of an hour and measure the starts, while what is measured here is the
 * list. The rows are those a start writes (executions.tags and one execution_tags row per
 * tag, created_at shared), for executions that have ended. */
#include "tags.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOAD_CHUNK 100000

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool exec_ok(PGconn *pg, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "keel-bench: %s", PQerrorMessage(pg));
    PQclear(r);
    return ok;
}

static bool load(PGconn *pg, long n)
{
    static const char sql[] =
        "WITH ins AS (INSERT INTO executions (id, workflow, version, status, input, output, "
        "state, created_at, updated_at, completed_at, tags) SELECT 'bench-tags-' || g, "
        "'keel-bench-tags', 1, CASE WHEN g % 100 = 8 THEN 'failed' ELSE 'completed' END, "
        "'null', 'null', '{}', t, t, t, jsonb_build_object('customer', (g % ($3::bigint / "
        "100))::text, 'env', CASE WHEN g % 2 = 0 THEN 'prod' ELSE 'staging' END, 'batch', (g / "
        "1000)::text) FROM generate_series($1::bigint, $2::bigint) g, LATERAL (SELECT "
        "timestamptz '2026-01-01' + g * interval '1 millisecond' AS t) c RETURNING id, "
        "created_at, tags) INSERT INTO execution_tags (key, value, created_at, execution_id) "
        "SELECT k.key, k.value, ins.created_at, ins.id FROM ins, jsonb_each_text(ins.tags) k";
    int64_t t0 = mono_us();
    char total[24];
    snprintf(total, sizeof total, "%ld", n < 100 ? 100 : n);
    for (long from = 0; from < n; from += LOAD_CHUNK) {
        long to = from + LOAD_CHUNK - 1 < n - 1 ? from + LOAD_CHUNK - 1 : n - 1;
        char a[24], b[24];
        snprintf(a, sizeof a, "%ld", from);
        snprintf(b, sizeof b, "%ld", to);
        const char *params[] = {a, b, total};
        if (!exec_ok(pg, "BEGIN", 0, NULL) || !exec_ok(pg, sql, 3, params) ||
            !exec_ok(pg, "COMMIT", 0, NULL))
            return false;
        fprintf(stderr, "keel-bench: loaded %ld of %ld executions (%.0f s)\n", to + 1, n,
                (double)(mono_us() - t0) / 1e6);
    }
    return exec_ok(pg, "ANALYZE executions", 0, NULL) &&
           exec_ok(pg, "ANALYZE execution_tags", 0, NULL);
}

struct body {
    char *data;
    size_t len;
};

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    char *more = realloc(b->data, b->len + size * n + 1);
    if (!more)
        return 0;
    b->data = more;
    memcpy(b->data + b->len, data, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* GETs url; the page's executions and next cursor on 200 (NULL otherwise, printed). */
static json_t *get_page(CURL *easy, struct curl_slist *headers, const char *url, int64_t *us)
{
    struct body b = {0};
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &b);
    int64_t t0 = mono_us();
    CURLcode rc = curl_easy_perform(easy);
    *us = mono_us() - t0;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    json_t *page = rc == CURLE_OK && status == 200 ? json_loads(b.data, 0, NULL) : NULL;
    if (!page)
        fprintf(stderr, "keel-bench: GET %s: %s %ld %.300s\n", url,
                rc == CURLE_OK ? "HTTP" : curl_easy_strerror(rc), status, b.data ? b.data : "");
    free(b.data);
    return page;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double ms_at(const int64_t *sorted, long n, double q)
{
    long i = (long)(q * (double)(n - 1) + 0.5);
    return (double)sorted[i] / 1000.0;
}

enum shape { RARE, COMMON, COMMON_PAGE_20, TWO_TAGS, TAG_AND_STATUS, SHAPES };

static const char *const shape_names[SHAPES] = {
    "customer:C (100 of N)", "env:prod (N/2), first page", "env:prod, page 20 by cursor",
    "env:prod AND customer:C", "env:prod AND status=failed"};
static const char *const shape_keys[SHAPES] = {"rare", "common", "common_page_20", "two_tags",
                                               "tag_and_status"};

/* How many executions the first page of shape holds for customer c among n (50 a page): g is
 * customer g % customers, prod when even, failed when g % 100 == 8. */
static long expected(enum shape s, long c, long n, long customers)
{
    long count = 0;
    if (s == RARE || s == TWO_TAGS) {
        for (long g = c; g < n && count < 50; g += customers)
            count += s == RARE || g % 2 == 0;
        return count;
    }
    for (long g = 0; g < n && count < 50; g++)
        count += s == TAG_AND_STATUS ? g % 100 == 8 : g % 2 == 0;
    return count;
}

static int run_shape(const struct tags_options *o, CURL *easy, struct curl_slist *headers,
                     enum shape s, json_t *res)
{
    long customers = o->executions / 100 > 0 ? o->executions / 100 : 1;
    int64_t *lat = calloc((size_t)o->queries, sizeof *lat);
    int bad = 0;
    unsigned seed = 42;
    for (long q = 0; q < o->queries && !bad; q++) {
        long c = rand_r(&seed) % customers;
        char url[1024];
        int64_t us = 0;
        switch (s) {
        case RARE:
            snprintf(url, sizeof url, "%s/v1/executions?tag=customer:%ld", o->url, c);
            break;
        case COMMON:
        case COMMON_PAGE_20:
            snprintf(url, sizeof url, "%s/v1/executions?tag=env:prod", o->url);
            break;
        case TWO_TAGS:
            snprintf(url, sizeof url, "%s/v1/executions?tag=env:prod&tag=customer:%ld", o->url, c);
            break;
        default:
            snprintf(url, sizeof url, "%s/v1/executions?tag=env:prod&status=failed", o->url);
        }
        if (s == COMMON_PAGE_20) {
            /* Follow the cursor to page 19 unmeasured, then time page 20. */
            for (int p = 0; p < 19 && !bad; p++) {
                json_t *page = get_page(easy, headers, url, &us);
                const char *next = json_string_value(json_object_get(page, "next_cursor"));
                if (!next)
                    bad = 1;
                else
                    snprintf(url, sizeof url, "%s/v1/executions?tag=env:prod&cursor=%s", o->url,
                             next);
                json_decref(page);
            }
        }
        json_t *page = bad ? NULL : get_page(easy, headers, url, &us);
        lat[q] = us;
        long got = (long)json_array_size(json_object_get(page, "executions"));
        long want = expected(s, c, o->executions, customers);
        /* Every execution shown must carry the filter's tags. */
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(page, "executions"), i, e)
        {
            json_t *tags = json_object_get(e, "tags");
            const char *env = json_string_value(json_object_get(tags, "env"));
            const char *cust = json_string_value(json_object_get(tags, "customer"));
            bool ok = true;
            if (s != RARE)
                ok = env && !strcmp(env, "prod");
            if (s == RARE || s == TWO_TAGS)
                ok = ok && cust && atol(cust) == c;
            if (s == TAG_AND_STATUS)
                ok = ok && !strcmp(json_string_value(json_object_get(e, "status")), "failed");
            if (!ok) {
                fprintf(stderr, "keel-bench: %s: an execution without the filter's tags\n",
                        shape_names[s]);
                bad = 1;
            }
        }
        if (!page || got != want) {
            if (page)
                fprintf(stderr, "keel-bench: %s: %ld executions, want %ld\n", shape_names[s], got,
                        want);
            bad = 1;
        }
        json_decref(page);
    }
    if (!bad) {
        qsort(lat, (size_t)o->queries, sizeof *lat, cmp_i64);
        double p50 = ms_at(lat, o->queries, 0.5), p99 = ms_at(lat, o->queries, 0.99),
               max = (double)lat[o->queries - 1] / 1000.0;
        printf("  %-32s p50 %7.2f ms   p99 %7.2f ms   max %7.2f ms\n", shape_names[s], p50, p99,
               max);
        json_object_set_new(
            res, shape_keys[s],
            json_pack("{s:f, s:f, s:f}", "p50_ms", p50, "p99_ms", p99, "max_ms", max));
    }
    free(lat);
    return bad;
}

int tags_mode(const struct tags_options *o, PGconn *pg, json_t **out)
{
    *out = NULL;
    if (!pg) {
        fprintf(stderr, "keel-bench: --mode tags needs --pg-url\n");
        return 1;
    }
    int64_t t0 = mono_us();
    if (!load(pg, o->executions))
        return 1;
    double load_s = (double)(mono_us() - t0) / 1e6;
    CURL *easy = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
    if (o->token) {
        char auth[512];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->token);
        headers = curl_slist_append(headers, auth);
    }
    json_t *res =
        json_pack("{s:s, s:I, s:I, s:f}", "mode", "tags", "executions", (json_int_t)o->executions,
                  "queries", (json_int_t)o->queries, "load_s", load_s);
    printf("listing by tag among %ld executions (%ld GETs each, 50 a page, loaded in %.0f s):\n",
           o->executions, o->queries, load_s);
    int bad = 0;
    for (int s = 0; s < SHAPES && !bad; s++)
        bad = run_shape(o, easy, headers, (enum shape)s, res);
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
    *out = res;
    return bad;
}
