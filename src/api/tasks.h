/* POST /v1/tasks/{token}/complete, /fail and /heartbeat: asynchronous activities. */
#ifndef KEEL_API_TASKS_H
#define KEEL_API_TASKS_H

#include "http/server.h"

void api_tasks_complete(struct http_request *req);
void api_tasks_fail(struct http_request *req);
void api_tasks_heartbeat(struct http_request *req);

#endif
