/* Liveness of keelds through their database sessions: each keeld holds a session advisory
 * lock named after its owner id on a connection of its own, so that when a keeld dies (kill -9,
 * crash, lost host) its session ends, the lock goes with it, and the others take its executions
 * over at once. A keeld that keeps its session but stops (paused, hung) stops its heartbeat
 * (keelds.alive_until) too: once that runs out (the lease grace), it is taken over as well, and
 * fenced by executions.owner when it comes back. */
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
/* How many executions one statement of liveness_take_over_dead takes at most. */
#define LIVENESS_TAKE_OVER_CHUNK 500

/* Tells the others this keeld is alive for alive_ms more (the lease grace): keelds.alive_until.
 * Returns 0, or -1 with *why set (the connection is then dropped and retaken on the next
 * liveness_hold). */
int liveness_heartbeat(struct liveness *l, long alive_ms, char **why);
/* How many keelds are alive now, this one included (>= 1), and this one's rank among them
 * (0-based, by owner id), for dividing the host limits. Returns 0, or -1 with *why set (the
 * connection is then dropped). */
int liveness_live_keelds(struct liveness *l, int *keelds, int *rank, char **why);
/* Takes over the work of dead keelds (no liveness lock, or a heartbeat that ran out): frees
 * their task leases, makes this keeld the owner of their running executions (calling taken
 * for each, which must then send again the attempts they had in flight) and forgets the dead
 * that own nothing. With orphans, first registers as dead the owners of running executions that
 * have no keelds row and no lock. Returns how many executions were taken, or -1 with *why set
 * (the connection is then dropped). */
long liveness_take_over_dead(struct liveness *l, bool orphans,
                             void (*taken)(void *arg, const char *execution_id), void *arg,
                             char **why);

#endif
