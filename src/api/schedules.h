/* Schedules (contract, "Operations"): POST /v1/schedules, GET /v1/schedules(/{id}), its history,
 * pause, resume, trigger now and DELETE. The starts themselves are the scheduler's
 * (ops/schedules). */
#ifndef KEEL_API_SCHEDULES_H
#define KEEL_API_SCHEDULES_H

#include "http/server.h"

void api_schedules_create(struct http_request *req);
void api_schedules_list(struct http_request *req);
void api_schedules_get(struct http_request *req);
void api_schedules_history(struct http_request *req);
void api_schedules_pause(struct http_request *req);
void api_schedules_resume(struct http_request *req);
void api_schedules_trigger(struct http_request *req);
void api_schedules_delete(struct http_request *req);

#endif
