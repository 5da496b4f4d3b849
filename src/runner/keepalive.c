/* Liveness: the lock and heartbeat that prove this keeld alive, and takeover of the dead. */
#include "runner/internal.h"

#include "log.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest between two sweeps for orphans (owners with no keelds row, tasks queued for an
 * execution under an owner it no longer has), and between two heartbeats. The orphan sweep
 * runs every lease grace (an orphan is as dead as a keeld silent that long), within 1 s and
 * this. */
#define MAX_ORPHANS_SWEEP_MS 30000
#define MAX_HEARTBEAT_EVERY  1000

/* ---- keepalive ----------------------------------------------------------------------------- */

static void taken_over(void *arg, const char *execution_id)
{
    struct runner *r = arg;
    struct job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_TAKEOVER;
    j->execution_id = xstrdup(execution_id);
    push_job(r, j);
}

void share_host_limits(struct runner *r)
{
    if (!atomic_load(&r->has_host_limits))
        return;
    int keelds = 1, rank = 0;
    char *why = NULL;
    if (liveness_live_keelds(r->liveness, &keelds, &rank, &why) < 0) {
        log_debug("cannot count the live keelds; the host limits stay divided as they are", "error",
                  why);
        free(why);
        return;
    }
    wh_dispatcher_set_share(r->wh, keelds, rank);
    if (keelds != r->shared_by) {
        char n[16], k[16];
        snprintf(n, sizeof n, "%d", keelds);
        snprintf(k, sizeof k, "%d", rank);
        log_info("host limits divided among the live keelds", "keelds", n, "rank", k);
        r->shared_by = keelds;
    }
}

/* Holds the liveness lock, pushes this keeld's heartbeat forward and takes over the executions
 * of dead keelds, on a connection of its own: a claimer or workers waiting for the pool must
 * not make this keeld look dead. */
void *keepalive_main(void *arg)
{
    struct runner *r = arg;
    long every = r->cfg.lease_grace_ms / 4;
    if (every > MAX_HEARTBEAT_EVERY)
        every = MAX_HEARTBEAT_EVERY;
    if (every < 50)
        every = 50;
    long orphans_every = r->cfg.lease_grace_ms;
    if (orphans_every > MAX_ORPHANS_SWEEP_MS)
        orphans_every = MAX_ORPHANS_SWEEP_MS;
    if (orphans_every < 1000)
        orphans_every = 1000;
    int64_t last_sweep_ms = INT64_MIN / 2, last_orphans_ms = INT64_MIN / 2;
    bool was_live = atomic_load(&r->live);
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stopping_keepalive;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            return NULL;
        char *why = NULL;
        bool live = liveness_hold(r->liveness, &why) &&
                    liveness_heartbeat(r->liveness, r->cfg.lease_grace_ms, &why) == 0;
        int64_t now = time_mono_ms();
        if (live && now - last_sweep_ms >= LIVENESS_SWEEP_MS) {
            bool orphans = now - last_orphans_ms >= orphans_every;
            long n = liveness_take_over_dead(r->liveness, orphans, taken_over, r, &why);
            live = n >= 0;
            if (live)
                share_host_limits(r);
            last_sweep_ms = now;
            if (orphans && live)
                last_orphans_ms = now;
            if (n > 0)
                wake_claimer(r);
        }
        atomic_store(&r->live, live);
        if (!live) {
            log_warn("cannot hold the liveness lock or heartbeat; not claiming", "error", why);
            free(why);
        } else if (!was_live) {
            wake_claimer(r);
        }
        was_live = live;
        pthread_mutex_lock(&r->lock);
        if (!r->stopping_keepalive)
            timed_wait(&r->keepalive_wake, &r->lock, live ? every : 1000);
        pthread_mutex_unlock(&r->lock);
    }
}
