/* Schedules' endpoints. */
#include "api/schedules.h"

#include "api/common.h"
#include "api/tags.h"
#include "app.h"
#include "ops/schedules.h"
#include "runner/runner.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/jsontext.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool valid_schedule_id(const char *s)
{
    return s && api_valid_name(s, SCHEDULE_ID_MAX, "_-");
}

/* The schedule's JSON (column 0 of r's row) with "next_due": its next due times from the
 * columns col (cron, timezone, next due at). */
static json_t *schedule_json(PGresult *r, int row, int col)
{
    json_t *o = json_loads(PQgetvalue(r, row, 0), 0, NULL);
    json_t *list = json_array();
    struct schedule_times t;
    const char *field;
    char why[TZ_ERROR_MAX + CRON_ERROR_MAX];
    if (o && schedule_times_parse(PQgetvalue(r, row, col), PQgetvalue(r, row, col + 1), &t, &field,
                                  why)) {
        /* From its next due time when that has come already (it is about to start), else from
         * now. */
        int64_t now = time_now_ms() / 1000;
        int64_t from = now;
        if (!PQgetisnull(r, row, col + 2)) {
            int64_t next = strtoll(PQgetvalue(r, row, col + 2), NULL, 10);
            if (next <= now)
                from = next - 1;
        }
        int64_t times[SCHEDULE_NEXT_SHOWN];
        size_t n = sched_next_n(&t.cron, t.zone, from, times, SCHEDULE_NEXT_SHOWN);
        for (size_t i = 0; i < n; i++) {
            char text[SCHED_DUE_MAX];
            sched_format_due(times[i], text);
            json_array_append_new(list, json_string(text));
        }
        schedule_times_free(&t);
    }
    json_object_set_new(o, "next_due", list);
    return o;
}

static void reply_schedule(struct http_request *req, PGconn *conn, const char *id, int status)
{
    const char *params[] = {id};
    PGresult *r = store_run(conn, STMT_SCHED_GET, 1, params);
    if (!store_ok(r))
        api_db_fail(req, conn, r);
    else if (PQntuples(r) == 0)
        http_reply_problem(req, 404, "not-found", "Not found", "no schedule \"%s\"", id);
    else
        http_reply_json(req, status, schedule_json(r, 0, 1));
    PQclear(r);
}

static const char allowed_fields[] =
    "unknown field (allowed: id, workflow, cron, timezone, input, tags, overlap)";

void api_schedules_create(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    struct app *app = http_app(req);
    json_t *body = http_body_json(req, true);
    if (!body && http_replied(req))
        return;
    json_t *errors = json_array();
    const char *id = NULL, *workflow = NULL, *cron = NULL, *zone = "UTC", *overlap = "skip";
    json_t *input = NULL, *tags = NULL;
    if (!body || !json_is_object(body)) {
        api_add_field_error(errors, "",
                            "the body must be a JSON object {\"id\", \"workflow\", \"cron\", "
                            "\"timezone\"?, \"input\"?, \"tags\"?, \"overlap\"?}");
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v)
        {
            char *ptr = xasprintf("/%s", key);
            const char *s = json_string_value(v);
            if (!strcmp(key, "id")) {
                if (!valid_schedule_id(s))
                    api_add_field_error(errors, ptr, "must be 1-64 characters of A-Z a-z 0-9 _ -");
                else
                    id = s;
            } else if (!strcmp(key, "workflow")) {
                if (!s || !api_valid_name(s, 128, "_.-"))
                    api_add_field_error(errors, ptr,
                                        "must be a workflow name: 1-128 characters of A-Z a-z "
                                        "0-9 _ . -");
                else
                    workflow = s;
            } else if (!strcmp(key, "cron")) {
                if (!s || json_string_length(v) > 256)
                    api_add_field_error(errors, ptr,
                                        "must be a cron expression of five fields, e.g. \"*/5 * "
                                        "* * *\", or @hourly, @daily, @weekly, @monthly, @yearly");
                else
                    cron = s;
            } else if (!strcmp(key, "timezone")) {
                char why[TZ_ERROR_MAX];
                if (!s)
                    api_add_field_error(errors, ptr,
                                        "must be an IANA time zone name, e.g. \"Europe/Berlin\"");
                else if (!tz_name_check(s, why))
                    api_add_field_error(errors, ptr, why);
                else
                    zone = s;
            } else if (!strcmp(key, "input")) {
                if (api_check_storable(errors, ptr, v))
                    input = v;
            } else if (!strcmp(key, "tags")) {
                if (tags_check(errors, ptr, v) && json_object_size(v) > 0)
                    tags = v;
            } else if (!strcmp(key, "overlap")) {
                if (!s || (strcmp(s, "skip") && strcmp(s, "allow") && strcmp(s, "cancel_previous")))
                    api_add_field_error(errors, ptr,
                                        "must be \"skip\" (the default: no start while the "
                                        "previous execution runs), \"allow\" or "
                                        "\"cancel_previous\"");
                else
                    overlap = s;
            } else {
                api_add_field_error(errors, ptr, allowed_fields);
            }
            free(ptr);
        }
        if (!json_object_get(body, "id"))
            api_add_field_error(errors, "/id", "is required");
        if (!json_object_get(body, "workflow"))
            api_add_field_error(errors, "/workflow", "is required");
        if (!json_object_get(body, "cron"))
            api_add_field_error(errors, "/cron", "is required");
    }
    /* The calendar: the expression, the zone, and that it fires at all. */
    char next_text[SCHED_DUE_MAX];
    const char *next_param = NULL;
    if (cron && json_array_size(errors) == 0) {
        struct schedule_times t;
        const char *field;
        char why[TZ_ERROR_MAX + CRON_ERROR_MAX];
        if (!schedule_times_parse(cron, zone, &t, &field, why)) {
            char *ptr = xasprintf("/%s", field);
            api_add_field_error(errors, ptr, why);
            free(ptr);
        } else {
            int64_t next;
            if (sched_next(&t.cron, t.zone, time_now_ms() / 1000, &next)) {
                sched_format_due(next, next_text);
                next_param = next_text;
            } else {
                api_add_field_error(errors, "/cron",
                                    "never fires (no such date within 8 years), e.g. February "
                                    "30th");
            }
            schedule_times_free(&t);
        }
    }
    if (json_array_size(errors) > 0) {
        http_reply_problem_ext(req, 422, "validation", "Invalid request",
                               "the request body has errors", errors, NULL);
        json_decref(body);
        return;
    }
    json_decref(errors);
    PGconn *conn = api_db_acquire(req);
    if (!conn) {
        json_decref(body);
        return;
    }
    char *input_text = json_text(input ? input : json_null());
    char *tags_text = tags ? json_text(tags) : NULL;
    char now_text[32];
    time_format_rfc3339(time_now_ms(), now_text);
    const char *wp[] = {workflow, NULL};
    PGresult *r = store_run(conn, STMT_WORKFLOW_PICK_VERSION, 2, wp);
    if (!store_ok(r)) {
        api_db_fail(req, conn, r);
    } else if (PQntuples(r) == 0) {
        api_invalid_field(req, "/workflow", "no workflow of this name is registered");
    } else {
        PQclear(r);
        const char *ip[] = {id,        workflow, cron,       zone,    input_text,
                            tags_text, overlap,  next_param, now_text};
        r = store_run(conn, STMT_SCHED_INSERT, 9, ip);
        if (!store_ok(r)) {
            api_db_fail(req, conn, r);
        } else if (PQntuples(r) == 1) {
            char *location = xasprintf("/v1/schedules/%s", id);
            http_add_header(req, "Location", location);
            free(location);
            reply_schedule(req, conn, id, 201);
            scheduler_wake(app->scheduler);
        } else {
            PQclear(r);
            r = store_run(conn, STMT_SCHED_SAME, 7, ip);
            if (!store_ok(r))
                api_db_fail(req, conn, r);
            else if (PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t"))
                reply_schedule(req, conn, id, 200);
            else
                http_reply_problem_ext(
                    req, 409, "schedule-exists", "Schedule id already used",
                    "a schedule with this id exists with another workflow, cron, timezone, input, "
                    "tags or overlap; delete it first to replace it",
                    json_pack("[{s:s, s:s}]", "pointer", "/id", "message",
                              "already used by a different schedule"),
                    NULL);
        }
    }
    PQclear(r);
    api_db_release(req, conn);
    free(input_text);
    free(tags_text);
    json_decref(body);
}

void api_schedules_get(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        return;
    reply_schedule(req, conn, http_param(req, "id"), 200);
    api_db_release(req, conn);
}

void api_schedules_list(struct http_request *req)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    if (api_reject_unknown_query(req, allowed))
        return;
    int limit;
    if (!api_parse_limit(req, &limit))
        return;
    const char *cursor = http_query(req, "cursor");
    if (cursor && !valid_schedule_id(cursor)) {
        api_bad_parameter(req, "cursor", "not a cursor this API returned");
        return;
    }
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        return;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {cursor, lim};
    PGresult *r = store_run(conn, STMT_SCHED_LIST, 2, params);
    if (!store_ok(r)) {
        api_db_fail(req, conn, r);
    } else {
        json_t *items = json_array();
        int n = PQntuples(r);
        for (int i = 0; i < n && i < limit; i++)
            json_array_append_new(items, schedule_json(r, i, 1));
        json_t *next = n > limit ? json_string(PQgetvalue(r, limit - 1, 4)) : json_null();
        http_reply_json(req, 200, json_pack("{s:o, s:o}", "schedules", items, "next_cursor", next));
    }
    PQclear(r);
    api_db_release(req, conn);
}

void api_schedules_history(struct http_request *req)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    if (api_reject_unknown_query(req, allowed))
        return;
    int limit;
    if (!api_parse_limit(req, &limit))
        return;
    const char *id = http_param(req, "id");
    const char *cursor = http_query(req, "cursor");
    if (cursor &&
        (strspn(cursor, "0123456789") != strlen(cursor) || !*cursor || strlen(cursor) > 18)) {
        api_bad_parameter(req, "cursor", "not a cursor this API returned");
        return;
    }
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        return;
    const char *gp[] = {id};
    PGresult *r = store_run(conn, STMT_SCHED_GET, 1, gp);
    if (!store_ok(r)) {
        api_db_fail(req, conn, r);
    } else if (PQntuples(r) == 0) {
        http_reply_problem(req, 404, "not-found", "Not found", "no schedule \"%s\"", id);
    } else {
        PQclear(r);
        char lim[16];
        snprintf(lim, sizeof lim, "%d", limit + 1);
        const char *params[] = {id, cursor, lim};
        r = store_run(conn, STMT_SCHED_HISTORY, 3, params);
        if (!store_ok(r)) {
            api_db_fail(req, conn, r);
        } else {
            json_t *items = json_array();
            int n = PQntuples(r);
            for (int i = 0; i < n && i < limit; i++)
                json_array_append_new(items, json_loads(PQgetvalue(r, i, 0), 0, NULL));
            json_t *next = n > limit ? json_string(PQgetvalue(r, limit - 1, 1)) : json_null();
            http_reply_json(req, 200,
                            json_pack("{s:o, s:o}", "events", items, "next_cursor", next));
        }
    }
    PQclear(r);
    api_db_release(req, conn);
}

/* Locks schedule id in a new transaction on conn: the row, or NULL having replied (404 or an
 * error; the transaction is then rolled back). */
static PGresult *lock_schedule(struct http_request *req, PGconn *conn, const char *id)
{
    if (store_command(conn, "BEGIN") < 0) {
        api_db_fail(req, conn, NULL);
        return NULL;
    }
    const char *params[] = {id};
    PGresult *r = store_run(conn, STMT_SCHED_LOCK, 1, params);
    if (!store_ok(r)) {
        api_db_fail(req, conn, r);
        PQclear(r);
        return NULL;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        (void)store_command(conn, "ROLLBACK");
        http_reply_problem(req, 404, "not-found", "Not found", "no schedule \"%s\"", id);
        return NULL;
    }
    return r;
}

/* The start of pause, resume and trigger: a connection with schedule id's row locked in an open
 * transaction (*row, read into *s), or NULL having replied and released everything. */
static PGconn *open_schedule(struct http_request *req, const char *id, PGresult **row,
                             struct sched_row *s)
{
    if (api_reject_unknown_query(req, api_no_query))
        return NULL;
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        return NULL;
    *row = lock_schedule(req, conn, id);
    if (!*row) {
        api_db_release(req, conn);
        return NULL;
    }
    sched_row_read(*row, 0, s);
    return conn;
}

static bool commit(struct http_request *req, PGconn *conn)
{
    if (store_command(conn, "COMMIT") == 0)
        return true;
    api_db_fail(req, conn, NULL);
    return false;
}

static void pause_or_resume(struct http_request *req, bool pause)
{
    struct app *app = http_app(req);
    const char *id = http_param(req, "id");
    PGresult *row;
    struct sched_row s;
    PGconn *conn = open_schedule(req, id, &row, &s);
    if (!conn)
        return;
    /* Resumed: due again from now on; what fell due while it was paused does not start. */
    char next_text[SCHED_DUE_MAX];
    const char *next_param =
        !pause && schedule_next_after(s.cron, s.timezone, time_now_ms() / 1000, next_text)
            ? next_text
            : NULL;
    const char *params[] = {id, pause ? "true" : "false", next_param};
    PGresult *r = store_run(conn, STMT_SCHED_PAUSE, 3, params);
    bool ok = store_ok(r);
    bool changed = ok && PQntuples(r) == 1;
    PQclear(r);
    if (ok && changed) {
        const char *ep[] = {id, pause ? "paused" : "resumed", next_param, NULL, NULL};
        r = store_run(conn, STMT_SCHED_EVENT, 5, ep);
        ok = store_ok(r);
        PQclear(r);
    }
    PQclear(row);
    if (!ok) {
        api_db_fail(req, conn, NULL);
    } else if (commit(req, conn)) {
        reply_schedule(req, conn, id, 200);
        if (!pause)
            scheduler_wake(app->scheduler);
    }
    api_db_release(req, conn);
}

void api_schedules_pause(struct http_request *req)
{
    pause_or_resume(req, true);
}

void api_schedules_resume(struct http_request *req)
{
    pause_or_resume(req, false);
}

void api_schedules_trigger(struct http_request *req)
{
    struct app *app = http_app(req);
    const char *id = http_param(req, "id");
    PGresult *row;
    struct sched_row s;
    PGconn *conn = open_schedule(req, id, &row, &s);
    if (!conn)
        return;
    char exec_id[160];
    char *why = NULL;
    /* Due now, to the second: two triggers in one second start one execution. */
    enum schedule_start st = schedule_start_due(
        conn, &s, time_now_ms() / 1000, runner_env(app->runner)->owner, "triggered", exec_id, &why);
    if (st == SCHEDULE_DB_ERROR) {
        api_transition_fail(req, conn, NULL, why);
    } else if (st == SCHEDULE_STARTED || st == SCHEDULE_EXISTED) {
        /* The next due time stays; the last execution is this one (for the overlap rule). */
        char next_text[SCHED_DUE_MAX];
        if (s.has_next)
            sched_format_due(s.next_due, next_text);
        const char *ap[] = {id, s.has_next ? next_text : NULL, NULL, exec_id};
        PGresult *r = store_run(conn, STMT_SCHED_ADVANCE, 4, ap);
        bool ok = store_ok(r);
        PQclear(r);
        if (!ok)
            api_db_fail(req, conn, NULL);
        else if (commit(req, conn))
            http_reply_json(req, st == SCHEDULE_STARTED ? 201 : 200,
                            json_pack("{s:s, s:s}", "schedule", id, "execution_id", exec_id));
    } else if (commit(req, conn)) {
        if (st == SCHEDULE_SKIPPED)
            http_reply_problem(req, 409, "schedule-overlap", "Previous execution still runs",
                               "schedule \"%s\" has overlap \"skip\" and its execution \"%s\" "
                               "still runs; nothing was started",
                               id, s.last_execution_id);
        else
            http_reply_problem(req, 409, "workflow-missing", "Workflow not registered",
                               "schedule \"%s\" starts workflow \"%s\", which is not registered",
                               id, s.workflow);
    }
    free(why);
    PQclear(row);
    api_db_release(req, conn);
}

void api_schedules_delete(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    const char *id = http_param(req, "id");
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        return;
    const char *params[] = {id};
    PGresult *r = store_run(conn, STMT_SCHED_DELETE, 1, params);
    if (!store_ok(r))
        api_db_fail(req, conn, r);
    else if (strcmp(PQgetvalue(r, 0, 0), "1") != 0)
        http_reply_problem(req, 404, "not-found", "Not found", "no schedule \"%s\"", id);
    else
        http_reply_json(req, 200, json_pack("{s:s, s:b}", "id", id, "deleted", 1));
    PQclear(r);
    api_db_release(req, conn);
}
