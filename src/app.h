/* The daemon's shared context: the one struct every handler and worker reaches the rest of the
 * process through. Built by main.c; nothing in it changes after start-up except through the
 * thread-safe objects it points to. */
#ifndef KEEL_APP_H
#define KEEL_APP_H

#include "config.h"
#include "store/pool.h"

struct runner;
struct longpoll;
struct call_tracker;
struct retention;
struct batches;
struct scheduler;
struct http_server;
struct backlog;

struct app {
    const struct config *cfg;
    struct store_pool *pool;     /* connections for API requests */
    struct runner *runner;       /* the engine's shell: dispatches attempts, claims tasks */
    struct longpoll *longpoll;   /* suspended long polls (results, held step calls) */
    struct call_tracker *calls;  /* step call replays and last call times, written in batches */
    struct retention *retention; /* KEEL_RETENTION's purge; NULL when unset */
    struct batches *batches;     /* the bulk actions' worker */
    struct scheduler *scheduler; /* starts the due schedules' executions */
    struct http_server *server;  /* set once listening, for metrics */
    struct backlog *backlog;     /* the backlog gauges of /metrics (NULL: none shown) */
};

#endif
