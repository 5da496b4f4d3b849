/* keeld: parse the configuration, apply migrations, start the HTTP server, and drain on
 * SIGTERM/SIGINT. */
#include "api/backlog.h"
#include "api/call_tracker.h"
#include "ops/batches.h"
#include "ops/retention.h"
#include "ops/schedules.h"
#include "api/longpoll.h"
#include "api/routes.h"
#include "app.h"
#include "config.h"
#include "http/server.h"
#include "log.h"
#include "metrics.h"
#include "util/timeutil.h"
#include "store/migrate.h"
#include "runner/runner.h"
#include "store/pool.h"
#include "webhook/destination.h"
#include "webhook/host_limits.h"
#include "webhook/sign.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* True when SIGTERM or SIGINT is pending. serve() blocks them in every thread before start-up,
 * so one sent while keeld waits for the database stays pending until looked at here. */
static bool stop_requested(void *arg)
{
    (void)arg;
    sigset_t pending;
    return sigpending(&pending) == 0 &&
           (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

/* Connects and applies migrations, retrying while the database is unreachable (it may still be
 * starting, as in a compose file) for up to wait_s seconds. Returns 0, -1 on failure, or -2
 * when SIGTERM/SIGINT came meanwhile (noticed within about 100 ms, even in mid-connect). */
static int migrate_database(const char *url, int wait_s)
{
    for (int attempt = 0;; attempt++) {
        char *why = NULL;
        PGconn *conn = store_connect_interruptible(url, stop_requested, NULL, &why);
        if (!conn && stop_requested(NULL)) {
            free(why);
            return -2;
        }
        if (conn) {
            int n = store_migrate(conn, &why);
            PQfinish(conn);
            if (n < 0) {
                log_error("migrations failed", "error", why);
                free(why);
                return -1;
            }
            char count[16];
            snprintf(count, sizeof count, "%d", n);
            log_info("database schema is up to date", "applied", count);
            return 0;
        }
        if (attempt >= wait_s) {
            log_error("cannot connect to the database", "error", why);
            free(why);
            return -1;
        }
        if (attempt == 0)
            log_warn("database not reachable yet; retrying", "error", why);
        free(why);
        for (int slice = 0; slice < 10; slice++) {
            if (stop_requested(NULL))
                return -2;
            usleep(100 * 1000);
        }
    }
}

static void on_execution_ended(void *arg, const char *execution_id)
{
    struct app *app = arg;
    longpoll_ended(app->longpoll, execution_id);
}

static void on_step_ended(void *arg, const char *topic)
{
    struct app *app = arg;
    longpoll_ended(app->longpoll, topic);
}

static bool step_awaited(void *arg, const char *topic)
{
    struct app *app = arg;
    return longpoll_has_waiter(app->longpoll, topic);
}

static void on_missed_notifications(void *arg)
{
    struct app *app = arg;
    longpoll_recheck_all(app->longpoll);
}

/* A bad KEEL_WEBHOOK_SECRET (not base64, or a key shorter than WH_SECRET_MIN_BYTES) stops keeld
 * before it touches the database, with the reason. */
static bool webhook_secret_ok(const struct config *cfg)
{
    struct wh_secrets *secrets = NULL;
    char *why = NULL;
    if (!cfg->webhook_secret)
        return true;
    if (wh_secrets_parse(cfg->webhook_secret, &secrets, &why) < 0) {
        log_error("KEEL_WEBHOOK_SECRET (--webhook-secret) is refused", "error", why);
        free(why);
        return false;
    }
    wh_secrets_free(secrets);
    return true;
}

/* KEEL_HOST_LIMITS read again on SIGHUP: a file's new limits apply at once, to the requests
 * waiting too; a file that cannot be read or holds a bad entry keeps the limits in force. */
static void reload_host_limits(const struct config *cfg, struct runner *runner)
{
    if (!wh_host_limits_is_file(cfg->host_limits)) {
        log_warn("SIGHUP: KEEL_HOST_LIMITS is not a file (@/path), so there is nothing to read "
                 "again; the host limits stay as they are");
        return;
    }
    struct wh_host_limits *limits = NULL;
    char *why = NULL;
    if (wh_host_limits_load(cfg->host_limits, &limits, &why) < 0) {
        log_error("SIGHUP: the host limits were not reloaded; the previous ones stay in force",
                  "error", why);
        free(why);
        return;
    }
    char n[24];
    snprintf(n, sizeof n, "%zu", limits->n);
    log_info("SIGHUP: host limits reloaded", "file", cfg->host_limits + 1, "entries", n);
    runner_set_host_limits(runner, limits);
}

/* Each HTTP connection, database connection and webhook in flight holds a descriptor: raise
 * the soft limit to the hard one, so that the connection caps, not a default of 1024 open
 * files, decide how many clients are served. Warns when even that is below what the caps need. */
static void raise_open_files_limit(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t need = (rlim_t)cfg->http_max_connections + (rlim_t)cfg->max_in_flight +
                  (rlim_t)cfg->db_pool_size + 64;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        char have[24], want[24];
        snprintf(have, sizeof have, "%llu", (unsigned long long)rl.rlim_cur);
        snprintf(want, sizeof want, "%llu", (unsigned long long)need);
        log_warn("the open files limit is below what the connection limits need; raise it "
                 "(ulimit -n) or lower KEEL_HTTP_MAX_CONNECTIONS",
                 "limit", have, "needed", want);
    }
}

static int serve(const struct config *cfg)
{
    int rc = 1;
    if (!webhook_secret_ok(cfg))
        return 1;
    /* A bad entry stops keeld before it touches the database, naming the entry. */
    struct wh_host_limits *host_limits = NULL;
    char *limits_why = NULL;
    if (wh_host_limits_load(cfg->host_limits, &host_limits, &limits_why) < 0) {
        log_error("KEEL_HOST_LIMITS (--host-limits) is refused", "error", limits_why);
        free(limits_why);
        return 2;
    }
    /* Where activity webhooks may go; read by registration and the dispatcher. */
    struct wh_dest_policy *destinations = NULL;
    char *dest_why = NULL;
    if (wh_dest_policy_new(cfg->activity_allow, cfg->listen, &destinations, &dest_why) < 0) {
        log_error("KEEL_ACTIVITY_ALLOW (--activity-allow) is refused", "error", dest_why);
        free(dest_why);
        wh_host_limits_free(host_limits);
        return 2;
    }
    wh_dest_set_global(destinations);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigset_t wait_signals = stop_signals;
    sigaddset(&wait_signals, SIGHUP);
    /* Blocked before any thread starts, so every thread inherits the mask and only sigwait
     * below receives them (SIGHUP: the host limits are read again). */
    pthread_sigmask(SIG_BLOCK, &wait_signals, NULL);

    if (!cfg->no_migrate) {
        int mrc = migrate_database(cfg->database_url, 60);
        if (mrc == -2) {
            log_info("stopping: SIGTERM/SIGINT received while waiting for the database at "
                     "start-up; exiting without serving",
                     "exit_code", "1");
        }
        if (mrc < 0) {
            wh_dest_set_global(NULL);
            wh_dest_policy_free(destinations);
            wh_host_limits_free(host_limits);
            return 1;
        }
    }
    if (!cfg->api_tokens)
        log_warn("KEEL_API_TOKENS is not set: the API accepts requests without authentication");
    if (!cfg->webhook_secret)
        log_warn("KEEL_WEBHOOK_SECRET is not set: activity webhooks will not be signed");

    struct app app = {.cfg = cfg,
                      .pool = store_pool_new(cfg->database_url, (int)cfg->db_pool_size)};
    app.longpoll = longpoll_start(app.pool);
    app.calls = call_tracker_start(app.pool, 1000);
    if (cfg->retention_ms > 0)
        app.retention = retention_start(app.pool, cfg->retention_ms);
    app.backlog = backlog_start(app.pool);
    size_t n_host_limits = host_limits->n;
    struct runner_config rcfg = {
        .database_url = cfg->database_url,
        .workers = cfg->workers,
        .lease_grace_ms = cfg->lease_grace_ms,
        .max_in_flight = cfg->max_in_flight,
        .max_in_flight_per_host = cfg->max_in_flight_per_host,
        .host_limits = host_limits, /* taken */
        .for_each_max_items = cfg->for_each_max_items,
        .max_child_depth = cfg->max_child_depth,
        .webhook_secret = cfg->webhook_secret,
        .on_execution_ended = on_execution_ended,
        .on_step_ended = on_step_ended,
        .step_awaited = step_awaited,
        .on_missed_notifications = on_missed_notifications,
        .hook_arg = &app,
    };
    char *why = NULL;
    struct http_server *server = NULL;
    app.runner = runner_start(&rcfg, &why);
    if (!app.runner) {
        log_error("cannot start the engine", "error", why);
        free(why);
        goto out;
    }
    app.batches = batches_start(app.pool, app.runner, runner_env(app.runner)->owner);
    app.scheduler = scheduler_start(app.pool, runner_env(app.runner)->owner);
    raise_open_files_limit(cfg);
    struct http_server_config hcfg = {
        .listen = cfg->listen,
        .threads = cfg->http_threads,
        .max_body_bytes = cfg->max_body_bytes,
        .max_connections = cfg->http_max_connections,
        .max_connections_per_ip = cfg->http_max_connections_per_ip,
        .request_timeout_s = cfg->http_request_timeout,
        .metrics_public = cfg->metrics_public,
        .api_tokens = cfg->api_tokens,
        .routes = api_routes,
        .n_routes = api_n_routes,
        .app = &app,
    };
    server = http_server_start(&hcfg, &why);
    app.server = server;
    if (!server) {
        log_error("cannot start the HTTP server", "error", why);
        free(why);
        goto out;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", http_server_port(server));
    wh_dest_policy_set_own_port(destinations, http_server_port(server));
    log_info("keeld listening", "listen", cfg->listen, "port", port, "version", KEEL_VERSION);

    if (n_host_limits > 0) {
        char n[24];
        snprintf(n, sizeof n, "%zu", n_host_limits);
        log_info("host limits in force", "entries", n, "source",
                 wh_host_limits_is_file(cfg->host_limits) ? cfg->host_limits + 1
                                                          : "KEEL_HOST_LIMITS");
    }
    int sig = 0;
    for (;;) {
        sigwait(&wait_signals, &sig);
        if (sig != SIGHUP)
            break;
        reload_host_limits(cfg, app.runner);
    }
    log_info("stopping: draining requests in flight", "signal", strsignal(sig));
    /* Order matters: refuse new requests, answer the long polls, then wait for the rest. */
    http_server_close(server);
    longpoll_drain(app.longpoll);
    int cut = http_server_stop(server, cfg->shutdown_grace_ms);
    if (cut > 0) {
        /* The HTTP threads still run those requests and use the runner, the pool and the long
         * polls: the process ends without freeing what they might touch. Attempts on the wire
         * are sent again by the keeld that takes their executions over once this one's
         * liveness lock is gone with its session. */
        char n[16];
        snprintf(n, sizeof n, "%d", cut);
        log_warn("requests still running at the deadline were cut off", "count", n);
        log_info("keeld stopped");
        fflush(NULL);
        _exit(0);
    }
    /* Before the runner: the page in progress is acted on by it. */
    scheduler_stop(app.scheduler);
    app.scheduler = NULL;
    batches_stop(app.batches);
    app.batches = NULL;
    runner_stop(app.runner, cfg->shutdown_grace_ms);
    app.runner = NULL;
    call_tracker_stop(app.calls);
    app.calls = NULL;
    retention_stop(app.retention);
    app.retention = NULL;
    backlog_stop(app.backlog);
    app.backlog = NULL;
    log_info("keeld stopped");
    rc = 0;
out:
    scheduler_stop(app.scheduler);
    batches_stop(app.batches);
    runner_stop(app.runner, 0);
    call_tracker_stop(app.calls);
    retention_stop(app.retention);
    backlog_stop(app.backlog);
    longpoll_free(app.longpoll);
    store_pool_free(app.pool);
    wh_dest_set_global(NULL);
    wh_dest_policy_free(destinations);
    return rc;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    metrics_init(time_now_ms());
    struct config cfg;
    char *why = NULL;
    if (config_load(&cfg, argc, argv, &why) < 0) {
        fprintf(stderr, "keeld: %s\n", why);
        free(why);
        config_free(&cfg);
        return 2;
    }
    log_set_level(cfg.log_level);
    int rc = 0;
    switch (cfg.command) {
    case CONFIG_CMD_HELP:
        config_print_help(stdout);
        break;
    case CONFIG_CMD_VERSION:
        printf("keeld %s\n", KEEL_VERSION);
        break;
    case CONFIG_CMD_MIGRATE:
    case CONFIG_CMD_SERVE:
        if (!cfg.database_url) {
            fprintf(stderr, "keeld: KEEL_DATABASE_URL (or --database-url) is required\n");
            rc = 2;
            break;
        }
        store_set_session_settings(&(struct store_session_settings){
            .lock_timeout_ms = cfg.db_lock_timeout_ms,
            .idle_in_tx_ms = cfg.db_idle_in_tx_ms,
            .tcp_user_timeout_ms = cfg.db_tcp_user_timeout_ms,
        });
        if (cfg.command == CONFIG_CMD_MIGRATE)
            rc = migrate_database(cfg.database_url, 0) < 0 ? 1 : 0;
        else
            rc = serve(&cfg);
        break;
    }
    config_free(&cfg);
    return rc;
}
