/* The runner: the engine's transactional shell at work. Worker threads journal webhook results
 * and due tasks; a claimer leases due tasks (retries, timers, attempts whose keeld died); a
 * listener wakes the claimer on NOTIFY; the webhook dispatcher sends attempts. Several keeld may
 * run on one database: they coordinate only through task leases and NOTIFY. */
#ifndef KEEL_RUNNER_RUNNER_H
#define KEEL_RUNNER_RUNNER_H

#include "runner/transition.h"
#include "webhook/dispatcher.h"

#include <stdbool.h>
#include <stddef.h>

struct runner_config {
    const char *database_url;
    long workers;                       /* worker threads, each using one connection at a time */
    long lease_grace_ms;                /* lease = attempt timeout + this */
    long max_in_flight;                 /* activity attempts on the wire at once */
    long max_in_flight_per_host;        /* the same to one scheme://host:port */
    struct wh_host_limits *host_limits; /* KEEL_HOST_LIMITS, taken by runner_start (NULL: none) */
    long for_each_max_items;            /* the longest items array a for_each iterates over */
    long max_child_depth;               /* how deep child workflows may nest (0: 32) */
    const char *webhook_secret;         /* whsec_... list, or NULL for unsigned webhooks */
    /* Called (on a runner thread) when an execution ends, here or on another keeld. */
    void (*on_execution_ended)(void *arg, const char *execution_id);
    /* Called (on a runner thread) when a step of a code execution ended (completed, failed or
     * stopped), here or on another keeld: topic is "<execution id>/<key>". */
    void (*on_step_ended)(void *arg, const char *topic);
    /* Whether a step call of this keeld is held waiting for topic (a handler call is then not
     * needed); NULL: never. Called on a runner thread, inside a transaction: must be quick. */
    bool (*step_awaited)(void *arg, const char *topic);
    /* Called after the listener reconnects: any end may have been missed. */
    void (*on_missed_notifications)(void *arg);
    void *hook_arg;
};

struct runner;

/* Starts the threads. Returns NULL with *why set (caller frees) on a bad secret or a thread
 * that cannot start. The database may be down: the runner waits for it. */
struct runner *runner_start(const struct runner_config *cfg, char **why);
/* Stops claiming, lets attempts on the wire finish for up to grace_ms, journals their results,
 * and frees the runner. Attempts cut off are redelivered by a later lease holder. */
void runner_stop(struct runner *r, long grace_ms);

/* The environment transitions run in (lease owner, definition cache). */
const struct transition_env *runner_env(struct runner *r);
/* Sends attempts leased by a committed transition. Takes ownership of the list. */
void runner_dispatch(struct runner *r, struct attempt_dispatch *list);
/* After a transition committed: sends its attempts (the list is taken) and reports its end. */
void runner_committed(struct runner *r, struct transition_out *out, const char *execution_id);
/* The webhook dispatcher's gauges, for metrics. */
void runner_webhook_stats(struct runner *r, long *in_flight, long *queued);
/* Replaces the host limits (taken; NULL: none): requests waiting get the new ones at once. */
void runner_set_host_limits(struct runner *r, struct wh_host_limits *limits);
/* The host limits' counters, for metrics: how many, and *out a new array (caller frees). */
size_t runner_host_limit_stats(struct runner *r, struct wh_limit_stats **out);
/* Reports that a committed transition ended an execution (wakes local long polls). */
void runner_ended(struct runner *r, const char *execution_id);

#endif
