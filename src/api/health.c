/* Liveness and readiness. */
#include "api/health.h"

#include "api/backlog.h"
#include "api/common.h"
#include "app.h"
#include "metrics.h"
#include "runner/runner.h"
#include "util/buf.h"
#include "util/alloc.h"

#include <stdlib.h>

void api_healthz(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    http_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    struct app *app = http_app(req);
    char *why = NULL;
    PGconn *conn = store_acquire(app->pool, 2000, &why);
    if (!conn) {
        http_reply_problem(req, 503, "database-unavailable", "Database unavailable", "%s", why);
        free(why);
        return;
    }
    PGresult *r = PQexec(conn, "SELECT 1");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    if (ok)
        http_reply_json(req, 200, json_pack("{s:s, s:s}", "status", "ready", "database", "ok"));
    else
        http_reply_problem(req, 503, "database-unavailable", "Database unavailable",
                           "the database did not answer a query");
    store_release(app->pool, conn);
}

void api_metrics(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    struct app *app = http_app(req);
    long in_flight = 0, queued = 0;
    runner_webhook_stats(app->runner, &in_flight, &queued);
    struct buf b = BUF_INIT;
    metrics_render(&b, in_flight, queued, app->server ? http_server_in_flight(app->server) : 0);
    if (app->backlog)
        backlog_render(app->backlog, &b);
    http_reply_bytes(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    buf_free(&b);
}
