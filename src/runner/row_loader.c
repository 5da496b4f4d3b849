/* The step rows a transition reads: the partial state it starts from, and the engine's loader
 * for the rest (rows by path, all rows, one for_each item, the execution's input). */
#include "runner/row_loader.h"

#include "store/stmt.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Adds one step row's result to ctx.steps.<path>: the output of a completed (or compensated)
 * step, and an error. */
static void ctx_add_row(json_t *steps, const json_t *row)
{
    const char *path = json_string_value(json_array_get(row, 0));
    const char *status = json_string_value(json_array_get(row, 1));
    json_t *s = json_object();
    if (status && (!strcmp(status, "completed") || !strcmp(status, "compensated")))
        json_object_set(s, "output", json_array_get(row, 2));
    json_t *err = json_array_get(row, 3);
    if (err && !json_is_null(err))
        json_object_set(s, "error", err);
    json_object_set_new(steps, path, s);
}

/* Adds the rows (JSON text of [[path, status, output, error, engine, request], ...], parents
 * before children; request is a step call's body, null for other rows) that st does not hold yet to
 * st and their results to ctx, and records each one's interpreter state as read in loaded ({path:
 * engine}; NULL: not recorded), so that the transition writes back exactly the rows whose state
 * changed. Returns false when one does not read or fit. */
bool row_put(struct engine_state *st, json_t *ctx, const char *rows_text, json_t *loaded)
{
    json_t *rows = json_loads(rows_text, JSON_ALLOW_NUL, NULL);
    if (!json_is_array(rows)) {
        json_decref(rows);
        return false;
    }
    bool ok = true;
    json_t *steps = json_object_get(ctx, "steps");
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *path = json_string_value(json_array_get(row, 0));
        if (!path) {
            ok = false;
            break;
        }
        if (engine_state_find(st, path) >= 0)
            continue;
        json_t *engine = json_array_get(row, 4);
        const json_t *request = json_array_get(row, 5);
        long put;
        if (request && !json_is_null(request) && json_is_object(engine)) {
            /* The interpreter reads a key's request with its own JSON; the row keeps it
             * apart, written once. */
            json_t *with = json_copy(engine);
            json_object_set(with, "request", (json_t *)request);
            put = engine_state_put(st, path, with);
            json_decref(with);
        } else {
            put = engine_state_put(st, path, engine);
        }
        if (put < 0) {
            ok = false;
            break;
        }
        ctx_add_row(steps, row);
        if (loaded)
            json_object_set(loaded, path, json_array_get(row, 4));
    }
    json_decref(rows);
    return ok;
}

/* Adds path and every prefix of it ("a/0/b" -> "a", "a/0", "a/0/b") to list (JSON array,
 * without repeats; seen is a {path: true} set). */
void row_paths_with_ancestors(json_t *list, json_t *seen, const char *path)
{
    for (const char *c = path;; c++) {
        if (*c == '/' || *c == '\0') {
            char *prefix = xstrndup(path, (size_t)(c - path));
            if (!json_object_get(seen, prefix)) {
                json_object_set_new(seen, prefix, json_true());
                json_array_append_new(list, json_string(prefix));
            }
            free(prefix);
        }
        if (*c == '\0')
            break;
    }
}

static bool loader_query(struct row_loader *l, enum store_stmt stmt, int n,
                         const char *const *params, PGresult **out)
{
    PGresult *r = store_run(l->conn, stmt, n, params);
    if (!store_ok(r)) {
        if (!l->why)
            l->why = store_error(r, l->conn);
        PQclear(r);
        return false;
    }
    *out = r;
    return true;
}

int row_load_paths(void *arg, struct engine_state *st, json_t *ctx, const char *const *paths,
                   size_t n)
{
    struct row_loader *l = arg;
    json_t *list = json_array(), *seen = json_object();
    for (size_t i = 0; i < n; i++)
        row_paths_with_ancestors(list, seen, paths[i]);
    json_decref(seen);
    size_t m = json_array_size(list), k = 0;
    const char **want = xcalloc(m ? m : 1, sizeof *want);
    for (size_t i = 0; i < m; i++) {
        const char *path = json_string_value(json_array_get(list, i));
        if (engine_state_find(st, path) < 0)
            want[k++] = path;
    }
    int rc = 0;
    if (k > 0) {
        struct buf arr = BUF_INIT;
        store_text_array(&arr, want, k);
        const char *params[] = {l->exec_id, arr.data};
        PGresult *r;
        if (!loader_query(l, STMT_STEPS_LOAD, 2, params, &r))
            rc = -1;
        else if (!row_put(st, ctx, PQgetvalue(r, 0, 0), l->loaded))
            rc = -1;
        if (rc == 0)
            PQclear(r);
        buf_free(&arr);
    }
    free(want);
    json_decref(list);
    return rc;
}

int row_load_all(void *arg, struct engine_state *st, json_t *ctx)
{
    struct row_loader *l = arg;
    const char *params[] = {l->exec_id};
    PGresult *r;
    if (!loader_query(l, STMT_STEPS_LOAD_ALL, 1, params, &r))
        return -1;
    int rc = row_put(st, ctx, PQgetvalue(r, 0, 0), l->loaded) ? 0 : -1;
    PQclear(r);
    return rc;
}

static int load_item(void *arg, const char *path, size_t index, json_t **out)
{
    struct row_loader *l = arg;
    char idx[24];
    snprintf(idx, sizeof idx, "%zu", index);
    const char *params[] = {l->exec_id, path, idx};
    PGresult *r;
    *out = NULL;
    if (!loader_query(l, STMT_STEPS_ITEM, 3, params, &r))
        return -1;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        *out = json_loads(PQgetvalue(r, 0, 0), JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    PQclear(r);
    return *out ? 0 : -1;
}

static int load_input(void *arg, json_t **out)
{
    struct row_loader *l = arg;
    const char *params[] = {l->exec_id};
    PGresult *r;
    *out = NULL;
    if (!loader_query(l, STMT_EXEC_INPUT, 1, params, &r))
        return -1;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        *out = json_loads(PQgetvalue(r, 0, 0), JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    PQclear(r);
    return *out ? 0 : -1;
}

/* The expression context: the execution's id and workflow, its input when input_text is not
 * NULL (else the engine reads it through the loader when a template needs it), and an empty
 * "steps" for the rows to fill in. NULL when the input does not read back (a step would
 * otherwise see a false "has no output yet"). */
json_t *row_ctx_new(const char *exec_id, const char *workflow, const char *input_text)
{
    json_t *ctx = json_object();
    if (input_text) {
        json_t *input = json_loads(input_text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!input) {
            json_decref(ctx);
            return NULL;
        }
        json_object_set_new(ctx, "input", input);
    }
    json_object_set_new(ctx, "steps", json_object());
    json_object_set_new(ctx, "execution",
                        json_pack("{s:s, s:s}", "id", exec_id, "workflow", workflow));
    return ctx;
}

struct engine_loader row_loader_engine(struct row_loader *l)
{
    return (struct engine_loader){l, row_load_paths, row_load_all, load_item, load_input};
}
