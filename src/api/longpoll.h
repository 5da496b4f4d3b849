/* Long polls of GET /v1/executions/{id}/result?wait=: suspended requests that hold neither a
 * thread nor a database connection while they wait, answered when the execution ends (here or
 * on another keeld, through NOTIFY) or when their wait runs out. */
#ifndef KEEL_API_LONGPOLL_H
#define KEEL_API_LONGPOLL_H

#include "http/server.h"
#include "store/pool.h"

#include <stdint.h>

struct longpoll;

/* Starts the thread that answers waiters; replies are built with connections from pool. */
struct longpoll *longpoll_start(struct store_pool *pool);
/* For shutdown: answers every waiter with the execution as it is now (202 if still running),
 * and from now on answers new waiters at once. Returns when none is left. */
void longpoll_drain(struct longpoll *lp);
/* Stops the thread and frees lp; call once no request can reach longpoll_wait any more. */
void longpoll_free(struct longpoll *lp);
/* Suspends req until execution_id ends or deadline_ms (monotonic) passes. */
void longpoll_wait(struct longpoll *lp, struct http_request *req, const char *execution_id,
                   int64_t deadline_ms);
/* Wakes the waiters of one execution (any thread). */
void longpoll_ended(struct longpoll *lp, const char *execution_id);
/* Wakes every waiter to look again (after notifications may have been missed). */
void longpoll_recheck_all(struct longpoll *lp);

#endif
