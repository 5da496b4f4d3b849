/* POST /v1/executions/{id}/signals/{name}: deliver a signal to an execution. */
#ifndef KEEL_API_SIGNALS_H
#define KEEL_API_SIGNALS_H

#include "http/server.h"

void api_signals_send(struct http_request *req);

#endif
