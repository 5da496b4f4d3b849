/* Tags of executions (contract, "Operations"): a flat object of string keys and values given at
 * start, e.g. {"customer": "42"}, returned with the execution and matched by
 * GET /v1/executions?tag=customer:42 (several tags combine with AND) and by bulk actions'
 * filters. Bounded so that a tag stays an index entry, not a document. */
#ifndef KEEL_API_TAGS_H
#define KEEL_API_TAGS_H

#include "http/server.h"

#include <jansson.h>
#include <stdbool.h>

#define TAGS_MAX_COUNT 16
#define TAGS_KEY_MAX   64
#define TAGS_VALUE_MAX 256
/* Keys Keel sets itself (keel.schedule on a schedule's executions): refused in a start's tags,
 * allowed in filters. */
#define TAGS_RESERVED_PREFIX "keel."

/* Checks v, found at pointer in a request body, as a tags object: at most TAGS_MAX_COUNT
 * members, each key 1-TAGS_KEY_MAX characters of A-Z a-z 0-9 _ . - / not starting with
 * TAGS_RESERVED_PREFIX, each value a string of 1-TAGS_VALUE_MAX bytes with no control
 * character. Returns true when it is; otherwise adds an
 * error per bad member to errors (at pointer/key) and returns false. */
bool tags_check(json_t *errors, const char *pointer, const json_t *v);

/* Reads every ?tag=key:value of req into *filter, a new object (NULL when there is none).
 * Replies 400 naming the parameter and returns false when one is malformed or they are too
 * many; two values for one key can never both match, so they are refused too. */
bool tags_query_filter(struct http_request *req, json_t **filter);

#endif
