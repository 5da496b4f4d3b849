/* Integration-test harness. */
#include "harness.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/alloc.h"
#include "util/buf.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *harness_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr,
                "%s is not set: integration tests run from scripts/test, which starts "
                "PostgreSQL and sets it\n",
                name);
        exit(1);
    }
    return v;
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- databases ------------------------------------------------------------------------- */

static PGconn *connect_or_fail(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fail_msg("cannot connect to %s: %s", conninfo, PQerrorMessage(c));
    }
    return c;
}

static void exec_or_fail(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

char *harness_create_db(const char *name)
{
    const char *admin = harness_env("KEEL_TEST_DATABASE_URL");
    PGconn *c = connect_or_fail(admin);
    char *quoted = PQescapeIdentifier(c, name, strlen(name));
    char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", quoted);
    exec_or_fail(c, sql);
    free(sql);
    sql = xasprintf("CREATE DATABASE %s", quoted);
    exec_or_fail(c, sql);
    free(sql);
    PQfreemem(quoted);
    /* Same server and user as the admin connection, other database. */
    struct buf b = BUF_INIT;
    buf_printf(&b, "host=%s port=%s user=%s dbname=%s", PQhost(c), PQport(c), PQuser(c), name);
    PQfinish(c);
    return buf_steal(&b);
}

char *harness_sql_value(const char *conninfo, const char *sql)
{
    PGconn *c = connect_or_fail(conninfo);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    char *v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? xstrdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    PQfinish(c);
    return v;
}

char *harness_sqlf(const char *conninfo, const char *fmt, ...)
{
    char q[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    return harness_sql_value(conninfo, q);
}

void harness_pg(const char *action)
{
    const char *argv[] = {harness_env("KEEL_TEST_PGCTL"), action, NULL};
    int rc = run_command(argv, NULL, "/dev/null");
    if (rc != 0)
        fail_msg("pg_ctl %s failed with %d", action, rc);
}

/* ---- processes ------------------------------------------------------------------------- */

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static char **build_env(const char *const *extra)
{
    size_t n = 0, m = 0;
    while (environ[n])
        n++;
    while (extra && extra[m])
        m++;
    char **env = xcalloc(n + m + 1, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        /* Extra entries replace inherited ones of the same name. */
        size_t nlen = strcspn(environ[i], "=");
        bool replaced = false;
        for (size_t j = 0; j < m; j++)
            if (!strncmp(extra[j], environ[i], nlen) && extra[j][nlen] == '=')
                replaced = true;
        if (!replaced)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        env[k++] = (char *)extra[j];
    return env;
}

/* The children not reaped yet. They run in their own process group, so a test that fails
 * half-way (cmocka jumps out of it) would leave its keeld and receiver running after the test
 * program ends: they are killed when it exits. Only unreaped children are listed, so a pid
 * cannot have been reused by another process. */
static struct {
    pid_t pids[512];
    size_t n;
    bool hooked;
} children;

static void forget_child(pid_t pid)
{
    for (size_t i = 0; i < children.n; i++) {
        if (children.pids[i] == pid) {
            children.pids[i] = children.pids[--children.n];
            return;
        }
    }
}

static void kill_children(void)
{
    for (size_t i = 0; i < children.n; i++) {
        kill(children.pids[i], SIGKILL);
        waitpid(children.pids[i], NULL, 0);
    }
    children.n = 0;
}

static void remember_child(pid_t pid)
{
    if (!children.hooked) {
        atexit(kill_children);
        children.hooked = true;
    }
    if (children.n < sizeof children.pids / sizeof children.pids[0])
        children.pids[children.n++] = pid;
}

static pid_t spawn(const char *const *argv, const char *const *extra_env, const char *out_path)
{
    char **env = build_env(extra_env);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setpgid(0, 0);
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    free(env);
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    remember_child(pid);
    return pid;
}

void proc_start(struct proc *p, const char *const *argv, const char *const *env,
                const char *out_path)
{
    memset(p, 0, sizeof *p);
    p->pid = spawn(argv, env, out_path);
}

int run_command(const char *const *argv, const char *const *env, const char *out_path)
{
    struct proc p = {.pid = spawn(argv, env, out_path)};
    return proc_wait(&p, 120000);
}

char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct buf b = BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    return buf_steal(&b);
}

void keeld_spawn(struct proc *p, const char *conninfo, const char *const *env,
                 const char *const *args)
{
    static int counter;
    memset(p, 0, sizeof *p);
    p->port = free_port();
    snprintf(p->base_url, sizeof p->base_url, "http://127.0.0.1:%u", p->port);
    snprintf(p->log_path, sizeof p->log_path, "keeld-%d-%d.log", (int)getpid(), ++counter);
    char listen[64], db[1024];
    snprintf(listen, sizeof listen, "KEEL_LISTEN=127.0.0.1:%u", p->port);
    snprintf(db, sizeof db, "KEEL_DATABASE_URL=%s", conninfo);
    const char *base_env[32] = {listen, db, "KEEL_LOG_LEVEL=info"};
    size_t k = 3;
    for (size_t i = 0; env && env[i] && k < 31; i++)
        base_env[k++] = env[i];
    base_env[k] = NULL;
    const char *argv[32] = {harness_env("KEELD_BIN")};
    size_t a = 1;
    for (size_t i = 0; args && args[i] && a < 31; i++)
        argv[a++] = args[i];
    argv[a] = NULL;
    p->pid = spawn(argv, base_env, p->log_path);
}

static bool healthz_ok(void *arg)
{
    struct proc *p = arg;
    struct hreply r;
    if (http_do(p->base_url, "GET", "/healthz", NULL, NULL, 0, NULL, 1000, &r) < 0)
        return false;
    bool ok = r.status == 200;
    hreply_free(&r);
    return ok;
}

void keeld_start(struct proc *p, const char *conninfo, const char *const *env,
                 const char *const *args)
{
    keeld_spawn(p, conninfo, env, args);
    if (!wait_for(healthz_ok, p, 60000)) {
        char *log = read_file(p->log_path);
        fail_msg("keeld did not come up on port %u; its log:\n%s", p->port, log ? log : "");
    }
}

void receiver_start(struct proc *p, const char *secret)
{
    receiver_start_on(p, secret, 0);
}

void receiver_start_on(struct proc *p, const char *secret, uint16_t port)
{
    static int counter;
    memset(p, 0, sizeof *p);
    snprintf(p->log_path, sizeof p->log_path, "receiver-%d-%d.log", (int)getpid(), ++counter);
    unlink(p->log_path);
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%u", port);
    const char *argv[] = {harness_env("KEEL_RECEIVER_BIN"), "--port", port_text,
                          secret ? "--secret" : NULL,       secret,   NULL};
    p->pid = spawn(argv, NULL, p->log_path);
    int64_t deadline = now_ms() + 30000;
    while (now_ms() < deadline) {
        char *log = read_file(p->log_path);
        const char *at = log ? strstr(log, "{\"port\": ") : NULL;
        if (at) {
            p->port = (uint16_t)atoi(at + 9);
            free(log);
            snprintf(p->base_url, sizeof p->base_url, "http://127.0.0.1:%u", p->port);
            return;
        }
        free(log);
        usleep(20000);
    }
    fail_msg("the receiver did not start");
}

json_t *receiver_stats(const struct proc *p, const char *query)
{
    char path[512];
    snprintf(path, sizeof path, "/_stats%s", query);
    struct hreply r;
    http_get(p->base_url, path, &r);
    json_t *j = json_incref(r.json);
    hreply_free(&r);
    if (!j)
        fail_msg("receiver stats are not JSON");
    return j;
}

/* One counter of one key in the receiver's stats. */
static json_int_t key_count(const struct proc *receiver, const char *key, const char *counter)
{
    char q[256];
    snprintf(q, sizeof q, "?key=%s", key);
    json_t *stats = receiver_stats(receiver, q);
    json_int_t n = json_integer_value(
        json_object_get(json_object_get(json_object_get(stats, "keys"), key), counter));
    json_decref(stats);
    return n;
}

bool receiver_delivered(void *arg)
{
    const struct delivery_check *c = arg;
    return key_count(c->receiver, c->key, "deliveries") >= c->at_least;
}

void assert_key_counts(const struct proc *receiver, const char *key, long applied, long deliveries)
{
    assert_int_equal(key_count(receiver, key, "applied"), applied);
    assert_int_equal(key_count(receiver, key, "deliveries"), deliveries);
}

char *receiver_task_token(const struct proc *receiver, const char *key, size_t n)
{
    char q[256];
    snprintf(q, sizeof q, "?key=%s", key);
    for (int i = 0; i < 1500; i++) {
        json_t *stats = receiver_stats(receiver, q);
        const char *t = json_string_value(json_array_get(
            json_object_get(json_object_get(json_object_get(stats, "keys"), key), "task_tokens"),
            n));
        char *copy = t ? strdup(t) : NULL;
        json_decref(stats);
        if (copy)
            return copy;
        usleep(20000);
    }
    fail_msg("no task token #%zu for %s", n + 1, key);
    return NULL;
}

void stack_start(const char *db_name, const char *const *env, char **db, struct proc *keeld,
                 struct proc *receiver)
{
    *db = harness_create_db(db_name);
    receiver_start(receiver, NULL);
    keeld_start(keeld, *db, env, NULL);
}

void keeld_stop(struct proc *keeld)
{
    proc_signal(keeld, SIGTERM);
    assert_int_equal(proc_wait(keeld, 20000), 0);
}

void stack_stop(char **db, struct proc *keeld, struct proc *receiver)
{
    keeld_stop(keeld);
    proc_signal(receiver, SIGTERM);
    proc_wait(receiver, 5000);
    free(*db);
    *db = NULL;
}

int start_range(const struct proc *k, const char *workflow, const char *prefix, int from, int n,
                const char *input)
{
    int started = 0;
    for (int i = from; i < n; i++) {
        char path[256], body[1024], own[32];
        snprintf(own, sizeof own, "{\"i\": %d}", i);
        snprintf(path, sizeof path, "/v1/workflows/%s/executions", workflow);
        snprintf(body, sizeof body, "{\"id\": \"%s-%d\", \"input\": %s}", prefix, i,
                 input ? input : own);
        struct hreply r;
        if (http_do(k->base_url, "POST", path, "application/json", body, strlen(body), NULL, 10000,
                    &r) < 0) {
            hreply_free(&r);
            return started;
        }
        if (r.status != 201 && r.status != 200)
            fail_msg("start %s: %ld %s", body, r.status, r.body);
        hreply_free(&r);
        started++;
    }
    return started;
}

json_t *wait_result(const char *base_url, const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/executions/%s/result?wait=30", id);
    struct hreply r;
    http_get(base_url, path, &r);
    if (r.status != 200)
        fail_msg("%s did not end: %ld %s", id, r.status, r.body);
    json_t *j = json_incref(r.json);
    hreply_free(&r);
    return j;
}

int proc_wait(struct proc *p, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            forget_child(r);
            p->pid = 0;
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            return 128 + WTERMSIG(status);
        }
        if (r < 0)
            return -1;
        if (now_ms() > deadline)
            return -1;
        usleep(10000);
    }
}

void proc_signal(struct proc *p, int sig)
{
    if (p->pid > 0)
        kill(p->pid, sig);
}

void proc_kill9(struct proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        proc_wait(p, 10000);
    }
}

bool proc_alive(struct proc *p)
{
    if (p->pid <= 0)
        return false;
    pid_t r = waitpid(p->pid, NULL, WNOHANG);
    if (r == p->pid)
        forget_child(r); /* reaped: its pid may be reused, so exit must not kill it */
    return r == 0;
}

/* ---- HTTP ------------------------------------------------------------------------------ */

static size_t collect(char *ptr, size_t size, size_t n, void *user)
{
    buf_append(user, ptr, size * n);
    return size * n;
}

int http_do(const char *base_url, const char *method, const char *path, const char *content_type,
            const char *body, size_t body_len, const char *const *headers, long timeout_ms,
            struct hreply *r)
{
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    char *url = xasprintf("%s%s", base_url, path);
    struct buf rb = BUF_INIT, hb = BUF_INIT;
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    char ct[256];
    if (content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        h = curl_slist_append(h, ct);
    }
    for (size_t i = 0; headers && headers[i]; i++)
        h = curl_slist_append(h, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rb);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(url);
    if (cc != CURLE_OK) {
        buf_free(&rb);
        buf_free(&hb);
        return -1;
    }
    r->body = buf_steal(&rb);
    r->headers = buf_steal(&hb);
    r->json = json_loads(r->body, JSON_DECODE_ANY, NULL);
    return 0;
}

void http_get(const char *base_url, const char *path, struct hreply *r)
{
    if (http_do(base_url, "GET", path, NULL, NULL, 0, NULL, 90000, r) < 0)
        fail_msg("GET %s%s: no answer", base_url, path);
}

void http_post_json(const char *base_url, const char *path, const char *json, struct hreply *r)
{
    if (http_do(base_url, "POST", path, "application/json", json, json ? strlen(json) : 0, NULL,
                90000, r) < 0)
        fail_msg("POST %s%s: no answer", base_url, path);
}

char *harness_subst_r(const char *text, const char *replacement)
{
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    for (const char *c = text; *c; c++) {
        if (c[0] == '%' && c[1] == 'R') {
            fputs(replacement, f);
            c++;
        } else {
            fputc(*c, f);
        }
    }
    fclose(f);
    return out;
}

void http_post_expect(const char *base_url, const char *path, const char *json, long want,
                      struct hreply *out)
{
    struct hreply r;
    http_post_json(base_url, path, json, &r);
    if (r.status != want)
        fail_msg("POST %s: want %ld, got %ld %s", path, want, r.status, r.body);
    if (out)
        *out = r;
    else
        hreply_free(&r);
}

void hreply_free(struct hreply *r)
{
    free(r->body);
    free(r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

bool hreply_header(const struct hreply *r, const char *name, char *out, size_t out_size)
{
    size_t nlen = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > nlen && !strncasecmp(line, name, nlen) && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            size_t vlen = (size_t)(line + len - v);
            if (vlen >= out_size)
                vlen = out_size - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return true;
        }
        line = end ? end + 2 : line + len;
    }
    return false;
}

void assert_problem(const struct hreply *r, long status, const char *slug)
{
    char ct[128] = "";
    if (r->status != status)
        fail_msg("expected status %ld, got %ld: %s", status, r->status, r->body);
    hreply_header(r, "Content-Type", ct, sizeof ct);
    assert_string_equal(ct, "application/problem+json");
    assert_non_null(r->json);
    char type[128];
    snprintf(type, sizeof type, "urn:keel:problem:%s", slug);
    assert_string_equal(json_string_value(json_object_get(r->json, "type")), type);
    assert_int_equal(json_integer_value(json_object_get(r->json, "status")), status);
    assert_non_null(json_string_value(json_object_get(r->json, "title")));
}

void assert_sql(const char *conninfo, const char *want, const char *sql)
{
    char *v = harness_sql_value(conninfo, sql);
    if (!v || strcmp(v, want) != 0)
        fail_msg("%s\n  gave %s, wanted %s", sql, v ? v : "NULL", want);
    free(v);
}

struct sql_wait {
    const char *conninfo, *want, *sql;
};

static bool sql_is(void *arg)
{
    const struct sql_wait *w = arg;
    char *v = harness_sql_value(w->conninfo, w->sql);
    bool ok = v && !strcmp(v, w->want);
    free(v);
    return ok;
}

void wait_sql(const char *conninfo, const char *want, const char *sql)
{
    struct sql_wait w = {conninfo, want, sql};
    if (!wait_for(sql_is, &w, 20000))
        fail_msg("%s never gave %s", sql, want);
}

struct hreply http_post_want(const char *base_url, const char *path, const char *json, long want)
{
    struct hreply r;
    http_post_json(base_url, path, json, &r);
    if (r.status != want)
        fail_msg("POST %s %s: got %ld, want %ld: %s", path, json, r.status, want,
                 r.body ? r.body : "");
    return r;
}

const char *json_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

bool wait_for(bool (*fn)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (fn(arg))
            return true;
        if (now_ms() > deadline)
            return false;
        usleep(20000);
    }
}

char proc_state(const struct proc *p)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)p->pid);
    char *stat = read_file(path);
    const char *close = stat ? strrchr(stat, ')') : NULL;
    char st = close && close[1] == ' ' ? close[2] : '?';
    free(stat);
    return st;
}

bool proc_is_stopped(void *arg)
{
    return proc_state(arg) == 'T';
}
