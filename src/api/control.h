/* POST /v1/executions/{id}/cancel, /terminate and /retry. */
#ifndef KEEL_API_CONTROL_H
#define KEEL_API_CONTROL_H

#include "http/server.h"

void api_executions_cancel(struct http_request *req);
void api_executions_terminate(struct http_request *req);
void api_executions_retry(struct http_request *req);
/* POST /v1/executions/{id}/complete {"output"?} and /fail {"error": {"type", "message"?}}: a
 * code execution's program ends it (after a cancel: cancelled). */
void api_executions_complete(struct http_request *req);
void api_executions_fail(struct http_request *req);

#endif
