/* Executions: read, list, history, and the result long poll (starts: api/starts.h). */
#ifndef KEEL_API_EXECUTIONS_H
#define KEEL_API_EXECUTIONS_H

#include "http/server.h"

void api_executions_list(struct http_request *req);
void api_executions_get(struct http_request *req);
/* DELETE /v1/executions/{id}: removes an ended execution and all that is its (409 while it
 * runs). */
void api_executions_delete(struct http_request *req);
void api_executions_history(struct http_request *req);
void api_executions_result(struct http_request *req);

#endif
