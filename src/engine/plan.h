/* The plan: a definition seen as a tree of nodes, the shape the interpreter walks. Built once
 * from a parsed definition (engine_plan_build) and read-only afterwards, so one plan can serve
 * every execution of that definition version, on any thread.
 *
 * Why in engine/ and not defn/: the node kinds are the interpreter's view of a definition
 * (a `sequence` is how the engine runs a step list; containers, paths with loop indexes and
 * instances are run-time notions), and keeping it here keeps the dependency one way,
 * engine -> defn. A definition is still parsed by defn/ alone.
 *
 * Shape today: a root `sequence` whose children are the definition's steps, all leaves
 * (activity, sleep, sleep_until, wait). The v1 state stays flat (engine_state.steps, parallel
 * to defn->steps, with one `current` cursor), so every leaf also carries its flat step index.
 *
 * Containers, and how the next kinds fit (design-v2 "The tree"). The interpreter drives every
 * container through two operations, dispatched on its kind (engine.c, "control flow"):
 *
 *   enter_node(node)                        start a node: a leaf schedules its attempt, timer or
 *                                           wait; a sequence enters its first child
 *   child_ended(container, child, outcome)  a child ended (completed, failed, or stopped by a
 *                                           cancel): the container starts more children or
 *                                           ends itself, handing its own outcome to its parent
 *                                           the same way; the root's end ends the execution
 *                                           (completed) or starts the saga (failed, cancelled)
 *
 * A `parallel` will be a new kind whose enter_node enters every branch (each branch a
 * `sequence` node with the branch name as its path segment) and whose child_ended counts the
 * ended branches (fail-fast: the first failure stops the others at their safe point, the
 * parallel ends when all have). A `for_each` will be a new kind whose body is a `sequence`
 * entered once per item index (an instance: the same plan node, told apart by its loop
 * indexes, which become path segments), starting the next index while fewer than
 * `concurrency` run, ending when every item did. Neither changes the leaves, the sequence, or
 * the input handlers; what they add is per-instance state (counters, next item), which v1's
 * flat state does not have yet and the v2 node rows will. */
#ifndef KEEL_ENGINE_PLAN_H
#define KEEL_ENGINE_PLAN_H

#include "defn/defn.h"

#include <stdbool.h>
#include <stddef.h>

enum engine_node_kind {
    ENGINE_NODE_SEQUENCE,    /* children run one after another, in order */
    ENGINE_NODE_ACTIVITY,    /* leaf: one activity call (activity.h) */
    ENGINE_NODE_SLEEP,       /* leaf: a fixed-duration timer */
    ENGINE_NODE_SLEEP_UNTIL, /* leaf: a timer until an evaluated time */
    ENGINE_NODE_WAIT,        /* leaf: waits for a signal */
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
    const char *id; /* the step id (borrowed from the definition); NULL for the root */
    const struct engine_plan_node *parent; /* NULL for the root */
    size_t index;                          /* position among its parent's children; 0 for root */
    const struct defn_step *step;          /* the step it comes from; NULL for the root */
    size_t step_index; /* v1: the step's index in defn->steps and engine_state.steps; leaves only
                          (0 for the root) */
    const struct engine_plan_node *children; /* contiguous, in definition order; NULL when none */
    size_t n_children;
};

struct engine_plan {
    const struct defn *d;                /* borrowed: must outlive the plan */
    const struct engine_plan_node *root; /* a sequence: the definition's steps */
    struct engine_plan_node *nodes;      /* owned; every node, root first */
    size_t n_nodes;
    const struct engine_plan_node **by_step; /* owned; the leaf of defn->steps[i], i < n_steps */
    size_t n_steps;
};

/* "sequence", "activity", "sleep", "sleep_until", "wait". Returns a static string. */
const char *engine_node_kind_name(enum engine_node_kind k);

/* True for the kinds that hold other nodes (today: sequence). */
bool engine_node_is_container(enum engine_node_kind k);

/* Builds the plan of d, which it borrows (d must outlive it). Returns a new plan (caller frees
 * with engine_plan_free), or NULL when d is NULL or holds a step kind the plan does not know. */
struct engine_plan *engine_plan_build(const struct defn *d) __attribute__((warn_unused_result));

/* Frees p and everything it owns (not the definition). NULL is fine. */
void engine_plan_free(struct engine_plan *p);

/* The leaf of the definition's step i (v1 flat index), or NULL when out of range. Borrowed. */
const struct engine_plan_node *engine_plan_step_node(const struct engine_plan *p, size_t i);

/* The path of an instance of n, as history events and idempotency keys will carry it: the
 * path segments of n's ancestors below the root and of n itself, joined with '/' ("charge";
 * later "notify/email/send", "charge-all/3/charge"). loop_indexes gives the index of each
 * enclosing loop, outermost first; no kind loops yet, so n_loop_indexes must be 0. Returns a
 * new string (caller frees), "" for the root, or NULL when n is NULL or the number of loop
 * indexes does not match the loops around n. */
char *engine_plan_path(const struct engine_plan_node *n, const size_t *loop_indexes,
                       size_t n_loop_indexes) __attribute__((warn_unused_result));

/* The path of the definition's step i (v1: no loops, so one instance per step), for the
 * runner to put in events and step rows. Returns a new string (caller frees), or NULL when i is
 * out of range. */
char *engine_plan_step_path(const struct engine_plan *p, size_t i)
    __attribute__((warn_unused_result));

#endif
