/* A chained hash table under one mutex; lookups are short, so one lock is enough. */
#include "runner/defcache.h"

#include "engine/plan.h"
#include "store/stmt.h"
#include "util/alloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFCACHE_BUCKETS 256

struct entry {
    char *name;
    int version;
    struct defn *defn;
    struct engine_plan *plan; /* of defn, built once with it */
    struct entry *next;
};

struct defcache {
    struct engine_plan *code; /* the plan of defn_code(), version 0 of any name */
    pthread_mutex_t lock;
    struct entry *buckets[DEFCACHE_BUCKETS];
    size_t max_items; /* set on every plan built here */
};

static unsigned bucket_of(const char *name, int version)
{
    unsigned h = 2166136261u;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ (unsigned)version) * 16777619u;
    return h % DEFCACHE_BUCKETS;
}

struct defcache *defcache_new(long max_items)
{
    struct defcache *c = xcalloc(1, sizeof *c);
    c->max_items = max_items > 0 ? (size_t)max_items : ENGINE_PLAN_DEFAULT_MAX_ITEMS;
    c->code = engine_plan_build(defn_code());
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void defcache_free(struct defcache *c)
{
    if (!c)
        return;
    for (int i = 0; i < DEFCACHE_BUCKETS; i++) {
        struct entry *e = c->buckets[i];
        while (e) {
            struct entry *next = e->next;
            free(e->name);
            engine_plan_free(e->plan);
            defn_free(e->defn);
            free(e);
            e = next;
        }
    }
    engine_plan_free(c->code);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static const struct engine_plan *lookup(struct defcache *c, unsigned b, const char *name,
                                        int version)
{
    for (struct entry *e = c->buckets[b]; e; e = e->next)
        if (e->version == version && !strcmp(e->name, name))
            return e->plan;
    return NULL;
}

const struct defn *defcache_get(struct defcache *c, PGconn *conn, const char *name, int version,
                                char **why)
{
    const struct engine_plan *p = defcache_get_plan(c, conn, name, version, why);
    return p ? p->d : NULL;
}

const struct engine_plan *defcache_get_plan(struct defcache *c, PGconn *conn, const char *name,
                                            int version, char **why)
{
    /* A code execution (its name in place of a workflow's, version 0) has no definition. */
    if (version == 0)
        return c->code;
    unsigned b = bucket_of(name, version);
    pthread_mutex_lock(&c->lock);
    const struct engine_plan *found = lookup(c, b, name, version);
    pthread_mutex_unlock(&c->lock);
    if (found)
        return found;

    char v[16];
    snprintf(v, sizeof v, "%d", version);
    const char *params[] = {name, v};
    PGresult *r = store_run(conn, STMT_WORKFLOW_DEFN, 2, params);
    if (!store_ok(r) || PQntuples(r) == 0) {
        *why = store_ok(r) ? xasprintf("workflow %s version %d does not exist", name, version)
                           : store_error(r, conn);
        PQclear(r);
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_loads(PQgetvalue(r, 0, 0), 0, &jerr);
    PQclear(r);
    struct defn *d = NULL;
    json_t *errors = NULL;
    if (!doc || defn_parse(doc, &d, &errors) < 0) {
        /* Stored definitions were validated on registration; this means a newer keeld with a
         * wider language registered it. */
        *why = xasprintf("stored definition %s version %d cannot be read by this keeld", name,
                         version);
        json_decref(doc);
        json_decref(errors);
        return NULL;
    }
    json_decref(doc);
    /* Every parsed definition has a plan today; a NULL here is a kind the engine cannot run. */
    struct engine_plan *plan = engine_plan_build(d);
    if (!plan) {
        *why =
            xasprintf("stored definition %s version %d cannot be run by this keeld", name, version);
        defn_free(d);
        return NULL;
    }
    plan->max_items = c->max_items;

    pthread_mutex_lock(&c->lock);
    found = lookup(c, b, name, version);
    if (!found) {
        struct entry *e = xmalloc(sizeof *e);
        e->name = xstrdup(name);
        e->version = version;
        e->defn = d;
        e->plan = plan;
        e->next = c->buckets[b];
        c->buckets[b] = e;
        found = plan;
        d = NULL;
        plan = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    engine_plan_free(plan);
    defn_free(d);
    return found;
}
