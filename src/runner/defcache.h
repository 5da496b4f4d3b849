/* Parsed definitions by (name, version). Versions are immutable, so an entry never goes stale
 * and is kept for the life of the process. */
#ifndef KEEL_RUNNER_DEFCACHE_H
#define KEEL_RUNNER_DEFCACHE_H

#include "defn/defn.h"
#include "engine/plan.h"

#include <libpq-fe.h>

struct defcache;

/* max_items: the longest items array a for_each of any cached plan iterates over (the plans'
 * max_items); 0 for the engine's default. */
struct defcache *defcache_new(long max_items);
void defcache_free(struct defcache *c);
/* The definition, loaded through conn on a miss. Owned by the cache and valid until
 * defcache_free. NULL with *why set (caller frees) when it does not exist or cannot be read. */
const struct defn *defcache_get(struct defcache *c, PGconn *conn, const char *name, int version,
                                char **why);
/* The same definition's plan (engine/plan.h), built once when the definition is loaded, for
 * engine_advance_plan; its ->d is what defcache_get returns. Owned by the cache like the
 * definition. NULL with *why set (caller frees) as for defcache_get. Version 0, of any name, is
 * a code execution's: the plan of defn_code(). */
const struct engine_plan *defcache_get_plan(struct defcache *c, PGconn *conn, const char *name,
                                            int version, char **why);

#endif
