/* Workflow definitions: validate, canonicalise, version. */
#include "api/workflows.h"

#include "api/common.h"
#include "defn/canon.h"
#include "defn/defn.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/b64.h"
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct child_refs {
    json_t *pointers; /* name -> [pointer, ...] of the workflow steps naming it */
    const char *self; /* the definition's own name: it may start itself (recursion) */
};

static void collect_child(void *arg, const char *pointer, const char *name)
{
    struct child_refs *c = arg;
    if (!strcmp(name, c->self))
        return;
    json_t *list = json_object_get(c->pointers, name);
    if (!list) {
        list = json_array();
        json_object_set_new(c->pointers, name, list);
    }
    json_array_append_new(list, json_string(pointer));
}

/* The workflow steps of d that name a workflow that is not registered at all (a version that
 * does not exist is found when the child starts: child_not_found), as the errors of a 422
 * (a new array, empty when there are none); NULL when the database failed (*r set). */
static json_t *unknown_children(PGconn *conn, const struct defn *d, PGresult **r)
{
    struct child_refs c = {json_object(), d->name};
    defn_each_child_workflow(d, collect_child, &c);
    json_t *errors = json_array();
    if (json_object_size(c.pointers) == 0) {
        json_decref(c.pointers);
        return errors;
    }
    struct buf names = BUF_INIT;
    const char **items = xcalloc(json_object_size(c.pointers), sizeof *items);
    size_t n = 0;
    const char *name;
    json_t *list;
    json_object_foreach(c.pointers, name, list) items[n++] = name;
    store_text_array(&names, items, n);
    free(items);
    const char *params[] = {names.data};
    *r = store_run(conn, STMT_WORKFLOWS_REGISTERED, 1, params);
    buf_free(&names);
    if (!store_ok(*r)) {
        json_decref(errors);
        json_decref(c.pointers);
        return NULL;
    }
    for (int k = 0; k < PQntuples(*r); k++)
        json_object_del(c.pointers, PQgetvalue(*r, k, 0));
    PQclear(*r);
    *r = NULL;
    json_object_foreach(c.pointers, name, list)
    {
        size_t i;
        json_t *ptr;
        json_array_foreach(list, i, ptr)
        {
            char *msg = xasprintf("no workflow \"%s\" is registered (register it first)", name);
            api_add_field_error(errors, json_string_value(ptr), msg);
            free(msg);
        }
    }
    json_decref(c.pointers);
    return errors;
}

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

    PGconn *conn = api_db_acquire(req);
    PGresult *r = NULL;
    if (!conn) {
        defn_free(d);
        goto out;
    }
    json_t *unknown = unknown_children(conn, d, &r);
    defn_free(d);
    if (!unknown)
        goto db_fail;
    if (json_array_size(unknown) > 0) {
        size_t n = json_array_size(unknown);
        char *detail = xasprintf("the definition has %zu error%s", n, n == 1 ? "" : "s");
        http_reply_problem_ext(req, 422, "invalid-definition", "Invalid workflow definition",
                               detail, unknown, NULL);
        free(detail);
        goto out;
    }
    json_decref(unknown);
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
