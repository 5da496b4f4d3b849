/* The bulk actions' worker: a thread per keeld that works through running batches (table
 * batches), one at a time, the oldest first. A batch belongs to one live keeld at a time; when
 * its keeld dies (its keelds row goes or runs out, as the liveness module decides) another takes
 * it over and goes on from its cursor. Each page is 100 executions in creation order (a small
 * read, no lock held); each execution is acted on by a transition of its own through the runner
 * (the same input a POST .../cancel applies), which records in its own transaction that the
 * batch reached it (batch_items), and skips it when a batch_items row says it was reached
 * already: after a kill -9 anywhere, every execution is acted on exactly once. */
#ifndef KEEL_OPS_BATCHES_H
#define KEEL_OPS_BATCHES_H

#include "store/pool.h"

/* Executions per page. */
#define BATCHES_PAGE 100

struct runner;
struct batches;

/* Starts the worker of this keeld (owner: its keelds.owner) with connections of pool. */
struct batches *batches_start(struct store_pool *pool, struct runner *runner, const char *owner);
/* Wakes the worker now (a batch was created here) instead of at its next look (each second). */
void batches_wake(struct batches *b);
/* Stops the worker: the page in progress finishes (its executions are acted on) first. Frees b;
 * NULL is fine. */
void batches_stop(struct batches *b);

#endif
