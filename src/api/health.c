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
    struct wh_limit_stats *limits = NULL;
    size_t n = runner_host_limit_stats(app->runner, &limits);
    struct metrics_host_limit *hl = n ? xcalloc(n, sizeof *hl) : NULL;
    for (size_t i = 0; i < n; i++) {
        hl[i] = (struct metrics_host_limit){
            .host = limits[i].name,
            .in_flight = limits[i].in_flight,
            .waiting = limits[i].waiting,
            .waited_total = (unsigned long long)limits[i].waited_total,
            .concurrency = limits[i].concurrency_share,
            .rate_per_second = limits[i].interval_us > 0 ? 1e6 / (double)limits[i].interval_us : 0,
        };
    }
    metrics_render_host_limits(&b, hl, n);
    free(hl);
    free(limits);
    http_reply_bytes(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    buf_free(&b);
}
