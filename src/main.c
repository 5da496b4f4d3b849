/* keeld: parse the configuration, apply migrations, start the HTTP server, and drain on
 * SIGTERM/SIGINT. */
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

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Connects and applies migrations, retrying while the database is unreachable (it may still be
 * starting, as in a compose file) for up to wait_s seconds. */
static int migrate_database(const char *url, int wait_s)
{
    for (int attempt = 0;; attempt++) {
        char *why = NULL;
        PGconn *conn = store_connect(url, &why);
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
        sleep(1);
    }
}

static void on_execution_ended(void *arg, const char *execution_id)
{
    struct app *app = arg;
    longpoll_ended(app->longpoll, execution_id);
}

static void on_missed_notifications(void *arg)
{
    struct app *app = arg;
    longpoll_recheck_all(app->longpoll);
}

static int serve(const struct config *cfg)
{
    int rc = 1;
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    /* Blocked before any thread starts, so every thread inherits the mask and only sigwait
     * below receives them. */
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    if (!cfg->no_migrate && migrate_database(cfg->database_url, 60) < 0)
        return 1;
    if (!cfg->api_tokens)
        log_warn("KEEL_API_TOKENS is not set: the API accepts requests without authentication");
    if (!cfg->webhook_secret)
        log_warn("KEEL_WEBHOOK_SECRET is not set: activity webhooks will not be signed");

    struct app app = {.cfg = cfg,
                      .pool = store_pool_new(cfg->database_url, (int)cfg->db_pool_size)};
    app.longpoll = longpoll_start(app.pool);
    struct runner_config rcfg = {
        .database_url = cfg->database_url,
        .workers = cfg->workers,
        .lease_grace_ms = cfg->lease_grace_ms,
        .max_in_flight = cfg->max_in_flight,
        .webhook_secret = cfg->webhook_secret,
        .on_execution_ended = on_execution_ended,
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
    struct http_server_config hcfg = {
        .listen = cfg->listen,
        .threads = cfg->http_threads,
        .max_body_bytes = cfg->max_body_bytes,
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
    log_info("keeld listening", "listen", cfg->listen, "port", port, "version", KEEL_VERSION);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    log_info("stopping: draining requests in flight", "signal", strsignal(sig));
    /* Order matters: refuse new requests, answer the long polls, then wait for the rest. */
    http_server_close(server);
    longpoll_drain(app.longpoll);
    int cut = http_server_stop(server, cfg->shutdown_grace_ms);
    if (cut > 0) {
        /* The HTTP threads still run those requests and use the runner, the pool and the long
         * polls: the process ends without freeing what they might touch. Attempts on the wire
         * are sent again by whoever holds their tasks once the leases run out. */
        char n[16];
        snprintf(n, sizeof n, "%d", cut);
        log_warn("requests still running at the deadline were cut off", "count", n);
        log_info("keeld stopped");
        fflush(NULL);
        _exit(0);
    }
    runner_stop(app.runner, cfg->shutdown_grace_ms);
    app.runner = NULL;
    log_info("keeld stopped");
    rc = 0;
out:
    runner_stop(app.runner, 0);
    longpoll_free(app.longpoll);
    store_pool_free(app.pool);
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
        if (cfg.command == CONFIG_CMD_MIGRATE)
            rc = migrate_database(cfg.database_url, 0) < 0 ? 1 : 0;
        else
            rc = serve(&cfg);
        break;
    }
    config_free(&cfg);
    return rc;
}
