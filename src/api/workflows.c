/* Workflow definitions: validate, canonicalise, version. */
#include "api/workflows.h"

#include "api/common.h"
#include "defn/canon.h"
#include "defn/defn.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/b64.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply_row(struct http_request *req, int status, const char *json_text)
{
    http_reply_json(req, status, json_loads(json_text, 0, NULL));
}

void api_workflows_create(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    json_t *doc = http_body_json(req, false);
    if (!doc)
        return;
    struct defn *d = NULL;
    json_t *errors = NULL;
    if (defn_parse(doc, &d, &errors) < 0 || defn_check_destinations(&d, &errors) < 0) {
        size_t n = json_array_size(errors);
        char *detail = xasprintf("the definition has %zu error%s", n, n == 1 ? "" : "s");
        http_reply_problem_ext(req, 422, "invalid-definition", "Invalid workflow definition",
                               detail, errors, NULL);
        free(detail);
        json_decref(doc);
        return;
    }
    char *canonical = defn_canonical_json(doc);
    json_decref(doc);
    char digest[65];
    defn_digest_hex(canonical, digest);
    char *name = xstrdup(d->name);
    defn_free(d);

    PGconn *conn = api_db_acquire(req);
    PGresult *r = NULL;
    if (!conn)
        goto out;
    const char *p1[] = {name};
    if (store_command(conn, "BEGIN") < 0)
        goto db_fail;
    PQclear(store_run(conn, STMT_WORKFLOW_LOCK, 1, p1));
    r = store_run(conn, STMT_WORKFLOW_LATEST, 1, p1);
    if (!store_ok(r))
        goto db_fail;
    int version = 1;
    if (PQntuples(r) == 1) {
        if (!strcmp(PQgetvalue(r, 0, 1), digest)) {
            /* The same definition again: not a new version. */
            store_command(conn, "COMMIT");
            reply_row(req, 200, PQgetvalue(r, 0, 2));
            goto out;
        }
        version = atoi(PQgetvalue(r, 0, 0)) + 1;
    }
    PQclear(r);
    char v[16];
    snprintf(v, sizeof v, "%d", version);
    const char *p4[] = {name, v, canonical, digest};
    r = store_run(conn, STMT_WORKFLOW_INSERT, 4, p4);
    if (!store_ok(r))
        goto db_fail;
    PQclear(r);
    const char *p2[] = {name, v};
    r = store_run(conn, STMT_WORKFLOW_VERSION, 2, p2);
    if (!store_ok(r) || PQntuples(r) != 1 || store_command(conn, "COMMIT") < 0)
        goto db_fail;
    char *location = xasprintf("/v1/workflows/%s/versions/%d", name, version);
    http_add_header(req, "Location", location);
    free(location);
    reply_row(req, 201, PQgetvalue(r, 0, 2));
    goto out;
db_fail:
    api_db_fail(req, conn, r);
out:
    PQclear(r);
    if (conn)
        api_db_release(req, conn);
    free(canonical);
    free(name);
}

void api_workflows_list(struct http_request *req)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    if (api_reject_unknown_query(req, allowed))
        return;
    int limit;
    if (!api_parse_limit(req, &limit))
        return;
    char *after = NULL;
    const char *cursor = http_query(req, "cursor");
    if (cursor) {
        size_t len;
        after = b64url_decode(cursor, &len);
        if (!after || strlen(after) != len) {
            free(after);
            api_bad_parameter(req, "cursor", "not a cursor this API returned");
            return;
        }
    }
    PGconn *conn = api_db_acquire(req);
    if (!conn) {
        free(after);
        return;
    }
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {after ? after : "", lim};
    PGresult *r = store_run(conn, STMT_WORKFLOW_LIST, 2, params);
    static const int cursor_cols[] = {0}; /* name */
    if (!store_ok(r))
        api_db_fail(req, conn, r);
    else
        api_reply_page(req, r, limit, "workflows", 1, cursor_cols, 1);
    PQclear(r);
    api_db_release(req, conn);
    free(after);
}

static void get_one(struct http_request *req, const char *version)
{
    const char *name = http_param(req, "name");
    PGconn *conn = api_db_acquire(req);
    if (!conn)
        return;
    const char *params[] = {name, version};
    PGresult *r = version ? store_run(conn, STMT_WORKFLOW_VERSION, 2, params)
                          : store_run(conn, STMT_WORKFLOW_LATEST, 1, params);
    if (!store_ok(r))
        api_db_fail(req, conn, r);
    else if (PQntuples(r) == 0 && version)
        http_reply_problem(req, 404, "not-found", "Not found", "workflow \"%s\" has no version %s",
                           name, version);
    else if (PQntuples(r) == 0)
        http_reply_problem(req, 404, "not-found", "Not found", "no workflow named \"%s\"", name);
    else
        reply_row(req, 200, PQgetvalue(r, 0, 2));
    PQclear(r);
    api_db_release(req, conn);
}

void api_workflows_get(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    get_one(req, NULL);
}

void api_workflows_get_version(struct http_request *req)
{
    if (api_reject_unknown_query(req, api_no_query))
        return;
    const char *v = http_param(req, "version");
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 1 || n > 2147483647) {
        http_reply_problem(req, 400, "invalid-parameter", "Invalid path parameter",
                           "version \"%s\" is not a positive integer", v);
        return;
    }
    get_one(req, v);
}
