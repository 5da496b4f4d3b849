/* Integration-test harness: real PostgreSQL (provided by scripts/test), real keeld processes,
 * real HTTP over loopback. Every function fails the current cmocka test on a setup error. */
#ifndef KEEL_TEST_HARNESS_H
#define KEEL_TEST_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- environment ---- */
/* KEEL_TEST_DATABASE_URL etc.; aborts the program with a clear message when missing. */
const char *harness_env(const char *name);

/* ---- databases ---- */
/* (Re)creates an empty database of that name and returns its conninfo string (caller frees). */
char *harness_create_db(const char *name);
/* Runs SQL on the database and returns the first column of the first row as a new string, or
 * NULL when there is no row (caller frees). */
char *harness_sql_value(const char *conninfo, const char *sql);
/* harness_sql_value with a printf-style query. */
char *harness_sqlf(const char *conninfo, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Fails the test unless sql's first value is want (a missing row reads as NULL). */
void assert_sql(const char *conninfo, const char *want, const char *sql);
/* Waits until sql's first value is want, failing the test after 20 s. */
void wait_sql(const char *conninfo, const char *want, const char *sql);
/* Runs the scripts/test-provided pg_ctl wrapper: "stop", "start" or "restart". */
void harness_pg(const char *action);

/* ---- processes ---- */
struct proc {
    pid_t pid;
    uint16_t port;
    char log_path[256];
    char base_url[64];
};

/* Starts keeld on a free port with the given database and extra "NAME=value" environment
 * entries (NULL-terminated, may be NULL) and extra argv (NULL-terminated, may be NULL); waits
 * until /healthz answers. */
void keeld_start(struct proc *p, const char *conninfo, const char *const *env,
                 const char *const *args);
/* Starts keeld without waiting for it to come up. */
void keeld_spawn(struct proc *p, const char *conninfo, const char *const *env,
                 const char *const *args);
/* Starts keel-test-receiver on a free port (verifying signatures with secret when not NULL)
 * and waits until it listens; p->base_url is its address. */
void receiver_start(struct proc *p, const char *secret);
/* The same on a given port (0 = any), e.g. to bring a receiver back where it was. */
void receiver_start_on(struct proc *p, const char *secret, uint16_t port);
/* GET /_stats of the receiver ("?key=K" etc. in query, may be ""); a new reference. */
json_t *receiver_stats(const struct proc *p, const char *query);
/* For wait_for: true once the receiver has had at least at_least deliveries of key. */
struct delivery_check {
    const struct proc *receiver;
    const char *key;
    long at_least;
};
bool receiver_delivered(void *arg);
/* Asserts that the receiver applied key `applied` times, over `deliveries` deliveries. */
void assert_key_counts(const struct proc *receiver, const char *key, long applied, long deliveries);
/* The n-th task token (0-based) the receiver got for key, waiting up to 30 s for it to arrive
 * (fails the test otherwise). Caller frees. */
char *receiver_task_token(const struct proc *receiver, const char *key, size_t n);
/* The usual stack of a test group: a fresh database, a receiver (unsigned) and keeld with env.
 * stack_stop sends keeld SIGTERM and asserts it exits 0, stops the receiver, frees *db. */
void stack_start(const char *db_name, const char *const *env, char **db, struct proc *keeld,
                 struct proc *receiver);
void stack_stop(char **db, struct proc *keeld, struct proc *receiver);
/* Sends keeld SIGTERM and asserts that it exits 0 within 20 s. */
void keeld_stop(struct proc *keeld);
/* Long-polls GET /v1/executions/{id}/result?wait=30 and fails the test unless it ended (200);
 * returns the execution (new reference). */
json_t *wait_result(const char *base_url, const char *id);

/* Starts executions "<prefix>-<i>" of workflow for i in [from, n), with input the JSON text
 * input (NULL: {"i": i}). Returns how many got an answer: a keeld killed meanwhile answers
 * nothing, and the caller starts the rest on the next one (a start is idempotent by id). Any
 * answer other than 200 or 201 fails the test. */
int start_range(const struct proc *k, const char *workflow, const char *prefix, int from, int n,
                const char *input);
/* Waits for the process to exit, up to timeout_ms; returns its exit status (0-255), 128+signal
 * when killed by a signal, or -1 on timeout. */
int proc_wait(struct proc *p, int timeout_ms);
void proc_signal(struct proc *p, int sig);
/* The process's state letter from /proc/<pid>/stat ('T' when stopped), '?' when unknown. */
char proc_state(const struct proc *p);
/* For wait_for (arg: a struct proc *): true once the process is stopped (SIGSTOP). */
bool proc_is_stopped(void *arg);
/* kill -9 and reap. */
void proc_kill9(struct proc *p);
bool proc_alive(struct proc *p);
/* Starts a command (argv[0] a path) in its own process group, with the extra "NAME=value"
 * environment entries (NULL-terminated, may be NULL) and its output appended to out_path;
 * proc_wait reaps it. Only p->pid is set. */
void proc_start(struct proc *p, const char *const *argv, const char *const *env,
                const char *out_path);
/* Runs a command to completion and returns its exit status; its output goes to out_path. */
int run_command(const char *const *argv, const char *const *env, const char *out_path);
/* The whole content of a file (caller frees), or NULL. */
char *read_file(const char *path);

/* ---- HTTP ---- */
struct hreply {
    long status;
    char *body;
    char *headers;
    json_t *json; /* the parsed body, when it is JSON */
};

/* Sends a request. content_type and body may be NULL. headers: NULL-terminated "Name: value"
 * lines, may be NULL. Returns 0, or -1 when no HTTP answer came (connection refused, timeout). */
int http_do(const char *base_url, const char *method, const char *path, const char *content_type,
            const char *body, size_t body_len, const char *const *headers, long timeout_ms,
            struct hreply *r);
/* Shorthands that fail the test when no answer comes. */
void http_get(const char *base_url, const char *path, struct hreply *r);
void http_post_json(const char *base_url, const char *path, const char *json, struct hreply *r);
/* POSTs json and fails the test unless the status is want. The reply goes to out when it is not
 * NULL (caller frees it with hreply_free), else it is freed. */
void http_post_expect(const char *base_url, const char *path, const char *json, long want,
                      struct hreply *out);
/* A copy of text with every "%R" replaced by replacement (a receiver's base URL in a
 * definition). Caller frees. */
char *harness_subst_r(const char *text, const char *replacement);
void hreply_free(struct hreply *r);
/* Asserts r is an RFC 9457 problem with that status and type slug. */
void assert_problem(const struct hreply *r, long status, const char *slug);
/* A header's value in r (case-insensitive name), copied into out; false when absent. */
bool hreply_header(const struct hreply *r, const char *name, char *out, size_t out_size);

/* POSTs json and fails the test unless the status is want; returns the reply (caller frees it
 * with hreply_free). */
struct hreply http_post_want(const char *base_url, const char *path, const char *json, long want);
/* The string member key of o, or NULL. */
const char *json_str(const json_t *o, const char *key);

/* Polls fn every 20 ms until it returns true or timeout_ms passes; returns the last result. */
bool wait_for(bool (*fn)(void *), void *arg, int timeout_ms);

/* Milliseconds since some fixed point (monotonic). */
int64_t now_ms(void);

#endif
