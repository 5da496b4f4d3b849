/* Starting executions: a workflow's, and a code execution's (no definition). */
#ifndef KEEL_API_STARTS_H
#define KEEL_API_STARTS_H

#include "http/server.h"

/* POST /v1/workflows/{name}/executions: starts an execution of the workflow. */
void api_executions_start(struct http_request *req);
/* POST /v1/executions: starts a code execution (no definition; contract, "Step calls"). */
void api_executions_start_code(struct http_request *req);

#endif
