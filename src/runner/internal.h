/* The runner's shared state, for the modules of its threads (runner.c: queues, dispatch, start
 * and stop; worker.c: the workers and their batches; claimer.c: the claimer and the NOTIFY
 * listener; keepalive.c: liveness and takeover). Not for use outside src/runner. */
#ifndef KEEL_RUNNER_INTERNAL_H
#define KEEL_RUNNER_INTERNAL_H

#include "runner/input.h"
#include "runner/liveness.h"
#include "runner/runner.h"
#include "store/pool.h"
#include "webhook/dispatcher.h"
#include "webhook/sign.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* How often the liveness thread looks for keelds that died or stopped (and the claimer at the
 * latest for the tasks of executions taken over, which are not announced). */
#define LIVENESS_SWEEP_MS 1000

enum job_kind {
    JOB_RESULT,   /* an attempt's webhook finished */
    JOB_CLAIMED,  /* a task leased by the claimer */
    JOB_TAKEOVER, /* an execution taken over from a dead keeld: send its attempts again */
    JOB_INPUT,    /* an input from the API (runner/input.h); execution_id NULL until resolved */
    JOB_HANDLER_RESULT, /* a code execution's handler call finished: payload {"events",
                           "tasks"} to journal, task_id the handler_call task to consume */
    JOB_CAPACITY,       /* an attempt (step_id, attempt, compensation) waits for the capacity of
                           its host: payload {host, limit, concurrency, rate}; or, payload NULL,
                           it was sent after waiting */
};

struct job {
    enum job_kind kind;
    int64_t task_id;
    char *execution_id;
    char *step_id;
    int attempt;
    bool compensation;    /* a compensation attempt or its timeout */
    int64_t first_try_ms; /* when the job was first tried, to give up on a database that stays
                             down: the task's lease then expires and the attempt is redone */
    /* JOB_RESULT */
    enum wh_outcome outcome;
    json_t *output;
    json_t *error;
    bool retryable;
    int64_t retry_after_ms;
    /* JOB_CLAIMED */
    char *task_kind;
    json_t *payload;
    char *token;
    char *workflow;
    int version;
    /* JOB_INPUT */
    struct runner_input *input;
    struct job *next;
};

struct runner {
    struct runner_config cfg;
    char owner[64];
    struct transition_env env;
    struct defcache *defs;
    struct store_pool *pool;
    struct wh_dispatcher *wh;
    struct wh_secrets *secrets;

    pthread_mutex_t lock; /* guards the queues, the flags and the claimer's wake-up */
    pthread_cond_t wake;  /* the claimer should look for due tasks */
    /* One queue per worker; an execution's jobs always go to the same one (by a hash of its
     * id), so one worker at a time works on an execution, in the order its inputs came, and
     * workers never wait on each other's row locks. */
    struct worker_queue *queues;
    bool stopping_claims;
    atomic_bool stopping_workers; /* also read outside the lock by workers giving up a job */
    bool claim_requested;
    int64_t claimer_wakes_at_ms; /* wall clock: when the sleeping claimer looks again;
                                    INT64_MAX while it is awake */
    int64_t due_while_awake;     /* the earliest task of this keeld committed while the claimer
                                    was awake (its queries may have missed it); INT64_MAX: none */
    atomic_long in_flight;
    atomic_bool starved; /* the claimer stopped claiming because in_flight was at its cap */

    pthread_t *workers;
    struct worker_arg *worker_args;
    pthread_t claimer;
    pthread_t listener;
    pthread_t keepalive;
    bool stopping_keepalive;
    pthread_cond_t keepalive_wake;
    atomic_bool live;          /* this keeld holds its liveness lock (nothing is claimed without) */
    struct liveness *liveness; /* used by the keepalive thread only (after runner_start) */
    atomic_bool has_host_limits; /* KEEL_HOST_LIMITS has entries: they are divided among the
                                    live keelds */
    int shared_by;               /* how many keelds the host limits were last divided among
                                    (keepalive thread, or runner_start before it) */
};

struct worker_queue {
    pthread_cond_t work; /* a job was queued here */
    struct job *head, *tail;
};

struct worker_arg {
    struct runner *r;
    long index;
};

void job_free(struct job *j);
/* Queues j for the worker of its execution (or, unresolved, of its route). */
void push_job(struct runner *r, struct job *j);
void wake_claimer(struct runner *r);
/* Hands one attempt to the webhook dispatcher; its result comes back as a JOB_RESULT. */
void send_attempt(struct runner *r, const char *execution_id, const char *workflow, int version,
                  const char *step_id, int attempt, bool compensation, const json_t *payload,
                  const char *token);
/* Sends the handler call of a claimed handler_call task (runner/handler.c); its result comes
 * back as a JOB_HANDLER_RESULT. Takes j. */
void handler_send(struct runner *r, struct job *j);
/* Divides the host limits among the live keelds (their number, this one's rank), when there
 * are host limits; on the liveness connection. */
void share_host_limits(struct runner *r);
/* Waits on cond (lock held) for at most ms. */
void timed_wait(pthread_cond_t *cond, pthread_mutex_t *lock, long ms);

/* The threads' bodies: a worker takes a struct worker_arg, the others the runner. */
void *worker_main(void *arg);
void *claimer_main(void *arg);
void *listener_main(void *arg);
void *keepalive_main(void *arg);

#endif
