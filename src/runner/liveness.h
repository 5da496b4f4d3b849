/* Liveness of keelds through their database sessions: each keeld holds a session advisory
 * lock named after its lease owner id on a connection of its own, so that when a keeld dies
 * (kill -9, crash, lost host) its session ends, the lock goes with it, and the others take its
 * leased work over at once instead of after the leases run out. A keeld that keeps its session
 * but stops (paused, hung) keeps its work until its leases expire, as before. */
#ifndef KEEL_RUNNER_LIVENESS_H
#define KEEL_RUNNER_LIVENESS_H

#include <stdbool.h>

struct liveness;

/* A liveness holder for owner (copied); nothing is connected yet. Free with liveness_free. */
struct liveness *liveness_new(const char *conninfo, const char *owner);
/* Closes the connection, which releases the lock (the others take the work over). */
void liveness_free(struct liveness *l);
/* Makes sure the lock is held: (re)connects and takes it when needed. Returns true when held
 * now. False with *why set (caller frees) when the database cannot be reached, or when another
 * live session holds the same lock (two owner ids with the same 32-bit hash: the caller should
 * pick another owner id). */
bool liveness_hold(struct liveness *l, char **why);
/* Ends the leases of every task whose owner holds no liveness lock any more (its keeld is gone),
 * so that they can be claimed at once. Returns how many, or -1 with *why set (the connection is
 * then dropped and retaken on the next liveness_hold). */
int liveness_take_over_dead(struct liveness *l, char **why);

#endif
