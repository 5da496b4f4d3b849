/* GET /healthz (the process answers), GET /readyz (it can reach its database) and GET /metrics. */
#ifndef KEEL_API_HEALTH_H
#define KEEL_API_HEALTH_H

#include "http/server.h"

void api_healthz(struct http_request *req);
void api_readyz(struct http_request *req);
/* GET /metrics: Prometheus text format. */
void api_metrics(struct http_request *req);

#endif
