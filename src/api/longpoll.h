/* Long polls: suspended requests that hold neither a thread nor a database connection while
 * they wait, answered when what they wait for happens (here or on another keeld, through
 * NOTIFY) or when their wait runs out. GET /v1/executions/{id}/result?wait= waits for an
 * execution's end; a step call with Prefer: wait= for the end of one step of a code execution.
 * Each waiter waits on a topic: an execution id, or "<execution id>/<key>" for a step (ids and
 * keys hold no '/'). */
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

/* A waiter's answer, called on the long polls' thread without its lock: looks at what it waits
 * for on conn (NULL when none could be had; why says why) and replies to req, returning true;
 * or returns false without replying when it is not there yet and must_answer is false (its
 * deadline has not come, keeld is not stopping). The caller resumes req. */
typedef bool (*longpoll_answer_fn)(void *arg, struct http_request *req, PGconn *conn,
                                   const char *why, bool must_answer);
/* Suspends req on topic until answer_fn answers it: at once (in case it happened before the
 * wait began), whenever longpoll_ended names the topic, and at deadline_ms (monotonic) with
 * must_answer. free_arg(arg) runs once the waiter is gone (NULL: arg is not freed). */
void longpoll_wait_for(struct longpoll *lp, struct http_request *req, const char *topic,
                       int64_t deadline_ms, longpoll_answer_fn answer_fn, void *arg,
                       void (*free_arg)(void *arg));
/* Wakes the waiters of a topic, and for an execution id those of its steps too (any thread). */
void longpoll_ended(struct longpoll *lp, const char *topic);
/* Whether a request waits on exactly this topic now (any thread). */
bool longpoll_has_waiter(struct longpoll *lp, const char *topic);
/* Wakes every waiter to look again (after notifications may have been missed). */
void longpoll_recheck_all(struct longpoll *lp);

#endif
