/* The HTTP API's route table. */
#ifndef KEEL_API_ROUTES_H
#define KEEL_API_ROUTES_H

#include "http/router.h"

#include <stddef.h>

extern const struct http_route api_routes[];
extern const size_t api_n_routes;

#endif
