/* The retention purge (KEEL_RETENTION): a thread that removes executions which ended longer
 * ago than the retention, with everything that is theirs, a small batch per transaction, the
 * oldest first. Batches lock only ended executions and skip any another session holds, so a
 * running execution is never touched and the engine's transactions never wait for the purge.
 * Several keelds may run it at once: they take disjoint batches. Schedules' events and
 * completed bulk-action batches older than the retention go too, a thousand rows at a time. */
#ifndef KEEL_OPS_RETENTION_H
#define KEEL_OPS_RETENTION_H

#include "store/pool.h"

#include <stdint.h>

/* Executions removed per transaction. */
#define RETENTION_BATCH 100

struct retention;

/* Starts the purge of what ended more than retention_ms ago, with connections of pool. Between
 * rounds it sleeps a tenth of the retention, at least 100 ms and at most 10 s; a round goes on
 * batch after batch while full batches come. */
struct retention *retention_start(struct store_pool *pool, int64_t retention_ms);
/* Stops the thread (a batch in progress commits first) and frees r. NULL is fine. */
void retention_stop(struct retention *r);

#endif
