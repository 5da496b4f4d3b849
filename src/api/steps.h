/* Step calls (contract, "Step calls"): a code execution's program calls its steps by key. The
 * first call of a key journals it through the runner; every later call is answered from the
 * key's row, read without a lock, and writes nothing (except, once, a mark that a later call
 * sent another request). */
#ifndef KEEL_API_STEPS_H
#define KEEL_API_STEPS_H

#include "http/server.h"

/* The longest key, and whether s is one: 1 to 128 characters of A-Z a-z 0-9 _ - : @. */
#define API_STEP_KEY_MAX 128

/* POST /v1/executions/{id}/steps/{key}: 200 completed (Keel-Replayed: true when it was
 * journaled before), 202 still pending (503 with ?pending=503), 424 failed for good; 409 for
 * another kind or activity URL than the key's first call, for an ended execution, or after a
 * cancel request. */
void api_steps_call(struct http_request *req);
/* GET /v1/executions/{id}/steps?limit=&cursor=: a code execution's steps in first-call order,
 * a page at a time. */
void api_steps_list(struct http_request *req);
/* GET /v1/executions/{id}/steps/{key}: the key's step, whatever its status (?wait=N holds a
 * pending one until it ends or N seconds pass). */
void api_steps_get(struct http_request *req);

#endif
