/* The programs of examples/ (issue 10, point 5) against a real keeld, PostgreSQL and receiver,
 * signed with the suite's webhook secret. For bash, Python and Node: the receiver refuses
 * unsigned, wrongly signed, tampered and stale requests and answers a repeated Idempotency-Key
 * with its first result without applying it again; the order program, killed while it waits
 * for the approval and run again, completes the order with every webhook key applied once; a
 * reject and an approval that times out fail the order with the refund applied once. And the
 * bash program killed (kill -9 of it and of its children) just before each of its commands in
 * turn, then run again, ends every order completed, each key applied once, no step journaled
 * twice and no sleep started again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "webhook/sign.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* One language's order program and receiver, in examples/<dir>/, run through /usr/bin/env so
 * that PATH finds the interpreter. */
struct lang {
    const char *dir, *interp, *order, *receiver;
};

static const struct lang BASH = {"bash", "bash", "order.sh", "receiver.sh"};
static const struct lang PYTHON = {"python", "python3", "order.py", "receiver.py"};
static const struct lang NODE = {"node", "node", "order.mjs", "receiver.mjs"};

/* keeld signing with the suite's secret, the language's receiver verifying with it, and a
 * folder (in the build folder) for the receiver's ledger and the programs' output. */
struct stack {
    const struct lang *lang;
    char *db;
    struct proc keeld, receiver;
    char dir[128], ledger[192];
};

/* ---- setup ------------------------------------------------------------------------------ */

/* Fails the test with a hint unless tool is on PATH. */
static void need(const char *tool)
{
    const char *argv[] = {"/bin/sh", "-c", "command -v \"$0\"", tool, NULL};
    if (run_command(argv, NULL, "/dev/null") != 0)
        fail_msg("%s is not on PATH: the examples' test needs bash, curl, jq, socat, openssl, "
                 "flock, python3 and node (scripts/test installs them)",
                 tool);
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static void program_path(const struct lang *l, const char *file, char *out, size_t size)
{
    snprintf(out, size, "%s/examples/%s/%s", harness_env("KEEL_SOURCE_DIR"), l->dir, file);
}

static bool http_answers(void *arg)
{
    const struct proc *p = arg;
    struct hreply r;
    int rc = http_do(p->base_url, "GET", "/", NULL, NULL, 0, NULL, 2000, &r);
    hreply_free(&r);
    return rc == 0;
}

static void stack_up(struct stack *s, const struct lang *l, const char *name)
{
    need(l->interp);
    if (l == &BASH) {
        need("curl");
        need("jq");
        need("socat");
        need("openssl");
        need("flock");
    }
    memset(s, 0, sizeof *s);
    s->lang = l;
    snprintf(s->dir, sizeof s->dir, "examples-it-%s", name);
    const char *rm[] = {"/bin/rm", "-rf", s->dir, NULL};
    assert_int_equal(run_command(rm, NULL, "/dev/null"), 0);
    assert_int_equal(mkdir(s->dir, 0755), 0);
    snprintf(s->ledger, sizeof s->ledger, "%s/ledger.jsonl", s->dir);

    char db_name[64], secret[256], ledger[256];
    snprintf(db_name, sizeof db_name, "keel_it_examples_%s", name);
    s->db = harness_create_db(db_name);
    snprintf(secret, sizeof secret, "KEEL_WEBHOOK_SECRET=%s",
             harness_env("KEEL_TEST_WEBHOOK_SECRET"));
    const char *keeld_env[] = {secret, "KEEL_LEASE_GRACE_MS=300", NULL};
    keeld_start(&s->keeld, s->db, keeld_env, NULL);

    char program[512], port[8];
    program_path(l, l->receiver, program, sizeof program);
    snprintf(port, sizeof port, "%u", free_port());
    snprintf(ledger, sizeof ledger, "LEDGER=%s", s->ledger);
    const char *argv[] = {"/usr/bin/env", l->interp, program, port, NULL};
    const char *env[] = {secret, ledger, NULL};
    char log[256];
    snprintf(log, sizeof log, "%s/receiver.log", s->dir);
    proc_start(&s->receiver, argv, env, log);
    s->receiver.port = (uint16_t)atoi(port);
    snprintf(s->receiver.base_url, sizeof s->receiver.base_url, "http://127.0.0.1:%s", port);
    snprintf(s->receiver.log_path, sizeof s->receiver.log_path, "%s", log);
    if (!wait_for(http_answers, &s->receiver, 30000)) {
        char *text = read_file(log);
        fail_msg("the %s receiver did not come up; its output:\n%s", l->dir, text ? text : "");
    }
}

static void stack_down(struct stack *s)
{
    keeld_stop(&s->keeld);
    /* The whole group: socat's handlers of the bash receiver too. */
    kill(-s->receiver.pid, SIGTERM);
    assert_true(proc_wait(&s->receiver, 10000) >= 0);
    free(s->db);
}

/* ---- the receiver's ledger -------------------------------------------------------------- */

/* {key: how many times the receiver applied it} from its ledger (a new reference). */
static json_t *ledger_counts(const struct stack *s)
{
    json_t *counts = json_object();
    char *text = read_file(s->ledger);
    char *save = NULL;
    for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *entry = json_loads(line, 0, NULL);
        const char *key = json_string_value(json_object_get(entry, "key"));
        if (!key)
            fail_msg("a ledger line without a key: %s", line);
        json_int_t n = json_integer_value(json_object_get(counts, key));
        json_object_set_new(counts, key, json_integer(n + 1));
        json_decref(entry);
    }
    free(text);
    return counts;
}

static long applied(const struct stack *s, const char *key)
{
    json_t *counts = ledger_counts(s);
    long n = (long)json_integer_value(json_object_get(counts, key));
    json_decref(counts);
    return n;
}

static long ledger_lines(const struct stack *s)
{
    json_t *counts = ledger_counts(s);
    long n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(counts, key, v)
    {
        n += (long)json_integer_value(v);
    }
    json_decref(counts);
    return n;
}

/* Asserts how often the order's charge, refund and shipping were applied. */
static void assert_applied(const struct stack *s, const char *id, long charge, long refund,
                           long ship)
{
    char key[128];
    snprintf(key, sizeof key, "%s/charge", id);
    assert_int_equal(applied(s, key), charge);
    snprintf(key, sizeof key, "%s/charge/compensate", id);
    assert_int_equal(applied(s, key), refund);
    snprintf(key, sizeof key, "%s/ship", id);
    assert_int_equal(applied(s, key), ship);
}

/* ---- order runs ------------------------------------------------------------------------- */

struct run {
    struct proc p;
    char id[64];
    const char *signal; /* sent once the execution exists, as its approver would; NULL: none */
    bool signalled;
    char log[256];
};

/* Starts the order program for order id; extra: more "NAME=value" for it (may be NULL). Its
 * output is appended to <dir>/<id>.log. */
static void run_start(struct run *r, const struct stack *s, const char *id, const char *signal,
                      const char *const *extra)
{
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    r->signal = signal;
    snprintf(r->log, sizeof r->log, "%s/%s.log", s->dir, id);
    char program[512], keel[128], receiver[128];
    program_path(s->lang, s->lang->order, program, sizeof program);
    snprintf(keel, sizeof keel, "KEEL=%s", s->keeld.base_url);
    snprintf(receiver, sizeof receiver, "RECEIVER=%s", s->receiver.base_url);
    const char *env[16] = {keel, receiver, "ORDER_SLEEP=1s"};
    size_t n = 3;
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        env[n++] = extra[i];
    const char *argv[] = {"/usr/bin/env", s->lang->interp, program, id, NULL};
    proc_start(&r->p, argv, env, r->log);
}

/* One look at a run: sends its signal once the execution exists; returns the program's exit
 * status once it has ended, else -1. Not to be called again after it has ended. */
static int run_poll(struct run *r, const struct stack *s)
{
    if (r->signal && !r->signalled) {
        char path[256];
        snprintf(path, sizeof path, "/v1/executions/%s/signals/%s", r->id, r->signal);
        struct hreply h;
        http_post_json(s->keeld.base_url, path, "{\"by\": \"test\"}", &h);
        if (h.status == 202)
            r->signalled = true;
        else if (h.status != 404)
            fail_msg("signal %s to %s: %ld %s", r->signal, r->id, h.status, h.body);
        hreply_free(&h);
    }
    return proc_wait(&r->p, 0);
}

static void fail_with_log(const struct run *r, const char *what)
{
    char *log = read_file(r->log);
    fail_msg("order %s: %s; its output:\n%s", r->id, what, log ? log : "");
}

/* Waits for the run to end (within 90 s) and returns its exit status. */
static int run_wait(struct run *r, const struct stack *s)
{
    int64_t deadline = now_ms() + 90000;
    for (;;) {
        int rc = run_poll(r, s);
        if (rc >= 0)
            return rc;
        if (now_ms() > deadline)
            fail_with_log(r, "did not end within 90 s");
        usleep(20000);
    }
}

/* Runs the order program to its end and asserts its exit status. */
static void run_order(struct run *r, const struct stack *s, const char *id, const char *signal,
                      const char *const *extra, int want)
{
    run_start(r, s, id, signal, extra);
    int rc = run_wait(r, s);
    if (rc != want) {
        char what[64];
        snprintf(what, sizeof what, "exit status %d, want %d", rc, want);
        fail_with_log(r, what);
    }
}

/* kill -9 of the program and of everything it started. */
static void run_kill(struct run *r)
{
    kill(-r->p.pid, SIGKILL);
    assert_int_equal(proc_wait(&r->p, 10000), 128 + SIGKILL);
}

/* The execution's JSON (a new reference). */
static json_t *execution(const struct stack *s, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/executions/%s", id);
    struct hreply r;
    http_get(s->keeld.base_url, path, &r);
    assert_int_equal(r.status, 200);
    json_t *j = json_incref(r.json);
    hreply_free(&r);
    return j;
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Asserts the execution's status and, for a failed one, its error type. */
static void assert_ended(const struct stack *s, const char *id, const char *status,
                         const char *error_type)
{
    json_t *e = execution(s, id);
    assert_string_equal(str(e, "status"), status);
    if (error_type)
        assert_string_equal(str(json_object_get(e, "error"), "type"), error_type);
    json_decref(e);
}

struct sql_check {
    const char *db, *want;
    char sql[512];
};

static bool sql_is(void *arg)
{
    const struct sql_check *c = arg;
    char *v = harness_sql_value(c->db, c->sql);
    bool ok = v && !strcmp(v, c->want);
    free(v);
    return ok;
}

/* ---- the receiver ----------------------------------------------------------------------- */

enum signing {
    SIGN_NONE,     /* no webhook-* headers at all */
    SIGN_WRONG,    /* signed with another secret */
    SIGN_TAMPERED, /* signed, then the body changed */
    SIGN_STALE,    /* signed 10 minutes ago */
    SIGN_OK,       /* signed now */
    SIGN_ROTATED,  /* two signatures, the first of a secret the receiver does not have */
};

/* POSTs a charge for key to the receiver, signed as keeld signs (webhook-id = the key). */
static struct hreply deliver(const struct stack *s, const char *key, enum signing how)
{
    static const char wrong_secret[] = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    struct wh_secrets *good = NULL, *wrong = NULL;
    assert_int_equal(wh_secrets_parse(harness_env("KEEL_TEST_WEBHOOK_SECRET"), &good, NULL), 0);
    assert_int_equal(wh_secrets_parse(wrong_secret, &wrong, NULL), 0);
    char body[] = "{\"execution_id\": \"direct\", \"key\": \"charge\", \"attempt\": 1, "
                  "\"input\": {\"order\": \"direct\", \"amount\": 7}}";
    int64_t ts = (int64_t)time(NULL) - (how == SIGN_STALE ? 600 : 0);
    char *sig = wh_sign(how == SIGN_WRONG ? wrong : good, key, ts, body, strlen(body));
    char *other = wh_sign(wrong, key, ts, body, strlen(body));
    if (how == SIGN_TAMPERED)
        body[strlen(body) - 3] = '8'; /* the amount */
    char h_key[160], h_id[160], h_ts[64], h_sig[256];
    snprintf(h_key, sizeof h_key, "Idempotency-Key: %s", key);
    snprintf(h_id, sizeof h_id, "webhook-id: %s", key);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", (long long)ts);
    if (how == SIGN_ROTATED)
        snprintf(h_sig, sizeof h_sig, "webhook-signature: %s %s", other, sig);
    else
        snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
    const char *signed_headers[] = {h_key, h_id, h_ts, h_sig, NULL};
    const char *bare[] = {h_key, NULL};
    struct hreply r;
    if (http_do(s->receiver.base_url, "POST", "/charge", "application/json", body, strlen(body),
                how == SIGN_NONE ? bare : signed_headers, 10000, &r) != 0)
        fail_msg("the %s receiver did not answer", s->lang->dir);
    free(sig);
    free(other);
    wh_secrets_free(good);
    wh_secrets_free(wrong);
    return r;
}

/* The receiver refuses what keeld did not sign now, and applies a key once. */
static void receiver_contract(const struct stack *s)
{
    static const enum signing refused[] = {SIGN_NONE, SIGN_WRONG, SIGN_TAMPERED, SIGN_STALE};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        struct hreply r = deliver(s, "direct/charge", refused[i]);
        if (r.status != 401)
            fail_msg("%s receiver, signing case %d: %ld %s", s->lang->dir, (int)refused[i],
                     r.status, r.body);
        hreply_free(&r);
    }
    assert_int_equal(ledger_lines(s), 0);
    struct hreply first = deliver(s, "direct/charge", SIGN_OK);
    assert_int_equal(first.status, 200);
    assert_non_null(str(first.json, "charge_id"));
    /* A repeat of the key (a retry, or keeld sending again after a crash), signed again, here
     * with one signature of each of two secrets, gets the first answer. */
    struct hreply again = deliver(s, "direct/charge", SIGN_ROTATED);
    assert_int_equal(again.status, 200);
    assert_true(json_equal(first.json, again.json));
    hreply_free(&first);
    hreply_free(&again);
    assert_int_equal(applied(s, "direct/charge"), 1);
    assert_int_equal(ledger_lines(s), 1);
}

/* ---- the order flows, in each language -------------------------------------------------- */

static void order_flows(const struct lang *l)
{
    struct stack s;
    stack_up(&s, l, l->dir);
    receiver_contract(&s);

    /* Approved, after a kill -9 while it waits for the approval and a run again. */
    char ok[64], no[64], late[64];
    snprintf(ok, sizeof ok, "%s-ok", l->dir);
    snprintf(no, sizeof no, "%s-no", l->dir);
    snprintf(late, sizeof late, "%s-late", l->dir);
    struct run r;
    run_start(&r, &s, ok, NULL, NULL);
    struct sql_check waiting = {.db = s.db, .want = "waiting"};
    snprintf(waiting.sql, sizeof waiting.sql,
             "SELECT status FROM steps WHERE execution_id = '%s' AND path = 'approval'", ok);
    if (!wait_for(sql_is, &waiting, 60000))
        fail_with_log(&r, "never waited for its approval");
    run_kill(&r);
    run_order(&r, &s, ok, "approve", NULL, 0);
    char *log = read_file(r.log);
    if (!strstr(log, "charge: ") || !strstr(log, "(journaled by an earlier run)"))
        fail_msg("the run again did not replay the charge:\n%s", log);
    free(log);
    json_t *e = execution(&s, ok);
    assert_string_equal(str(e, "status"), "completed");
    assert_non_null(str(json_object_get(e, "output"), "charge"));
    assert_non_null(str(json_object_get(e, "output"), "tracking"));
    json_decref(e);
    assert_applied(&s, ok, 1, 0, 1);
    /* Run once more after the end: it reads the end back and applies nothing. */
    run_order(&r, &s, ok, NULL, NULL, 0);
    assert_applied(&s, ok, 1, 0, 1);

    /* Rejected: failed, refunded once, never shipped. */
    run_order(&r, &s, no, "reject", NULL, 1);
    assert_ended(&s, no, "failed", "Rejected");
    assert_applied(&s, no, 1, 1, 0);

    /* Nobody approves in time: the same. */
    const char *short_wait[] = {"APPROVAL_TIMEOUT=1s", NULL};
    run_order(&r, &s, late, NULL, short_wait, 1);
    assert_ended(&s, late, "failed", "ApprovalTimedOut");
    assert_applied(&s, late, 1, 1, 0);

    /* The direct charge, and two keys of each of the three orders. */
    assert_int_equal(ledger_lines(&s), 7);
    stack_down(&s);
}

static void test_bash_order(void **state)
{
    (void)state;
    order_flows(&BASH);
}

static void test_python_order(void **state)
{
    (void)state;
    order_flows(&PYTHON);
}

static void test_node_order(void **state)
{
    (void)state;
    order_flows(&NODE);
}

/* ---- the bash program killed at every command ------------------------------------------- */

/* Runs at the same time, each on its own order: kills and runs again overlap. */
#define KILL_LANES 4

/* Given to the killed runs as BASH_ENV, which bash reads before the script. set -T hands the
 * DEBUG trap to functions and subshells ($(...)); the count is kept in a file because a
 * subshell's variables do not come back to its parent. kill -9 0 kills the whole process group:
 * the script, the subshell and whatever they wait for. */
static const char kill_hook[] =
    "set -T\n"
    "trap 'read -r _n <\"$KILL_COUNTER\"; echo $((_n + 1)) >\"$KILL_COUNTER\";"
    " ((_n + 1 < KILL_AT)) || kill -9 0' DEBUG\n";

struct lane {
    struct run run;
    int n;       /* the command its program is killed before; 0: idle */
    bool killed; /* the killed run is over: this is the run again */
};

/* Starts order k-<n>, to be killed before its n-th command. */
static void lane_start(struct lane *l, const struct stack *s, int n)
{
    char id[32], counter[192], kill_at[32], counter_env[224], hook_env[224];
    snprintf(id, sizeof id, "k-%d", n);
    snprintf(counter, sizeof counter, "%s/k-%d.count", s->dir, n);
    FILE *f = fopen(counter, "w");
    assert_non_null(f);
    fputs("0\n", f);
    fclose(f);
    snprintf(kill_at, sizeof kill_at, "KILL_AT=%d", n);
    snprintf(counter_env, sizeof counter_env, "KILL_COUNTER=%s", counter);
    snprintf(hook_env, sizeof hook_env, "BASH_ENV=%s/kill-hook.bash", s->dir);
    const char *extra[] = {hook_env, kill_at, counter_env, NULL};
    run_start(&l->run, s, id, "approve", extra);
    l->n = n;
    l->killed = false;
}

static void test_bash_killed_at_every_command(void **state)
{
    (void)state;
    struct stack s;
    stack_up(&s, &BASH, "kill");
    char hook[192];
    snprintf(hook, sizeof hook, "%s/kill-hook.bash", s.dir);
    FILE *f = fopen(hook, "w");
    assert_non_null(f);
    fputs(kill_hook, f);
    fclose(f);

    struct lane lanes[KILL_LANES];
    memset(lanes, 0, sizeof lanes);
    int next = 1;   /* the next order's n */
    int end_at = 0; /* the first n at which the program ran to its end before being killed */
    int64_t deadline = now_ms() + 600000;
    for (;;) {
        bool busy = false;
        for (int i = 0; i < KILL_LANES; i++) {
            struct lane *l = &lanes[i];
            if (l->n == 0 && end_at == 0)
                lane_start(l, &s, next++);
            if (l->n == 0)
                continue;
            busy = true;
            int rc = run_poll(&l->run, &s);
            if (rc < 0)
                continue;
            if (!l->killed && rc == 128 + SIGKILL) {
                /* Killed: run it again, as its operator would, without the hook. */
                bool signalled = l->run.signalled;
                char id[sizeof l->run.id];
                memcpy(id, l->run.id, sizeof id);
                run_start(&l->run, &s, id, "approve", NULL);
                l->run.signalled = signalled;
                l->killed = true;
                continue;
            }
            if (rc != 0)
                fail_with_log(&l->run, l->killed ? "the run after the kill failed"
                                                 : "the run to be killed failed");
            if (!l->killed && (end_at == 0 || l->n < end_at))
                end_at = l->n;
            l->n = 0;
        }
        if (!busy)
            break;
        if (now_ms() > deadline)
            fail_msg("the kills were not over after 10 minutes (next n: %d)", next);
        usleep(20000);
    }
    int orders = next - 1;
    print_message("killed the bash program before each of its first %d commands (%d orders)\n",
                  end_at - 1, orders);
    /* Far more commands than lines: the hook reached the functions and the subshells. */
    assert_true(end_at > 60);

    char sql[1024], want[16];
    snprintf(want, sizeof want, "%d", orders);
    assert_sql(s.db, want, "SELECT count(*) FROM executions WHERE status = 'completed'");
    assert_sql(s.db, "0", "SELECT count(*) FROM executions WHERE status <> 'completed'");
    /* Every step journaled once; each activity sent once. */
    assert_sql(s.db, "",
               "SELECT coalesce(string_agg(execution_id || '/' || path, ','), '') FROM (SELECT "
               "execution_id, path FROM events WHERE type = 'step_scheduled' GROUP BY 1, 2 "
               "HAVING count(*) <> 1) d");
    snprintf(want, sizeof want, "%d", 2 * orders);
    assert_sql(s.db, want, "SELECT count(*) FROM events WHERE type = 'attempt_started'");
    /* Each sleep started once, fired once, and was due 1 s after its first call. */
    snprintf(sql, sizeof sql,
             "SELECT coalesce(string_agg(e.id, ','), '') FROM executions e WHERE NOT ("
             "(SELECT count(*) FROM events v WHERE v.execution_id = e.id AND v.path = "
             "'cooling-off' AND v.type = 'timer_started') = 1 AND (SELECT count(*) FROM events v "
             "WHERE v.execution_id = e.id AND v.path = 'cooling-off' AND v.type = 'timer_fired') "
             "= 1 AND (SELECT (v.data->>'due_at')::timestamptz FROM events v WHERE "
             "v.execution_id = e.id AND v.path = 'cooling-off' AND v.type = 'timer_started') = "
             "(SELECT t.started_at + interval '1 second' FROM steps t WHERE t.execution_id = "
             "e.id AND t.path = 'cooling-off'))");
    assert_sql(s.db, "", sql);
    /* Each key applied once at the receiver, nothing refunded. */
    json_t *counts = ledger_counts(&s);
    for (int n = 1; n <= orders; n++) {
        static const char *const keys[] = {"charge", "ship"};
        for (size_t k = 0; k < 2; k++) {
            char key[64];
            snprintf(key, sizeof key, "k-%d/%s", n, keys[k]);
            if (json_integer_value(json_object_get(counts, key)) != 1)
                fail_msg("%s applied %lld times", key,
                         (long long)json_integer_value(json_object_get(counts, key)));
        }
    }
    assert_int_equal(json_object_size(counts), 2 * orders);
    json_decref(counts);
    stack_down(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bash_order),
        cmocka_unit_test(test_python_order),
        cmocka_unit_test(test_node_order),
        cmocka_unit_test(test_bash_killed_at_every_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
