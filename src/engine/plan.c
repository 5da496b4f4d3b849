/* The plan: the tree of nodes built from a definition (see plan.h). */
#include "engine/plan.h"

#include "defn/expr.h"
#include "util/alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
    case ENGINE_NODE_PARALLEL:
        return "parallel";
    case ENGINE_NODE_FOR_EACH:
        return "for_each";
    case ENGINE_NODE_SET:
        return "set";
    case ENGINE_NODE_FAIL:
        return "fail";
    case ENGINE_NODE_IF:
        return "if";
    case ENGINE_NODE_WORKFLOW:
        return "workflow";
    case ENGINE_NODE_CODE:
        return "code";
    }
    return "unknown";
}

bool engine_node_is_container(enum engine_node_kind k)
{
    return k == ENGINE_NODE_SEQUENCE || k == ENGINE_NODE_PARALLEL || k == ENGINE_NODE_FOR_EACH ||
           k == ENGINE_NODE_IF || k == ENGINE_NODE_CODE;
}

/* The node kind of a step kind; false for a kind the plan does not know. */
static bool node_kind(enum defn_step_kind k, enum engine_node_kind *out)
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
    case DEFN_STEP_PARALLEL:
        *out = ENGINE_NODE_PARALLEL;
        return true;
    case DEFN_STEP_FOR_EACH:
        *out = ENGINE_NODE_FOR_EACH;
        return true;
    case DEFN_STEP_SET:
        *out = ENGINE_NODE_SET;
        return true;
    case DEFN_STEP_FAIL:
        *out = ENGINE_NODE_FAIL;
        return true;
    case DEFN_STEP_IF:
        *out = ENGINE_NODE_IF;
        return true;
    case DEFN_STEP_WORKFLOW:
        *out = ENGINE_NODE_WORKFLOW;
        return true;
    case DEFN_STEP_CODE:
        *out = ENGINE_NODE_CODE;
        return true;
    }
    return false;
}

bool engine_plan_call_node(const struct defn_step *st, struct engine_plan_node *out)
{
    enum engine_node_kind k;
    if (!st || !out || !node_kind(st->kind, &k) || engine_node_is_container(k) ||
        k == ENGINE_NODE_FAIL || k == ENGINE_NODE_WORKFLOW)
        return false;
    *out = (struct engine_plan_node){.kind = k, .id = st->id, .step = st, .call = true};
    return true;
}

/* How many nodes the steps take, sub-steps and their sequences included. */
static size_t count_nodes(const struct defn_step *steps, size_t n)
{
    size_t total = n;
    for (size_t i = 0; i < n; i++) {
        const struct defn_step *ds = &steps[i];
        for (size_t b = 0; b < ds->n_branches; b++)
            total += 1 + count_nodes(ds->branches[b].steps, ds->branches[b].n_steps);
        if (ds->kind == DEFN_STEP_FOR_EACH)
            total += 1 + count_nodes(ds->children, ds->n_children);
    }
    return total;
}

struct builder {
    struct engine_plan *p;
    size_t next; /* the next free slot in p->nodes */
};

static struct engine_plan_node *reserve(struct builder *b, size_t n)
{
    struct engine_plan_node *first = &b->p->nodes[b->next];
    b->next += n;
    return first;
}

/* Lays out the children of container `seq` (a sequence) from steps: its children are one run
 * of the nodes array, reserved before any grandchild so that they stay contiguous. */
static bool build_sequence(struct builder *b, struct engine_plan_node *seq,
                           const struct defn_step *steps, size_t n);

static bool build_step(struct builder *b, struct engine_plan_node *n, const struct defn_step *ds)
{
    if (!node_kind(ds->kind, &n->kind))
        return false;
    n->id = ds->id;
    n->step = ds;
    json_object_set_new(b->p->by_id, ds->id, json_integer((json_int_t)(n - b->p->nodes)));
    if (n->kind == ENGINE_NODE_PARALLEL || n->kind == ENGINE_NODE_IF) {
        if (ds->n_branches == 0 || (n->kind == ENGINE_NODE_IF && ds->n_branches > 2))
            return false;
        struct engine_plan_node *kids = reserve(b, ds->n_branches);
        n->children = kids;
        n->n_children = ds->n_branches;
        for (size_t i = 0; i < ds->n_branches; i++) {
            struct engine_plan_node *k = &kids[i];
            k->kind = ENGINE_NODE_SEQUENCE;
            k->branch = ds->branches[i].name;
            k->parent = n;
            k->index = i;
            k->loop_depth = n->loop_depth;
            k->loop = n->loop;
            if (!build_sequence(b, k, ds->branches[i].steps, ds->branches[i].n_steps))
                return false;
        }
        b->p->nested = true;
    } else if (n->kind == ENGINE_NODE_FOR_EACH) {
        struct engine_plan_node *body = reserve(b, 1);
        n->children = body;
        n->n_children = 1;
        body->kind = ENGINE_NODE_SEQUENCE;
        body->parent = n;
        body->loop_depth = n->loop_depth + 1;
        body->loop = n;
        if (!build_sequence(b, body, ds->children, ds->n_children))
            return false;
        b->p->nested = true;
    } else if (ds->n_children != 0 || ds->n_branches != 0) {
        return false;
    }
    return true;
}

static bool build_sequence(struct builder *b, struct engine_plan_node *seq,
                           const struct defn_step *steps, size_t n)
{
    if (n == 0 && seq->parent)
        return false;
    struct engine_plan_node *kids = n ? reserve(b, n) : NULL;
    seq->children = kids;
    seq->n_children = n;
    for (size_t i = 0; i < n; i++) {
        kids[i].parent = seq;
        kids[i].index = i;
        kids[i].loop_depth = seq->loop_depth;
        kids[i].loop = seq->loop;
        kids[i].top = seq->parent == NULL;
        kids[i].step_index = kids[i].top ? i : 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!build_step(b, &kids[i], &steps[i]))
            return false;
    return true;
}

/* ---- references ---------------------------------------------------------------------------- */

struct ref_list {
    const struct engine_plan *p;
    json_t *seen; /* {id: true} */
    json_t *ids;  /* [id, ...] in first-seen order */
    bool input;   /* a template may read the execution's input */
};

/* True when a string of tmpl holds an expression and the word "input": it may read the
 * execution's input (a false alarm only costs reading the input when it is not needed). */
static bool mentions_input(const json_t *tmpl)
{
    if (json_is_string(tmpl)) {
        const char *s = json_string_value(tmpl);
        return strstr(s, "${") && strstr(s, "input");
    }
    size_t i;
    const char *key;
    json_t *v;
    if (json_is_array(tmpl)) {
        json_array_foreach(tmpl, i, v) if (mentions_input(v)) return true;
    } else if (json_is_object(tmpl)) {
        json_object_foreach((json_t *)tmpl, key, v) if (mentions_input(v)) return true;
    }
    return false;
}

static void on_ref(void *arg, const char *pointer, const char *expr, const char *step_id)
{
    (void)pointer;
    (void)expr;
    struct ref_list *l = arg;
    if (json_object_get(l->seen, step_id))
        return;
    json_object_set_new(l->seen, step_id, json_true());
    json_array_append_new(l->ids, json_string(step_id));
}

static void refs_of_template(struct ref_list *l, const json_t *tmpl)
{
    if (tmpl) {
        (void)expr_check_template(tmpl, on_ref, NULL, l);
        l->input = l->input || mentions_input(tmpl);
    }
}

static void refs_of_call(struct ref_list *l, const struct defn_activity *a)
{
    if (!a)
        return;
    refs_of_template(l, a->url);
    refs_of_template(l, a->input);
}

/* The ids node n's templates read (the root: the output's). New array. Sets *input when they
 * may read the execution's input. */
static json_t *node_ref_ids(const struct engine_plan *p, const struct engine_plan_node *n,
                            bool *input)
{
    struct ref_list l = {p, json_object(), json_array(), false};
    const struct defn_step *ds = n->step;
    if (!n->parent) {
        refs_of_template(&l, p->d->output);
    } else if (ds) {
        if (ds->kind == DEFN_STEP_ACTIVITY) {
            refs_of_call(&l, &ds->activity);
            refs_of_call(&l, ds->compensate);
        }
        refs_of_template(&l, ds->sleep_until);
        refs_of_template(&l, ds->items);
        refs_of_template(&l, ds->set);
        refs_of_template(&l, ds->fail);
        refs_of_template(&l, ds->cond);
        refs_of_template(&l, ds->child_input);
    }
    json_decref(l.seen);
    *input = l.input;
    return l.ids;
}

/* Fills every node's refs (and the output's) from its templates: one pool for the plan. */
static void collect_refs(struct engine_plan *p)
{
    json_t **ids = xcalloc(p->n_nodes, sizeof *ids);
    size_t total = 0;
    for (size_t k = 0; k < p->n_nodes; k++) {
        bool input = false;
        ids[k] = node_ref_ids(p, &p->nodes[k], &input);
        if (k == 0)
            p->output_reads_input = input;
        else
            p->nodes[k].reads_input = input;
        total += json_array_size(ids[k]);
    }
    p->refs_pool = xcalloc(total ? total : 1, sizeof *p->refs_pool);
    size_t at = 0;
    for (size_t k = 0; k < p->n_nodes; k++) {
        const struct engine_plan_node **first = &p->refs_pool[at];
        size_t n = 0, i;
        json_t *id;
        json_array_foreach(ids[k], i, id)
        {
            const struct engine_plan_node *target = engine_plan_find(p, json_string_value(id));
            if (target)
                first[n++] = target;
        }
        at += n;
        if (k == 0) {
            p->output_refs = first;
            p->n_output_refs = n;
        } else {
            p->nodes[k].refs = first;
            p->nodes[k].n_refs = n;
        }
        json_decref(ids[k]);
    }
    free(ids);
}

struct engine_plan *engine_plan_build(const struct defn *d)
{
    if (!d)
        return NULL;
    struct engine_plan *p = xcalloc(1, sizeof *p);
    p->d = d;
    p->max_items = ENGINE_PLAN_DEFAULT_MAX_ITEMS;
    p->n_steps = d->n_steps;
    p->n_nodes = 1 + count_nodes(d->steps, d->n_steps);
    p->nodes = xcalloc(p->n_nodes, sizeof *p->nodes);
    p->by_step = xcalloc(d->n_steps ? d->n_steps : 1, sizeof *p->by_step);
    p->by_id = json_object();

    struct builder b = {p, 0};
    struct engine_plan_node *root = reserve(&b, 1);
    root->kind = ENGINE_NODE_SEQUENCE;
    p->root = root;
    if (!build_sequence(&b, root, d->steps, d->n_steps) || b.next != p->n_nodes) {
        engine_plan_free(p);
        return NULL;
    }
    for (size_t i = 0; i < d->n_steps; i++)
        p->by_step[i] = &root->children[i];
    p->code = d->n_steps == 1 && d->steps[0].kind == DEFN_STEP_CODE;
    collect_refs(p);
    return p;
}

void engine_plan_free(struct engine_plan *p)
{
    if (!p)
        return;
    free(p->nodes);
    free(p->by_step);
    free(p->refs_pool);
    json_decref(p->by_id);
    free(p);
}

const struct engine_plan_node *engine_plan_step_node(const struct engine_plan *p, size_t i)
{
    if (!p || i >= p->n_steps)
        return NULL;
    return p->by_step[i];
}

/* The segment a node adds to the paths below and at it: a step's id, a branch's name; NULL
 * for the root and for a loop body (whose segment is its item index). */
static const char *segment(const struct engine_plan_node *n)
{
    /* A code execution's root has the id "": the paths below it are the program's keys. */
    return n->id && n->id[0] ? n->id : n->branch;
}

static bool is_body(const struct engine_plan_node *n)
{
    return n->parent && n->parent->kind == ENGINE_NODE_FOR_EACH;
}

char *engine_plan_path(const struct engine_plan_node *n, const size_t *loop_indexes,
                       size_t n_loop_indexes)
{
    if (!n || n_loop_indexes != n->loop_depth || (n_loop_indexes > 0 && !loop_indexes))
        return NULL;
    /* The segments from n up, then written in reverse. */
    const char *segs[256];
    char nums[64][24];
    size_t k = 0, loop = n_loop_indexes;
    for (const struct engine_plan_node *a = n; a && k < 256; a = a->parent) {
        const char *s = segment(a);
        if (!s && is_body(a)) {
            loop--;
            snprintf(nums[loop % 64], sizeof nums[0], "%zu", loop_indexes[loop]);
            s = nums[loop % 64];
        }
        if (s)
            segs[k++] = s;
    }
    size_t len = 0;
    for (size_t i = 0; i < k; i++)
        len += strlen(segs[i]) + 1;
    char *path = xmalloc(len + 1);
    char *w = path;
    for (size_t i = k; i-- > 0;) {
        size_t sl = strlen(segs[i]);
        memcpy(w, segs[i], sl);
        w += sl;
        if (i > 0)
            *w++ = '/';
    }
    *w = '\0';
    return path;
}

char *engine_plan_step_path(const struct engine_plan *p, size_t i)
{
    const struct engine_plan_node *n = engine_plan_step_node(p, i);
    return n ? engine_plan_path(n, NULL, 0) : NULL;
}

const struct engine_plan_node *engine_plan_find(const struct engine_plan *p, const char *id)
{
    if (!p || !id)
        return NULL;
    const json_t *i = json_object_get(p->by_id, id);
    return i ? &p->nodes[json_integer_value(i)] : NULL;
}

/* The child of seq whose id is id (a step of that list), or NULL. */
static const struct engine_plan_node *
child_by_id(const struct engine_plan *p, const struct engine_plan_node *seq, const char *id)
{
    const struct engine_plan_node *n = engine_plan_find(p, id);
    return n && n->parent == seq ? n : NULL;
}

const struct engine_plan_node *engine_plan_resolve(const struct engine_plan *p, const char *path,
                                                   size_t *loop_indexes, size_t max_loops,
                                                   size_t *n_loops)
{
    if (!p || !path || !n_loops)
        return NULL;
    *n_loops = 0;
    const struct engine_plan_node *at = p->root;
    const char *s = path;
    char seg[128];
    while (*s) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (len == 0 || len >= sizeof seg)
            return NULL;
        memcpy(seg, s, len);
        seg[len] = '\0';
        s += len + (slash ? 1 : 0);
        if (slash && !*s)
            return NULL; /* a trailing '/' */
        const struct engine_plan_node *next = NULL;
        if (at->kind == ENGINE_NODE_SEQUENCE) {
            next = child_by_id(p, at, seg);
        } else if (at->kind == ENGINE_NODE_PARALLEL || at->kind == ENGINE_NODE_IF) {
            for (size_t i = 0; i < at->n_children && !next; i++)
                if (!strcmp(at->children[i].branch, seg))
                    next = &at->children[i];
        } else if (at->kind == ENGINE_NODE_FOR_EACH) {
            char *end;
            if (seg[0] < '0' || seg[0] > '9' || (seg[0] == '0' && seg[1]) || *n_loops >= max_loops)
                return NULL;
            unsigned long long idx = strtoull(seg, &end, 10);
            if (*end || idx > (unsigned long long)SIZE_MAX / 2)
                return NULL;
            loop_indexes[(*n_loops)++] = (size_t)idx;
            next = &at->children[0];
        }
        if (!next)
            return NULL;
        at = next;
    }
    return at == p->root ? NULL : at;
}
