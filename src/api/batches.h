/* Bulk actions: POST /v1/executions/cancel, /terminate and /retry with a filter (a dry run
 * counts; otherwise a batch is created and worked through in the background, ops/batches), and
 * the batches' progress: GET /v1/batches/{id}, GET /v1/batches. */
#ifndef KEEL_API_BATCHES_H
#define KEEL_API_BATCHES_H

#include "http/server.h"

void api_batches_cancel(struct http_request *req);
void api_batches_terminate(struct http_request *req);
void api_batches_retry(struct http_request *req);
void api_batches_get(struct http_request *req);
void api_batches_list(struct http_request *req);
/* GET /v1/batches/{id}/items: the executions a batch reached, in its order, with what it did
 * (?result=acted|skipped) and their status then. */
void api_batches_items(struct http_request *req);

#endif
