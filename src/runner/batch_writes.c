/* One statement per table for a whole batch: each column of each table goes as one PostgreSQL
 * array literal, unnested by the statement. */
#include "runner/batch_writes.h"

#include "util/alloc.h"
#include "util/buf.h"
#include "util/jsontext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void batch_writes_init(struct batch_writes *w)
{
    memset(w, 0, sizeof *w);
    w->events = json_array();
    w->steps = json_array();
    w->tasks = json_array();
    w->tokens = json_array();
    w->drops = json_array();
    w->consumed = json_array();
    w->cancels = json_array();
    w->execs = json_array();
}

void batch_writes_free(struct batch_writes *w)
{
    json_decref(w->events);
    json_decref(w->steps);
    json_decref(w->tasks);
    json_decref(w->tokens);
    json_decref(w->drops);
    json_decref(w->consumed);
    json_decref(w->cancels);
    json_decref(w->execs);
    memset(w, 0, sizeof *w);
}

/* How a column's JSON value becomes an array element. */
enum column_kind {
    COL_SCALAR, /* a string, number or boolean as its text; JSON null or absent: NULL */
    COL_JSON,   /* the value as JSON text; JSON null or absent: NULL (as jsonb_to_recordset) */
    COL_JSON_PRESENT, /* the value as JSON text, JSON null included; absent: NULL */
};

/* The column field of every record of table as an array literal. False when a value cannot
 * be encoded: a column that became NULL would write nothing for it and lose an effect. */
static bool column(struct buf *b, const json_t *table, const char *field, enum column_kind kind)
{
    buf_putc(b, '{');
    size_t i;
    json_t *rec;
    json_array_foreach(table, i, rec)
    {
        if (i > 0)
            buf_putc(b, ',');
        json_t *v = field ? json_object_get(rec, field) : rec;
        if (!v || (json_is_null(v) && kind != COL_JSON_PRESENT)) {
            buf_puts(b, "NULL");
        } else if (kind != COL_SCALAR) {
            char *text = json_text(v);
            if (!text)
                return false;
            store_array_element(b, text);
            free(text);
        } else if (json_is_string(v)) {
            store_array_element(b, json_string_value(v));
        } else if (json_is_integer(v)) {
            char n[24];
            snprintf(n, sizeof n, "%lld", (long long)json_integer_value(v));
            buf_puts(b, n);
        } else if (json_is_boolean(v)) {
            buf_puts(b, json_is_true(v) ? "t" : "f");
        } else {
            return false;
        }
    }
    buf_putc(b, '}');
    return true;
}

struct column_spec {
    const char *field;
    enum column_kind kind;
};

static const struct column_spec event_cols[] = {
    {"execution_id", COL_SCALAR}, {"seq", COL_SCALAR},  {"type", COL_SCALAR},
    {"step", COL_SCALAR},         {"path", COL_SCALAR}, {"attempt", COL_SCALAR},
    {"at", COL_SCALAR},           {"data", COL_JSON},
};
static const struct column_spec step_cols[] = {
    {"execution_id", COL_SCALAR},
    {"path", COL_SCALAR},
    {"id", COL_SCALAR},
    {"parent", COL_SCALAR},
    {"kind", COL_SCALAR},
    {"position", COL_SCALAR},
    {"status", COL_SCALAR},
    {"attempts", COL_SCALAR},
    {"output", COL_JSON},
    {"error", COL_JSON},
    {"started_at", COL_SCALAR},
    {"completed_at", COL_SCALAR},
    {"last_error", COL_JSON},
    {"last_error_set", COL_SCALAR},
    {"next_attempt_at", COL_SCALAR},
    {"due_at", COL_SCALAR},
    {"heartbeat", COL_JSON},
    {"heartbeat_set", COL_SCALAR},
    {"engine", COL_JSON},
    {"items", COL_JSON},
    {"items_set", COL_SCALAR},
    {"request", COL_JSON},
};
static const struct column_spec task_cols[] = {
    {"execution_id", COL_SCALAR}, {"kind", COL_SCALAR},   {"step", COL_SCALAR},
    {"attempt", COL_SCALAR},      {"due_at", COL_SCALAR}, {"payload", COL_JSON},
    {"owner", COL_SCALAR},
};
static const struct column_spec token_cols[] = {
    {"token_hash", COL_SCALAR}, {"execution_id", COL_SCALAR}, {"step", COL_SCALAR},
    {"attempt", COL_SCALAR},    {"compensation", COL_SCALAR},
};
static const struct column_spec drop_cols[] = {
    {"execution_id", COL_SCALAR},
    {"kind", COL_SCALAR},
    {"step", COL_SCALAR},
};
static const struct column_spec exec_cols[] = {
    {"id", COL_SCALAR},       {"status", COL_SCALAR},       {"state", COL_JSON},
    {"last_seq", COL_SCALAR}, {"output", COL_JSON_PRESENT}, {"error", COL_JSON_PRESENT},
    {"at", COL_SCALAR},       {"ended", COL_SCALAR},        {"take", COL_SCALAR},
};
/* A bare value per record (consumed task ids, cancelled executions). */
static const struct column_spec value_col[] = {{NULL, COL_SCALAR}};

#define N_OF(a)      ((int)(sizeof(a) / sizeof *(a)))
#define APPLY_PARAMS 58

/* A batch of one transition: its writes as STMT_EXEC_APPLY's parameters (the records as JSON,
 * whose extra members jsonb_to_recordset ignores). That statement costs less than the
 * multi-row one for a single execution (about 77 against 97 us of executor time, and 19
 * parameters to read instead of 57), and a batch of one is the common case at light load.
 * Returns the number of parameters, or -1 with *why set. */
static int single_params(const struct batch_writes *w, const char *owner, char *texts[19],
                         const char *params[APPLY_PARAMS], char **why)
{
    const json_t *ex = json_array_get(w->execs, 0);
    const json_t *first_task = json_array_get(w->tasks, 0);
    const json_t *parts[] = {w->events,
                             w->steps,
                             w->tasks,
                             json_object_get(ex, "state"),
                             json_object_get(ex, "output"),
                             json_object_get(ex, "error"),
                             w->drops,
                             w->tokens};
    const int at[] = {3, 4, 5, 8, 10, 11, 15, 16};
    for (int k = 0; k < 19; k++) {
        texts[k] = NULL;
        params[k] = NULL;
    }
    for (size_t k = 0; k < sizeof at / sizeof *at; k++) {
        if (!parts[k])
            continue;
        texts[at[k]] = json_text(parts[k]);
        if (!texts[at[k]]) {
            *why = xstrdup("the transition's writes cannot be encoded as JSON");
            return -1;
        }
        params[at[k]] = texts[at[k]];
    }
    char seq[24], task[24];
    snprintf(seq, sizeof seq, "%lld",
             (long long)json_integer_value(json_object_get(ex, "last_seq")));
    const json_t *consumed = json_array_get(w->consumed, 0);
    snprintf(task, sizeof task, "%lld", (long long)json_integer_value(consumed));
    texts[9] = xstrdup(seq);
    texts[1] = consumed ? xstrdup(task) : NULL;
    params[0] = json_string_value(json_object_get(ex, "id"));
    params[1] = texts[1];
    params[2] = owner;
    params[6] = json_array_size(w->cancels) > 0 ? "true" : "false";
    params[7] = json_string_value(json_object_get(ex, "status"));
    params[9] = texts[9];
    params[12] = json_string_value(json_object_get(ex, "at"));
    params[13] = json_is_true(json_object_get(ex, "ended")) ? "true" : "false";
    params[14] = w->notify ? "true" : "false";
    params[17] = json_string_value(json_object_get(ex, "take"));
    params[18] = first_task ? json_string_value(json_object_get(first_task, "owner")) : owner;
    return 19;
}

/* The columns of every table as STMT_BATCH_APPLY's parameters, in its order, with this keeld's
 * id and the NOTIFY flag where the statement takes them. Returns how many, or -1 with *why
 * set; cols holds the literals (built of them), to free. */
static int batch_params(const struct batch_writes *w, const char *owner, struct buf *cols,
                        int *built, const char *params[APPLY_PARAMS], char **why)
{
    const struct {
        const json_t *table;
        const struct column_spec *spec;
        int n_spec;
    } tables[] = {
        {w->drops, drop_cols, N_OF(drop_cols)},
        {w->consumed, value_col, 1},
        {NULL, NULL, 0} /* owner */,
        {w->cancels, value_col, 1},
        {w->events, event_cols, N_OF(event_cols)},
        {w->steps, step_cols, N_OF(step_cols)},
        {w->tasks, task_cols, N_OF(task_cols)},
        {w->tokens, token_cols, N_OF(token_cols)},
        {w->execs, exec_cols, N_OF(exec_cols)},
        {NULL, NULL, 0} /* notify */,
    };
    int n = 0;
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++) {
        if (!tables[t].table) {
            params[n++] = t == 2 ? owner : w->notify ? "true" : "false";
            continue;
        }
        for (int k = 0; k < tables[t].n_spec; k++) {
            struct buf *b = &cols[(*built)++];
            *b = (struct buf)BUF_INIT;
            bool ok = column(b, tables[t].table, tables[t].spec[k].field, tables[t].spec[k].kind);
            if (!ok) {
                *why = xasprintf("a value of column \"%s\" cannot be encoded",
                                 tables[t].spec[k].field ? tables[t].spec[k].field : "(value)");
                return -1;
            }
            params[n++] = b->data;
        }
    }
    if (n != APPLY_PARAMS)
        abort(); /* the tables above and STMT_BATCH_APPLY disagree */
    return n;
}

int batch_writes_flush(PGconn *conn, const struct batch_writes *w, const char *owner,
                       const struct store_call *after, int n_after, PGresult **after_res,
                       char **why)
{
    struct buf cols[APPLY_PARAMS];
    const char *params[APPLY_PARAMS];
    char *texts[19] = {NULL};
    int built = 0, rc = -1;
    size_t n_execs = json_array_size(w->execs);
    /* Nothing to write (every input was stale and journals nothing): COMMIT alone. */
    int n_writes = n_execs > 0 ? 1 : 0;
    struct store_call *calls = xcalloc((size_t)n_after + 2, sizeof *calls);
    int n_params = n_execs == 1  ? single_params(w, owner, texts, params, why)
                   : n_execs > 1 ? batch_params(w, owner, cols, &built, params, why)
                                 : 0;
    if (n_params >= 0) {
        if (n_writes)
            calls[0] =
                (struct store_call){.stmt = n_execs == 1 ? STMT_EXEC_APPLY : STMT_BATCH_APPLY,
                                    .n_params = n_params,
                                    .params = params};
        calls[n_writes] = (struct store_call){.command = "COMMIT"};
        for (int i = 0; i < n_after; i++)
            calls[n_writes + 1 + i] = after[i];
        PGresult **res = xcalloc((size_t)n_after + 2, sizeof *res);
        char *perr = NULL;
        if (store_pipeline(conn, calls, n_writes + 1 + n_after, res, &perr) < 0 && !perr)
            perr = xstrdup("the batch's writes failed");
        /* Only the writes and COMMIT decide; a read after it that failed is its reader's
         * business. */
        bool committed = (!n_writes || PQresultStatus(res[0]) == PGRES_TUPLES_OK) &&
                         PQresultStatus(res[n_writes]) == PGRES_COMMAND_OK;
        if (!committed)
            *why = perr ? perr : xstrdup("COMMIT failed");
        else
            free(perr);
        for (int i = 0; i <= n_writes; i++)
            PQclear(res[i]);
        for (int i = 0; i < n_after; i++)
            after_res[i] = res[n_writes + 1 + i];
        free(res);
        rc = committed ? 0 : -1;
    }
    free(calls);
    for (int k = 0; k < built; k++)
        buf_free(&cols[k]);
    for (int k = 0; k < 19; k++)
        free(texts[k]);
    return rc;
}
