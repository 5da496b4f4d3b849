/* The step rows a transition reads into the engine's partial state, and the engine's loader
 * (engine.h, struct engine_loader) that reads the others it asks for, on the transaction's
 * connection. */
#ifndef KEEL_RUNNER_ROW_LOADER_H
#define KEEL_RUNNER_ROW_LOADER_H

#include "engine/engine.h"
#include "util/buf.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>

/* What the engine's loader reads with: the transaction's connection and execution. */
struct row_loader {
    PGconn *conn;
    const char *exec_id;
    char *why;      /* the first database error (caller frees) */
    json_t *loaded; /* {path: interpreter state as read} of every row read (caller decrefs) */
};

/* The engine's loader over l. */
struct engine_loader row_loader_engine(struct row_loader *l);

/* Adds the rows (JSON text of [[path, status, output, error, engine], ...], parents before
 * children) that st does not hold yet to st and their results to ctx.steps, and records each
 * one's interpreter state as read in loaded ({path: engine}; NULL: not recorded), so that the
 * transition writes back exactly the rows whose state changed. False when one does not read. */
bool row_put(struct engine_state *st, json_t *ctx, const char *rows_text, json_t *loaded);

/* Reads the rows at paths (and their ancestors) that st does not hold yet; 0 or -1 (l->why). */
int row_load_paths(void *arg, struct engine_state *st, json_t *ctx, const char *const *paths,
                   size_t n);
/* Reads every row of the execution that st does not hold yet; 0 or -1 (l->why). */
int row_load_all(void *arg, struct engine_state *st, json_t *ctx);

/* The expression context: the execution's id and workflow, its input when input_text is not
 * NULL (else the engine reads it through the loader when a template needs it), and an empty
 * "steps" for the rows to fill in. NULL when the input does not read back (a step would
 * otherwise see a false "has no output yet"). */
json_t *row_ctx_new(const char *exec_id, const char *workflow, const char *input_text);

/* Appends path and every prefix of it ("a/0/b" -> "a", "a/0", "a/0/b") to list (a JSON array,
 * without repeats; seen is a {path: true} set). */
void row_paths_with_ancestors(json_t *list, json_t *seen, const char *path);

#endif
