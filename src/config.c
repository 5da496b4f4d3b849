/* The option table and its parser: --help is generated from the same table, so it cannot drift. */
#include "config.h"

#include "defn/duration.h"
#include "util/alloc.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum opt_type {
    OPT_STRING,
    OPT_LONG,
    OPT_BOOL,
    OPT_LOG_LEVEL,
    OPT_DURATION, /* "30d", "12h", ... (defn/duration) into an int64_t of ms; "" or unset: 0 */
};

struct option_def {
    const char *flag; /* without the leading "--" */
    const char *env;
    enum opt_type type;
    const char *default_value; /* NULL = unset */
    long min, max;             /* for OPT_LONG */
    size_t offset;
    const char *help;
};

#define OFF(field) offsetof(struct config, field)

static const struct option_def options[] = {
    {"database-url", "KEEL_DATABASE_URL", OPT_STRING, NULL, 0, 0, OFF(database_url),
     "PostgreSQL connection (libpq URI or key=value string). Required."},
    {"listen", "KEEL_LISTEN", OPT_STRING, "127.0.0.1:8080", 0, 0, OFF(listen),
     "Address and port of the HTTP API and UI (host:port, [v6]:port)."},
    {"webhook-secret", "KEEL_WEBHOOK_SECRET", OPT_STRING, NULL, 0, 0, OFF(webhook_secret),
     "Secrets that sign activity webhooks: whsec_<base64> of a key of at least 24 bytes, "
     "several separated by spaces."},
    {"api-tokens", "KEEL_API_TOKENS", OPT_STRING, NULL, 0, 0, OFF(api_tokens),
     "Comma-separated bearer tokens required on every route but /healthz, /readyz, the UI and "
     "/v1/tasks/{token}/... (and /metrics with KEEL_METRICS_PUBLIC). Unset: no authentication."},
    {"log-level", "KEEL_LOG_LEVEL", OPT_LOG_LEVEL, "info", 0, 0, OFF(log_level),
     "debug, info, warn or error."},
    {"workers", "KEEL_WORKERS", OPT_LONG, "4", 1, 256, OFF(workers),
     "Engine worker threads (each holds one database connection)."},
    {"http-threads", "KEEL_HTTP_THREADS", OPT_LONG, "4", 1, 256, OFF(http_threads),
     "HTTP server threads."},
    {"db-pool-size", "KEEL_DB_POOL_SIZE", OPT_LONG, "8", 1, 1024, OFF(db_pool_size),
     "Database connections shared by API requests."},
    {"max-body-bytes", "KEEL_MAX_BODY_BYTES", OPT_LONG, "1048576", 1024, 1073741824,
     OFF(max_body_bytes), "Largest accepted request body; larger ones get 413."},
    {"http-max-connections", "KEEL_HTTP_MAX_CONNECTIONS", OPT_LONG, "1024", 1, 65536,
     OFF(http_max_connections),
     "Open HTTP connections at once, long polls included; more are closed at once."},
    {"http-max-connections-per-ip", "KEEL_HTTP_MAX_CONNECTIONS_PER_IP", OPT_LONG, "128", 0, 65536,
     OFF(http_max_connections_per_ip),
     "Open HTTP connections at once from one client address; 0 = no limit (behind a proxy)."},
    {"http-request-timeout", "KEEL_HTTP_REQUEST_TIMEOUT", OPT_LONG, "15", 1, 3600,
     OFF(http_request_timeout),
     "Seconds a connection may stay silent (mid-request or idle between requests) before it is "
     "closed; long polls are not cut by it."},
    {"metrics-public", "KEEL_METRICS_PUBLIC", OPT_BOOL, "false", 0, 0, OFF(metrics_public),
     "Serve /metrics without an API token even when KEEL_API_TOKENS is set."},
    {"shutdown-grace-ms", "KEEL_SHUTDOWN_GRACE_MS", OPT_LONG, "10000", 0, 3600000,
     OFF(shutdown_grace_ms), "On SIGTERM/SIGINT, how long to wait for in-flight requests."},
    {"lease-grace-ms", "KEEL_LEASE_GRACE_MS", OPT_LONG, "30000", 100, 86400000, OFF(lease_grace_ms),
     "How long a keeld's heartbeat vouches for it: a keeld that keeps its database session "
     "but stops (paused, hung) loses its executions to another this long after its last "
     "heartbeat; one whose session ends loses them within about a second."},
    {"max-in-flight", "KEEL_MAX_IN_FLIGHT", OPT_LONG, "1000", 1, 100000, OFF(max_in_flight),
     "Activity attempts on the wire at once, across all hosts."},
    {"max-in-flight-per-host", "KEEL_MAX_IN_FLIGHT_PER_HOST", OPT_LONG, "32", 1, 100000,
     OFF(max_in_flight_per_host),
     "Activity attempts on the wire at once to one scheme://host:port; more wait their turn."},
    {"host-limits", "KEEL_HOST_LIMITS", OPT_STRING, NULL, 0, 0, OFF(host_limits),
     "Limits per destination host, separated by spaces: HOST[:PORT]=CONCURRENCY, "
     "HOST=RATE/s (or /m, /h) or HOST=CONCURRENCY,RATE/s, e.g. \"payments.internal=20,50/s "
     "*.example.com=5\". Requests over a limit wait their turn (journaled as "
     "waiting_for_capacity), never fail; several keelds divide each limit among them. "
     "@/path/to/file reads them from a file, read again on SIGHUP. A bad entry stops keeld."},
    {"for-each-max-items", "KEEL_FOR_EACH_MAX_ITEMS", OPT_LONG, "10000", 1, 10000000,
     OFF(for_each_max_items),
     "The most items a for_each step may iterate over; an items array longer than this fails "
     "the step (too_many_items)."},
    {"max-child-depth", "KEEL_MAX_CHILD_DEPTH", OPT_LONG, "32", 1, 1000, OFF(max_child_depth),
     "How deep child workflows may nest (a workflow step's child is one level below its "
     "parent); a child that would be deeper is not started and fails its step "
     "(child_depth_exceeded). Bounds recursion."},
    {"no-migrate", "KEEL_NO_MIGRATE", OPT_BOOL, "false", 0, 0, OFF(no_migrate),
     "Do not apply pending migrations at start (use 'keeld migrate')."},
    {"ui-dir", "KEEL_UI_DIR", OPT_STRING, NULL, 0, 0, OFF(ui_dir),
     "Serve the web UI from this folder (e.g. web-ui/) instead of the copy built into keeld."},
    {"db-lock-timeout-ms", "KEEL_DB_LOCK_TIMEOUT_MS", OPT_LONG, "5000", 0, 3600000,
     OFF(db_lock_timeout_ms),
     "How long a database statement waits for a lock held by another keeld or request; then "
     "an API call answers 503 with Retry-After and the engine retries. 0 = wait for ever."},
    {"db-idle-in-transaction-timeout-ms", "KEEL_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", OPT_LONG,
     "10000", 0, 3600000, OFF(db_idle_in_tx_ms),
     "PostgreSQL ends a keeld session left idle inside a transaction this long (a paused or "
     "hung keeld), releasing its locks. 0 = never."},
    {"db-tcp-user-timeout-ms", "KEEL_DB_TCP_USER_TIMEOUT_MS", OPT_LONG, "30000", 0, 3600000,
     OFF(db_tcp_user_timeout_ms),
     "Database connections whose data stays unacknowledged this long (a network partition) are "
     "closed on both sides; TCP keepalives probe idle ones. 0 = the OS default."},
    {"activity-allow", "KEEL_ACTIVITY_ALLOW", OPT_STRING, NULL, 0, 0, OFF(activity_allow),
     "Comma-separated hosts, host:port and CIDRs (IPv4, IPv6) that activity URLs may reach. "
     "Unset: any destination except link-local/cloud metadata addresses and keeld's own "
     "listen address, which are refused unless listed here."},
    {"retention", "KEEL_RETENTION", OPT_DURATION, NULL, 1000, 0, OFF(retention_ms),
     "Purge executions that ended longer ago than this (e.g. 30d), with their events, steps, "
     "signals, tokens and tags, in small batches in the background; schedules' events and "
     "completed bulk-action batches as old go too. Unset: keep them."},
};

#define N_OPTIONS (sizeof options / sizeof options[0])

static int set_option(struct config *cfg, const struct option_def *o, const char *value,
                      const char *source, char **why)
{
    void *field = (char *)cfg + o->offset;
    switch (o->type) {
    case OPT_STRING: {
        char **s = field;
        free(*s);
        *s = value[0] ? xstrdup(value) : NULL;
        return 0;
    }
    case OPT_LONG: {
        char *end = NULL;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end != '\0' || v < o->min || v > o->max) {
            *why = xasprintf("%s: \"%s\" is not an integer from %ld to %ld", source, value, o->min,
                             o->max);
            return -1;
        }
        *(long *)field = v;
        return 0;
    }
    case OPT_BOOL: {
        bool *b = field;
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes")) {
            *b = true;
        } else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no")) {
            *b = false;
        } else {
            *why =
                xasprintf("%s: \"%s\" is not a boolean (true/false, 1/0, yes/no)", source, value);
            return -1;
        }
        return 0;
    }
    case OPT_DURATION: {
        int64_t ms = 0;
        const char *dwhy = NULL;
        json_t *text = json_string(value);
        bool ok = !value[0] || defn_parse_duration(text, &ms, &dwhy);
        json_decref(text);
        if (!ok || (value[0] && ms < o->min)) {
            *why = xasprintf("%s: \"%s\" %s (a duration such as 30d, 12h, 90m or 45s)", source,
                             value, !ok ? dwhy : "is too short");
            return -1;
        }
        *(int64_t *)field = value[0] ? ms : 0;
        return 0;
    }
    case OPT_LOG_LEVEL:
        if (!log_parse_level(value, field)) {
            *why = xasprintf("%s: \"%s\" is not a log level (debug, info, warn, error)", source,
                             value);
            return -1;
        }
        return 0;
    }
    return -1;
}

static const struct option_def *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (strlen(options[i].flag) == len && !strncmp(options[i].flag, name, len))
            return &options[i];
    }
    return NULL;
}

int config_load(struct config *cfg, int argc, char **argv, char **why)
{
    memset(cfg, 0, sizeof *cfg);
    *why = NULL;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].default_value &&
            set_option(cfg, &options[i], options[i].default_value, "default", why) < 0)
            return -1;
    }
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *v = getenv(options[i].env);
        if (v && set_option(cfg, &options[i], v, options[i].env, why) < 0)
            return -1;
    }
    bool have_command = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cfg->command = CONFIG_CMD_HELP;
            return 0;
        }
        if (!strcmp(arg, "--version")) {
            cfg->command = CONFIG_CMD_VERSION;
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0) {
            if (have_command) {
                *why = xasprintf("unexpected argument \"%s\"", arg);
                return -1;
            }
            if (!strcmp(arg, "migrate")) {
                cfg->command = CONFIG_CMD_MIGRATE;
            } else if (!strcmp(arg, "serve")) {
                cfg->command = CONFIG_CMD_SERVE;
            } else {
                *why = xasprintf("unknown command \"%s\" (commands: serve, migrate)", arg);
                return -1;
            }
            have_command = true;
            continue;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct option_def *o = find_flag(name, len);
        if (!o) {
            *why = xasprintf("unknown flag \"--%.*s\" (see --help)", (int)len, name);
            return -1;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (o->type == OPT_BOOL) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            *why = xasprintf("flag --%s needs a value", o->flag);
            return -1;
        }
        char source[80];
        snprintf(source, sizeof source, "--%s", o->flag);
        if (set_option(cfg, o, value, source, why) < 0)
            return -1;
    }
    return 0;
}

void config_print_help(FILE *out)
{
    fprintf(out, "Usage: keeld [serve|migrate] [flags]\n\n"
                 "Keel: durable workflows driven over HTTP, journaled in PostgreSQL.\n\n"
                 "Commands:\n"
                 "  serve     run the HTTP API, UI and engine (the default)\n"
                 "  migrate   apply pending database migrations and exit\n\n"
                 "Flags (each may also be set by the environment variable shown):\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_def *o = &options[i];
        fprintf(out, "  --%-20s %s\n  %-22s %s", o->flag, o->env, "", o->help);
        if (o->default_value)
            fprintf(out, " Default: %s.", o->default_value);
        fputc('\n', out);
    }
    fprintf(out, "  --%-20s print this help\n  --%-20s print the version\n", "help", "version");
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].type == OPT_STRING) {
            char **s = (char **)((char *)cfg + options[i].offset);
            free(*s);
            *s = NULL;
        }
    }
}
