/* keel-bench: starts N executions of a three-step workflow against a running keeld, keeping C
 * in flight with one libcurl multi handle, and measures executions/s, steps/s and the
 * start-to-completion latency of each execution. --mode timers, idle and for-each measure
 * timers, waiting executions and one long for_each instead. bench/run starts everything it
 * needs. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "step_calls.h"
#include "tags.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/timeutil.h"

#define STEPS_PER_EXECUTION 3
#define MAX_FAILURES_KEPT   20
#define MAX_CPU_WATCHES     8
#define RESULT_WAIT_S       60

/* ---- options ----------------------------------------------------------------------------- */

struct options {
    const char *url;      /* keeld, e.g. http://127.0.0.1:8080 */
    const char *receiver; /* keel-test-receiver, e.g. http://127.0.0.1:41234 */
    const char *workflow;
    const char *token; /* bearer token for /v1, or NULL */
    const char *json_out;
    const char *pg_url; /* keeld's database, for write transactions and WAL per step */
    long executions;
    long concurrency;
    long warmup;
    long timeout_s; /* per execution, start to completion */
    long history;   /* executions whose history is read for the timeline */
    /* --mode timers|idle: start executions of a one-timer workflow without waiting for them
     * (see timers_mode() and idle_mode()); --mode for-each: one execution of a for_each over
     * N items (for_each_mode()); NULL: the three-step benchmark. */
    const char *mode;
    const char *sleep;  /* --sleep, the timer of --mode idle */
    long idle_window_s; /* --idle-window, the measured window of --mode idle */
    /* Processes whose CPU time is reported: NAME=PID (the process) or, for --cpu-tree, the
     * process and its direct children (the postmaster and its backends). */
    struct cpu_watch {
        char *name;
        long pid;
        bool tree;
        double start_s;
    } cpu[MAX_CPU_WATCHES];
    int ncpu;
};

static void usage(FILE *out)
{
    fputs("usage: keel-bench --receiver URL [--url URL] [-n N] [-c C] [options]\n"
          "       keel-bench --mode timers|idle [--url URL] [-n N] [-c C] --pg-url URL\n"
          "       keel-bench --mode for-each --receiver URL [-n N] [-c C] --pg-url URL\n"
          "       keel-bench --summary FILE [--floor-tps X]\n"
          "       keel-bench --version\n"
          "\n"
          "Registers a workflow of three activity steps that call the receiver's /ok (steps 2\n"
          "and 3 take the previous step's output through expressions), then starts N\n"
          "executions keeping C in flight: POST /v1/workflows/NAME/executions, then\n"
          "GET /v1/executions/ID/result?wait=60 until it answers 200. Prints executions/s,\n"
          "steps/s and the start-to-completion latency; exits 1 if any execution did not\n"
          "complete correctly or the receiver saw other than 3 deliveries per execution.\n"
          "\n"
          "  --url URL             keeld (default http://127.0.0.1:8080)\n"
          "  --receiver URL        keel-test-receiver (required)\n"
          "  -n, --executions N    measured executions (default 2000)\n"
          "  -c, --concurrency C   executions in flight (default 1)\n"
          "  --warmup W            executions run and discarded first (default 20)\n"
          "  --workflow NAME       workflow to register (default keel-bench)\n"
          "  --token T             bearer token for /v1 (one of KEEL_API_TOKENS)\n"
          "  --timeout S           per execution, start to completion (default 120)\n"
          "  --json-out FILE       append the result as one JSON line to FILE\n"
          "  --pg-url URL          keeld's PostgreSQL: report write transactions and WAL\n"
          "                        bytes per step during the measured run\n"
          "  --history K           after the run, read the history of K executions and\n"
          "                        report the mean time of each event (default 200; 0: off)\n"
          "  --cpu NAME=PID        report PID's CPU use during the measured run\n"
          "  --cpu-tree NAME=PID   the same, for PID and its direct children\n"
          "  --summary FILE        print the table of the JSON lines in FILE and exit\n"
          "  --floor-tps X         with --summary: pgbench transactions/s, the floor\n"
          "\n"
          "  --mode timers         N executions of one sleep_until step, all due at the same\n"
          "                        instant T, started C in flight (the --warmup executions,\n"
          "                        due in the past, measure the start rate that T is chosen\n"
          "                        from); reports how late each timer fired after T, from\n"
          "                        the history in --pg-url (required)\n"
          "  --mode idle           N executions of one sleep step (--sleep, default 1h),\n"
          "                        started C in flight; reports the CPU of the --cpu\n"
          "                        processes over --idle-window S seconds (default 10) before\n"
          "                        the starts and after them, and keeld's memory (the --cpu\n"
          "                        process named keeld)\n"
          "  --mode step-calls     N code executions, C at once, each driven by a program of\n"
          "                        step calls (3 output and 3 activity steps), then the same\n"
          "                        programs again (all replays): calls/s and latency per call\n"
          "                        of both, WAL and commits of the replays (needs --receiver)\n"
          "  --mode tags           loads N ended executions with tags into --pg-url (rows\n"
          "                        as a start writes them), then times C GETs of each\n"
          "                        ?tag= list shape: a rare tag, a common one (pages 1 and\n"
          "                        20), two tags, a tag and a status\n"
          "  --mode for-each       ONE execution of one for_each over N items, C iterations at\n"
          "                        once, each one activity step calling the receiver's /ok;\n"
          "                        waits up to --timeout S for its end, checks its output and\n"
          "                        the receiver's keys, and reports from the history in\n"
          "                        --pg-url (required) how long the first and the last 1,000\n"
          "                        steps took, keeld's CPU and memory (the --cpu process named\n"
          "                        keeld) and the size of the execution's rows\n",
          out);
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* ---- clocks and CPU accounting ----------------------------------------------------------- */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* utime + stime (+ children's, when with_children) of pid in seconds, or -1 if it is gone. */
static double proc_cpu_s(long pid, bool with_children)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[1024];
    double out = -1;
    if (fgets(line, sizeof line, f)) {
        /* The command name may hold spaces and parentheses: fields restart after the last ')'. */
        const char *p = strrchr(line, ')');
        unsigned long long utime, stime;
        long long cutime, cstime;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
                        &utime, &stime, &cutime, &cstime) == 4) {
            double ticks = (double)(utime + stime);
            if (with_children)
                ticks += (double)(cutime + cstime);
            out = ticks / (double)sysconf(_SC_CLK_TCK);
        }
    }
    fclose(f);
    return out;
}

/* CPU seconds of pid, plus (tree) those of its direct children and of the children it reaped. */
static double watch_cpu_s(long pid, bool tree)
{
    double total = proc_cpu_s(pid, tree);
    if (total < 0 || !tree)
        return total;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", pid, pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return total;
    long child;
    while (fscanf(f, "%ld", &child) == 1) {
        double c = proc_cpu_s(child, false);
        if (c > 0)
            total += c;
    }
    fclose(f);
    return total;
}

/* Machine-wide jiffies from /proc/stat: busy (all but idle and iowait), iowait, and total. */
struct machine_cpu {
    double busy, iowait, total;
};

static struct machine_cpu machine_cpu_now(void)
{
    struct machine_cpu m = {0, 0, 0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return m;
    unsigned long long v[10] = {0};
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
               &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
        /* user nice system idle iowait irq softirq steal [guest guest_nice, inside user]. */
        double all = 0;
        for (int i = 0; i < 8; i++)
            all += (double)v[i];
        m.total = all;
        m.iowait = (double)v[4];
        m.busy = all - (double)v[3] - (double)v[4];
    }
    fclose(f);
    return m;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- HTTP -------------------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    buf_append(arg, data, size * n);
    return size * n;
}

/* Sets up easy for one request; body NULL means GET. The answer goes into out. */
static void request_setup(CURL *easy, const char *url, const char *body, struct curl_slist *headers,
                          struct buf *out, long timeout_ms)
{
    buf_reset(out);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, body);
    } else {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    }
}

/* One blocking request; returns the HTTP status (0 on a transport error, with *why set). The
 * answer's body is in out. */
static long request_sync(const char *url, const char *body, struct curl_slist *headers,
                         struct buf *out, char **why)
{
    CURL *easy = curl_easy_init();
    if (!easy) {
        *why = xstrdup("curl_easy_init failed");
        return 0;
    }
    request_setup(easy, url, body, headers, out, 30000);
    long status = 0;
    CURLcode rc = curl_easy_perform(easy);
    if (rc != CURLE_OK)
        *why = xasprintf("%s: %s", url, curl_easy_strerror(rc));
    else
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(easy);
    return status;
}

static struct curl_slist *make_headers(const struct options *o)
{
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: application/json");
    h = curl_slist_append(h, "Expect:");
    if (o->token) {
        char *auth = xasprintf("Authorization: Bearer %s", o->token);
        h = curl_slist_append(h, auth);
        free(auth);
    }
    return h;
}

/* ---- the workflow ------------------------------------------------------------------------ */

/* Step 1 echoes the execution's input; steps 2 and 3 take the previous step's output through
 * an expression, and the execution's output is the number carried through all three, which
 * check_output() compares with the input. The receiver's /ok answers
 * {"echo": <the step's input>, "key": ..., "attempt": n}. */
static char *workflow_definition(const struct options *o)
{
    if (o->mode && strcmp(o->mode, "for-each") == 0) {
        /* One for_each over the input's items; each iteration calls /ok with its item, so the
         * output is [{"echo": item, "key": "<id>/all/<index>/call", ...}, ...]. */
        char *url = xasprintf("%s/ok", o->receiver);
        json_t *def =
            json_pack("{s:s, s:s, s:[{s:s, s:{s:s, s:I, s:[{s:s, s:{s:s, s:s}}]}}], s:s}", "name",
                      o->workflow, "description",
                      "keel-bench --mode for-each: one for_each of one activity step per item",
                      "steps", "id", "all", "for_each", "items", "${input.items}", "concurrency",
                      (json_int_t)o->concurrency, "steps", "id", "call", "activity", "url", url,
                      "input", "${item}", "output", "${steps.all.output}");
        char *text = json_dumps(def, JSON_COMPACT);
        json_decref(def);
        free(url);
        return text;
    }
    if (o->mode) {
        bool timers = strcmp(o->mode, "timers") == 0;
        json_t *def = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "name", o->workflow, "description",
                                timers ? "keel-bench --mode timers: one sleep_until step"
                                       : "keel-bench --mode idle: one sleep step",
                                "steps", "id", "timer", timers ? "sleep_until" : "sleep",
                                timers ? "${input.at}" : o->sleep);
        char *text = json_dumps(def, JSON_COMPACT);
        json_decref(def);
        return text;
    }
    json_t *steps = json_array();
    char *url = xasprintf("%s/ok", o->receiver);
    json_array_append_new(steps, json_pack("{s:s, s:{s:s, s:{s:s}}}", "id", "first", "activity",
                                           "url", url, "input", "n", "${input.n}"));
    json_array_append_new(steps,
                          json_pack("{s:s, s:{s:s, s:{s:s, s:s}}}", "id", "second", "activity",
                                    "url", url, "input", "prev", "${steps.first.output.echo}",
                                    "label", "after ${steps.first.output.key}"));
    json_array_append_new(steps,
                          json_pack("{s:s, s:{s:s, s:{s:s}}}", "id", "third", "activity", "url",
                                    url, "input", "n", "${steps.second.output.echo.prev.n}"));
    json_t *def = json_pack("{s:s, s:s, s:o, s:{s:s}}", "name", o->workflow, "description",
                            "keel-bench: three activity steps against keel-test-receiver /ok",
                            "steps", steps, "output", "n", "${steps.third.output.echo.n}");
    char *text = json_dumps(def, JSON_COMPACT);
    json_decref(def);
    free(url);
    return text;
}

static int register_workflow(const struct options *o, struct curl_slist *headers)
{
    char *def = workflow_definition(o);
    char *url = xasprintf("%s/v1/workflows", o->url);
    struct buf out = BUF_INIT;
    char *why = NULL;
    int rc = -1;
    long status = request_sync(url, def, headers, &out, &why);
    if (status == 200 || status == 201) {
        json_t *j = json_loads(out.data ? out.data : "", 0, NULL);
        fprintf(stderr, "keel-bench: workflow %s version %" JSON_INTEGER_FORMAT " (%s)\n",
                o->workflow, json_integer_value(json_object_get(j, "version")),
                status == 201 ? "registered" : "unchanged");
        json_decref(j);
        rc = 0;
    } else if (status) {
        fprintf(stderr, "keel-bench: POST %s answered %ld: %s\n", url, status,
                out.data ? out.data : "");
    } else {
        fprintf(stderr, "keel-bench: %s\n", why);
    }
    free(why);
    buf_free(&out);
    free(url);
    free(def);
    return rc;
}

/* ---- the receiver's counters ------------------------------------------------------------- */

struct receiver_stats {
    json_int_t deliveries, applied, duplicates, bad_signatures;
};

static int receiver_stats_get(const struct options *o, struct receiver_stats *s)
{
    char *url = xasprintf("%s/_stats?keys=0", o->receiver);
    struct buf out = BUF_INIT;
    char *why = NULL;
    int rc = -1;
    long status = request_sync(url, NULL, NULL, &out, &why);
    json_t *j = status == 200 ? json_loads(out.data ? out.data : "", 0, NULL) : NULL;
    if (j) {
        s->deliveries = json_integer_value(json_object_get(j, "deliveries"));
        s->applied = json_integer_value(json_object_get(j, "applied"));
        s->duplicates = json_integer_value(json_object_get(j, "duplicates"));
        s->bad_signatures = json_integer_value(json_object_get(j, "bad_signatures"));
        rc = 0;
    } else {
        fprintf(stderr, "keel-bench: GET %s: %s\n", url,
                why ? why : (out.data ? out.data : "bad answer"));
    }
    json_decref(j);
    free(why);
    buf_free(&out);
    free(url);
    return rc;
}

/* ---- PostgreSQL's counters -------------------------------------------------------------- */

/* Transaction ids handed out (one per transaction that wrote) and WAL bytes inserted, both
 * exact at once, unlike pg_stat_database, which backends flush up to seconds later. */
struct pg_counters {
    long long xids, wal_bytes;
};

static int pg_counters_get(PGconn *conn, struct pg_counters *out)
{
    if (!conn)
        return -1;
    PGresult *res = PQexec(conn, "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint, "
                                 "(pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint");
    int rc = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        out->xids = atoll(PQgetvalue(res, 0, 0));
        out->wal_bytes = atoll(PQgetvalue(res, 0, 1));
        rc = 0;
    } else {
        fprintf(stderr, "keel-bench: PostgreSQL counters: %s", PQerrorMessage(conn));
    }
    PQclear(res);
    return rc;
}

/* ---- the load loop ----------------------------------------------------------------------- */

enum slot_phase {
    SLOT_IDLE,     /* free for the next execution */
    SLOT_STARTING, /* POST .../executions on the wire */
    SLOT_WAITING,  /* GET .../result?wait= on the wire */
};

struct slot {
    CURL *easy;
    enum slot_phase phase;
    long n;        /* the execution's number, its input */
    int64_t t0_us; /* just before the POST */
    char *id;      /* the execution id keel answered */
    struct buf body;
};

struct run {
    const struct options *o;
    struct curl_slist *headers;
    CURLM *multi;
    struct slot *slots;
    long nslots;
    long first_n; /* execution numbers run from first_n */
    long total;   /* executions to run */
    long started, finished, failed;
    int64_t *latency_us; /* of each completed execution, in order of completion */
    char **ids;          /* their ids, in the same order */
    int64_t *start_us;   /* round trip of each start request (POST ... 201) */
    long nstarted_ok;
    long ncompleted;
    char *failures[MAX_FAILURES_KEPT];
    int nfailures_kept;
    int64_t first_start_us, last_end_us; /* first start, last end of any kind */
    long long polls_extra;               /* result polls that answered 202 */
    const char *input_extra;             /* more members of the input: "\"at\":\"...\"" */
    bool start_only;                     /* done at the 201 of the start */
};

static void run_fail(struct run *r, struct slot *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void run_fail(struct run *r, struct slot *s, const char *fmt, ...)
{
    r->failed++;
    r->finished++;
    int64_t now = now_us();
    if (now > r->last_end_us)
        r->last_end_us = now;
    if (r->nfailures_kept < MAX_FAILURES_KEPT) {
        struct buf b = BUF_INIT;
        buf_printf(&b, "execution n=%ld id=%s: ", s->n, s->id ? s->id : "(none)");
        va_list ap;
        va_start(ap, fmt);
        buf_vprintf(&b, fmt, ap);
        va_end(ap);
        r->failures[r->nfailures_kept++] = buf_steal(&b);
    }
    s->phase = SLOT_IDLE;
}

static void slot_send(struct run *r, struct slot *s, const char *url, const char *body,
                      long timeout_ms)
{
    request_setup(s->easy, url, body, r->headers, &s->body, timeout_ms);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    curl_multi_add_handle(r->multi, s->easy);
}

static void slot_start(struct run *r, struct slot *s)
{
    s->n = r->first_n + r->started++;
    free(s->id);
    s->id = NULL;
    s->phase = SLOT_STARTING;
    char *url = xasprintf("%s/v1/workflows/%s/executions", r->o->url, r->o->workflow);
    char *body = r->input_extra ? xasprintf("{\"input\":{\"n\":%ld,%s}}", s->n, r->input_extra)
                                : xasprintf("{\"input\":{\"n\":%ld}}", s->n);
    s->t0_us = now_us();
    if (r->first_start_us == 0)
        r->first_start_us = s->t0_us;
    slot_send(r, s, url, body, 30000);
    free(body);
    free(url);
}

static void slot_poll(struct run *r, struct slot *s)
{
    s->phase = SLOT_WAITING;
    char *url = xasprintf("%s/v1/executions/%s/result?wait=%d", r->o->url, s->id, RESULT_WAIT_S);
    slot_send(r, s, url, NULL, (RESULT_WAIT_S + 15) * 1000L);
    free(url);
}

/* The execution ended (200): it must have completed with the number it was given. */
static void slot_ended(struct run *r, struct slot *s, json_t *exec, int64_t end_us)
{
    const char *status = json_string_value(json_object_get(exec, "status"));
    if (!status || strcmp(status, "completed") != 0) {
        char *err = json_dumps(json_object_get(exec, "error"), JSON_COMPACT | JSON_ENCODE_ANY);
        run_fail(r, s, "ended %s, error %s", status ? status : "(no status)", err ? err : "null");
        free(err);
        return;
    }
    json_t *out = json_object_get(json_object_get(exec, "output"), "n");
    if (!json_is_integer(out) || json_integer_value(out) != s->n) {
        char *got = json_dumps(json_object_get(exec, "output"), JSON_COMPACT | JSON_ENCODE_ANY);
        run_fail(r, s, "completed with output %s, expected {\"n\":%ld}", got ? got : "null", s->n);
        free(got);
        return;
    }
    r->ids[r->ncompleted] = xstrdup(s->id);
    r->latency_us[r->ncompleted++] = end_us - s->t0_us;
    r->finished++;
    if (end_us > r->last_end_us)
        r->last_end_us = end_us;
    s->phase = SLOT_IDLE;
}

static void slot_done(struct run *r, struct slot *s, CURLcode rc)
{
    int64_t end_us = now_us();
    curl_multi_remove_handle(r->multi, s->easy);
    const char *what = s->phase == SLOT_STARTING ? "start" : "result";
    if (rc != CURLE_OK) {
        run_fail(r, s, "%s: %s", what, curl_easy_strerror(rc));
        return;
    }
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    json_t *j = json_loads(s->body.data ? s->body.data : "", 0, NULL);
    if (s->phase == SLOT_STARTING) {
        const char *id = json_string_value(json_object_get(j, "id"));
        if (status != 201 || !id)
            run_fail(r, s, "start answered %ld: %.300s", status, s->body.data ? s->body.data : "");
        else {
            r->start_us[r->nstarted_ok++] = end_us - s->t0_us;
            s->id = xstrdup(id);
            if (r->start_only) {
                r->finished++;
                if (end_us > r->last_end_us)
                    r->last_end_us = end_us;
                s->phase = SLOT_IDLE;
            } else {
                slot_poll(r, s);
            }
        }
    } else if (status == 202) {
        r->polls_extra++;
        if (end_us - s->t0_us > r->o->timeout_s * 1000000LL)
            run_fail(r, s, "not ended after %ld s", r->o->timeout_s);
        else
            slot_poll(r, s);
    } else if (status == 200 && j) {
        slot_ended(r, s, j, end_us);
    } else {
        run_fail(r, s, "result answered %ld: %.300s", status, s->body.data ? s->body.data : "");
    }
    json_decref(j);
}

/* Runs total executions numbered from first_n with up to nslots in flight. Returns 0, or -1 if
 * libcurl itself failed (execution failures are counted in r). */
static int run_load(struct run *r)
{
    for (;;) {
        for (long i = 0; i < r->nslots && r->started < r->total; i++)
            if (r->slots[i].phase == SLOT_IDLE)
                slot_start(r, &r->slots[i]);
        if (r->finished >= r->total)
            return 0;
        int running = 0;
        CURLMcode mc = curl_multi_perform(r->multi, &running);
        if (mc == CURLM_OK)
            mc = curl_multi_poll(r->multi, NULL, 0, 1000, NULL);
        if (mc != CURLM_OK) {
            fprintf(stderr, "keel-bench: libcurl: %s\n", curl_multi_strerror(mc));
            return -1;
        }
        curl_multi_perform(r->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(r->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct slot *s = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            slot_done(r, s, msg->data.result);
        }
    }
}

static void run_init(struct run *r, const struct options *o, struct curl_slist *headers,
                     CURLM *multi, struct slot *slots, long first_n, long total, long nslots)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    r->headers = headers;
    r->multi = multi;
    r->slots = slots;
    r->nslots = nslots < total ? nslots : total;
    r->first_n = first_n;
    r->total = total;
    r->latency_us = xcalloc((size_t)(total > 0 ? total : 1), sizeof(int64_t));
    r->ids = xcalloc((size_t)(total > 0 ? total : 1), sizeof(char *));
    r->start_us = xcalloc((size_t)(total > 0 ? total : 1), sizeof(int64_t));
}

static void run_free(struct run *r)
{
    for (long i = 0; i < r->ncompleted; i++)
        free(r->ids[i]);
    free(r->ids);
    free(r->latency_us);
    free(r->start_us);
    for (int i = 0; i < r->nfailures_kept; i++)
        free(r->failures[i]);
}

/* ---- where the time goes: execution histories ------------------------------------------ */

/* Reads the history of up to sample completed executions of r, spread over the run, and
 * returns (new reference) the mean time in ms from execution_started to the first event of
 * each kind ("step:type", or "type" for events of the execution), in the order they happen.
 * Event times have millisecond resolution, so each mean is good to about 0.1 ms over a
 * hundred executions; "client" is the mean start-to-completion the benchmark measured on the
 * same executions, which adds the start request and the answer of the long poll. NULL if no
 * history could be read. */
static json_t *history_timeline(const struct options *o, struct curl_slist *headers,
                                const struct run *r, long sample)
{
    if (r->ncompleted == 0 || sample <= 0)
        return NULL;
    if (sample > r->ncompleted)
        sample = r->ncompleted;
    json_t *sums = json_object(); /* label -> [sum ms, count] */
    double client_sum_ms = 0;
    long used = 0;
    struct buf out = BUF_INIT;
    for (long k = 0; k < sample; k++) {
        long i = (long)((double)k * (double)r->ncompleted / (double)sample);
        char *url = xasprintf("%s/v1/executions/%s/history?limit=500", o->url, r->ids[i]);
        char *why = NULL;
        long status = request_sync(url, NULL, headers, &out, &why);
        free(url);
        free(why);
        json_t *j = status == 200 ? json_loads(out.data ? out.data : "", 0, NULL) : NULL;
        json_t *events = json_object_get(j, "events");
        int64_t t0 = -1;
        size_t idx;
        json_t *ev;
        json_t *seen = json_object();
        json_array_foreach(events, idx, ev)
        {
            const char *type = json_string_value(json_object_get(ev, "type"));
            const char *step = json_string_value(json_object_get(ev, "step"));
            const char *at = json_string_value(json_object_get(ev, "at"));
            int64_t ms;
            if (!type || !at || !time_parse_rfc3339(at, &ms))
                continue;
            if (t0 < 0 && strcmp(type, "execution_started") == 0)
                t0 = ms;
            if (t0 < 0)
                continue;
            char *label = step ? xasprintf("%s:%s", step, type) : xstrdup(type);
            if (!json_object_get(seen, label)) {
                json_object_set_new(seen, label, json_true());
                json_t *acc = json_object_get(sums, label);
                if (!acc) {
                    acc = json_pack("[f, i]", 0.0, 0);
                    json_object_set_new(sums, label, acc);
                }
                json_array_set_new(
                    acc, 0, json_real(json_real_value(json_array_get(acc, 0)) + (double)(ms - t0)));
                json_array_set_new(acc, 1,
                                   json_integer(json_integer_value(json_array_get(acc, 1)) + 1));
            }
            free(label);
        }
        if (t0 >= 0) {
            used++;
            client_sum_ms += (double)r->latency_us[i] / 1000.0;
        }
        json_decref(seen);
        json_decref(j);
    }
    buf_free(&out);
    if (used == 0) {
        json_decref(sums);
        return NULL;
    }
    json_t *means = json_object();
    const char *label;
    json_t *acc;
    json_object_foreach(sums, label, acc)
    {
        double n = (double)json_integer_value(json_array_get(acc, 1));
        json_object_set_new(
            means, label,
            json_real(round(100.0 * json_real_value(json_array_get(acc, 0)) / n) / 100));
    }
    json_object_set_new(means, "client",
                        json_real(round(100.0 * client_sum_ms / (double)used) / 100));
    json_object_set_new(means, "executions", json_integer(used));
    json_decref(sums);
    return means;
}

/* ---- statistics and output --------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v, in milliseconds. */
static double percentile_ms(const int64_t *v, long n, double q)
{
    if (n <= 0)
        return 0;
    long rank = (long)ceil(q * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)v[rank - 1] / 1000.0;
}

static void print_versions(void)
{
    curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    printf("keel %s (keel-bench with libcurl %s, jansson %s)\n", KEEL_VERSION, cv->version,
           jansson_version_str());
}

static int parse_cpu_watch(struct options *o, const char *arg, bool tree)
{
    const char *eq = strchr(arg, '=');
    long pid;
    if (!eq || eq == arg || !parse_long(eq + 1, 1, 1L << 30, &pid) || o->ncpu >= MAX_CPU_WATCHES)
        return -1;
    struct cpu_watch *w = &o->cpu[o->ncpu++];
    w->name = xstrndup(arg, (size_t)(eq - arg));
    w->pid = pid;
    w->tree = tree;
    return 0;
}

/* ---- --summary ----------------------------------------------------------------------------- */

static double jnum(json_t *obj, const char *key)
{
    return json_number_value(json_object_get(obj, key));
}

static int print_summary(const char *path, double floor_tps)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "keel-bench: %s: %s\n", path, strerror(errno));
        return 1;
    }
    json_t *runs = json_array();
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (j)
            json_array_append_new(runs, j);
    }
    fclose(f);

    printf("%9s %6s %8s %8s %7s %7s %7s %7s %5s %7s %10s %9s\n", "in flight", "N", "exec/s",
           "steps/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "fails", "% floor", "xacts/step",
           "WAL/step");
    double steps_at_32 = -1, p50_at_1 = -1;
    size_t i;
    json_t *j;
    json_array_foreach(runs, i, j)
    {
        double steps = jnum(j, "steps_per_s");
        long c = (long)json_integer_value(json_object_get(j, "concurrency"));
        char floor_pct[16] = "-", xacts[16] = "-", wal[16] = "-";
        if (floor_tps > 0)
            snprintf(floor_pct, sizeof floor_pct, "%.0f%%", 100.0 * steps / floor_tps);
        json_t *pg = json_object_get(j, "postgres");
        if (json_is_object(pg)) {
            snprintf(xacts, sizeof xacts, "%.2f", jnum(pg, "write_transactions_per_step"));
            snprintf(wal, sizeof wal, "%.0f B", jnum(pg, "wal_bytes_per_step"));
        }
        printf("%9ld %6" JSON_INTEGER_FORMAT " %8.1f %8.1f %7.2f %7.2f %7.2f %7.2f "
               "%5" JSON_INTEGER_FORMAT " %7s %10s %9s\n",
               c, json_integer_value(json_object_get(j, "executions")), jnum(j, "executions_per_s"),
               steps, jnum(j, "p50_ms"), jnum(j, "p90_ms"), jnum(j, "p99_ms"), jnum(j, "max_ms"),
               json_integer_value(json_object_get(j, "failures")), floor_pct, xacts, wal);
        if (c == 32)
            steps_at_32 = steps;
        if (c == 1)
            p50_at_1 = jnum(j, "p50_ms");
    }
    if (floor_tps > 0)
        printf("floor: pgbench single-row INSERT, 8 clients: %.1f transactions/s\n", floor_tps);

    printf("\nCPU during each measured run, %% of one core:\n");
    json_array_foreach(runs, i, j)
    {
        json_t *cpu = json_object_get(j, "cpu_percent");
        struct buf b = BUF_INIT;
        const char *name;
        json_t *v;
        json_object_foreach(cpu, name, v)
        {
            if (strcmp(name, "machine_max") == 0)
                continue;
            buf_printf(&b, "%s%s %.0f", b.len ? ", " : "", name, json_number_value(v));
            if (strcmp(name, "machine") == 0 && json_object_get(cpu, "machine_max"))
                buf_printf(&b, " of %.0f", jnum(cpu, "machine_max"));
        }
        printf("%9" JSON_INTEGER_FORMAT " in flight: %s\n",
               json_integer_value(json_object_get(j, "concurrency")), b.data ? b.data : "-");
        buf_free(&b);
        /* CPU time per step, which bounds steps/s on a busy machine whatever the commit rate. */
        double steps = jnum(j, "steps_per_s");
        if (steps > 0) {
            json_object_foreach(cpu, name, v)
            {
                if (strcmp(name, "keeld") == 0 || strcmp(name, "postgres") == 0 ||
                    strcmp(name, "receiver") == 0 || strcmp(name, "keel-bench") == 0)
                    buf_printf(&b, "%s%s %.0f", b.len ? ", " : "", name,
                               json_number_value(v) / 100.0 * 1e6 / steps);
            }
            printf("%9s CPU us per step: %s\n", "", b.data ? b.data : "-");
            buf_free(&b);
        }
    }

    printf("\ntargets:\n");
    if (steps_at_32 >= 0 && floor_tps > 0)
        printf("  steps/s at 32 in flight >= 50%% of the floor (%.1f): %.1f = %.0f%%: %s\n",
               floor_tps / 2, steps_at_32, 100.0 * steps_at_32 / floor_tps,
               steps_at_32 >= floor_tps / 2 ? "met" : "MISSED");
    else
        printf("  steps/s at 32 in flight >= 50%% of the floor: not measured\n");
    if (p50_at_1 >= 0)
        printf("  p50 start-to-completion at 1 in flight < 5 ms: %.2f ms: %s\n", p50_at_1,
               p50_at_1 < 5.0 ? "met" : "MISSED");
    else
        printf("  p50 start-to-completion at 1 in flight < 5 ms: not measured\n");
    json_decref(runs);
    return 0;
}

/* ---- --mode timers and --mode idle --------------------------------------------------------- */

/* Starts r's executions (start only, up to nslots in flight) and prints the start rate.
 * Returns 0 if every start answered 201. */
static int start_all(struct run *r, const char *what)
{
    r->start_only = true;
    if (run_load(r) < 0)
        return -1;
    double wall_s = (double)(r->last_end_us - r->first_start_us) / 1e6;
    qsort(r->start_us, (size_t)r->nstarted_ok, sizeof(int64_t), cmp_i64);
    fprintf(stderr,
            "keel-bench: %s: %ld started in %.2f s (%.1f/s, %ld in flight), start request p50 "
            "%.2f ms, p99 %.2f ms, %ld failed\n",
            what, r->nstarted_ok, wall_s, wall_s > 0 ? (double)r->nstarted_ok / wall_s : 0,
            r->nslots, percentile_ms(r->start_us, r->nstarted_ok, 0.5),
            percentile_ms(r->start_us, r->nstarted_ok, 0.99), r->failed);
    for (int i = 0; i < r->nfailures_kept; i++)
        fprintf(stderr, "  %s\n", r->failures[i]);
    return r->failed ? -1 : 0;
}

static json_t *start_json(struct run *r)
{
    double wall_s = (double)(r->last_end_us - r->first_start_us) / 1e6;
    return json_pack(
        "{s:I, s:f, s:f, s:f, s:f}", "started", (json_int_t)r->nstarted_ok, "seconds",
        round(wall_s * 1000) / 1000, "per_s",
        round((wall_s > 0 ? (double)r->nstarted_ok / wall_s : 0) * 10) / 10, "request_p50_ms",
        round(percentile_ms(r->start_us, r->nstarted_ok, 0.5) * 100) / 100, "request_p99_ms",
        round(percentile_ms(r->start_us, r->nstarted_ok, 0.99) * 100) / 100);
}

static void emit_json(const struct options *o, json_t *res)
{
    char *line = json_dumps(res, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    printf("json: %s\n", line);
    if (o->json_out) {
        FILE *jf = fopen(o->json_out, "a");
        if (!jf || fprintf(jf, "%s\n", line) < 0 || fclose(jf) != 0)
            fprintf(stderr, "keel-bench: cannot write %s: %s\n", o->json_out, strerror(errno));
    }
    free(line);
}

/* One row of a query with up to 2 text parameters, or NULL (with the error printed). */
static PGresult *pg_row(PGconn *pg, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fprintf(stderr, "keel-bench: query failed: %s", PQerrorMessage(pg));
        PQclear(res);
        return NULL;
    }
    return res;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* CPU of the --cpu processes, of keel-bench and of the machine at one instant. */
struct cpu_snap {
    double c[MAX_CPU_WATCHES], self;
    struct machine_cpu m;
    int64_t t_us;
};

static void cpu_snap_take(const struct options *o, struct cpu_snap *s)
{
    for (int i = 0; i < o->ncpu; i++)
        s->c[i] = watch_cpu_s(o->cpu[i].pid, o->cpu[i].tree);
    s->self = self_cpu_s();
    s->m = machine_cpu_now();
    s->t_us = now_us();
}

/* CPU use between a and b, in percent of one core, with "others" (the rest of the machine). */
static json_t *cpu_between(const struct options *o, const struct cpu_snap *a,
                           const struct cpu_snap *b)
{
    double wall_s = (double)(b->t_us - a->t_us) / 1e6;
    if (wall_s <= 0)
        wall_s = 1e-6;
    json_t *cpu = json_object();
    double ours = 0;
    for (int i = 0; i < o->ncpu; i++) {
        if (a->c[i] < 0 || b->c[i] < 0)
            continue;
        double pct = 100.0 * (b->c[i] - a->c[i]) / wall_s;
        ours += pct;
        json_object_set_new(cpu, o->cpu[i].name, json_real(round(pct * 100) / 100));
    }
    double self_pct = 100.0 * (b->self - a->self) / wall_s;
    ours += self_pct;
    json_object_set_new(cpu, "keel-bench", json_real(round(self_pct * 100) / 100));
    double ncores = (double)sysconf(_SC_NPROCESSORS_ONLN);
    if (b->m.total > a->m.total) {
        double span = (b->m.total - a->m.total) / ncores;
        double busy = 100.0 * (b->m.busy - a->m.busy) / span;
        double others = busy - ours;
        json_object_set_new(cpu, "others", json_real(round((others > 0 ? others : 0) * 10) / 10));
        json_object_set_new(cpu, "machine", json_real(round(busy * 10) / 10));
    }
    return cpu;
}

/* CPU use over one window of o->idle_window_s. */
static json_t *cpu_window(const struct options *o)
{
    struct cpu_snap a, b;
    cpu_snap_take(o, &a);
    sleep_ms(o->idle_window_s * 1000);
    cpu_snap_take(o, &b);
    return cpu_between(o, &a, &b);
}

static void print_cpu(const char *label, json_t *cpu);

/* N executions whose one sleep_until step is due at the same instant T; how late each timer
 * fired (its timer_fired event) after T. */
static int timers_mode(const struct options *o, struct curl_slist *headers, CURLM *multi,
                       struct slot *slots, PGconn *pg, long base)
{
    if (!pg) {
        fprintf(stderr, "keel-bench: --mode timers needs --pg-url\n");
        return 1;
    }
    int rc = 1;
    struct run warm = {0}, meas = {0};
    char at[32], *extra = NULL;
    /* The start rate, from executions due in the past (they complete at once). */
    double rate = 100;
    if (o->warmup > 0) {
        time_format_rfc3339(time_now_ms() - 1000, at);
        extra = xasprintf("\"at\":\"%s\"", at);
        run_init(&warm, o, headers, multi, slots, base, o->warmup, o->concurrency);
        warm.input_extra = extra;
        if (start_all(&warm, "warm-up (due in the past)") < 0)
            goto Exit;
        double w = (double)(warm.last_end_us - warm.first_start_us) / 1e6;
        if (w > 0)
            rate = (double)warm.nstarted_ok / w;
        free(extra);
    }
    /* T: the estimated time to start them all, x1.5, + 5 s, rounded up to a whole second. */
    int64_t lead_ms = (int64_t)(1500.0 * (double)o->executions / rate) + 5000;
    int64_t t_ms = (time_now_ms() + lead_ms + 999) / 1000 * 1000;
    time_format_rfc3339(t_ms, at);
    fprintf(stderr, "keel-bench: %ld timers due at %s (in %.1f s; warm-up start rate %.1f/s)\n",
            o->executions, at, (double)(t_ms - time_now_ms()) / 1000, rate);
    extra = xasprintf("\"at\":\"%s\"", at);
    run_init(&meas, o, headers, multi, slots, base + o->warmup, o->executions, o->concurrency);
    meas.input_extra = extra;
    int started = start_all(&meas, "timers");
    int64_t starts_done_ms = time_now_ms();
    bool in_time = starts_done_ms < t_ms;
    if (!in_time)
        fprintf(stderr,
                "keel-bench: WARNING: the last start ended %.3f s after T: the figures "
                "below mix lateness with start time\n",
                (double)(starts_done_ms - t_ms) / 1000);
    if (started < 0 && meas.nstarted_ok == 0)
        goto Exit;

    /* Wait until every execution has ended (or T + --timeout). */
    const char *params[2] = {o->workflow, at};
    long ended = 0;
    struct cpu_snap cpu_t, cpu_end;
    sleep_ms(t_ms - time_now_ms());
    cpu_snap_take(o, &cpu_t);
    cpu_end = cpu_t;
    for (;;) {
        PGresult *res = pg_row(pg,
                               "SELECT count(*) FILTER (WHERE status <> 'running') FROM executions "
                               "WHERE workflow = $1 AND input->>'at' = $2",
                               2, params);
        if (!res)
            goto Exit;
        ended = atol(PQgetvalue(res, 0, 0));
        PQclear(res);
        cpu_snap_take(o, &cpu_end);
        if (ended >= meas.nstarted_ok)
            break;
        if (time_now_ms() > t_ms + o->timeout_s * 1000) {
            fprintf(stderr, "keel-bench: %ld of %ld executions not ended %ld s after T\n",
                    meas.nstarted_ok - ended, meas.nstarted_ok, o->timeout_s);
            break;
        }
        sleep_ms(1000); /* the count costs PostgreSQL a little CPU while the timers fire */
    }

    PGresult *res =
        pg_row(pg,
               "WITH x AS (SELECT id FROM executions WHERE workflow = $1 AND input->>'at' = $2), "
               "f AS (SELECT extract(epoch FROM e.at - $2::timestamptz) * 1000 AS ms FROM events e "
               "      JOIN x ON x.id = e.execution_id WHERE e.type = 'timer_fired'), "
               "c AS (SELECT count(*) AS n, extract(epoch FROM max(e.at) - $2::timestamptz) * 1000 "
               "      AS ms FROM events e JOIN x ON x.id = e.execution_id "
               "      WHERE e.type = 'execution_completed') "
               "SELECT (SELECT count(*) FROM x), count(*), "
               "       coalesce(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms), 0), "
               "       coalesce(percentile_disc(0.99) WITHIN GROUP (ORDER BY ms), 0), "
               "       coalesce(max(ms), 0), coalesce(min(ms), 0), "
               "       (SELECT n FROM c), coalesce((SELECT ms FROM c), 0) FROM f",
               2, params);
    if (!res)
        goto Exit;
    long nexec = atol(PQgetvalue(res, 0, 0)), nfired = atol(PQgetvalue(res, 0, 1));
    double p50 = atof(PQgetvalue(res, 0, 2)), p99 = atof(PQgetvalue(res, 0, 3)),
           pmax = atof(PQgetvalue(res, 0, 4)), pmin = atof(PQgetvalue(res, 0, 5));
    long ncompleted = atol(PQgetvalue(res, 0, 6));
    double last_completed = atof(PQgetvalue(res, 0, 7));
    PQclear(res);
    /* From T to the poll that saw all ended: while the timers fired, and up to 1 s more. */
    json_t *cpu = cpu_between(o, &cpu_t, &cpu_end);
    bool all = nfired == o->executions && ncompleted == o->executions;
    bool met = all && pmax <= 2000;
    printf("timers: %ld executions due at %s, started %.1f s before it; %ld fired, %ld "
           "completed\n",
           nexec, at, (double)(t_ms - starts_done_ms) / 1000, nfired, ncompleted);
    printf("timer_fired after T: p50 %.0f ms, p99 %.0f ms, max %.0f ms (min %.0f ms); last "
           "execution completed %.0f ms after T\n",
           p50, p99, pmax, pmin, last_completed);
    printf("target: %ld timers due at the same instant all fire within 2 s of it "
           "(the issue: 20,000): max %.3f s: %s\n",
           o->executions, pmax / 1000, met ? "met" : "MISSED");
    print_cpu("from T to the poll that saw all ended (up to 1 s after the last)", cpu);
    json_t *j =
        json_pack("{s:s, s:I, s:I, s:s, s:o, s:f, s:b, s:I, s:I, s:{s:f, s:f, s:f, s:f}, "
                  "s:f, s:o, s:b}",
                  "bench", "keel-timers", "executions", (json_int_t)o->executions, "concurrency",
                  (json_int_t)o->concurrency, "due_at", at, "start", start_json(&meas),
                  "starts_done_before_due_s", round((double)(t_ms - starts_done_ms)) / 1000,
                  "starts_done_before_due", in_time, "fired", (json_int_t)nfired, "completed",
                  (json_int_t)ncompleted, "fired_late_ms", "p50", p50, "p99", p99, "max", pmax,
                  "min", pmin, "last_completed_after_due_ms", last_completed,
                  "cpu_percent_while_firing", cpu, "target_met", met);
    emit_json(o, j);
    json_decref(j);
    rc = all && in_time && started == 0 ? 0 : 1;
Exit:
    free(extra);
    run_free(&warm);
    run_free(&meas);
    return rc;
}

/* VmRSS and VmHWM of pid in kB (0 if unknown). */
static void proc_memory_kb(long pid, long *rss, long *hwm)
{
    *rss = *hwm = 0;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss = atol(line + 6);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm = atol(line + 6);
    }
    fclose(f);
}

static void print_cpu(const char *label, json_t *cpu)
{
    struct buf b = BUF_INIT;
    const char *name;
    json_t *v;
    json_object_foreach(cpu, name, v)
    {
        buf_printf(&b, "%s%s %.2f", b.len ? ", " : "", name, json_number_value(v));
    }
    printf("CPU %s, %% of one core: %s\n", label, b.data ? b.data : "-");
    buf_free(&b);
}

/* N executions sleeping a long time: CPU with none and with N waiting, and keeld's memory. */
static int idle_mode(const struct options *o, struct curl_slist *headers, CURLM *multi,
                     struct slot *slots, PGconn *pg, long base)
{
    long keeld_pid = 0;
    for (int i = 0; i < o->ncpu; i++)
        if (strcmp(o->cpu[i].name, "keeld") == 0)
            keeld_pid = o->cpu[i].pid;
    long rss0, hwm0, rss1, hwm1, rss2, hwm2;
    proc_memory_kb(keeld_pid, &rss0, &hwm0);
    fprintf(stderr, "keel-bench: %ld s window with nothing waiting\n", o->idle_window_s);
    json_t *cpu_before = cpu_window(o);
    struct run r = {0};
    run_init(&r, o, headers, multi, slots, base, o->executions, o->concurrency);
    int started = start_all(&r, "sleeping executions");
    proc_memory_kb(keeld_pid, &rss1, &hwm1);
    long sleeping = -1;
    if (pg) {
        const char *params[1] = {o->workflow};
        PGresult *res = pg_row(pg,
                               "SELECT count(*) FROM executions WHERE workflow = $1 AND status = "
                               "'running'",
                               1, params);
        if (res) {
            sleeping = atol(PQgetvalue(res, 0, 0));
            PQclear(res);
        }
    }
    sleep_ms(2000); /* let the last transitions settle */
    fprintf(stderr, "keel-bench: %ld s window with %ld executions waiting\n", o->idle_window_s,
            r.nstarted_ok);
    json_t *cpu_after = cpu_window(o);
    proc_memory_kb(keeld_pid, &rss2, &hwm2);
    double keeld_cpu = json_number_value(json_object_get(cpu_after, "keeld"));
    bool mem_met = hwm2 > 0 && hwm2 <= 64 * 1024;

    qsort(r.start_us, (size_t)r.nstarted_ok, sizeof(int64_t), cmp_i64);
    printf("idle: %ld executions started (%ld running in the database), each sleeping %s\n",
           r.nstarted_ok, sleeping, o->sleep);
    printf("keeld memory: before the starts VmRSS %.1f MB (VmHWM %.1f MB); after them %.1f MB; "
           "after the window %.1f MB (VmHWM %.1f MB)\n",
           (double)rss0 / 1024, (double)hwm0 / 1024, (double)rss1 / 1024, (double)rss2 / 1024,
           (double)hwm2 / 1024);
    print_cpu("with nothing waiting", cpu_before);
    print_cpu("with them waiting", cpu_after);
    printf("target: keeld resident memory <= 64 MB with %ld executions waiting on timers (the "
           "issue: 100,000): VmHWM %.1f MB: %s\n",
           r.nstarted_ok, (double)hwm2 / 1024, mem_met ? "met" : "MISSED");
    /* /proc counts CPU in clock ticks (10 ms at 100 Hz): one tick more than with nothing
     * waiting is within the resolution. */
    double keeld_cpu0 = json_number_value(json_object_get(cpu_before, "keeld"));
    double tick_pct = 100.0 / (double)sysconf(_SC_CLK_TCK) / (double)o->idle_window_s;
    bool cpu_met = keeld_cpu - keeld_cpu0 <= tick_pct * 1.01;
    printf("target: no CPU spent on them while they wait: keeld %.2f%% of one core over %ld s "
           "(%.2f%% with nothing waiting; resolution %.2f%%): %s; postgres %.2f%% (%.2f%%)\n",
           keeld_cpu, o->idle_window_s, keeld_cpu0, tick_pct, cpu_met ? "met" : "MISSED",
           json_number_value(json_object_get(cpu_after, "postgres")),
           json_number_value(json_object_get(cpu_before, "postgres")));
    json_t *j = json_pack(
        "{s:s, s:I, s:I, s:s, s:o, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:o, s:o, s:b, s:b}", "bench",
        "keel-idle", "executions", (json_int_t)o->executions, "concurrency",
        (json_int_t)o->concurrency, "sleep", o->sleep, "start", start_json(&r), "running_in_db",
        (json_int_t)sleeping, "window_s", (json_int_t)o->idle_window_s, "keeld_kb", "rss_before",
        (json_int_t)rss0, "rss_after_starts", (json_int_t)rss1, "rss", (json_int_t)rss2, "hwm",
        (json_int_t)hwm2, "cpu_percent_nothing_waiting", cpu_before, "cpu_percent_waiting",
        cpu_after, "memory_target_met", mem_met, "cpu_target_met", cpu_met);
    emit_json(o, j);
    json_decref(j);
    run_free(&r);
    return started == 0 ? 0 : 1;
}

/* ---- --mode for-each ------------------------------------------------------------------------ */

#define FOR_EACH_WINDOW 1000 /* the first and last 1,000 steps */
#define FOR_EACH_POLL_S 10   /* each long poll of the result, and a progress line as often */
#define FOR_EACH_SHOWN  5    /* mismatches printed of each kind */

/* Completed iterations of the for_each so far (their step rows), or -1. */
static long for_each_progress(PGconn *pg, const char *id)
{
    const char *params[1] = {id};
    PGresult *res = pg_row(pg,
                           "SELECT count(*) FROM steps WHERE execution_id = $1 AND status = "
                           "'completed' AND path ~ '^all/[0-9]+/call$'",
                           1, params);
    long done = res ? atol(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    return done;
}

/* The execution ended (exec is its result): it must have completed with the array of each
 * iteration's /ok answer, in item order: element i is {"echo": i, "key": "<id>/all/<i>/call"}.
 * Prints the first mismatches. */
static bool for_each_output_ok(json_t *exec, const char *id, long n)
{
    const char *status = json_string_value(json_object_get(exec, "status"));
    if (!status || strcmp(status, "completed") != 0) {
        char *err = json_dumps(json_object_get(exec, "error"), JSON_COMPACT | JSON_ENCODE_ANY);
        fprintf(stderr, "keel-bench: execution %s ended %s, error %.500s\n", id,
                status ? status : "(no status)", err ? err : "null");
        free(err);
        return false;
    }
    json_t *output = json_object_get(exec, "output");
    if (!json_is_array(output) || (long)json_array_size(output) != n) {
        fprintf(stderr,
                "keel-bench: execution %s: output is not an array of %ld elements (%s of %zu)\n",
                id, n, json_is_array(output) ? "an array" : "not an array",
                json_array_size(output));
        return false;
    }
    long bad = 0;
    for (long i = 0; i < n; i++) {
        json_t *el = json_array_get(output, (size_t)i);
        json_t *echo = json_object_get(el, "echo");
        const char *key = json_string_value(json_object_get(el, "key"));
        char *want = xasprintf("%s/all/%ld/call", id, i);
        if (!json_is_integer(echo) || json_integer_value(echo) != i || !key ||
            strcmp(key, want) != 0) {
            if (bad++ < FOR_EACH_SHOWN) {
                char *got = json_dumps(el, JSON_COMPACT | JSON_ENCODE_ANY);
                fprintf(stderr, "keel-bench: output[%ld] is %.300s, expected echo %ld, key %s\n", i,
                        got ? got : "null", i, want);
                free(got);
            }
        }
        free(want);
    }
    if (bad)
        fprintf(stderr, "keel-bench: %ld of %ld output elements out of place or wrong\n", bad, n);
    return bad == 0;
}

/* The receiver's keys of the execution: each "<id>/all/<i>/call" delivered and applied exactly
 * once, and no other key starting with "<id>/". Sets *nkeys to the keys of the execution seen.
 * Prints the first mismatches. */
static bool for_each_keys_ok(const struct options *o, const char *id, long n, long *nkeys)
{
    char *url = xasprintf("%s/_stats", o->receiver);
    struct buf out = BUF_INIT;
    char *why = NULL;
    bool ok = false;
    *nkeys = 0;
    long status = request_sync(url, NULL, NULL, &out, &why);
    json_t *j = status == 200 ? json_loads(out.data ? out.data : "", 0, NULL) : NULL;
    json_t *keys = json_object_get(j, "keys");
    if (!json_is_object(keys)) {
        fprintf(stderr, "keel-bench: GET %s: %s\n", url, why ? why : "no keys in the answer");
        goto Exit;
    }
    size_t plen = strlen(id);
    const char *key;
    json_t *v;
    json_object_foreach(keys, key, v)
    {
        if (strncmp(key, id, plen) == 0 && key[plen] == '/')
            (*nkeys)++;
    }
    long bad = 0;
    for (long i = 0; i < n; i++) {
        char *k = xasprintf("%s/all/%ld/call", id, i);
        json_t *e = json_object_get(keys, k);
        json_int_t deliveries = json_integer_value(json_object_get(e, "deliveries"));
        json_int_t applied = json_integer_value(json_object_get(e, "applied"));
        if ((deliveries != 1 || applied != 1) && bad++ < FOR_EACH_SHOWN)
            fprintf(stderr,
                    "keel-bench: receiver key %s: %" JSON_INTEGER_FORMAT
                    " deliveries, applied %" JSON_INTEGER_FORMAT ", expected 1 and 1\n",
                    k, deliveries, applied);
        free(k);
    }
    if (bad)
        fprintf(stderr, "keel-bench: %ld of %ld iteration keys not delivered exactly once\n", bad,
                n);
    if (*nkeys != n)
        fprintf(stderr, "keel-bench: the receiver saw %ld keys of execution %s, expected %ld\n",
                *nkeys, id, n);
    ok = bad == 0 && *nkeys == n;
Exit:
    json_decref(j);
    free(why);
    buf_free(&out);
    free(url);
    return ok;
}

/* One execution of one for_each over N items (o->executions), o->concurrency iterations at
 * once, each one activity step calling the receiver's /ok. Reports from the history how long
 * the first and the last FOR_EACH_WINDOW steps took (their step_completed events), keeld's CPU
 * and memory, and the size of the execution's rows. */
static int for_each_mode(const struct options *o, struct curl_slist *headers, PGconn *pg)
{
    if (!pg || !o->receiver) {
        fprintf(stderr, "keel-bench: --mode for-each needs --pg-url and --receiver\n");
        return 1;
    }
    const long n = o->executions;
    if (n < 2) {
        fprintf(stderr, "keel-bench: --mode for-each needs at least 2 items\n");
        return 1;
    }
    int rc = 1;
    char *url = NULL, *why = NULL, *id = NULL;
    struct buf in = BUF_INIT, out = BUF_INIT;
    json_t *exec = NULL;
    PGresult *res = NULL;
    double *t_ms = NULL;
    long keeld_pid = 0;
    for (int i = 0; i < o->ncpu; i++)
        if (strcmp(o->cpu[i].name, "keeld") == 0)
            keeld_pid = o->cpu[i].pid;

    struct receiver_stats rs0 = {0}, rs1 = {0};
    bool have_stats = receiver_stats_get(o, &rs0) == 0;
    struct pg_counters pg0 = {0, 0}, pg1 = {0, 0};
    bool have_pg = pg_counters_get(pg, &pg0) == 0;
    struct cpu_snap c0, c1;
    cpu_snap_take(o, &c0);

    /* Start it: {"items": [0, 1, ..., n - 1]}. */
    buf_puts(&in, "{\"input\":{\"items\":[");
    for (long i = 0; i < n; i++)
        buf_printf(&in, "%s%ld", i ? "," : "", i);
    buf_puts(&in, "]}}");
    url = xasprintf("%s/v1/workflows/%s/executions", o->url, o->workflow);
    int64_t t0_us = now_us();
    long status = request_sync(url, in.data, headers, &out, &why);
    json_t *j = status == 201 ? json_loads(out.data ? out.data : "", 0, NULL) : NULL;
    if (json_string_value(json_object_get(j, "id")))
        id = xstrdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    if (!id) {
        fprintf(stderr, "keel-bench: POST %s answered %ld: %.500s\n", url, status,
                why ? why : (out.data ? out.data : ""));
        goto Exit;
    }
    fprintf(stderr, "keel-bench: execution %s: one for_each over %ld items, %ld at once\n", id, n,
            o->concurrency);

    /* Wait for its end, with a progress line at each long poll that answers 202. On the
     * timeout, what follows reports the steps completed so far (and fails the checks). */
    free(url);
    url = xasprintf("%s/v1/executions/%s/result?wait=%d", o->url, id, FOR_EACH_POLL_S);
    int64_t t1_us;
    bool timed_out = false;
    for (;;) {
        free(why);
        why = NULL;
        status = request_sync(url, NULL, headers, &out, &why);
        t1_us = now_us();
        if (status == 200) {
            exec = json_loads(out.data ? out.data : "", 0, NULL);
            break;
        }
        if (status != 202) {
            fprintf(stderr, "keel-bench: GET %s answered %ld: %.500s\n", url, status,
                    why ? why : (out.data ? out.data : ""));
            goto Exit;
        }
        double elapsed_s = (double)(t1_us - t0_us) / 1e6;
        long done = for_each_progress(pg, id);
        if (elapsed_s > (double)o->timeout_s) {
            fprintf(stderr,
                    "keel-bench: TIMEOUT: execution %s has not ended %ld s after its start "
                    "(%ld of %ld iterations completed); giving up (--timeout)\n",
                    id, o->timeout_s, done, n);
            timed_out = true;
            break;
        }
        fprintf(stderr, "keel-bench: %.0f s: %ld of %ld iterations completed\n", elapsed_s, done,
                n);
    }
    cpu_snap_take(o, &c1);
    long rss = 0, hwm = 0;
    proc_memory_kb(keeld_pid, &rss, &hwm);
    have_pg = have_pg && pg_counters_get(pg, &pg1) == 0;
    have_stats = have_stats && receiver_stats_get(o, &rs1) == 0;

    /* Correctness: completed, the output in item order, each key delivered once. */
    bool output_ok = exec && for_each_output_ok(exec, id, n);
    long nkeys = 0;
    bool keys_ok = !timed_out && for_each_keys_ok(o, id, n, &nkeys);
    json_int_t d_deliv = rs1.deliveries - rs0.deliveries, d_applied = rs1.applied - rs0.applied,
               d_dup = rs1.duplicates - rs0.duplicates,
               d_badsig = rs1.bad_signatures - rs0.bad_signatures;
    bool receiver_ok =
        have_stats && keys_ok && d_deliv == n && d_applied == n && d_dup == 0 && d_badsig == 0;

    /* The steps' completion times, in ms after execution_started, in order. */
    const char *params[1] = {id};
    res = PQexecParams(
        pg,
        "SELECT extract(epoch FROM e.at - s.at) * 1000 FROM events e, "
        "(SELECT at FROM events WHERE execution_id = $1 AND type = 'execution_started') s "
        "WHERE e.execution_id = $1 AND e.type = 'step_completed' AND e.path ~ '^all/[0-9]+/call$' "
        "ORDER BY e.at, e.seq",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "keel-bench: query failed: %s", PQerrorMessage(pg));
        goto Exit;
    }
    long nt = PQntuples(res);
    t_ms = xcalloc((size_t)(nt > 0 ? nt : 1), sizeof *t_ms);
    for (long i = 0; i < nt; i++)
        t_ms[i] = atof(PQgetvalue(res, (int)i, 0));
    PQclear(res);
    res = NULL;
    bool events_ok = nt == n;
    if (!events_ok) {
        fprintf(stderr, "keel-bench: %ld step_completed events of all/<i>/call, expected %ld\n", nt,
                n);
        if (nt < 2)
            goto Exit;
    }
    /* The window: 1,000 steps, or half of them when there are fewer than 2,000. */
    long w = nt >= 2 * FOR_EACH_WINDOW ? FOR_EACH_WINDOW : nt / 2;
    double total_ms = t_ms[nt - 1];
    double first_ms = t_ms[w - 1];
    double last_ms = t_ms[nt - 1] - t_ms[nt - 1 - w];
    double ratio = first_ms > 0 ? last_ms / first_ms : 1e9; /* JSON has no infinity */
    double steps_per_s = total_ms > 0 ? 1000.0 * (double)nt / total_ms : 0;
    json_t *blocks = json_array();
    struct buf bl = BUF_INIT;
    for (long k = 0; (k + 1) * w <= nt; k++) {
        double ms = t_ms[(k + 1) * w - 1] - (k ? t_ms[k * w - 1] : 0);
        json_array_append_new(blocks, json_real(round(ms)));
        buf_printf(&bl, "%s%.0f", k ? " " : "", ms);
    }

    /* The execution's rows: the state (rewritten whole at each transition), its step rows and
     * its events. pg_column_size is the stored size (compressed when PostgreSQL compressed it). */
    res = pg_row(
        pg,
        "SELECT pg_column_size(e.state), octet_length(e.state::text), "
        "coalesce(pg_column_size(e.output), 0), pg_column_size(e.*), "
        "(SELECT count(*) FROM steps WHERE execution_id = $1), "
        "(SELECT coalesce(sum(pg_column_size(s.*)), 0) FROM steps s WHERE s.execution_id = $1), "
        "(SELECT count(*) FROM events WHERE execution_id = $1), "
        "(SELECT coalesce(sum(pg_column_size(v.*)), 0) FROM events v WHERE v.execution_id = $1) "
        "FROM executions e WHERE e.id = $1",
        1, params);
    if (!res)
        goto Exit;
    long long sz[8];
    for (int i = 0; i < 8; i++)
        sz[i] = atoll(PQgetvalue(res, 0, i));
    PQclear(res);
    res = NULL;

    json_t *cpu = cpu_between(o, &c0, &c1);
    double wall_s = (double)(c1.t_us - c0.t_us) / 1e6;
    double keeld_us =
        json_number_value(json_object_get(cpu, "keeld")) / 100 * wall_s * 1e6 / (double)n;
    double pg_us =
        json_number_value(json_object_get(cpu, "postgres")) / 100 * wall_s * 1e6 / (double)n;
    double client_s = (double)(t1_us - t0_us) / 1e6;
    bool met = output_ok && events_ok && ratio <= 1.5;
    const char *exec_status =
        timed_out ? "TIMEOUT" : json_string_value(json_object_get(exec, "status"));
    if (timed_out)
        printf("TIMEOUT after %.0f s: the figures below are those of the %ld steps completed by "
               "then\n",
               client_s, nt);

    printf("for_each: execution %s, %ld items, %ld at once: %s; output %s; receiver: "
           "%" JSON_INTEGER_FORMAT " deliveries, %" JSON_INTEGER_FORMAT
           " applied, %" JSON_INTEGER_FORMAT " duplicates, %" JSON_INTEGER_FORMAT
           " bad signatures, %ld distinct keys <id>/all/<i>/call "
           "of %ld: %s\n",
           id, n, o->concurrency, exec_status ? exec_status : "(no status)",
           output_ok ? "an array of N in item order: ok" : "WRONG", d_deliv, d_applied, d_dup,
           d_badsig, nkeys, n, receiver_ok ? "ok" : "MISMATCH");
    printf("time: %.3f s from execution_started to the last step_completed (client, start request "
           "to result: %.3f s): %.1f steps/s\n",
           total_ms / 1000, client_s, steps_per_s);
    printf("first %ld steps: %.3f s (from execution_started); last %ld steps: %.3f s; last / "
           "first = %.2f\n",
           w, first_ms / 1000, w, last_ms / 1000, ratio);
    printf("ms per %ld steps, in order: %s\n", w, bl.data ? bl.data : "-");
    printf("target: the last %ld steps take at most 1.5x as long as the first %ld (the issue: "
           "1,000 of 10,000 items): %.2fx: %s\n",
           w, w, ratio, met ? "met" : "MISSED");
    printf("keeld at the end: VmRSS %.1f MB, VmHWM %.1f MB; CPU per step: keeld %.0f us, postgres "
           "%.0f us\n",
           (double)rss / 1024, (double)hwm / 1024, keeld_us, pg_us);
    print_cpu("during the run", cpu);
    if (have_pg)
        printf("postgres: %.2f write transactions and %.0f WAL bytes per step\n",
               (double)(pg1.xids - pg0.xids) / (double)n,
               (double)(pg1.wal_bytes - pg0.wal_bytes) / (double)n);
    printf("rows of the execution (pg_column_size): state %lld bytes (%lld bytes of JSON text), "
           "output %lld, execution row %lld; %lld step rows, %lld bytes; %lld events, %lld bytes\n",
           sz[0], sz[1], sz[2], sz[3], sz[4], sz[5], sz[6], sz[7]);
    json_t *pgj = have_pg
                      ? json_pack("{s:f, s:f}", "write_transactions_per_step",
                                  round(100.0 * (double)(pg1.xids - pg0.xids) / (double)n) / 100,
                                  "wal_bytes_per_step",
                                  round((double)(pg1.wal_bytes - pg0.wal_bytes) / (double)n))
                      : json_null();
    json_t *res_j = json_pack(
        "{s:s, s:I, s:I, s:s, s:s, s:f, s:f, s:f, s:I, s:f, s:f, s:f, s:o, s:b, s:o, "
        "s:{s:I, s:I}, s:{s:f, s:f}, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, "
        "s:{s:b, s:b, s:b}, s:{s:I, s:I, s:I, s:I, s:I}}",
        "bench", "keel-for-each", "items", (json_int_t)n, "concurrency", (json_int_t)o->concurrency,
        "execution", id, "status", exec_status ? exec_status : "", "seconds",
        round(total_ms) / 1000, "client_seconds", round(client_s * 1000) / 1000, "steps_per_s",
        round(steps_per_s * 10) / 10, "window", (json_int_t)w, "first_window_s",
        round(first_ms) / 1000, "last_window_s", round(last_ms) / 1000, "last_over_first",
        round(ratio * 100) / 100, "window_ms", blocks, "target_met", met, "cpu_percent", cpu,
        "keeld_kb", "rss", (json_int_t)rss, "hwm", (json_int_t)hwm, "cpu_us_per_step", "keeld",
        round(keeld_us), "postgres", round(pg_us), "postgres", pgj, "rows", "state_bytes",
        (json_int_t)sz[0], "state_text_bytes", (json_int_t)sz[1], "output_bytes", (json_int_t)sz[2],
        "execution_row_bytes", (json_int_t)sz[3], "steps", (json_int_t)sz[4], "steps_bytes",
        (json_int_t)sz[5], "events", (json_int_t)sz[6], "events_bytes", (json_int_t)sz[7], "checks",
        "output_ok", output_ok, "events_ok", events_ok, "receiver_ok", receiver_ok, "receiver",
        "deliveries", d_deliv, "applied", d_applied, "duplicates", d_dup, "bad_signatures",
        d_badsig, "keys", (json_int_t)nkeys);
    emit_json(o, res_j);
    json_decref(res_j);
    buf_free(&bl);
    rc = output_ok && events_ok && receiver_ok ? 0 : 1;
Exit:
    PQclear(res);
    free(t_ms);
    json_decref(exec);
    buf_free(&in);
    buf_free(&out);
    free(why);
    free(id);
    free(url);
    return rc;
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct options o = {
        .url = "http://127.0.0.1:8080",
        .workflow = "keel-bench",
        .executions = 2000,
        .concurrency = 1,
        .warmup = 20,
        .timeout_s = 120,
        .history = 200,
        .sleep = "1h",
        .idle_window_s = 10,
    };
    const char *summary = NULL;
    double floor_tps = 0;
    enum {
        OPT_URL = 256,
        OPT_RECEIVER,
        OPT_WARMUP,
        OPT_WORKFLOW,
        OPT_TOKEN,
        OPT_TIMEOUT,
        OPT_JSON_OUT,
        OPT_PG_URL,
        OPT_HISTORY,
        OPT_CPU,
        OPT_CPU_TREE,
        OPT_SUMMARY,
        OPT_FLOOR,
        OPT_MODE,
        OPT_SLEEP,
        OPT_IDLE_WINDOW,
        OPT_VERSION
    };
    static const struct option longopts[] = {
        {"url", required_argument, NULL, OPT_URL},
        {"receiver", required_argument, NULL, OPT_RECEIVER},
        {"executions", required_argument, NULL, 'n'},
        {"concurrency", required_argument, NULL, 'c'},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"workflow", required_argument, NULL, OPT_WORKFLOW},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"json-out", required_argument, NULL, OPT_JSON_OUT},
        {"pg-url", required_argument, NULL, OPT_PG_URL},
        {"history", required_argument, NULL, OPT_HISTORY},
        {"cpu", required_argument, NULL, OPT_CPU},
        {"cpu-tree", required_argument, NULL, OPT_CPU_TREE},
        {"summary", required_argument, NULL, OPT_SUMMARY},
        {"floor-tps", required_argument, NULL, OPT_FLOOR},
        {"mode", required_argument, NULL, OPT_MODE},
        {"sleep", required_argument, NULL, OPT_SLEEP},
        {"idle-window", required_argument, NULL, OPT_IDLE_WINDOW},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    bool bad = false;
    while ((ch = getopt_long(argc, argv, "n:c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_URL:
            o.url = optarg;
            break;
        case OPT_RECEIVER:
            o.receiver = optarg;
            break;
        case 'n':
            bad |= !parse_long(optarg, 1, 100000000, &o.executions);
            break;
        case 'c':
            bad |= !parse_long(optarg, 1, 10000, &o.concurrency);
            break;
        case OPT_WARMUP:
            bad |= !parse_long(optarg, 0, 1000000, &o.warmup);
            break;
        case OPT_WORKFLOW:
            o.workflow = optarg;
            break;
        case OPT_TOKEN:
            o.token = optarg;
            break;
        case OPT_TIMEOUT:
            bad |= !parse_long(optarg, 1, 86400, &o.timeout_s);
            break;
        case OPT_JSON_OUT:
            o.json_out = optarg;
            break;
        case OPT_HISTORY:
            bad |= !parse_long(optarg, 0, 1000000, &o.history);
            break;
        case OPT_PG_URL:
            o.pg_url = optarg;
            break;
        case OPT_CPU:
        case OPT_CPU_TREE:
            bad |= parse_cpu_watch(&o, optarg, ch == OPT_CPU_TREE) < 0;
            break;
        case OPT_SUMMARY:
            summary = optarg;
            break;
        case OPT_FLOOR:
            floor_tps = strtod(optarg, NULL);
            break;
        case OPT_MODE:
            o.mode = optarg;
            bad |= strcmp(optarg, "timers") != 0 && strcmp(optarg, "idle") != 0 &&
                   strcmp(optarg, "for-each") != 0 && strcmp(optarg, "step-calls") != 0 &&
                   strcmp(optarg, "tags") != 0;
            break;
        case OPT_SLEEP:
            o.sleep = optarg;
            break;
        case OPT_IDLE_WINDOW:
            bad |= !parse_long(optarg, 1, 3600, &o.idle_window_s);
            break;
        case OPT_VERSION:
            print_versions();
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            bad = true;
        }
    }
    if (summary && !bad && optind == argc)
        return print_summary(summary, floor_tps);
    bool for_each = o.mode && strcmp(o.mode, "for-each") == 0;
    bool step_calls = o.mode && strcmp(o.mode, "step-calls") == 0;
    bool tags = o.mode && strcmp(o.mode, "tags") == 0;
    if (o.mode && strcmp(o.workflow, "keel-bench") == 0)
        o.workflow = for_each                        ? "keel-bench-for-each"
                     : strcmp(o.mode, "timers") == 0 ? "keel-bench-timers"
                                                     : "keel-bench-idle";
    if (bad || optind != argc || (!o.receiver && (!o.mode || for_each || step_calls))) {
        if (!o.receiver && !bad)
            fprintf(stderr, "keel-bench: --receiver is required\n");
        usage(stderr);
        return 2;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "keel-bench: curl_global_init failed\n");
        return 1;
    }
    int exit_code = 1;
    struct curl_slist *headers = make_headers(&o);
    CURLM *multi = curl_multi_init();
    struct slot *slots = xcalloc((size_t)o.concurrency, sizeof *slots);
    struct run warm = {0}, meas = {0};
    PGconn *pg = NULL;
    for (long i = 0; i < o.concurrency; i++) {
        slots[i].easy = curl_easy_init();
        if (!slots[i].easy) {
            fprintf(stderr, "keel-bench: curl_easy_init failed\n");
            goto Exit;
        }
    }
    /* Several handles in flight to one host: keep enough idle connections for all of them. */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)o.concurrency * 2 + 4);

    if (o.pg_url) {
        pg = PQconnectdb(o.pg_url);
        if (PQstatus(pg) != CONNECTION_OK) {
            fprintf(stderr, "keel-bench: %s: %s", o.pg_url, PQerrorMessage(pg));
            goto Exit;
        }
    }
    if (tags) {
        struct tags_options to = {o.url, o.token, o.executions, o.concurrency};
        json_t *res = NULL;
        exit_code = tags_mode(&to, pg, &res);
        if (res)
            emit_json(&o, res);
        json_decref(res);
        goto Exit;
    }
    if (step_calls) {
        /* No definition: the programs are keel-bench's threads. */
        struct step_calls_options so = {o.url,        o.receiver,    o.token,
                                        o.executions, o.concurrency, o.warmup};
        json_t *res = NULL;
        exit_code = step_calls_mode(&so, pg, &res);
        if (res)
            emit_json(&o, res);
        json_decref(res);
        goto Exit;
    }
    if (register_workflow(&o, headers) < 0)
        goto Exit;

    /* Execution numbers differ from run to run, so outputs cannot be confused with old ones. */
    long base = (long)(time(NULL) % 100000) * 100000000L;
    if (for_each) {
        exit_code = for_each_mode(&o, headers, pg);
        goto Exit;
    }
    if (o.mode) {
        exit_code = strcmp(o.mode, "timers") == 0 ? timers_mode(&o, headers, multi, slots, pg, base)
                                                  : idle_mode(&o, headers, multi, slots, pg, base);
        goto Exit;
    }
    if (o.warmup > 0) {
        run_init(&warm, &o, headers, multi, slots, base, o.warmup, o.concurrency);
        if (run_load(&warm) < 0)
            goto Exit;
        if (warm.failed) {
            fprintf(stderr, "keel-bench: %ld of %ld warm-up executions failed:\n", warm.failed,
                    warm.total);
            for (int i = 0; i < warm.nfailures_kept; i++)
                fprintf(stderr, "  %s\n", warm.failures[i]);
            goto Exit;
        }
    }

    struct receiver_stats rs0 = {0}, rs1 = {0};
    bool have_stats = receiver_stats_get(&o, &rs0) == 0;
    for (int i = 0; i < o.ncpu; i++)
        o.cpu[i].start_s = watch_cpu_s(o.cpu[i].pid, o.cpu[i].tree);
    double self0 = self_cpu_s();
    struct machine_cpu m0 = machine_cpu_now();
    struct pg_counters pg0 = {0, 0}, pg1 = {0, 0};
    bool have_pg = pg_counters_get(pg, &pg0) == 0;

    run_init(&meas, &o, headers, multi, slots, base + o.warmup, o.executions, o.concurrency);
    if (run_load(&meas) < 0)
        goto Exit;

    struct machine_cpu m1 = machine_cpu_now();
    double self1 = self_cpu_s();
    double cpu_end[MAX_CPU_WATCHES];
    for (int i = 0; i < o.ncpu; i++)
        cpu_end[i] = watch_cpu_s(o.cpu[i].pid, o.cpu[i].tree);
    have_stats = have_stats && receiver_stats_get(&o, &rs1) == 0;
    have_pg = have_pg && pg_counters_get(pg, &pg1) == 0;
    /* Before the latencies are sorted: it pairs them with the ids. */
    json_t *timeline = history_timeline(&o, headers, &meas, o.history);

    /* ---- results ---- */
    double wall_s = (double)(meas.last_end_us - meas.first_start_us) / 1e6;
    if (wall_s <= 0)
        wall_s = 1e-6;
    qsort(meas.latency_us, (size_t)meas.ncompleted, sizeof(int64_t), cmp_i64);
    double eps = (double)meas.ncompleted / wall_s;
    double p50 = percentile_ms(meas.latency_us, meas.ncompleted, 0.50);
    double p90 = percentile_ms(meas.latency_us, meas.ncompleted, 0.90);
    double p99 = percentile_ms(meas.latency_us, meas.ncompleted, 0.99);
    double pmax = percentile_ms(meas.latency_us, meas.ncompleted, 1.0);
    qsort(meas.start_us, (size_t)meas.nstarted_ok, sizeof(int64_t), cmp_i64);
    double start_p50 = percentile_ms(meas.start_us, meas.nstarted_ok, 0.50);
    double start_p99 = percentile_ms(meas.start_us, meas.nstarted_ok, 0.99);
    json_int_t d_deliv = rs1.deliveries - rs0.deliveries, d_applied = rs1.applied - rs0.applied,
               d_dup = rs1.duplicates - rs0.duplicates,
               d_badsig = rs1.bad_signatures - rs0.bad_signatures;
    json_int_t want = (json_int_t)STEPS_PER_EXECUTION * o.executions;
    bool receiver_ok =
        have_stats && d_deliv == want && d_applied == want && d_dup == 0 && d_badsig == 0;

    /* CPU use in percent of one core; "others" is what the machine did besides our processes
     * (the noise of other work on it). */
    json_t *cpu = json_object();
    double ours = 0;
    for (int i = 0; i < o.ncpu; i++) {
        if (o.cpu[i].start_s < 0 || cpu_end[i] < 0)
            continue;
        double pct = 100.0 * (cpu_end[i] - o.cpu[i].start_s) / wall_s;
        ours += pct;
        json_object_set_new(cpu, o.cpu[i].name, json_real(round(pct * 10) / 10));
    }
    double self_pct = 100.0 * (self1 - self0) / wall_s;
    ours += self_pct;
    json_object_set_new(cpu, "keel-bench", json_real(round(self_pct * 10) / 10));
    double ncores = (double)sysconf(_SC_NPROCESSORS_ONLN);
    if (m1.total > m0.total) {
        double span = (m1.total - m0.total) / ncores; /* jiffies of one core */
        double busy = 100.0 * (m1.busy - m0.busy) / span;
        double others = busy - ours;
        json_object_set_new(cpu, "others", json_real(round((others > 0 ? others : 0) * 10) / 10));
        json_object_set_new(cpu, "machine", json_real(round(busy * 10) / 10));
        json_object_set_new(cpu, "machine_max", json_real(100.0 * ncores));
        json_object_set_new(cpu, "iowait",
                            json_real(round(1000.0 * (m1.iowait - m0.iowait) / span) / 10.0));
    }
    json_t *pgj = json_null();
    double steps_done = (double)meas.ncompleted * STEPS_PER_EXECUTION;
    if (have_pg && steps_done > 0) {
        /* The LSNs let pg_waldump --stats -s START -e END break the WAL of the run down. */
        char lsn0[40], lsn1[40];
        snprintf(lsn0, sizeof lsn0, "%llX/%llX", pg0.wal_bytes >> 32, pg0.wal_bytes & 0xffffffffLL);
        snprintf(lsn1, sizeof lsn1, "%llX/%llX", pg1.wal_bytes >> 32, pg1.wal_bytes & 0xffffffffLL);
        pgj = json_pack("{s:f, s:f, s:s, s:s}", "write_transactions_per_step",
                        round(100.0 * (double)(pg1.xids - pg0.xids) / steps_done) / 100,
                        "wal_bytes_per_step",
                        round((double)(pg1.wal_bytes - pg0.wal_bytes) / steps_done), "wal_start",
                        lsn0, "wal_end", lsn1);
    }

    json_t *res = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I, "
        "s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:b}}",
        "bench", "keel-3-step", "executions", (json_int_t)o.executions, "concurrency",
        (json_int_t)o.concurrency, "completed", (json_int_t)meas.ncompleted, "failures",
        (json_int_t)meas.failed, "seconds", round(wall_s * 1000) / 1000, "executions_per_s",
        round(eps * 10) / 10, "steps_per_s", round(eps * STEPS_PER_EXECUTION * 10) / 10, "p50_ms",
        round(p50 * 100) / 100, "p90_ms", round(p90 * 100) / 100, "p99_ms", round(p99 * 100) / 100,
        "max_ms", round(pmax * 100) / 100, "start_request_p50_ms", round(start_p50 * 100) / 100,
        "start_request_p99_ms", round(start_p99 * 100) / 100, "mean_polls_per_execution",
        meas.ncompleted ? round(100.0 * (double)(meas.ncompleted + meas.failed + meas.polls_extra) /
                                (double)(meas.ncompleted + meas.failed)) /
                              100
                        : 0.0,
        "result_polls_202", (json_int_t)meas.polls_extra, "cpu_percent", cpu, "postgres", pgj,
        "timeline_ms", timeline ? json_incref(timeline) : json_null(), "receiver", "deliveries",
        d_deliv, "applied", d_applied, "duplicates", d_dup, "bad_signatures", d_badsig, "expected",
        want, "ok", receiver_ok);
    char *line = json_dumps(res, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(res);

    printf("%11s %6s %9s %9s %8s %8s %8s %8s %6s\n", "in flight", "N", "exec/s", "steps/s",
           "p50 ms", "p90 ms", "p99 ms", "max ms", "fails");
    printf("%11ld %6ld %9.1f %9.1f %8.2f %8.2f %8.2f %8.2f %6ld\n", o.concurrency, o.executions,
           eps, eps * STEPS_PER_EXECUTION, p50, p90, p99, pmax, meas.failed);
    printf("start request (POST .../executions, 201): p50 %.2f ms, p99 %.2f ms\n", start_p50,
           start_p99);
    if (have_stats)
        printf("receiver: %" JSON_INTEGER_FORMAT " deliveries, %" JSON_INTEGER_FORMAT
               " applied, %" JSON_INTEGER_FORMAT " duplicates, %" JSON_INTEGER_FORMAT
               " bad signatures; expected %" JSON_INTEGER_FORMAT " = 3 x %ld: %s\n",
               d_deliv, d_applied, d_dup, d_badsig, want, o.executions,
               receiver_ok ? "ok" : "MISMATCH");
    else
        printf("receiver: could not read /_stats\n");
    if (have_pg && steps_done > 0)
        printf("postgres: %.2f write transactions and %.0f WAL bytes per step\n",
               (double)(pg1.xids - pg0.xids) / steps_done,
               (double)(pg1.wal_bytes - pg0.wal_bytes) / steps_done);
    if (timeline) {
        struct buf b = BUF_INIT;
        const char *label;
        json_t *v;
        json_object_foreach(timeline, label, v)
        {
            if (json_is_real(v))
                buf_printf(&b, "%s%s %.2f", b.len ? ", " : "", label, json_real_value(v));
        }
        printf("timeline, mean ms after execution_started over %" JSON_INTEGER_FORMAT
               " executions (event times in ms): %s\n",
               json_integer_value(json_object_get(timeline, "executions")), b.data);
        buf_free(&b);
        json_decref(timeline);
    }
    printf("json: %s\n", line);
    if (o.json_out) {
        FILE *jf = fopen(o.json_out, "a");
        if (!jf || fprintf(jf, "%s\n", line) < 0 || fclose(jf) != 0)
            fprintf(stderr, "keel-bench: cannot write %s: %s\n", o.json_out, strerror(errno));
    }
    free(line);
    if (meas.failed) {
        fprintf(stderr, "keel-bench: %ld of %ld executions failed%s:\n", meas.failed, o.executions,
                meas.failed > meas.nfailures_kept ? " (the first ones)" : "");
        for (int i = 0; i < meas.nfailures_kept; i++)
            fprintf(stderr, "  %s\n", meas.failures[i]);
    }
    exit_code = meas.failed == 0 && receiver_ok ? 0 : 1;

Exit:
    run_free(&warm);
    run_free(&meas);
    for (long i = 0; i < o.concurrency; i++) {
        if (slots[i].easy) {
            curl_multi_remove_handle(multi, slots[i].easy);
            curl_easy_cleanup(slots[i].easy);
        }
        free(slots[i].id);
        buf_free(&slots[i].body);
    }
    free(slots);
    curl_multi_cleanup(multi);
    if (pg)
        PQfinish(pg);
    curl_slist_free_all(headers);
    for (int i = 0; i < o.ncpu; i++)
        free(o.cpu[i].name);
    curl_global_cleanup();
    return exit_code;
}
