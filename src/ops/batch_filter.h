/* The filter of a bulk action (POST /v1/executions/cancel, /terminate, /retry): which executions
 * a batch acts on. Read from the request body, stored with the batch as a canonical object, and
 * turned into the parameters of the batch statements (store/stmt.h, STMT_BATCH_*). */
#ifndef KEEL_OPS_BATCH_FILTER_H
#define KEEL_OPS_BATCH_FILTER_H

#include "util/buf.h"

#include <jansson.h>
#include <stdbool.h>

/* The most ids a filter may list. */
#define BATCH_FILTER_MAX_IDS 1000

/* Reads the filter members of a bulk action's body: "workflow" and "name" (names), "status" (a
 * status or a list of them, or "a,b" as the list query takes), "since" and "until" (RFC 3339),
 * "ids" (1 to 1,000 execution ids) and "tags" (an object, as at start). Members it does not
 * know are left for the caller. Adds an error per bad member to errors (pointer /<member>).
 * Returns the canonical filter (a new object: status a sorted list without repeats, times as
 * given), or NULL when a member was bad. */
json_t *batch_filter_read(const json_t *body, json_t *errors);

/* True when key is one of the filter's members. */
bool batch_filter_member(const char *key);

/* The parameters of the batch statements for a filter: v[i] is $i+1, NULL for none; v[4],
 * v[5] (the cursor), v[6] (created up to) and v[11] (the limit) are the caller's. The strings
 * live in the struct until batch_filter_params_free. */
struct batch_filter_params {
    const char *v[12];
    struct buf status, ids;
    char *tags;
};
void batch_filter_params(const json_t *filter, struct batch_filter_params *p);
void batch_filter_params_free(struct batch_filter_params *p);

#endif
