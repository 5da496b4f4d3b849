/* keel-bench --mode step-calls: code executions driven by step calls (issue 10). */
#ifndef KEEL_BENCH_STEP_CALLS_H
#define KEEL_BENCH_STEP_CALLS_H

#include <jansson.h>
#include <libpq-fe.h>

struct step_calls_options {
    const char *url;      /* keeld */
    const char *receiver; /* keel-test-receiver, for the activity steps */
    const char *token;    /* bearer token, or NULL */
    long executions;      /* N */
    long concurrency;     /* programs at once */
    long warmup;          /* executions run first and not counted */
};

/* Runs N programs, C at once, each: start a code execution, call 3 output steps and 3
 * activity steps (Prefer: wait=30, so a call returns once its webhook answered), complete it.
 * Then makes every program's step calls again (not its start and complete), all replays now. Measures calls/s and the
 * latency per call of both passes, and, on pg (keeld's database), the WAL and the write
 * transactions of the replay pass. Prints a summary; *out is set to a new JSON object of the
 * figures. Returns 0, or 1 when a call failed (printed). */
int step_calls_mode(const struct step_calls_options *o, PGconn *pg, json_t **out);

#endif
