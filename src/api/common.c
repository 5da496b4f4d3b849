/* Shared handler helpers. */
#include "api/common.h"

#include "app.h"
#include "log.h"
#include "store/pool.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/jsonlimits.h"
#include "util/b64.h"
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

PGconn *api_db_acquire(struct http_request *req)
{
    struct app *app = http_app(req);
    char *why = NULL;
    PGconn *conn = store_acquire(app->pool, 5000, &why);
    if (!conn) {
        http_add_header(req, "Retry-After", "1");
        http_reply_problem(req, 503, "database-unavailable", "Database unavailable", "%s", why);
        free(why);
    }
    return conn;
}

void api_db_release(struct http_request *req, PGconn *conn)
{
    struct app *app = http_app(req);
    store_release(app->pool, conn);
}

/* The request's path for a log line: a task token is a credential and never logged. */
static char *loggable_path(const struct http_request *req)
{
    const char *path = http_path(req);
    static const char prefix[] = "/v1/tasks/";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0)
        return xstrdup(path);
    const char *rest = strchr(path + sizeof prefix - 1, '/');
    return xasprintf("%s{token}%s", prefix, rest ? rest : "");
}

void api_db_fail(struct http_request *req, PGconn *conn, PGresult *r)
{
    api_transition_fail(req, conn, r, NULL);
}

void api_transition_fail(struct http_request *req, PGconn *conn, PGresult *r, const char *detail)
{
    char *why = detail ? xstrdup(detail) : store_error(r, conn);
    if (store_conn_lost(conn)) {
        http_add_header(req, "Retry-After", "1");
        http_reply_problem(req, 503, "database-unavailable", "Database unavailable",
                           "the connection to the database was lost; retry");
    } else if (store_conn_busy(conn)) {
        /* Another request or keeld held a lock on the same rows past the lock timeout. */
        http_add_header(req, "Retry-After", "1");
        http_reply_problem(req, 503, "busy", "Resource busy",
                           "another request or keeld holds a lock on it; retry");
    } else {
        char *path = loggable_path(req);
        log_error("query failed", "method", http_method(req), "path", path, "error", why);
        free(path);
        http_reply_problem(req, 500, "internal", "Internal error", NULL);
    }
    free(why);
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
        store_command(conn, "ROLLBACK");
}

bool api_check_error_object(json_t *errors, const char *pointer, const json_t *v)
{
    if (!json_is_object(v)) {
        api_add_field_error(errors, pointer, "must be an object {\"type\", \"message\"?}");
        return false;
    }
    const json_t *type = json_object_get(v, "type");
    const json_t *message = json_object_get(v, "message");
    bool ok = true;
    if (!json_is_string(type) || json_string_length(type) < 1 || json_string_length(type) > 128) {
        char *at = xasprintf("%s/type", pointer);
        api_add_field_error(errors, at, "must be a string of 1 to 128 characters");
        free(at);
        ok = false;
    }
    if (message && !json_is_string(message)) {
        char *at = xasprintf("%s/message", pointer);
        api_add_field_error(errors, at, "must be a string");
        free(at);
        ok = false;
    }
    return ok;
}

bool api_valid_execution_id(const char *s)
{
    return api_valid_name(s, API_EXECUTION_ID_MAX, "_-:@");
}

bool api_valid_name(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n < 1 || n > max)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !strchr(extra, c))
            return false;
    }
    return true;
}

void api_bad_parameter(struct http_request *req, const char *name, const char *message)
{
    json_t *errors = json_pack("[{s:s, s:s}]", "parameter", name, "message", message);
    char *detail = xasprintf("query parameter \"%s\": %s", name, message);
    http_reply_problem_ext(req, 400, "invalid-parameter", "Invalid query parameter", detail, errors,
                           NULL);
    free(detail);
}

void api_add_field_error(json_t *errors, const char *pointer, const char *message)
{
    json_array_append_new(errors, json_pack("{s:s, s:s}", "pointer", pointer, "message", message));
}

bool api_check_storable(json_t *errors, const char *pointer, const json_t *v)
{
    char where[256];
    if (json_depth_exceeds(v, JSON_LIMIT_MAX_DEPTH)) {
        char *msg = xasprintf("nests deeper than %d levels", JSON_LIMIT_MAX_DEPTH);
        api_add_field_error(errors, pointer, msg);
        free(msg);
        return false;
    }
    if (json_find_nul(v, where, sizeof where)) {
        char *ptr = xasprintf("%s%s", pointer, where);
        api_add_field_error(errors, ptr, "holds \\u0000 (a NUL character), which cannot be stored");
        free(ptr);
        return false;
    }
    return true;
}

void api_invalid_field(struct http_request *req, const char *pointer, const char *message)
{
    json_t *errors = json_pack("[{s:s, s:s}]", "pointer", pointer, "message", message);
    char *detail = xasprintf("%s: %s", pointer[0] ? pointer : "(body)", message);
    http_reply_problem_ext(req, 422, "validation", "Invalid request", detail, errors, NULL);
    free(detail);
}

void api_reply_page(struct http_request *req, PGresult *r, int limit, const char *name,
                    int json_col, const int *cursor_cols, int n_cursor_cols)
{
    json_t *items = json_array();
    int n = PQntuples(r);
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(items, json_loads(PQgetvalue(r, i, json_col), 0, NULL));
    json_t *next = json_null();
    if (n > limit) {
        struct buf raw = BUF_INIT;
        for (int c = 0; c < n_cursor_cols; c++) {
            if (c)
                buf_putc(&raw, '\n');
            buf_puts(&raw, PQgetvalue(r, limit - 1, cursor_cols[c]));
        }
        char *cursor = b64url_encode(raw.data ? raw.data : "", raw.len);
        next = json_string(cursor);
        free(cursor);
        buf_free(&raw);
    }
    http_reply_json(req, 200, json_pack("{s:o, s:o}", name, items, "next_cursor", next));
}

/* "2026-12-05 11:53:34.123456+00": PostgreSQL's output of a timestamptz in UTC. */
static bool pg_time_text(const char *s)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19 ||
        mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    s += n;
    if (*s == '.') {
        size_t digits = strspn(s + 1, "0123456789");
        if (digits < 1 || digits > 6)
            return false;
        s += 1 + digits;
    }
    if ((*s != '+' && *s != '-') || strspn(s + 1, "0123456789") != 2)
        return false;
    s += 3;
    if (*s == ':' && strspn(s + 1, "0123456789") == 2)
        s += 3;
    return *s == '\0';
}

bool api_decode_time_cursor(struct http_request *req, const char *cursor, char **cur,
                            const char **at, const char **id)
{
    size_t len;
    *cur = b64url_decode(cursor, &len);
    char *nl = *cur && strlen(*cur) == len ? strchr(*cur, '\n') : NULL;
    if (nl)
        *nl = '\0';
    if (!nl || !pg_time_text(*cur) || !api_valid_execution_id(nl + 1)) {
        free(*cur);
        *cur = NULL;
        api_bad_parameter(req, "cursor", "not a cursor this API returned");
        return false;
    }
    *at = *cur;
    *id = nl + 1;
    return true;
}

bool api_parse_limit(struct http_request *req, int *limit)
{
    const char *v = http_query(req, "limit");
    *limit = 50;
    if (!v)
        return true;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 1 || n > 500) {
        api_bad_parameter(req, "limit", "must be an integer from 1 to 500");
        return false;
    }
    *limit = (int)n;
    return true;
}

const char *const api_no_query[] = {NULL};

bool api_reject_unknown_query(struct http_request *req, const char *const *allowed)
{
    const char *unknown = http_query_unknown(req, allowed);
    if (!unknown)
        return false;
    struct buf list = BUF_INIT;
    for (size_t i = 0; allowed[i]; i++)
        buf_printf(&list, "%s%s", i ? ", " : "", allowed[i]);
    char *message = list.len ? xasprintf("unknown query parameter (allowed: %s)", list.data)
                             : xstrdup("unknown query parameter (this route takes none)");
    api_bad_parameter(req, unknown, message);
    free(message);
    buf_free(&list);
    return true;
}
