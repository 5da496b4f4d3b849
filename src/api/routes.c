/* Every route of the HTTP API, in one table. */
#include "api/routes.h"

#include "api/batches.h"
#include "api/control.h"
#include "api/executions.h"
#include "api/health.h"
#include "api/schedules.h"
#include "api/signals.h"
#include "api/starts.h"
#include "api/steps.h"
#include "api/tasks.h"
#include "api/ui.h"
#include "api/workflows.h"

const struct http_route api_routes[] = {
    {"GET", "/healthz", api_healthz},
    {"GET", "/readyz", api_readyz},
    {"GET", "/metrics", api_metrics},
    {"GET", "/", api_ui_root},
    {"GET", "/ui", api_ui_root},
    {"GET", "/ui/{path*}", api_ui_file},
    {"POST", "/v1/workflows", api_workflows_create},
    {"GET", "/v1/workflows", api_workflows_list},
    {"GET", "/v1/workflows/{name}", api_workflows_get},
    {"GET", "/v1/workflows/{name}/versions/{version}", api_workflows_get_version},
    {"POST", "/v1/workflows/{name}/executions", api_executions_start},
    {"GET", "/v1/executions", api_executions_list},
    {"POST", "/v1/executions", api_executions_start_code},
    {"POST", "/v1/executions/cancel", api_batches_cancel},
    {"POST", "/v1/executions/terminate", api_batches_terminate},
    {"POST", "/v1/executions/retry", api_batches_retry},
    {"POST", "/v1/schedules", api_schedules_create},
    {"GET", "/v1/schedules", api_schedules_list},
    {"GET", "/v1/schedules/{id}", api_schedules_get},
    {"DELETE", "/v1/schedules/{id}", api_schedules_delete},
    {"GET", "/v1/schedules/{id}/history", api_schedules_history},
    {"POST", "/v1/schedules/{id}/pause", api_schedules_pause},
    {"POST", "/v1/schedules/{id}/resume", api_schedules_resume},
    {"POST", "/v1/schedules/{id}/trigger", api_schedules_trigger},
    {"GET", "/v1/batches", api_batches_list},
    {"GET", "/v1/batches/{id}", api_batches_get},
    {"GET", "/v1/batches/{id}/items", api_batches_items},
    {"GET", "/v1/executions/{id}", api_executions_get},
    {"DELETE", "/v1/executions/{id}", api_executions_delete},
    {"GET", "/v1/executions/{id}/history", api_executions_history},
    {"GET", "/v1/executions/{id}/result", api_executions_result},
    {"POST", "/v1/executions/{id}/signals/{name}", api_signals_send},
    {"POST", "/v1/executions/{id}/cancel", api_executions_cancel},
    {"POST", "/v1/executions/{id}/terminate", api_executions_terminate},
    {"POST", "/v1/executions/{id}/retry", api_executions_retry},
    {"POST", "/v1/executions/{id}/complete", api_executions_complete},
    {"POST", "/v1/executions/{id}/fail", api_executions_fail},
    {"POST", "/v1/executions/{id}/steps/{key}", api_steps_call},
    {"GET", "/v1/executions/{id}/steps", api_steps_list},
    {"GET", "/v1/executions/{id}/steps/{key}", api_steps_get},
    {"POST", "/v1/tasks/{token}/complete", api_tasks_complete},
    {"POST", "/v1/tasks/{token}/fail", api_tasks_fail},
    {"POST", "/v1/tasks/{token}/heartbeat", api_tasks_heartbeat},
};

const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];
