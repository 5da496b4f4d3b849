/* Programs as threads, each with its own blocking curl handle: a step call is a request and
 * its answer, so the latency per call is what a program waits. */
#include "step_calls.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CALLS_PER_PROGRAM 8 /* start, 3 outputs, 3 activities, complete */

struct program_pass {
    const struct step_calls_options *o;
    const char *prefix; /* execution ids: <prefix>-<i> */
    long from, to;      /* the programs this thread runs */
    bool replay;        /* the second pass: the programs ran before, every step call replays */
    int64_t *lat_us;    /* per call, in order; CALLS_PER_PROGRAM per program */
    long ncalls;
    long failed;
    long replays; /* answers that said Keel-Replayed: true */
    char first_error[600];
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

static size_t header_cb(char *data, size_t size, size_t n, void *arg)
{
    bool *replayed = arg;
    if (size * n >= 20 && !strncasecmp(data, "keel-replayed: true", 19))
        *replayed = true;
    return size * n;
}

/* POSTs body to url; returns the HTTP status (0 when none came). */
static long post(CURL *easy, struct curl_slist *headers, const char *url, const char *body,
                 bool *replayed)
{
    *replayed = false;
    curl_easy_reset(easy);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, replayed);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    if (curl_easy_perform(easy) == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

static void *run_programs(void *arg)
{
    struct program_pass *p = arg;
    const struct step_calls_options *o = p->o;
    CURL *easy = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Prefer: wait=30");
    char auth[512];
    if (o->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->token);
        headers = curl_slist_append(headers, auth);
    }
    for (long i = p->from; i < p->to; i++) {
        char id[96], url[512], body[512];
        snprintf(id, sizeof id, "%s-%ld", p->prefix, i);
        for (int c = 0; c < CALLS_PER_PROGRAM; c++) {
            long want = c == 0 ? 201 : 200;
            /* The replay run measures the step calls alone: its start and complete would be
             * answered too (200, 409), but they lock the execution's row. */
            if (p->replay && (c == 0 || c == CALLS_PER_PROGRAM - 1))
                continue;
            if (c == 0) {
                snprintf(url, sizeof url, "%s/v1/executions", o->url);
                snprintf(body, sizeof body, "{\"id\": \"%s\", \"name\": \"keel-bench\"}", id);
            } else if (c <= 3) {
                snprintf(url, sizeof url, "%s/v1/executions/%s/steps/out%d", o->url, id, c);
                snprintf(body, sizeof body, "{\"output\": {\"n\": %d, \"program\": %ld}}", c, i);
            } else if (c <= 6) {
                snprintf(url, sizeof url, "%s/v1/executions/%s/steps/call%d", o->url, id, c - 3);
                snprintf(body, sizeof body,
                         "{\"activity\": {\"url\": \"%s/ok\", \"input\": {\"n\": %d}}}",
                         o->receiver, c - 3);
            } else {
                snprintf(url, sizeof url, "%s/v1/executions/%s/complete", o->url, id);
                snprintf(body, sizeof body, "{\"output\": \"done\"}");
            }
            bool replayed;
            int64_t t0 = mono_us();
            long status = post(easy, headers, url, body, &replayed);
            p->lat_us[p->ncalls++] = mono_us() - t0;
            bool ok = status == want && (!p->replay || replayed);
            if (replayed)
                p->replays++;
            if (!ok) {
                if (!p->failed)
                    snprintf(p->first_error, sizeof p->first_error, "%s: HTTP %ld", url, status);
                p->failed++;
            }
        }
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

struct pass_result {
    double seconds, calls_per_s, p50_ms, p99_ms;
    long calls, failed, replays;
};

/* Runs programs [0, n) with prefix, c threads at once. */
static int run_pass(const struct step_calls_options *o, const char *prefix, long n, bool replay,
                    struct pass_result *res)
{
    long c = o->concurrency < n ? o->concurrency : n;
    struct program_pass *p = calloc((size_t)c, sizeof *p);
    pthread_t *t = calloc((size_t)c, sizeof *t);
    int64_t t0 = mono_us();
    for (long k = 0; k < c; k++) {
        p[k].o = o;
        p[k].prefix = prefix;
        p[k].replay = replay;
        p[k].from = n * k / c;
        p[k].to = n * (k + 1) / c;
        p[k].lat_us =
            calloc((size_t)(p[k].to - p[k].from) * CALLS_PER_PROGRAM + 1, sizeof(int64_t));
        pthread_create(&t[k], NULL, run_programs, &p[k]);
    }
    for (long k = 0; k < c; k++)
        pthread_join(t[k], NULL);
    int64_t t1 = mono_us();
    long total = 0;
    for (long k = 0; k < c; k++)
        total += p[k].ncalls;
    int64_t *all = calloc((size_t)total + 1, sizeof *all);
    long m = 0;
    *res = (struct pass_result){0};
    for (long k = 0; k < c; k++) {
        memcpy(all + m, p[k].lat_us, (size_t)p[k].ncalls * sizeof *all);
        m += p[k].ncalls;
        res->failed += p[k].failed;
        res->replays += p[k].replays;
        if (p[k].failed)
            fprintf(stderr, "keel-bench: %ld calls failed; first: %s\n", p[k].failed,
                    p[k].first_error);
        free(p[k].lat_us);
    }
    qsort(all, (size_t)m, sizeof *all, cmp_i64);
    res->calls = m;
    res->seconds = (double)(t1 - t0) / 1e6;
    res->calls_per_s = res->seconds > 0 ? (double)m / res->seconds : 0;
    res->p50_ms = m ? (double)all[m / 2] / 1000.0 : 0;
    res->p99_ms = m ? (double)all[(m * 99) / 100] / 1000.0 : 0;
    free(all);
    free(p);
    free(t);
    return res->failed ? 1 : 0;
}

/* WAL position in bytes, and the next transaction id: only a transaction that writes takes
 * one, so the difference counts write transactions (the statistics views lag by a second). */
static bool pg_marks(PGconn *pg, double *wal, double *commits)
{
    PGresult *r = PQexec(pg, "SELECT pg_current_wal_lsn() - '0/0', "
                             "pg_snapshot_xmax(pg_current_snapshot())::text::numeric");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok) {
        *wal = strtod(PQgetvalue(r, 0, 0), NULL);
        *commits = strtod(PQgetvalue(r, 0, 1), NULL);
    }
    PQclear(r);
    return ok;
}

#define LONG_KEYS  10000
#define LONG_SLICE 1000

/* One execution of LONG_KEYS output step calls, one after the other: the milliseconds of the
 * first LONG_SLICE calls and of the last (a call must not cost more as its execution grows).
 * Returns 0, or 1 when a call failed. */
static int long_program(const struct step_calls_options *o, const char *prefix, double *first_ms,
                        double *last_ms)
{
    CURL *easy = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    char auth[512];
    if (o->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->token);
        headers = curl_slist_append(headers, auth);
    }
    char url[512], body[256];
    bool replayed;
    int rc = 0;
    snprintf(url, sizeof url, "%s/v1/executions", o->url);
    snprintf(body, sizeof body, "{\"id\": \"%s-long\", \"name\": \"keel-bench-long\"}", prefix);
    if (post(easy, headers, url, body, &replayed) != 201)
        rc = 1;
    int64_t slice_start = mono_us();
    for (int i = 0; i < LONG_KEYS && rc == 0; i++) {
        if (i == LONG_KEYS - LONG_SLICE)
            slice_start = mono_us();
        snprintf(url, sizeof url, "%s/v1/executions/%s-long/steps/k%05d", o->url, prefix, i);
        snprintf(body, sizeof body, "{\"output\": %d}", i);
        if (post(easy, headers, url, body, &replayed) != 200)
            rc = 1;
        if (i == LONG_SLICE - 1)
            *first_ms = (double)(mono_us() - slice_start) / 1000.0;
    }
    *last_ms = (double)(mono_us() - slice_start) / 1000.0;
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
    if (rc)
        fprintf(stderr, "keel-bench: a call of the long program failed\n");
    return rc;
}

static json_t *pass_json(const struct pass_result *r)
{
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:I}", "calls", (json_int_t)r->calls, "seconds",
                     r->seconds, "calls_per_s", r->calls_per_s, "p50_ms", r->p50_ms, "p99_ms",
                     r->p99_ms, "replayed", (json_int_t)r->replays);
}

int step_calls_mode(const struct step_calls_options *o, PGconn *pg, json_t **out)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "sc%ld", (long)(time(NULL) % 1000000));
    if (o->warmup > 0) {
        char warm[72];
        snprintf(warm, sizeof warm, "%s-w", prefix);
        struct pass_result w;
        if (run_pass(o, warm, o->warmup, false, &w) != 0)
            return 1;
    }
    struct pass_result first, again;
    double wal0 = 0, wal1 = 0, wal2 = 0, c0 = 0, c1 = 0, c2 = 0;
    bool have_pg = pg && pg_marks(pg, &wal0, &c0);
    int rc = run_pass(o, prefix, o->executions, false, &first);
    have_pg = have_pg && pg_marks(pg, &wal1, &c1);
    /* The same programs again, as after a crash of each: every step call is a replay. */
    rc |= run_pass(o, prefix, o->executions, true, &again);
    have_pg = have_pg && pg_marks(pg, &wal2, &c2);
    double long_first = 0, long_last = 0;
    rc |= long_program(o, prefix, &long_first, &long_last);
    long step_calls = o->executions * 6;
    printf("step calls: N=%ld programs x (start, 3 output + 3 activity steps, complete), %ld at "
           "once\n",
           o->executions, o->concurrency);
    printf("  first run:  %.0f calls/s, p50 %.2f ms, p99 %.2f ms per call (%ld calls in %.1f s)\n",
           first.calls_per_s, first.p50_ms, first.p99_ms, first.calls, first.seconds);
    printf("  replay run: %.0f calls/s, p50 %.2f ms, p99 %.2f ms per call (the %ld step calls "
           "again; %ld answered Keel-Replayed)\n",
           again.calls_per_s, again.p50_ms, again.p99_ms, again.calls, again.replays);
    if (have_pg) {
        printf("  first run:  WAL %.0f B per step call, %.2f write transactions per step call\n",
               (wal1 - wal0) / (double)step_calls, (c1 - c0) / (double)step_calls);
        printf("  replay run: WAL %.0f B in all (%.2f B per replayed call), %.0f write "
               "transactions in all (the replay counts, written about once a second)\n",
               wal2 - wal1, (wal2 - wal1) / (double)step_calls, c2 - c1);
    }
    printf("  one execution of %d output keys, one call at a time: the first %d calls %.0f ms, "
           "the last %d %.0f ms (%.2fx)\n",
           LONG_KEYS, LONG_SLICE, long_first, LONG_SLICE, long_last,
           long_first > 0 ? long_last / long_first : 0);
    *out = json_pack("{s:s, s:I, s:I, s:o, s:o, s:{s:i, s:f, s:f}}", "mode", "step-calls", "n",
                     (json_int_t)o->executions, "concurrency", (json_int_t)o->concurrency, "first",
                     pass_json(&first), "replay", pass_json(&again), "long", "keys", LONG_KEYS,
                     "first_1000_ms", long_first, "last_1000_ms", long_last);
    if (have_pg) {
        json_object_set_new(json_object_get(*out, "first"), "wal_bytes_per_step_call",
                            json_real((wal1 - wal0) / (double)step_calls));
        json_object_set_new(json_object_get(*out, "first"), "commits", json_real(c1 - c0));
        json_object_set_new(json_object_get(*out, "replay"), "wal_bytes", json_real(wal2 - wal1));
        json_object_set_new(json_object_get(*out, "replay"), "commits", json_real(c2 - c1));
    }
    return rc;
}
