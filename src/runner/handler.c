/* A code execution's handler calls: a claimed handler_call task is sent as a signed webhook
 * (webhook-id "<execution>/run/<n>"), and its result is journaled by a transition that consumes
 * the task: handler_called, or handler_failed with the same call queued again after a backoff,
 * for as long as the execution runs. A keeld that dies with a call on the wire leaves its task
 * leased; the lease runs out and the call is sent again (the program only runs once more). */
#include "runner/internal.h"

#include "log.h"
#include "metrics.h"
#include "util/alloc.h"
#include "util/jsontext.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The backoff of the next call after a failed one: 1 s, doubling, at most 5 minutes. */
#define HANDLER_BACKOFF_FIRST_MS 1000
#define HANDLER_BACKOFF_MAX_MS   (5 * 60 * 1000)

struct handler_ctx {
    struct runner *runner;
    char *execution_id;
    int64_t task_id;
    int attempt;
    json_t *payload;  /* the task's: {url, run, reason, key?, timeout_ms} */
    int metrics_host; /* its label slot (metrics.h) */
};

static int64_t backoff_ms(int attempt)
{
    int64_t ms = HANDLER_BACKOFF_FIRST_MS;
    for (int k = 1; k < attempt && ms < HANDLER_BACKOFF_MAX_MS; k++)
        ms *= 2;
    return ms < HANDLER_BACKOFF_MAX_MS ? ms : HANDLER_BACKOFF_MAX_MS;
}

/* The event's data: what the call was (run, reason, key) and its attempt. */
static json_t *call_data(const struct handler_ctx *h)
{
    json_t *d = json_pack("{s:O, s:O, s:i}", "run", json_object_get(h->payload, "run"), "reason",
                          json_object_get(h->payload, "reason"), "attempt", h->attempt);
    json_t *key = json_object_get(h->payload, "key");
    if (key)
        json_object_set(d, "key", key);
    return d;
}

static void on_handler_done(struct wh_result *res, void *user)
{
    struct handler_ctx *h = user;
    struct runner *r = h->runner;
    /* Any 2xx is a call taken, whatever its body. */
    bool taken = res->http_status >= 200 && res->http_status < 300;
    enum metrics_webhook outcome = res->outcome == WH_ABORTED ? METRICS_WEBHOOK_ABORTED
                                   : res->http_status == 202  ? METRICS_WEBHOOK_ASYNC
                                   : taken                    ? METRICS_WEBHOOK_OK
                                                              : METRICS_WEBHOOK_FAILED;
    metrics_webhook_host(
        h->metrics_host,
        metrics_webhook_result_of(outcome, res->http_status, wh_result_error_type(res)),
        res->duration_ms * 1000);
    if (res->outcome == WH_ABORTED) {
        /* keeld is stopping: the task's lease runs out and the call is sent again. */
        free(h->execution_id);
        json_decref(h->payload);
        free(h);
        return;
    }
    json_t *events = json_array(), *tasks = json_array();
    json_t *data = call_data(h);
    /* Any 2xx: the handler took the call (what it answers is its business). */
    if (taken) {
        json_object_set_new(data, "status", json_integer(res->http_status));
        json_array_append_new(events,
                              json_pack("{s:s, s:o}", "type", "handler_called", "data", data));
    } else {
        int64_t due = time_now_ms() + backoff_ms(h->attempt);
        char due_text[32];
        time_format_rfc3339(due, due_text);
        json_object_set_new(data, "error",
                            res->error ? json_incref(res->error)
                                       : json_pack("{s:s, s:s}", "type", "handler_failed",
                                                   "message", "the handler did not answer 2xx"));
        json_object_set_new(data, "next_attempt_at", json_string(due_text));
        json_array_append_new(events,
                              json_pack("{s:s, s:o}", "type", "handler_failed", "data", data));
        json_array_append_new(tasks,
                              json_pack("{s:s, s:s, s:i, s:s, s:I, s:O}", "kind", TASK_HANDLER_CALL,
                                        "step", "", "attempt", h->attempt + 1, "due_at", due_text,
                                        "due_ms", (json_int_t)due, "payload", h->payload));
    }
    struct job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_HANDLER_RESULT;
    j->execution_id = h->execution_id;
    j->task_id = h->task_id;
    j->attempt = h->attempt;
    j->payload = json_pack("{s:o, s:o}", "events", events, "tasks", tasks);
    json_decref(h->payload);
    free(h);
    push_job(r, j);
}

void handler_send(struct runner *r, struct job *j)
{
    const json_t *p = j->payload;
    const char *url = json_string_value(json_object_get(p, "url"));
    json_int_t run = json_integer_value(json_object_get(p, "run"));
    char *key = xasprintf("%s/run/%lld", j->execution_id, (long long)run);
    json_t *body = json_pack("{s:s, s:s, s:I, s:O}", "execution_id", j->execution_id, "name",
                             j->workflow ? j->workflow : "", "run", run, "reason",
                             json_object_get(p, "reason"));
    if (json_object_get(p, "key"))
        json_object_set(body, "key", json_object_get(p, "key"));
    int attempt = j->attempt > 0 ? j->attempt : 1;
    struct wh_request *req = wh_request_new(url ? url : "", key, attempt);
    req->body = json_text(body);
    req->body_len = req->body ? strlen(req->body) : 0;
    json_decref(body);
    free(key);
    req->timeout_ms = HANDLER_CALL_TIMEOUT_MS;
    req->secrets = r->secrets;
    struct handler_ctx *h = xcalloc(1, sizeof *h);
    h->runner = r;
    h->execution_id = xstrdup(j->execution_id);
    h->task_id = j->task_id;
    h->attempt = attempt;
    h->payload = json_incref(j->payload);
    h->metrics_host = metrics_host_label(url);
    req->done = on_handler_done;
    req->user = h;
    log_debug("calling a code execution's handler", "execution", j->execution_id, "reason",
              json_string_value(json_object_get(p, "reason")));
    wh_dispatcher_submit(r->wh, req);
    job_free(j);
}
