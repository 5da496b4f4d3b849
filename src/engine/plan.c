/* The plan: the tree of nodes built from a definition (see plan.h). */
#include "engine/plan.h"

#include "util/alloc.h"

#include <string.h>

const char *engine_node_kind_name(enum engine_node_kind k)
{
    switch (k) {
    case ENGINE_NODE_SEQUENCE:
        return "sequence";
    case ENGINE_NODE_ACTIVITY:
        return "activity";
    case ENGINE_NODE_SLEEP:
        return "sleep";
    case ENGINE_NODE_SLEEP_UNTIL:
        return "sleep_until";
    case ENGINE_NODE_WAIT:
        return "wait";
    }
    return "unknown";
}

bool engine_node_is_container(enum engine_node_kind k)
{
    return k == ENGINE_NODE_SEQUENCE;
}

/* The leaf kind of a step kind; false for a kind the plan does not know. */
static bool leaf_kind(enum defn_step_kind k, enum engine_node_kind *out)
{
    switch (k) {
    case DEFN_STEP_ACTIVITY:
        *out = ENGINE_NODE_ACTIVITY;
        return true;
    case DEFN_STEP_SLEEP:
        *out = ENGINE_NODE_SLEEP;
        return true;
    case DEFN_STEP_SLEEP_UNTIL:
        *out = ENGINE_NODE_SLEEP_UNTIL;
        return true;
    case DEFN_STEP_WAIT:
        *out = ENGINE_NODE_WAIT;
        return true;
    }
    return false;
}

struct engine_plan *engine_plan_build(const struct defn *d)
{
    if (!d)
        return NULL;
    struct engine_plan *p = xcalloc(1, sizeof *p);
    p->d = d;
    p->n_steps = d->n_steps;
    p->n_nodes = 1 + d->n_steps;
    p->nodes = xcalloc(p->n_nodes, sizeof *p->nodes);
    p->by_step = xcalloc(d->n_steps ? d->n_steps : 1, sizeof *p->by_step);

    /* The root first, then its children contiguously: a container's children are one run of
     * the array, which nested kinds will keep by laying out the tree breadth first. */
    struct engine_plan_node *root = &p->nodes[0];
    root->kind = ENGINE_NODE_SEQUENCE;
    root->children = d->n_steps ? &p->nodes[1] : NULL;
    root->n_children = d->n_steps;
    for (size_t i = 0; i < d->n_steps; i++) {
        const struct defn_step *ds = &d->steps[i];
        struct engine_plan_node *n = &p->nodes[1 + i];
        /* Compound steps would need their own nodes; none exists yet, and a plan that silently
         * dropped them would run a different workflow than the one registered. */
        if (ds->n_children != 0 || !leaf_kind(ds->kind, &n->kind)) {
            engine_plan_free(p);
            return NULL;
        }
        n->id = ds->id;
        n->parent = root;
        n->index = i;
        n->step = ds;
        n->step_index = i;
        p->by_step[i] = n;
    }
    p->root = root;
    return p;
}

void engine_plan_free(struct engine_plan *p)
{
    if (!p)
        return;
    free(p->nodes);
    free(p->by_step);
    free(p);
}

const struct engine_plan_node *engine_plan_step_node(const struct engine_plan *p, size_t i)
{
    if (!p || i >= p->n_steps)
        return NULL;
    return p->by_step[i];
}

/* The segment a node adds to the paths below and at it; NULL when it adds none (the root, and
 * later a loop body, whose segment is its index). */
static const char *segment(const struct engine_plan_node *n)
{
    return n->parent ? n->id : NULL;
}

/* How many loops enclose n (each adds an index segment). None can yet. */
static size_t loops_around(const struct engine_plan_node *n)
{
    (void)n;
    return 0;
}

char *engine_plan_path(const struct engine_plan_node *n, const size_t *loop_indexes,
                       size_t n_loop_indexes)
{
    if (!n || n_loop_indexes != loops_around(n) || (n_loop_indexes > 0 && !loop_indexes))
        return NULL;
    /* Two passes up the tree: the length, then the segments written from the end. */
    size_t len = 0, n_segments = 0;
    for (const struct engine_plan_node *a = n; a; a = a->parent) {
        const char *s = segment(a);
        if (s) {
            len += strlen(s);
            n_segments++;
        }
    }
    len += n_segments ? n_segments - 1 : 0;
    char *path = xmalloc(len + 1);
    path[len] = '\0';
    size_t end = len;
    for (const struct engine_plan_node *a = n; a; a = a->parent) {
        const char *s = segment(a);
        if (!s)
            continue;
        size_t sl = strlen(s);
        if (end < len)
            path[end] = '/';
        end -= sl;
        memcpy(path + end, s, sl);
        if (end > 0)
            end--;
    }
    return path;
}

char *engine_plan_step_path(const struct engine_plan *p, size_t i)
{
    const struct engine_plan_node *n = engine_plan_step_node(p, i);
    return n ? engine_plan_path(n, NULL, 0) : NULL;
}
