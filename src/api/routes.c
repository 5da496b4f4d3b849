/* Every route of the HTTP API, in one table. */
#include "api/routes.h"

#include "api/health.h"

const struct http_route api_routes[] = {
    {"GET", "/healthz", api_healthz},
    {"GET", "/readyz", api_readyz},
};

const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];
