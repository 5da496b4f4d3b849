/* /v1/workflows: register definitions and read them back. */
#ifndef KEEL_API_WORKFLOWS_H
#define KEEL_API_WORKFLOWS_H

#include "http/server.h"

void api_workflows_create(struct http_request *req);
void api_workflows_list(struct http_request *req);
void api_workflows_get(struct http_request *req);
void api_workflows_get_version(struct http_request *req);

#endif
