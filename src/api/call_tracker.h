/* What step calls leave behind without writing in their own path: how often each key was
 * replayed, and when each code execution's program last called. A replay is answered from its
 * row and writes nothing (the contract's promise, and what makes re-running a program cheap);
 * these counts are kept in memory and added to the tables in two statements about once a
 * second, off every request's path. What a kill -9 of keeld loses is at most the last second's
 * counts: they are for people reading the UI and for the handler's inactivity check (which a
 * last call older by a second only makes come a second early), and nothing else decides on
 * them. */
#ifndef KEEL_API_CALL_TRACKER_H
#define KEEL_API_CALL_TRACKER_H

#include "store/pool.h"

#include <stdbool.h>
#include <stdint.h>

struct call_tracker;

/* Starts the thread that writes the counts every flush_ms, with connections of pool. */
struct call_tracker *call_tracker_start(struct store_pool *pool, long flush_ms);
/* Notes one step call of key (NULL: a call that names no key, such as complete) of execution
 * id at at_ms (wall clock); replay when it was answered from the journal. Any thread. */
void call_tracker_note(struct call_tracker *t, const char *execution_id, const char *key,
                       bool replay, int64_t at_ms);
/* Writes what is noted (when the database answers) and returns. Any thread. */
void call_tracker_flush(struct call_tracker *t);
/* Writes what is left, stops the thread and frees t. NULL is fine. */
void call_tracker_stop(struct call_tracker *t);

#endif
