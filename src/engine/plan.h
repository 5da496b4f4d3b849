/* The plan: a definition seen as a tree of nodes, the shape the interpreter walks. Built once
 * from a parsed definition (engine_plan_build) and read-only afterwards, so one plan can serve
 * every execution of that definition version, on any thread.
 *
 * Why in engine/ and not defn/: the node kinds are the interpreter's view of a definition
 * (a `sequence` is how the engine runs a step list; containers, paths with loop indexes and
 * instances are run-time notions), and keeping it here keeps the dependency one way,
 * engine -> defn. A definition is still parsed by defn/ alone.
 *
 * Shape: a root `sequence` whose children are the definition's steps. Leaves (activity, sleep,
 * sleep_until, wait) have no children. A `parallel` has one `sequence` child per branch (in the
 * definition's branch order, sorted by name), each holding that branch's steps; a `for_each`
 * has one `sequence` child, its body, entered once per item; an `if` has a `sequence` for its
 * then (branch "then") and, when it has one, for its else (branch "else"), in that order. The
 * top-level steps also carry their index in defn->steps (step_index), which is also the index of
 * their instance in the engine's state.
 *
 * Containers. The interpreter drives every container through two operations, dispatched on
 * its kind (engine.c, "control flow"):
 *
 *   enter_node(node)                        start a node: a leaf schedules its attempt, timer or
 *                                           wait; a sequence enters its first child; a parallel
 *                                           enters every branch; a for_each evaluates its items
 *                                           and enters up to `concurrency` iterations; an if
 *                                           evaluates its condition and enters one branch
 *   child_ended(container, child, outcome)  a child ended (completed, failed, or stopped by a
 *                                           cancel): the container starts more children or
 *                                           ends itself, handing its own outcome to its parent
 *                                           the same way; the root's end ends the execution
 *                                           (completed) or starts the saga (failed, cancelled)
 *
 * Instances. One plan node runs many times inside loops: an instance is a plan node plus the
 * item index of every loop around it, named by its path. Path segments: a step's id, a
 * branch's name (an if's "then" or "else" too), an iteration's item index
 * ("notify/email/send", "charge-all/3/charge", "big-order/then/review"). Step
 * ids are unique across a definition and the plan fixes which segment is which, so a path
 * names one instance. */
#ifndef KEEL_ENGINE_PLAN_H
#define KEEL_ENGINE_PLAN_H

#include "defn/defn.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum engine_node_kind {
    ENGINE_NODE_SEQUENCE,    /* children run one after another, in order */
    ENGINE_NODE_ACTIVITY,    /* leaf: one activity call (activity.h) */
    ENGINE_NODE_SLEEP,       /* leaf: a fixed-duration timer */
    ENGINE_NODE_SLEEP_UNTIL, /* leaf: a timer until an evaluated time */
    ENGINE_NODE_WAIT,        /* leaf: waits for a signal */
    ENGINE_NODE_PARALLEL,    /* container: one sequence per branch, all at once */
    ENGINE_NODE_FOR_EACH,    /* container: one sequence (the body), once per item */
    ENGINE_NODE_SET,         /* leaf: evaluates a template, its output */
    ENGINE_NODE_FAIL,        /* leaf: fails there with an error of its own */
    ENGINE_NODE_IF,          /* container: a sequence for then and one for else, of which its
                                condition enters one (or none: false without an else) */
    ENGINE_NODE_WORKFLOW,    /* leaf: starts a child execution and waits for it to end */
    ENGINE_NODE_CODE,        /* container: the root of a code execution (defn_code), running
                                until its program completes or fails it */
};

/* How a node ended, as its parent is told (child_ended). */
enum engine_outcome {
    ENGINE_OUTCOME_COMPLETED, /* it has its output; the parent goes on */
    ENGINE_OUTCOME_FAILED,    /* failed for good; the failure goes up and starts the saga */
    ENGINE_OUTCOME_CANCELLED, /* stopped by a cancel at its safe point, or not started because
                                 of one; goes up like a failure, the saga ends "cancelled" */
};

struct engine_plan_node {
    enum engine_node_kind kind;
    const char *id;     /* the step id (borrowed from the definition); NULL for sequences */
    const char *branch; /* a parallel's branch sequence: the branch name (borrowed); else NULL */
    const struct engine_plan_node *parent; /* NULL for the root */
    size_t index;                          /* position among its parent's children; 0 for root */
    const struct defn_step *step;          /* the step it comes from; NULL for the root */
    size_t step_index; /* a top-level step: its index in defn->steps and engine_state.steps;
                          0 for every other node */
    bool top;          /* a top-level step (a child of the root) */
    size_t loop_depth; /* how many for_each nodes enclose it (a for_each's body is inside its
                          loop; the for_each itself is not) */
    const struct engine_plan_node *loop;     /* the innermost for_each enclosing it, or NULL */
    const struct engine_plan_node *children; /* contiguous, in definition order; NULL when none */
    size_t n_children;
    /* The steps its templates read (${steps.<id>...} in its url, input, compensate,
     * sleep_until or items), each once: what an evaluation needs loaded. */
    const struct engine_plan_node **refs; /* points into the plan's refs pool */
    size_t n_refs;
    bool reads_input; /* one of those templates may read ${input...} */
    bool call;        /* a step call's leaf: owned by its instance (engine_call), not a plan */
};

struct engine_plan {
    const struct defn *d;                /* borrowed: must outlive the plan */
    const struct engine_plan_node *root; /* a sequence: the definition's steps */
    struct engine_plan_node *nodes;      /* owned; every node, root first */
    size_t n_nodes;
    const struct engine_plan_node **by_step; /* owned; the node of defn->steps[i], i < n_steps */
    size_t n_steps;
    json_t *by_id; /* owned; step id -> index in nodes, for every node with an id */
    bool nested;   /* some step holds steps: paths differ from ids and the engine evaluates
                      templates in a scope (engine.c); false keeps the flat fast path */
    bool code;     /* the plan of defn_code(): a code execution's */
    const struct engine_plan_node **output_refs; /* the steps the definition's output reads */
    size_t n_output_refs;
    bool output_reads_input;                   /* the definition's output may read ${input...} */
    const struct engine_plan_node **refs_pool; /* owned; every node's refs */
    size_t max_items; /* for_each: the most items an execution may iterate over; more fails the
                         step ("too_many_items"). ENGINE_PLAN_DEFAULT_MAX_ITEMS unless the
                         caller sets it after building (KEEL_FOR_EACH_MAX_ITEMS) */
};

#define ENGINE_PLAN_DEFAULT_MAX_ITEMS 10000

/* "sequence", "activity", "sleep", "sleep_until", "wait", "parallel", "for_each", "set",
 * "fail", "if", "workflow", "code". Returns a static string. */
const char *engine_node_kind_name(enum engine_node_kind k);

/* True for the kinds that hold other nodes (sequence, parallel, for_each, if). */
bool engine_node_is_container(enum engine_node_kind k);

/* Builds the plan of d, which it borrows (d must outlive it). Returns a new plan (caller frees
 * with engine_plan_free), or NULL when d is NULL, holds a step kind the plan does not know, or
 * a compound step without steps. */
struct engine_plan *engine_plan_build(const struct defn *d) __attribute__((warn_unused_result));

/* Fills *out with the leaf node of a step call's step st (activity, sleep, sleep_until, wait or
 * set), with no parent yet: engine_state_bind hangs it under a code plan's root. False for
 * another kind. */
bool engine_plan_call_node(const struct defn_step *st, struct engine_plan_node *out);

/* Frees p and everything it owns (not the definition). NULL is fine. */
void engine_plan_free(struct engine_plan *p);

/* The leaf of the definition's step i (v1 flat index), or NULL when out of range. Borrowed. */
const struct engine_plan_node *engine_plan_step_node(const struct engine_plan *p, size_t i);

/* The path of an instance of n, as history events, step rows and idempotency keys carry it:
 * the segments of n's ancestors below the root and of n itself, joined with '/' ("charge",
 * "notify/email/send", "charge-all/3/charge"). loop_indexes gives the item index of each
 * enclosing loop, outermost first (n->loop_depth of them). Returns a new string (caller
 * frees), "" for the root, or NULL when n is NULL or the number of loop indexes does not match
 * the loops around n. */
char *engine_plan_path(const struct engine_plan_node *n, const size_t *loop_indexes,
                       size_t n_loop_indexes) __attribute__((warn_unused_result));

/* The path of the definition's step i (v1: no loops, so one instance per step), for the
 * runner to put in events and step rows. Returns a new string (caller frees), or NULL when i is
 * out of range. */
char *engine_plan_step_path(const struct engine_plan *p, size_t i)
    __attribute__((warn_unused_result));

/* The node with this step id (at any depth), or NULL. Borrowed. */
const struct engine_plan_node *engine_plan_find(const struct engine_plan *p, const char *id);

/* The node an instance path names, with the item index of each loop around it written to
 * loop_indexes (outermost first; up to max_loops of them, *n_loops set to the count). Returns
 * NULL when the path names no node of p (an unknown id or branch, a segment out of place, an
 * index that is not a decimal number, more loops than max_loops). */
const struct engine_plan_node *engine_plan_resolve(const struct engine_plan *p, const char *path,
                                                   size_t *loop_indexes, size_t max_loops,
                                                   size_t *n_loops);

#endif
