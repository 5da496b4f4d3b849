/* keeld configuration: one table of options, read from the environment and then from flags. */
#ifndef KEEL_CONFIG_H
#define KEEL_CONFIG_H

#include "log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum config_command {
    CONFIG_CMD_SERVE,   /* run the daemon (the default) */
    CONFIG_CMD_MIGRATE, /* apply pending migrations and exit */
    CONFIG_CMD_HELP,    /* print --help and exit 0 */
    CONFIG_CMD_VERSION, /* print the version and exit 0 */
};

struct config {
    enum config_command command;
    char *database_url;   /* libpq URI or key=value string; required for serve and migrate */
    char *listen;         /* host:port */
    char *webhook_secret; /* whsec_... secrets separated by spaces; NULL = unsigned webhooks */
    char *api_tokens;     /* comma-separated bearer tokens; NULL = no authentication */
    enum log_level log_level;
    long workers;                     /* engine worker threads */
    long http_threads;                /* HTTP server threads */
    long db_pool_size;                /* PostgreSQL connections for API requests */
    long max_body_bytes;              /* request body cap; larger bodies get 413 */
    long http_max_connections;        /* open HTTP connections at once */
    long http_max_connections_per_ip; /* the same from one client address; 0 = no limit */
    long http_request_timeout;        /* seconds of silence before a connection is closed */
    bool metrics_public;              /* /metrics needs no token even with api_tokens */
    long shutdown_grace_ms;           /* how long SIGTERM waits for in-flight requests */
    long lease_grace_ms;              /* an attempt's lease lasts its timeout plus this */
    long max_in_flight;               /* activity attempts on the wire at once */
    long max_in_flight_per_host;      /* the same to one scheme://host:port */
    char *host_limits;                /* KEEL_HOST_LIMITS (or "@file"); NULL = none */
    long for_each_max_items;          /* the longest items array a for_each iterates over */
    long max_child_depth;             /* how deep child workflows may nest */
    bool no_migrate;                  /* do not apply migrations at start */
    char *ui_dir;                /* serve the UI from this folder instead of the embedded copy */
    long db_lock_timeout_ms;     /* lock_timeout of every keeld session; 0 = none */
    long db_idle_in_tx_ms;       /* idle_in_transaction_session_timeout; 0 = none */
    long db_tcp_user_timeout_ms; /* tcp_user_timeout of database connections; 0 = OS default */
    char *activity_allow;        /* KEEL_ACTIVITY_ALLOW; NULL = default destination policy */
    int64_t retention_ms;        /* KEEL_RETENTION: purge what ended this long ago; 0 = never */
};

/* Fills cfg from defaults, then the environment (KEEL_*), then argv. On a bad value or an
 * unknown flag returns -1 and a message in *why (caller frees); cfg is then partly filled and
 * must still be passed to config_free. */
int config_load(struct config *cfg, int argc, char **argv, char **why)
    __attribute__((warn_unused_result));
/* Writes the --help text, generated from the option table. */
void config_print_help(FILE *out);
void config_free(struct config *cfg);

#endif
