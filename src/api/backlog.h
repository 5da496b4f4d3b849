/* The backlog gauges of /metrics: how much work the whole cluster has waiting (executions
 * running, tasks due, overdue and pending, the age of the oldest due task), read from
 * PostgreSQL, since every keeld shares it. One thread reads them, only when a scrape asks and
 * at most every BACKLOG_MIN_INTERVAL_MS, with one statement of index range scans under a
 * statement timeout; a scrape waits for a fresh read at most BACKLOG_SCRAPE_WAIT_MS and
 * otherwise answers with the previous one, so a slow or unreachable database never holds a
 * scrape up for long. */
#ifndef KEEL_API_BACKLOG_H
#define KEEL_API_BACKLOG_H

#include "store/pool.h"
#include "util/buf.h"

/* How old the values may be before a scrape asks for a new read. */
#define BACKLOG_MIN_INTERVAL_MS 5000
/* How long a scrape waits for that read before it answers with what it has. */
#define BACKLOG_SCRAPE_WAIT_MS 1000
/* The read's statement timeout, and how long it waits for a connection of the pool. */
#define BACKLOG_STATEMENT_TIMEOUT_MS 5000
#define BACKLOG_ACQUIRE_WAIT_MS      2000
/* A task counts as overdue once it has been due (and not leased) this long. */
#define BACKLOG_OVERDUE_MS 60000

struct backlog;

/* Starts the reading thread, which uses connections of pool (borrowed: it must outlive the
 * backlog). Reads nothing until the first backlog_render. */
struct backlog *backlog_start(struct store_pool *pool);
/* Appends the backlog gauges: keel_backlog_read_ok, keel_backlog_read_age_seconds,
 * keel_backlog_read_errors_total, and, when the latest read succeeded, the values it read.
 * Asks for a read when the values are older than BACKLOG_MIN_INTERVAL_MS and waits for it at
 * most BACKLOG_SCRAPE_WAIT_MS. Any thread. */
void backlog_render(struct backlog *b, struct buf *out);
/* Stops the thread (waiting for a read in progress) and frees b. NULL is fine. */
void backlog_stop(struct backlog *b);

#endif
