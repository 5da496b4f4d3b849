/* The statement table. */
#include "store/stmt.h"

#include "store/pool.h"
#include "util/alloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {"id", "step"} of the execution's parent (the workflow step that started it), or null. */
#define PARENT_JSON                                                                                \
    "CASE WHEN e.parent_id IS NULL THEN NULL ELSE json_build_object('id', e.parent_id, 'step', "   \
    "e.parent_path) END"

/* A code execution keeps its name in `workflow` and has version 0: it shows a name and no
 * workflow. */
#define EXEC_KIND_JSON                                                                             \
    "'kind', e.kind, 'name', e.workflow, 'workflow', CASE WHEN e.kind = 'code' THEN NULL ELSE "    \
    "e.workflow END, 'version', CASE WHEN e.kind = 'code' THEN NULL ELSE e.version END"

/* The tag rows of the execution a start inserted (ins: id, created_at, tags); a CTE of its own
 * statement, so a start and its tags commit together. */
#define TAGS_INSERT                                                                                \
    "tg AS (INSERT INTO execution_tags (key, value, created_at, execution_id) SELECT t.key, "      \
    "t.value, ins.created_at, ins.id FROM ins, jsonb_each_text(ins.tags) t) "

#define EXEC_JSON_COLUMNS                                                                          \
    "json_build_object('id', e.id, " EXEC_KIND_JSON ", "                                           \
    "'status', e.status, 'input', e.input, 'output', e.output, 'error', e.error, "                 \
    "'created_at', keel_ts(e.created_at), 'updated_at', keel_ts(e.updated_at), "                   \
    "'completed_at', keel_ts(e.completed_at), 'last_call_at', keel_ts(e.last_call_at), "           \
    "'handler', e.handler - 'inactivity_timeout_ms', 'run', e.run, "                               \
    "'tags', coalesce(e.tags, '{}'), "                                                             \
    "'parent', " PARENT_JSON

/* An execution's summary, without input and output (e: its row): the step a running execution
 * is at (the state's "current"), with the signal it waits for from its definition; then its
 * created_at and id, the keyset cursor. */
#define EXEC_SUMMARY_COLUMNS                                                                       \
    "json_build_object('id', e.id, " EXEC_KIND_JSON ", 'status', e.status, 'created_at', "         \
    "keel_ts(e.created_at), 'updated_at', keel_ts(e.updated_at), "                                 \
    "'completed_at', keel_ts(e.completed_at), 'error', e.error, 'tags', coalesce(e.tags, '{}'), "  \
    "'parent', " PARENT_JSON ", 'current_step', (SELECT json_build_object('id', s.step_id, "       \
    "'kind', s.kind, 'status', s.status, 'attempts', s.attempts, 'last_error', s.last_error, "     \
    "'next_attempt_at', keel_ts(s.next_attempt_at), 'due_at', "                                    \
    "keel_ts(s.due_at), 'waiting_for_capacity', CASE WHEN s.status = 'running' THEN "              \
    "s.capacity_wait END, 'signal', CASE WHEN s.status = 'waiting' THEN "                          \
    "(SELECT w.definition->'steps'->s.position->'wait'->>'signal' FROM "                           \
    "workflows w WHERE w.name = e.workflow AND w.version = e.version) END) "                       \
    "FROM steps s WHERE e.status = 'running' AND s.execution_id = e.id AND "                       \
    "s.parent_path IS NULL AND s.kind IS DISTINCT FROM 'code' AND "                                \
    "s.position = (e.state->>'current')::int))::text, e.created_at::text, e.id"

/* The filters of GET /v1/executions and of bulk actions on an execution e: $1 workflow, $2
 * statuses (text[]), $3 since, $4 until, $8 parent, $9 name (a workflow's or a code
 * execution's), $10 tags (an object the execution's must contain); each NULL for no filter. */
#define EXEC_FILTER                                                                                \
    "($1::text IS NULL OR (e.workflow = $1 AND e.kind = 'workflow')) AND ($9::text IS NULL OR "    \
    "e.workflow = $9) AND ($2::text[] IS NULL OR e.status = ANY($2::text[])) AND "                 \
    "($3::timestamptz IS NULL OR e.created_at >= $3) AND ($4::timestamptz IS NULL OR "             \
    "e.created_at < $4) AND ($8::text IS NULL OR e.parent_id = $8) AND ($10::jsonb IS NULL OR "    \
    "e.tags @> $10::jsonb)"

/* A bulk action's range: $11 ids (text[]) or NULL, created at or before $7, after the cursor
 * ($5 created_at, $6 id) when $5 is set. */
#define BATCH_RANGE                                                                                \
    "($11::text[] IS NULL OR e.id = ANY($11::text[])) AND e.created_at <= $7::timestamptz AND "    \
    "($5::timestamptz IS NULL OR (e.created_at, e.id) > ($5::timestamptz, $6::text))"

#define BATCH_JSON                                                                                 \
    "json_build_object('id', id, 'action', action, 'filter', filter, 'reason', reason, 'status', " \
    "status, 'matched', matched, 'processed', acted + skipped, 'acted', acted, 'skipped', "        \
    "skipped, 'created_at', keel_ts(created_at), 'updated_at', keel_ts(updated_at), "              \
    "'completed_at', keel_ts(completed_at))::text"

/* A schedule as the API shows it (without its next due times, which keeld computes: see
 * SCHED_TIMES). */
#define SCHED_JSON                                                                                 \
    "json_build_object('id', id, 'workflow', workflow, 'cron', cron, 'timezone', timezone, "       \
    "'input', input, 'tags', coalesce(tags, '{}'), 'overlap', overlap, 'paused', paused, "         \
    "'next_due_at', keel_ts(next_due_at), 'last_due_at', keel_ts(last_due_at), "                   \
    "'last_execution_id', last_execution_id, 'created_at', keel_ts(created_at), 'updated_at', "    \
    "keel_ts(updated_at))::text"
/* What the next due times are computed from: cron, timezone, next_due_at (Unix seconds). */
#define SCHED_TIMES "cron, timezone, extract(epoch FROM next_due_at)::bigint"
/* A schedule locked for a start (ops/schedules.c, struct sched_row). */
#define SCHED_ROW                                                                                  \
    "id, workflow, cron, timezone, input::text, tags::text, overlap, paused, "                     \
    "extract(epoch FROM next_due_at)::bigint, last_execution_id"

/* One step of a code execution as the step call API shows it (s: its row). */
#define STEP_CALL_JSON                                                                             \
    "json_build_object('execution_id', s.execution_id, 'key', s.path, 'kind', s.kind, "            \
    "'position', s.position, 'status', s.status, 'attempts', s.attempts, 'replays', s.replays, "   \
    "'request_differs', coalesce(s.engine->>'differs', 'false')::bool, 'output', s.output, "       \
    "'error', s.error, 'last_error', s.last_error, 'next_attempt_at', "                            \
    "keel_ts(s.next_attempt_at), 'due_at', keel_ts(s.due_at), 'started_at', "                      \
    "keel_ts(s.started_at), 'completed_at', keel_ts(s.completed_at), 'waiting_for_capacity', "     \
    "CASE WHEN s.status = 'running' THEN s.capacity_wait END)"

/* Step rows as the runner rebuilds a partial engine state from them: [path, status, output,
 * error, engine], the top-level ones first in definition order, then the others by depth, so
 * that a row's parent always comes before it. */
#define STEP_ROWS_JSON                                                                             \
    "coalesce(json_agg(json_build_array(s.path, s.status, s.output, s.error, s.engine, "           \
    "s.request) "                                                                                  \
    "ORDER BY "                                                                                    \
    "s.parent_path IS NOT NULL, array_length(string_to_array(s.path, '/'), 1), s.position, "       \
    "s.path), '[]')::text"

/* Keelds alive by their liveness lock (runner/liveness.c): the lock's first key is "KEEL" in
 * ASCII, the second the owner id's hash; pg_locks shows the pair as classid, objid (with
 * objsubid 2). Advisory locks belong to one database, and a cluster may hold several Keel
 * databases. A keeld is dead when its lock is gone or its heartbeat ran out ($1 is this keeld,
 * never dead to itself). */
#define LIVE_KEELDS                                                                                \
    "live AS MATERIALIZED (SELECT l.objid FROM pg_locks l WHERE l.locktype = 'advisory' AND "      \
    "l.classid = 1262831948 AND l.objsubid = 2 AND l.granted AND l.database = (SELECT d.oid "      \
    "FROM pg_database d WHERE d.datname = current_database()))"
#define DEAD_KEELDS                                                                                \
    "dead AS MATERIALIZED (SELECT k.owner FROM keelds k WHERE k.owner <> $1 AND (k.alive_until "   \
    "< now() OR hashtext(k.owner)::oid NOT IN (SELECT objid FROM live)))"

static const struct {
    const char *name;
    const char *sql;
} statements[STMT__COUNT] = {
    [STMT_WORKFLOW_LOCK] = {"workflow_lock",
                            "SELECT pg_advisory_xact_lock(hashtext('keel.workflow:' || $1))"},
    [STMT_WORKFLOW_LATEST] = {"workflow_latest",
                              "SELECT version, digest, json_build_object('name', name, "
                              "'version', version, 'digest', digest, 'created_at', "
                              "keel_ts(created_at), 'definition', definition)::text "
                              "FROM workflows WHERE name = $1 ORDER BY version DESC LIMIT 1"},
    [STMT_WORKFLOW_VERSION] = {"workflow_version",
                               "SELECT version, digest, json_build_object('name', name, "
                               "'version', version, 'digest', digest, 'created_at', "
                               "keel_ts(created_at), 'definition', definition)::text "
                               "FROM workflows WHERE name = $1 AND version = $2"},
    [STMT_WORKFLOW_INSERT] = {"workflow_insert",
                              "INSERT INTO workflows (name, version, definition, digest) "
                              "VALUES ($1, $2, $3::jsonb, $4)"},
    [STMT_WORKFLOW_LIST] = {"workflow_list",
                            "SELECT DISTINCT ON (name) name, json_build_object('name', name, "
                            "'version', version, 'digest', digest, 'created_at', "
                            "keel_ts(created_at), 'definition', definition)::text "
                            "FROM workflows WHERE name > $1 ORDER BY name, version DESC "
                            "LIMIT $2"},
    [STMT_WORKFLOW_DEFN] = {"workflow_defn", "SELECT definition::text FROM workflows "
                                             "WHERE name = $1 AND version = $2"},
    [STMT_EXEC_INSERT] = {"exec_insert",
                          "WITH ins AS (INSERT INTO executions (id, workflow, version, status, "
                          "input, state, created_at, updated_at, owner, tags) SELECT $1, $2, "
                          "w.version, 'running', $4::jsonb, '{}', $5::timestamptz, "
                          "$5::timestamptz, $6, $7::jsonb FROM (SELECT version FROM workflows "
                          "WHERE name = $2 AND ($3::int IS NULL OR version = $3::int) ORDER BY "
                          "version DESC LIMIT 1) w ON CONFLICT (id) DO NOTHING RETURNING id, "
                          "version, created_at, tags), " TAGS_INSERT "SELECT id, version FROM ins"},
    [STMT_EXEC_INSERT_CODE] =
        {"exec_insert_code",
         "WITH ins AS (INSERT INTO executions (id, workflow, version, "
         "kind, status, input, state, created_at, updated_at, owner, "
         "handler, tags) VALUES ($1, $2, 0, 'code', 'running', $3::jsonb, "
         "'{}', $4::timestamptz, $4::timestamptz, $5, $6::jsonb, $7::jsonb) "
         "ON CONFLICT (id) DO NOTHING RETURNING id, created_at, tags), " TAGS_INSERT
         "SELECT id FROM ins"},
    [STMT_EXEC_SAME_CODE_START] = {"exec_same_code_start",
                                   "SELECT kind = 'code' AND workflow = $2 AND input = $3::jsonb "
                                   "AND handler IS NOT DISTINCT FROM $4::jsonb AND tags IS NOT "
                                   "DISTINCT FROM $5::jsonb FROM executions WHERE id = $1"},
    [STMT_EXEC_SAME_START] = {"exec_same_start",
                              "SELECT kind = 'workflow' AND workflow = $2 AND input = "
                              "$3::jsonb AND tags IS NOT DISTINCT FROM $4::jsonb FROM executions "
                              "WHERE id = $1"},
    /* The execution row, locked, with what a transition needs: the steps' results for the
     * expression context and the current owner of the task being consumed. The execution is
     * locked first (the materialized CTE runs before the outer query's subqueries), then the
     * task: every path locks in that order, so a transition consuming a task and one deleting
     * it (a task-token completion, a cancel) cannot deadlock. */
    /* Locks first, reads in a statement of its own: in READ COMMITTED a statement that waited
     * for a row lock still reads every other table with the snapshot taken before the wait, so
     * a read in the locking statement could miss the step results the previous holder
     * committed. The execution is locked before the task, as on every other path. */
    [STMT_EXEC_LOCK] = {"exec_lock",
                        "WITH e AS MATERIALIZED (SELECT id FROM executions WHERE id = $1 "
                        "FOR UPDATE) SELECT (SELECT t.lease_owner FROM tasks t "
                        "WHERE t.id = $2::bigint FOR UPDATE) FROM e"},
    [STMT_EXEC_LOCKED_READ] =
        {"exec_locked_read",
         /* The input is read only when a template may use it (STMT_EXEC_INPUT): it can be
          * large, and most transitions do not. */
         "SELECT e.workflow, e.version, e.status, e.state::text, NULL::text, e.last_seq, "
         /* Three disjoint parts, each a plain index scan (a bitmap scan would not skip the
          * dead index entries that a row updated thousands of times leaves behind), and each
          * path looked up on its own (LATERAL, OFFSET 0 so that it is not flattened into a
          * join), so that even a generic plan made while the table was small uses the whole
          * index key instead of reading every row of the execution. */
         "(SELECT " STEP_ROWS_JSON " FROM (SELECT s.* FROM steps s WHERE s.execution_id = e.id "
         "AND s.parent_path IS NULL UNION ALL SELECT s.* FROM unnest($3::text[]) AS p(path) "
         "CROSS JOIN LATERAL (SELECT * FROM steps s WHERE s.execution_id = e.id AND s.path = "
         "p.path AND s.parent_path IS NOT NULL OFFSET 0) s UNION ALL SELECT s.* FROM "
         "unnest($3::text[]) AS p(path) CROSS JOIN LATERAL (SELECT * FROM steps s WHERE "
         "s.execution_id = e.id AND s.parent_path = p.path AND s.kind <> 'iteration' AND s.path "
         "<> ALL($3::text[]) OFFSET 0) s) s), "
         "(SELECT t.lease_owner FROM tasks t WHERE t.id = $2::bigint), e.owner, e.parent_id, "
         "e.parent_path, e.handler IS NOT NULL, (extract(epoch FROM e.created_at) * 1000)::bigint "
         "FROM executions e WHERE e.id = $1"},
    [STMT_STEPS_LOAD] = {"steps_load",
                         "SELECT " STEP_ROWS_JSON " FROM unnest($2::text[]) AS p(path) CROSS "
                         "JOIN LATERAL (SELECT * FROM steps s WHERE s.execution_id = $1 AND "
                         "s.path = p.path OFFSET 0) s"},
    /* A step call's key as its program sees it, read without a lock: a replay is answered
     * from it and writes nothing. The key's row is under the root "" (parent_path ''). Its
     * Retry-After: a timer's or a backoff's time left (1 to 60 s); 1 s for the rest, which may
     * end at any moment (a wait's signal, an attempt's answer). */
    [STMT_STEP_CALL_READ] =
        {"step_call_read",
         "SELECT e.kind, e.status, coalesce(e.state->>'cancel_requested', 'false'), s.kind, "
         "s.status, (s.request = $3::jsonb)::text, s.request->'activity'->>'url', "
         "coalesce(s.engine->>'differs', 'false'), CASE WHEN s.status IN ('sleeping', "
         "'retrying') THEN greatest(1, least(60, ceil(extract(epoch FROM "
         "coalesce(s.next_attempt_at, s.due_at) - now())))::int) ELSE 1 END, CASE WHEN s.path IS "
         "NOT NULL "
         "THEN " STEP_CALL_JSON "::text END "
         "FROM executions e LEFT JOIN steps s ON s.execution_id = e.id AND s.path = $2 AND "
         "s.parent_path = '' WHERE e.id = $1"},
    [STMT_STEP_CALL_DONE] = {"step_call_done",
                             "SELECT coalesce(json_agg(s.path ORDER BY (s.engine->>'order')::int "
                             "DESC), '[]')::text FROM steps s WHERE s.execution_id = $1 AND "
                             "s.parent_path = '' AND s.status = 'completed'"},
    /* Two statements, each its own transaction, so that the counts never hold a row of one
     * table while they wait for a row of the other (a transition locks its execution, then
     * writes its steps); each row once, in id (then key) order. */
    [STMT_CALLS_LAST] = {"calls_last",
                         "UPDATE executions e SET last_call_at = greatest(e.last_call_at, x.at) "
                         "FROM (SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS x(id, at) "
                         "ORDER BY id) x WHERE e.id = x.id AND e.kind = 'code'"},
    [STMT_CALLS_REPLAYS] = {"calls_replays",
                            "UPDATE steps s SET replays = s.replays + x.n FROM (SELECT * FROM "
                            "unnest($1::text[], $2::text[], $3::int[]) AS x(e, k, n) ORDER BY e, "
                            "k) x WHERE s.execution_id = x.e AND s.path = x.k AND s.parent_path "
                            "= ''"},
    [STMT_STEP_CALL_LIST] =
        {"step_call_list",
         "SELECT " STEP_CALL_JSON "::text, s.position FROM steps s WHERE s.execution_id = $1 AND "
         "s.parent_path = '' AND s.position > $2::int ORDER BY s.position LIMIT $3::int"},
    /* A code execution's handler (api: POST /v1/executions with "handler"): a call queued with
     * the next run number, and the inactivity check armed (one per execution). */
    [STMT_HANDLER_QUEUE] =
        {"handler_queue",
         "WITH e AS (UPDATE executions SET run = run + 1 WHERE id = $1 AND handler IS NOT NULL "
         "RETURNING run, handler) INSERT INTO tasks (execution_id, kind, step, attempt, due_at, "
         "payload, owner) SELECT $1, 'handler_call', '', 1, $2::timestamptz, "
         "jsonb_strip_nulls(jsonb_build_object('url', e.handler->>'url', 'run', e.run, 'reason', "
         "$3::text, 'key', $4::text, 'timeout_ms', $6::bigint)), $5 FROM e RETURNING id"},
    [STMT_HANDLER_ARM] =
        {"handler_arm",
         "WITH e AS (SELECT handler FROM executions WHERE id = $1 AND handler IS NOT NULL), d AS "
         "(DELETE FROM tasks WHERE execution_id = $1 AND kind = 'handler_inactivity' AND "
         "lease_until IS NULL) INSERT INTO tasks (execution_id, kind, step, attempt, due_at, "
         "payload, owner) SELECT $1, 'handler_inactivity', '', NULL, $2::timestamptz + "
         "(e.handler->>'inactivity_timeout_ms')::bigint * interval '1 millisecond', NULL, $3 "
         "FROM e RETURNING id"},
    [STMT_HANDLER_IDLE] =
        {"handler_idle",
         "SELECT (extract(epoch FROM coalesce(e.last_call_at, e.created_at)) * 1000)::bigint, "
         "(e.handler->>'inactivity_timeout_ms')::bigint, EXISTS (SELECT 1 FROM steps s WHERE "
         "s.execution_id = e.id AND s.parent_path = '' AND s.status NOT IN ('completed', "
         "'failed', 'skipped', 'compensated')) FROM executions e WHERE e.id = $1 AND e.handler "
         "IS NOT NULL"},
    [STMT_STEPS_NOTIFY] = {"steps_notify",
                           "SELECT count(pg_notify('keel_steps', t)) FROM unnest($1::text[]) t"},
    [STMT_STEPS_LOAD_ALL] = {"steps_load_all",
                             "SELECT " STEP_ROWS_JSON " FROM steps s WHERE s.execution_id = $1"},
    [STMT_EXEC_INPUT] = {"exec_input", "SELECT input::text FROM executions WHERE id = $1"},
    /* One statement, so that the parent's transaction creates the child and queues its start,
     * or says why it cannot, with nothing in between. An existing row is this step's child only
     * when it names this parent and path (another execution that took the id is not adopted);
     * the CTEs share one snapshot, so a row inserted here is found through RETURNING. */
    [STMT_WORKFLOWS_REGISTERED] = {"workflows_registered",
                                   "SELECT DISTINCT name FROM workflows WHERE name = "
                                   "ANY($1::text[])"},
    [STMT_CHILD_START] =
        {"child_start",
         "WITH p AS (SELECT depth FROM executions WHERE id = $5), "
         /* The step's last child, and whether its effects were or are being undone (cancelled,
          * terminated, failed after its saga ran, or still being stopped by its parent's
          * earlier cancel): then a new child replaces it. */
         "last AS (SELECT c.id, c.status, c.version, c.owner, (c.status IN ('cancelled', "
         "'terminated') OR (c.status = 'failed' AND EXISTS (SELECT 1 FROM events ev WHERE "
         "ev.execution_id = c.id AND ev.type IN ('compensation_started', "
         "'compensation_completed', 'compensation_failed'))) OR (c.status = 'running' AND "
         "(c.state->>'cancel_requested' = 'true' OR EXISTS (SELECT 1 FROM tasks k WHERE "
         "k.execution_id = c.id AND k.kind IN ('parent_cancel', 'parent_terminate'))))) AS "
         "undone, (SELECT count(*) FROM "
         "executions k WHERE k.parent_id = $5 AND k.parent_path = $6) AS n FROM executions c "
         "WHERE c.parent_id = $5 AND c.parent_path = $6 ORDER BY c.created_at DESC, c.id DESC "
         "LIMIT 1), "
         "reuse AS (SELECT id, version, CASE WHEN status = 'running' THEN owner END AS owner "
         "FROM last WHERE NOT undone), "
         "newid AS (SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM last) THEN $1::text ELSE (SELECT "
         "CASE WHEN length($1::text) + length(sfx) <= 128 THEN $1::text || sfx ELSE "
         "left($1::text, 128 - length(sfx)) || sfx END FROM (SELECT ':' || (n + 1)::text AS sfx "
         "FROM last) x) END AS id WHERE NOT EXISTS (SELECT 1 FROM reuse)), "
         "v AS (SELECT version FROM workflows WHERE name = $2 AND ($3::int IS NULL OR version = "
         "$3::int) ORDER BY version DESC LIMIT 1), "
         "ok AS (SELECT newid.id, v.version, p.depth + 1 AS depth FROM newid, v, p WHERE "
         "p.depth + 1 <= $7::int), "
         "ins AS (INSERT INTO executions (id, workflow, version, status, input, state, "
         "created_at, updated_at, owner, parent_id, parent_path, depth) SELECT ok.id, $2, "
         "ok.version, 'running', $4::jsonb, '{}', $9::timestamptz, $9::timestamptz, $8, $5, $6, "
         "ok.depth FROM ok ON CONFLICT (id) DO NOTHING RETURNING id, version), "
         "mine AS (SELECT id, version, NULL::text AS owner, false AS again FROM ins UNION ALL "
         "SELECT id, version, owner, true FROM reuse), "
         "t AS (INSERT INTO tasks (execution_id, kind, due_at, owner) SELECT id, 'child_start', "
         "$9::timestamptz, coalesce(owner, $8) FROM mine RETURNING id), "
         "f AS (INSERT INTO tasks (execution_id, kind, step, due_at, owner, payload) SELECT $5, "
         "'child_ended', $6, $9::timestamptz, $8, jsonb_build_object('child', coalesce((SELECT "
         "id FROM newid), $1::text), 'status', 'not_started', 'error', CASE WHEN NOT EXISTS "
         "(SELECT 1 FROM v) THEN jsonb_build_object('type', 'child_not_found', 'message', CASE "
         "WHEN $3::int IS NULL THEN format('no workflow \"%s\" is registered', $2::text) ELSE "
         "format('workflow \"%s\" has no version %s', $2::text, $3::int) END) WHEN NOT EXISTS "
         "(SELECT 1 FROM ok) THEN jsonb_build_object('type', 'child_depth_exceeded', 'message', "
         "format('the child would be %s levels deep; the most allowed is %s "
         "(KEEL_MAX_CHILD_DEPTH)', (SELECT depth + 1 FROM p), $7::int)) ELSE "
         "jsonb_build_object('type', 'child_id_taken', 'message', format('execution %s exists "
         "and is not a child of this step', coalesce((SELECT id FROM newid), $1::text))) END) "
         "WHERE NOT EXISTS (SELECT 1 FROM mine) RETURNING id) "
         "SELECT id, version, again FROM mine"},
    [STMT_CHILD_STOP] = {"child_stop",
                         "INSERT INTO tasks (execution_id, kind, due_at, owner, payload) SELECT "
                         "id, $3, $5::timestamptz, coalesce(owner, $6), $4::jsonb FROM executions "
                         "WHERE parent_id = $1 AND parent_path = $2 AND status = 'running'"},
    [STMT_CHILD_REPORT] = {"child_report",
                           "INSERT INTO tasks (execution_id, kind, step, due_at, owner, payload) "
                           "SELECT p.id, 'child_ended', $3, $5::timestamptz, coalesce(p.owner, "
                           "$6), coalesce($4::jsonb, (SELECT jsonb_build_object('child', c.id, "
                           "'status', c.status, 'output', c.output, 'error', c.error) FROM "
                           "executions c WHERE c.id = $1)) FROM executions p WHERE p.id = $2 AND "
                           "p.status = 'running'"},
    [STMT_STEPS_ITEM] = {"steps_item",
                         "SELECT (s.items -> $3::int)::text FROM steps s WHERE s.execution_id = $1 "
                         "AND s.path = $2"},
    [STMT_STEPS_WAITING] = {"steps_waiting",
                            "SELECT s.path FROM steps s WHERE s.execution_id = $1 AND s.kind = "
                            "'wait' AND s.status = 'waiting'"},
    /* One transition's writes in one round trip. Data-modifying CTEs all run, each once, on
     * the same snapshot, which is what we want: the consumed task and the cancelled ones are
     * those that existed before, never the ones inserted here.
     * $1 id, $2 consumed task id or NULL, $3 this keeld, $4 events, $5 steps, $6 tasks,
     * $7 cancel other tasks, $8 status, $9 state, $10 last_seq, $11 output, $12 error,
     * $13 now, $14 ended, $15 notify claimers, $16 tasks to drop [{kind, step}], $17 tokens of
     * the attempts sent after COMMIT [{token_hash, step, attempt, compensation}], $18 the new
     * owner or NULL (unchanged), $19 the owner of the tasks inserted (the execution's) */
    /* One transition's writes (a batch of one: runner/batch_writes.c). Data-modifying CTEs all run,
     * each once, on the same snapshot, which is what we want: the consumed task and the cancelled
     * ones are those that existed before, never the ones inserted here. $1 id, $2 consumed task id
     * or NULL, $3 this keeld, $4 events, $5 steps, $6 tasks, $7 cancel other tasks, $8 status, $9
     * state, $10 last_seq, $11 output, $12 error, $13 now, $14 ended, $15 notify claimers, $16
     * tasks to drop [{kind, step}], $17 tokens of the attempts sent after COMMIT [{token_hash,
     * step, attempt, compensation}], $18 the new owner or NULL (unchanged), $19 the owner of the
     * tasks inserted (the execution's) */
    [STMT_EXEC_APPLY] =
        {"exec_apply",
         "WITH consumed AS (DELETE FROM tasks WHERE id = $2::bigint AND lease_owner = $3 "
         "RETURNING id), "
         "cancelled AS (DELETE FROM tasks WHERE $7::bool AND execution_id = $1 AND "
         "id IS DISTINCT FROM $2::bigint RETURNING id), "
         "dropped AS (DELETE FROM tasks t USING jsonb_to_recordset($16::jsonb) AS c(kind text, "
         "step text) WHERE $16::jsonb <> '[]'::jsonb AND t.execution_id = $1 AND t.kind = "
         "c.kind AND t.step = c.step AND t.id IS DISTINCT FROM $2::bigint RETURNING t.id), "
         "ev AS (INSERT INTO events (execution_id, seq, type, step, path, attempt, at, data) "
         "SELECT $1, e.seq, e.type, e.step, e.path, e.attempt, $13::timestamptz, "
         "coalesce(e.data, '{}') FROM jsonb_to_recordset($4::jsonb) AS e(seq bigint, type text, "
         "step text, path text, attempt int, data jsonb)), "
         /* last_error and heartbeat keep their stored value unless the row says it replaces
          * them (last_error_set, heartbeat_set); next_attempt_at and due_at go with status; a
          * row written again no longer waits for capacity (capacity_wait). */
         "st AS (INSERT INTO steps (execution_id, path, step_id, parent_path, kind, position, "
         "status, attempts, output, "
         "error, started_at, completed_at, last_error, next_attempt_at, due_at, heartbeat, "
         "engine, items, request) "
         "SELECT $1, s.path, s.id, s.parent, s.kind, s.position, s.status, s.attempts, s.output, "
         "s.error, s.started_at, "
         "s.completed_at, CASE WHEN s.last_error_set THEN s.last_error ELSE o.last_error END, "
         "s.next_attempt_at, s.due_at, CASE WHEN s.heartbeat_set THEN s.heartbeat "
         "ELSE o.heartbeat END, s.engine, CASE WHEN s.items_set THEN s.items ELSE o.items END, "
         "s.request "
         "FROM jsonb_to_recordset($5::jsonb) "
         "AS s(path text, id text, parent text, kind text, position int, status text, "
         "attempts int, output jsonb, error jsonb, "
         "started_at timestamptz, completed_at timestamptz, last_error jsonb, "
         "last_error_set bool, next_attempt_at timestamptz, due_at timestamptz, heartbeat jsonb, "
         "heartbeat_set bool, engine jsonb, items jsonb, items_set bool, request jsonb) "
         /* One index lookup per row written (a hash join would read every row of the
          * execution, thousands in a large for_each). */
         "LEFT JOIN LATERAL (SELECT o.last_error, o.heartbeat, o.items FROM steps o WHERE "
         "o.execution_id = $1 AND o.path = s.path OFFSET 0) o ON true "
         "ON CONFLICT (execution_id, path) DO UPDATE SET status = EXCLUDED.status, "
         "attempts = EXCLUDED.attempts, output = EXCLUDED.output, error = EXCLUDED.error, "
         "started_at = EXCLUDED.started_at, completed_at = EXCLUDED.completed_at, "
         "last_error = EXCLUDED.last_error, next_attempt_at = EXCLUDED.next_attempt_at, "
         "due_at = EXCLUDED.due_at, heartbeat = EXCLUDED.heartbeat, engine = EXCLUDED.engine, "
         "items = EXCLUDED.items, capacity_wait = NULL), "
         "tk AS (INSERT INTO tasks (execution_id, kind, step, attempt, due_at, payload, owner) "
         "SELECT $1, t.kind, t.step, t.attempt, t.due_at, t.payload, $19 "
         "FROM jsonb_to_recordset($6::jsonb) AS t(kind text, step text, attempt int, "
         "due_at timestamptz, payload jsonb)), "
         /* The tokens of the attempts journaled as started here (sent after COMMIT) are valid
          * from now on. */
         "tok AS (INSERT INTO attempt_tokens (token_hash, execution_id, step, attempt, "
         "compensation) SELECT t.token_hash, $1, t.step, t.attempt, t.compensation "
         "FROM jsonb_to_recordset($17::jsonb) AS t(token_hash text, step text, attempt int, "
         "compensation bool)), "
         "ex AS (UPDATE executions SET status = $8, state = $9::jsonb, last_seq = $10, "
         "owner = coalesce($18, owner), "
         "output = CASE WHEN $14::bool THEN $11::jsonb WHEN $8 = 'running' THEN NULL "
         "ELSE output END, error = CASE WHEN $14::bool THEN $12::jsonb WHEN $8 = 'running' "
         "THEN NULL ELSE error END, updated_at = $13::timestamptz, completed_at = CASE WHEN "
         "$14::bool THEN $13::timestamptz WHEN $8 = 'running' THEN NULL ELSE completed_at END "
         "WHERE id = $1) "
         "SELECT (SELECT count(*) FROM consumed), "
         "CASE WHEN $15::bool THEN pg_notify('keel_tasks', '') END, "
         "CASE WHEN $14::bool THEN pg_notify('keel_done', $1) END"},
    /* The writes of a whole batch of transitions in one statement, one DML per table, each
     * column one array parameter (runner/batch_writes.c). Data-modifying CTEs all run, each
     * once, on the same snapshot, which is what we want: the consumed task and the cancelled
     * ones are those that existed before, never the ones inserted here.
     * $1-$3 the (execution, kind, step) of pending tasks dropped, $4 the claimed tasks applied
     * (still leased to $5), $6 the executions all of whose tasks go; $7-$14 events; $15-$35
     * step rows (last_error, heartbeat and items keep their stored value unless the row says
     * it replaces them); $36-$42 tasks; $43-$47 task tokens of the attempts sent after COMMIT;
     * $48-$56 the executions; $57 a task for another keeld was inserted (NOTIFY).
     * Each row to change is found through its own index lookup (a LATERAL per element, kept
     * apart by OFFSET 0 or FOR UPDATE) and changed by ctid: a generic plan made while the
     * tables were small would otherwise scan them whole for every batch once they are large
     * (it did: 20,000 timers fired in 5.5 s instead of 1.7). The ctids are stable: the
     * executions and the consumed tasks were locked by this transaction, the other tasks are
     * locked by the lookup itself (FOR UPDATE follows a concurrent claim to its new row). */
    [STMT_BATCH_APPLY] =
        {"batch_apply",
         "WITH consumed AS (DELETE FROM tasks t USING (SELECT x.tid FROM unnest($4::bigint[]) AS "
         "c(id) CROSS JOIN LATERAL (SELECT ctid AS tid FROM tasks WHERE id = c.id AND lease_owner "
         "= $5 OFFSET 0) x) c WHERE t.ctid = c.tid RETURNING t.id), cancelled AS (DELETE FROM "
         "tasks t USING (SELECT x.tid FROM unnest($6::text[]) AS c(e) CROSS JOIN LATERAL (SELECT "
         "ctid AS tid FROM tasks WHERE execution_id = c.e AND id <> ALL($4::bigint[]) FOR UPDATE) "
         "x) c WHERE t.ctid = c.tid RETURNING t.id), dropped AS (DELETE FROM tasks t USING (SELECT "
         "x.tid FROM unnest($1::text[], $2::text[], $3::text[]) AS d(e, kind, step) CROSS JOIN "
         "LATERAL (SELECT ctid AS tid FROM tasks WHERE execution_id = d.e AND kind = d.kind AND "
         "step = d.step AND id <> ALL($4::bigint[]) AND execution_id <> ALL($6::text[]) FOR "
         "UPDATE) x) d WHERE t.ctid = d.tid RETURNING t.id), ev AS (INSERT INTO events "
         "(execution_id, seq, type, step, path, attempt, at, data) SELECT e.x, e.seq, e.type, "
         "e.step, e.path, e.attempt, e.at, coalesce(e.data, '{}') FROM unnest($7::text[], "
         "$8::bigint[], $9::text[], $10::text[], $11::text[], $12::int[], $13::timestamptz[], "
         "$14::jsonb[]) AS e(x, seq, type, step, path, attempt, at, data)), st AS (INSERT INTO "
         "steps (execution_id, path, step_id, parent_path, kind, position, status, attempts, "
         "output, error, started_at, completed_at, last_error, next_attempt_at, due_at, heartbeat, "
         "engine, items, request) SELECT s.x, s.path, s.id, s.parent, s.kind, s.position, "
         "s.status, "
         "s.attempts, s.output, s.error, s.started_at, s.completed_at, CASE WHEN s.last_error_set "
         "THEN s.last_error ELSE o.last_error END, s.next_attempt_at, s.due_at, CASE WHEN "
         "s.heartbeat_set THEN s.heartbeat ELSE o.heartbeat END, s.engine, CASE WHEN s.items_set "
         "THEN s.items ELSE o.items END, s.request FROM unnest($15::text[], $16::text[], "
         "$17::text[], "
         "$18::text[], $19::text[], $20::int[], $21::text[], $22::int[], $23::jsonb[], "
         "$24::jsonb[], $25::timestamptz[], $26::timestamptz[], $27::jsonb[], $28::bool[], "
         "$29::timestamptz[], $30::timestamptz[], $31::jsonb[], $32::bool[], $33::jsonb[], "
         "$34::jsonb[], $35::bool[], $36::jsonb[]) AS s(x, path, id, parent, kind, position, "
         "status, attempts, "
         "output, error, started_at, completed_at, last_error, last_error_set, next_attempt_at, "
         "due_at, heartbeat, heartbeat_set, engine, items, items_set, request) LEFT JOIN LATERAL "
         "(SELECT "
         "o.last_error, o.heartbeat, o.items FROM steps o WHERE o.execution_id = s.x AND o.path = "
         "s.path OFFSET 0) o ON true ON CONFLICT (execution_id, path) DO UPDATE SET status = "
         "EXCLUDED.status, attempts = EXCLUDED.attempts, output = EXCLUDED.output, error = "
         "EXCLUDED.error, started_at = EXCLUDED.started_at, completed_at = EXCLUDED.completed_at, "
         "last_error = EXCLUDED.last_error, next_attempt_at = EXCLUDED.next_attempt_at, due_at = "
         "EXCLUDED.due_at, heartbeat = EXCLUDED.heartbeat, engine = EXCLUDED.engine, items = "
         "EXCLUDED.items, capacity_wait = NULL), tk AS (INSERT INTO tasks (execution_id, kind, "
         "step, attempt, due_at, "
         "payload, owner) SELECT * FROM unnest($37::text[], $38::text[], $39::text[], $40::int[], "
         "$41::timestamptz[], $42::jsonb[], $43::text[])), tok AS (INSERT INTO attempt_tokens "
         "(token_hash, execution_id, step, attempt, compensation) SELECT * FROM "
         "unnest($44::text[], $45::text[], $46::text[], $47::int[], $48::bool[])), ex AS (UPDATE "
         "executions e SET status = u.status, state = u.state, last_seq = u.last_seq, owner = "
         "coalesce(u.take, e.owner), output = CASE WHEN u.ended THEN u.output WHEN u.status = "
         "'running' THEN NULL ELSE e.output END, error = CASE WHEN u.ended THEN u.error WHEN "
         "u.status = 'running' THEN NULL ELSE e.error END, updated_at = u.at, completed_at = CASE "
         "WHEN u.ended THEN u.at WHEN u.status = 'running' THEN NULL ELSE e.completed_at END FROM "
         "(SELECT u.*, x.tid FROM unnest($49::text[], $50::text[], $51::jsonb[], $52::bigint[], "
         "$53::jsonb[], $54::jsonb[], $55::timestamptz[], $56::bool[], $57::text[]) AS u(id, "
         "status, state, last_seq, output, error, at, ended, take) CROSS JOIN LATERAL (SELECT ctid "
         "AS tid FROM executions WHERE id = u.id OFFSET 0) x) u WHERE e.ctid = u.tid RETURNING "
         "e.id, u.ended) SELECT (SELECT count(*) FROM consumed), CASE WHEN $58::bool THEN "
         "pg_notify('keel_tasks', '') END, (SELECT count(pg_notify('keel_done', ex.id)) FROM ex "
         "WHERE ex.ended)"},
    [STMT_EXEC_JSON] =
        {"exec_json",
         "SELECT " EXEC_JSON_COLUMNS ", 'steps', (SELECT coalesce(json_agg(json_build_object('id', "
         "s.step_id, 'path', s.path, 'parent', s.parent_path, 'kind', s.kind, "
         "'position', s.position, "
         "'status', s.status, 'attempts', s.attempts, 'started_at', "
         "keel_ts(s.started_at), 'completed_at', keel_ts(s.completed_at), "
         "'output', s.output, 'error', s.error, 'last_error', s.last_error, "
         "'next_attempt_at', keel_ts(s.next_attempt_at), 'due_at', "
         "keel_ts(s.due_at), 'heartbeat', s.heartbeat, 'waiting_for_capacity', CASE WHEN "
         "s.status = 'running' THEN s.capacity_wait END, 'replays', s.replays, 'request_differs', "
         "coalesce(s.engine->>'differs', 'false')::bool, 'child', CASE WHEN s.kind = 'workflow' "
         "THEN (SELECT c.id FROM executions c WHERE c.parent_id = e.id AND c.parent_path = "
         "s.path ORDER BY c.created_at DESC, c.id DESC LIMIT 1) END) ORDER BY s.parent_path IS NOT "
         "NULL, "
         "s.parent_path, s.position), "
         "'[]') FROM steps s WHERE s.execution_id = e.id AND s.kind IS DISTINCT FROM "
         "'code'))::text, "
         "e.status, e.kind "
         "FROM executions e WHERE e.id = $1"},
    /* Summaries (EXEC_SUMMARY_COLUMNS) by EXEC_FILTER's $1-$4, $8-$10; $5 cursor created_at, $6
     * cursor id, $7 limit. */
    [STMT_EXEC_LIST] = {"exec_list",
                        "SELECT " EXEC_SUMMARY_COLUMNS " FROM executions e WHERE " EXEC_FILTER
                        " AND ($5::timestamptz IS NULL OR (e.created_at, e.id) < "
                        "($5, $6)) ORDER BY e.created_at DESC, e.id DESC LIMIT $7"},
    /* The rows of one tag ($11 key, $12 value) newest first, each joined to its execution: an
     * index range whatever the tag's share of the executions. The bounds are written so that
     * a generic plan still uses them as index conditions. */
    /* Which of several tags leads a tagged list: the one with the fewest executions, counted
     * up to 1,000 in the index (an index-only range each); its 1-based place in $1/$2. */
    [STMT_TAGS_RAREST] = {"tags_rarest",
                          "SELECT f.ord FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS "
                          "f(k, v, ord) ORDER BY (SELECT count(*) FROM (SELECT 1 FROM "
                          "execution_tags t WHERE t.key = f.k AND t.value = f.v LIMIT 1000) x), "
                          "f.ord LIMIT 1"},
    [STMT_EXEC_LIST_TAGGED] =
        {"exec_list_tagged",
         "SELECT " EXEC_SUMMARY_COLUMNS " FROM execution_tags t JOIN executions e ON e.id = "
         "t.execution_id WHERE t.key = $11 AND t.value = $12 AND t.created_at >= "
         "coalesce($3::timestamptz, '-infinity') AND t.created_at < coalesce($4::timestamptz, "
         "'infinity') AND (t.created_at, t.execution_id) < (coalesce($5::timestamptz, "
         "'infinity'), coalesce($6::text, '')) AND " EXEC_FILTER
         " ORDER BY t.created_at DESC, t.execution_id DESC LIMIT $7"},
    /* Retention and DELETE (store/purge.c): the lock, then the removal in a statement of its
     * own. */
    [STMT_PURGE_LOCK_ONE] = {"purge_lock_one",
                             "SELECT status FROM executions WHERE id = $1 FOR UPDATE"},
    [STMT_PURGE_LOCK_OLD] = {"purge_lock_old",
                             "SELECT id FROM executions WHERE status <> 'running' AND "
                             "completed_at < now() - $1::bigint * interval '1 millisecond' "
                             "ORDER BY completed_at LIMIT $2 FOR UPDATE SKIP LOCKED"},
    /* Up to 1,000 schedule events older than $1 ms. */
    [STMT_PURGE_SCHEDULE_EVENTS] = {"purge_schedule_events",
                                    "DELETE FROM schedule_events WHERE ctid = ANY(ARRAY(SELECT "
                                    "ctid FROM schedule_events WHERE at < now() - $1::bigint * "
                                    "interval '1 millisecond' LIMIT 1000))"},
    /* Up to 1,000 items of the batch that completed longest ago, more than $1 ms ago; the
     * batch itself once it has no more. */
    [STMT_PURGE_BATCH] = {"purge_batch",
                          "WITH b AS (SELECT id FROM batches WHERE status = 'completed' AND "
                          "completed_at < now() - $1::bigint * interval '1 millisecond' ORDER BY "
                          "completed_at LIMIT 1), i AS (DELETE FROM batch_items WHERE ctid = "
                          "ANY(ARRAY(SELECT ctid FROM batch_items WHERE batch_id IN (SELECT id "
                          "FROM b) LIMIT 1000)) RETURNING 1), d AS (DELETE FROM batches WHERE id "
                          "IN (SELECT id FROM b) AND (SELECT count(*) FROM i) < 1000 RETURNING 1) "
                          "SELECT (SELECT count(*) FROM i) + (SELECT count(*) FROM d)"},
    [STMT_PURGE] = {"purge",
                    "WITH ev AS (DELETE FROM events WHERE execution_id = ANY($1::text[]) "
                    "RETURNING 1), st AS (DELETE FROM steps WHERE execution_id = "
                    "ANY($1::text[]) RETURNING 1), sg AS (DELETE FROM signals WHERE "
                    "execution_id = ANY($1::text[]) RETURNING 1), tk AS (DELETE FROM tasks "
                    "WHERE execution_id = ANY($1::text[]) RETURNING 1), tt AS (DELETE FROM "
                    "attempt_tokens WHERE execution_id = ANY($1::text[]) RETURNING 1), tg AS "
                    "(DELETE FROM execution_tags t USING executions e, jsonb_each_text(e.tags) "
                    "k WHERE e.id = ANY($1::text[]) AND t.key = k.key AND t.value = k.value AND "
                    "t.created_at = e.created_at AND t.execution_id = e.id RETURNING 1), ex AS "
                    "(DELETE FROM executions WHERE id = ANY($1::text[]) AND status <> 'running' "
                    "RETURNING 1) SELECT (SELECT count(*) FROM ex), (SELECT count(*) FROM ev), "
                    "(SELECT count(*) FROM st), (SELECT count(*) FROM sg) + (SELECT count(*) "
                    "FROM tk) + (SELECT count(*) FROM tt) + (SELECT count(*) FROM tg)"},
    /* Bulk actions (api/batches.c, ops/batches.c). A batch's executions: EXEC_FILTER's
     * parameters, $11 ids (text[]), created at or before $7; after the cursor ($5, $6). */
    [STMT_BATCH_COUNT] = {"batch_count", "SELECT count(*) FROM executions e WHERE " EXEC_FILTER
                                         " AND " BATCH_RANGE},
    [STMT_BATCH_PAGE] = {"batch_page",
                         "SELECT e.id, e.created_at::text FROM executions e WHERE " EXEC_FILTER
                         " AND " BATCH_RANGE " ORDER BY e.created_at, e.id LIMIT $12"},
    [STMT_BATCH_INSERT] = {"batch_insert",
                           "INSERT INTO batches (id, action, filter, reason, matched, created_at, "
                           "updated_at, owner) VALUES ($1, $2, $3::jsonb, $4, $5, $6, $6, $7) "
                           "RETURNING "
                           "" BATCH_JSON},
    [STMT_BATCH_GET] = {"batch_get", "SELECT " BATCH_JSON " FROM batches WHERE id = $1"},
    [STMT_BATCH_LIST] = {"batch_list",
                         "SELECT " BATCH_JSON ", created_at::text, id FROM batches WHERE "
                         "(created_at, id) < (coalesce($1::timestamptz, 'infinity'), "
                         "coalesce($2::text, '')) ORDER BY created_at DESC, id DESC LIMIT $3"},
    /* A running batch no live keeld works on (or this one's, $1), the oldest first, made this
     * keeld's. */
    [STMT_BATCH_CLAIM] = {"batch_claim",
                          "UPDATE batches b SET owner = $1, updated_at = now() WHERE b.id = "
                          "(SELECT x.id FROM batches x WHERE x.status = 'running' AND (x.owner "
                          "IS NULL OR x.owner = $1 OR NOT EXISTS (SELECT 1 FROM keelds k WHERE "
                          "k.owner = x.owner AND k.alive_until > now())) ORDER BY x.created_at "
                          "LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING b.id, b.action, "
                          "b.filter::text, b.reason, b.cursor_at::text, b.cursor_id, "
                          "b.created_at::text"},
    [STMT_BATCH_ITEMS] = {"batch_items",
                          "SELECT json_build_object('execution_id', execution_id, 'result', "
                          "result, 'status', status, 'created_at', keel_ts(created_at))::text, "
                          "created_at::text, execution_id FROM batch_items WHERE batch_id = $1 "
                          "AND ($2::text IS NULL OR result = $2) AND (created_at, execution_id) > "
                          "(coalesce($3::timestamptz, '-infinity'), coalesce($4::text, '')) ORDER "
                          "BY created_at, execution_id LIMIT $5"},
    [STMT_BATCH_ITEM_SEEN] = {"batch_item_seen",
                              "SELECT 1 FROM batch_items WHERE batch_id = $1 AND created_at = "
                              "$2::timestamptz AND execution_id = $3"},
    [STMT_BATCH_ITEM_ADD] = {"batch_item_add",
                             "INSERT INTO batch_items (batch_id, created_at, execution_id, "
                             "result, status) SELECT $1, $2::timestamptz, $3, $4, status FROM "
                             "executions WHERE id = $3 ON CONFLICT DO NOTHING"},
    /* Moves the cursor from ($3, $4) to ($5, $6), adding the items recorded in between to the
     * counts (whoever recorded them: a page run again after a kill -9 counts once), and ends
     * the batch when $7; only while $2 owns it. */
    [STMT_BATCH_ADVANCE] =
        {"batch_advance",
         "WITH c AS (SELECT count(*) FILTER (WHERE result = 'acted') AS a, count(*) FILTER "
         "(WHERE result = 'skipped') AS s FROM batch_items WHERE batch_id = $1 AND "
         "($3::timestamptz IS NULL OR (created_at, execution_id) > ($3::timestamptz, $4::text)) "
         "AND (created_at, execution_id) <= ($5::timestamptz, $6::text)) UPDATE batches SET "
         "acted = acted + c.a, skipped = skipped + c.s, cursor_at = coalesce($5::timestamptz, "
         "cursor_at), cursor_id = coalesce($6::text, cursor_id), updated_at = now(), status = "
         "CASE WHEN $7::bool THEN 'completed' ELSE status END, completed_at = CASE WHEN "
         "$7::bool THEN now() END FROM c WHERE id = $1 AND owner = $2 RETURNING 1"},
    /* Schedules (api/schedules.c, ops/schedules.c). */
    [STMT_SCHED_INSERT] = {"sched_insert",
                           "WITH ins AS (INSERT INTO schedules (id, workflow, cron, timezone, "
                           "input, tags, overlap, next_due_at, created_at, updated_at) VALUES ($1, "
                           "$2, $3, $4, $5::jsonb, $6::jsonb, $7, $8::timestamptz, "
                           "$9::timestamptz, $9::timestamptz) ON CONFLICT (id) DO NOTHING "
                           "RETURNING id), ev AS (INSERT INTO schedule_events (schedule_id, type, "
                           "due_at, at) SELECT id, 'created', $8::timestamptz, $9::timestamptz "
                           "FROM ins) SELECT id FROM ins"},
    [STMT_SCHED_SAME] = {"sched_same",
                         "SELECT workflow = $2 AND cron = $3 AND timezone = $4 AND input = "
                         "$5::jsonb AND tags IS NOT DISTINCT FROM $6::jsonb AND overlap = $7 FROM "
                         "schedules WHERE id = $1"},
    [STMT_SCHED_GET] = {"sched_get",
                        "SELECT " SCHED_JSON ", " SCHED_TIMES " FROM schedules WHERE id = $1"},
    [STMT_SCHED_LIST] = {"sched_list", "SELECT " SCHED_JSON ", " SCHED_TIMES
                                       ", id FROM schedules WHERE id > coalesce($1::text, '') "
                                       "ORDER BY id LIMIT $2"},
    [STMT_SCHED_LOCK] = {"sched_lock", "SELECT " SCHED_ROW " FROM schedules WHERE id = $1 FOR "
                                       "UPDATE"},
    [STMT_SCHED_CLAIM_DUE] = {"sched_claim_due",
                              "SELECT " SCHED_ROW " FROM schedules WHERE NOT paused AND "
                              "next_due_at <= now() ORDER BY next_due_at LIMIT 1 FOR UPDATE SKIP "
                              "LOCKED"},
    [STMT_SCHED_EXEC_STATUS] = {"sched_exec_status", "SELECT status FROM executions WHERE id = $1"},
    /* A schedule's start: the execution, tagged keel.schedule=<its schedule>, and its first
     * task, as a child's (the runner starts it when the task is claimed); nothing when the id
     * exists (a start is never doubled). */
    [STMT_SCHED_START] = {"sched_start",
                          "WITH v AS (SELECT version FROM workflows WHERE name = $2 ORDER BY "
                          "version DESC LIMIT 1), ins AS (INSERT INTO executions (id, workflow, "
                          "version, status, input, state, created_at, updated_at, owner, tags) "
                          "SELECT $1, $2, v.version, 'running', $3::jsonb, '{}', $5::timestamptz, "
                          "$5::timestamptz, $6, coalesce($4::jsonb, '{}') || "
                          "jsonb_build_object('keel.schedule', $7::text) FROM v ON CONFLICT (id) "
                          "DO NOTHING "
                          "RETURNING id, created_at, tags), " TAGS_INSERT
                          ", t AS (INSERT INTO tasks (execution_id, kind, due_at, owner) SELECT "
                          "id, 'child_start', $5::timestamptz, $6 FROM ins RETURNING 1) SELECT "
                          "(SELECT count(*) FROM v), (SELECT count(*) FROM t), CASE WHEN EXISTS "
                          "(SELECT 1 FROM t) THEN pg_notify('keel_tasks', '') END"},
    [STMT_SCHED_CANCEL_PREV] = {"sched_cancel_prev",
                                "INSERT INTO tasks (execution_id, kind, due_at, owner, payload) "
                                "SELECT id, 'parent_cancel', $2::timestamptz, coalesce(owner, $3), "
                                "jsonb_build_object('reason', $4::text) FROM executions WHERE id "
                                "= $1 AND status = 'running' RETURNING pg_notify('keel_tasks', "
                                "'')"},
    [STMT_SCHED_ADVANCE] = {"sched_advance",
                            "UPDATE schedules SET next_due_at = $2::timestamptz, last_due_at = "
                            "coalesce($3::timestamptz, last_due_at), last_execution_id = "
                            "coalesce($4, last_execution_id), updated_at = now() WHERE id = $1"},
    [STMT_SCHED_EVENT] = {"sched_event",
                          "INSERT INTO schedule_events (schedule_id, type, due_at, execution_id, "
                          "data) VALUES ($1, $2, $3::timestamptz, $4, coalesce($5::jsonb, '{}'))"},
    [STMT_SCHED_PAUSE] = {"sched_pause",
                          "UPDATE schedules SET paused = $2::bool, next_due_at = CASE WHEN "
                          "$2::bool THEN next_due_at ELSE $3::timestamptz END, updated_at = now() "
                          "WHERE id = $1 AND paused <> $2::bool RETURNING id"},
    [STMT_SCHED_DELETE] = {"sched_delete",
                           "WITH d AS (DELETE FROM schedules WHERE id = $1 RETURNING id), e AS "
                           "(DELETE FROM schedule_events WHERE schedule_id IN (SELECT id FROM d)) "
                           "SELECT count(*) FROM d"},
    [STMT_SCHED_HISTORY] = {"sched_history",
                            "SELECT json_build_object('seq', seq, 'type', type, 'due_at', "
                            "keel_ts(due_at), 'execution_id', execution_id, 'data', data, 'at', "
                            "keel_ts(at))::text, seq FROM schedule_events WHERE schedule_id = $1 "
                            "AND seq < coalesce($2::bigint, 9223372036854775807) ORDER BY seq "
                            "DESC LIMIT $3"},
    [STMT_SCHED_NEXT_WAKE] = {"sched_next_wake",
                              "SELECT (extract(epoch FROM min(next_due_at) - now()) * "
                              "1000)::bigint FROM schedules WHERE NOT paused"},
    [STMT_EXEC_STATUS] = {"exec_status", "SELECT status, kind FROM executions WHERE id = $1"},
    /* Outputs stored once (runner/transition.c, compact_events) are put back into their
     * events: a step_completed's from its step row, an execution_completed's from the
     * execution. */
    [STMT_HISTORY] = {"history",
                      "SELECT json_build_object('seq', e.seq, 'type', e.type, 'step', e.step, "
                      "'path', coalesce(e.path, e.step), 'attempt', e.attempt, 'at', "
                      "keel_ts(e.at), 'data', CASE WHEN e.data ? 'output' OR e.type NOT IN "
                      "('step_completed', 'execution_completed') THEN e.data "
                      "WHEN e.type = 'step_completed' THEN e.data || jsonb_build_object("
                      "'output', (SELECT coalesce(s.output, 'null') FROM steps s WHERE "
                      "s.execution_id = e.execution_id AND s.path = coalesce(e.path, e.step))) "
                      "ELSE e.data || jsonb_build_object('output', (SELECT coalesce(x.output, "
                      "'null') FROM executions x WHERE x.id = e.execution_id)) END)::text, e.seq "
                      "FROM events e WHERE e.execution_id = $1 AND e.seq > $2 ORDER BY e.seq "
                      "LIMIT $3"},
    /* The owner's unleased due tasks in due order, and tasks whose lease ran out (their
     * claimer's job was given up), each by an index scan that reads no other task. */
    [STMT_TASKS_CLAIM] = {"tasks_claim",
                          "WITH due AS (SELECT k.id FROM tasks k WHERE k.owner = $1 AND "
                          "k.lease_until IS NULL AND k.due_at <= now() ORDER BY k.owner, "
                          "k.due_at LIMIT $3 FOR UPDATE SKIP LOCKED), lapsed AS (SELECT k.id "
                          "FROM tasks k WHERE k.lease_until < now() AND k.owner = $1 ORDER BY "
                          "k.lease_until LIMIT $3 FOR UPDATE SKIP LOCKED) "
                          "UPDATE tasks t SET lease_owner = $1, lease_until = now() + "
                          "(coalesce((t.payload->>'timeout_ms')::bigint, 0) + $2::bigint) * "
                          "interval '1 millisecond' WHERE t.id IN (SELECT id FROM (SELECT id "
                          "FROM due UNION ALL SELECT id FROM lapsed) c LIMIT $3) "
                          "RETURNING t.id, t.execution_id, t.kind, "
                          "t.step, t.attempt, t.payload::text, (SELECT e.workflow FROM "
                          "executions e WHERE e.id = t.execution_id), (SELECT e.version FROM "
                          "executions e WHERE e.id = t.execution_id)"},
    /* ORDER BY ... LIMIT 1 rather than min(): a generic plan computed min() by reading every
     * index entry of the owner (100,000 waiting timers: milliseconds per call). */
    [STMT_TASKS_NEXT_WAKE] = {"tasks_next_wake",
                              "SELECT ceil(extract(epoch FROM least((SELECT due_at FROM tasks "
                              "WHERE owner = $1 AND lease_until IS NULL ORDER BY owner, due_at "
                              "LIMIT 1), (SELECT lease_until FROM tasks WHERE lease_until IS NOT "
                              "NULL AND owner = $1 ORDER BY lease_until LIMIT 1)) - now()) * "
                              "1000)::bigint"},
    [STMT_LIVENESS_LOCK] = {"liveness_lock",
                            "SELECT pg_try_advisory_lock(1262831948, hashtext($1))"},
    [STMT_LEASES_OF_DEAD] = {"leases_of_dead",
                             "WITH " LIVE_KEELDS ", " DEAD_KEELDS " "
                             "UPDATE tasks t SET lease_until = now() WHERE t.lease_until > now() "
                             "AND t.lease_owner <> $1 AND (hashtext(t.lease_owner)::oid NOT IN "
                             "(SELECT objid FROM live) OR t.lease_owner IN (SELECT owner FROM "
                             "dead)) RETURNING t.id, t.lease_owner"},
    [STMT_KEELD_HEARTBEAT] = {"keeld_heartbeat",
                              "INSERT INTO keelds (owner, alive_until) VALUES ($1, now() + "
                              "$2::bigint * interval '1 millisecond') ON CONFLICT (owner) DO "
                              "UPDATE SET alive_until = EXCLUDED.alive_until"},
    /* Rows an execution locked by a transition under way are skipped: taken on a later sweep.
     * Driven from the dead owners (usually none), each looked up in executions_by_owner, and
     * each execution changed by the ctid its lookup locked: a plan that filtered every running
     * execution by a hashed list of dead owners cost 34 ms a second with 100,000 executions
     * waiting (a generic plan made while the tables were small scans them whole). */
    [STMT_TAKE_OVER] = {"take_over",
                        "WITH " LIVE_KEELDS ", " DEAD_KEELDS ", picked AS (SELECT x.id, x.owner, "
                        "x.tid FROM dead d CROSS JOIN LATERAL (SELECT e.id, e.owner, e.ctid AS tid "
                        "FROM executions e WHERE e.status = 'running' AND e.owner = d.owner "
                        "LIMIT $2 FOR UPDATE SKIP LOCKED) x LIMIT $2), "
                        "taken AS (UPDATE executions e SET owner = $1 FROM picked p WHERE "
                        "e.ctid = p.tid RETURNING e.id, p.owner), "
                        "moved AS (UPDATE tasks t SET owner = $1 WHERE t.execution_id = "
                        "ANY(ARRAY(SELECT id FROM taken))) "
                        "SELECT id, owner FROM taken"},
    /* The tasks one execution queues for another take the other's owner as read when queued:
     * one queued while a takeover of the other was under way keeps the dead owner. The orphan
     * sweep moves such tasks (few: they are claimed at once) to the current owner. */
    [STMT_TASKS_REALIGN] =
        {"tasks_realign", "WITH " LIVE_KEELDS " UPDATE tasks t SET owner = CASE WHEN e.status = "
                          "'running' AND e.owner IS NOT NULL THEN e.owner ELSE $1 END FROM "
                          "executions e WHERE t.kind IN ('child_start', 'child_ended', "
                          "'parent_cancel', 'parent_terminate') AND t.lease_until IS NULL AND "
                          "e.id = t.execution_id AND ((e.status = 'running' AND e.owner IS NOT "
                          "NULL AND t.owner IS DISTINCT FROM e.owner) OR (e.status <> 'running' "
                          "AND t.owner <> $1 AND hashtext(t.owner)::oid NOT IN (SELECT objid FROM "
                          "live))) RETURNING t.id"},
    [STMT_KEELDS_FORGET] = {"keelds_forget",
                            "WITH " LIVE_KEELDS ", " DEAD_KEELDS " DELETE FROM keelds k "
                            "WHERE k.owner IN (SELECT owner FROM dead) AND NOT EXISTS (SELECT 1 "
                            "FROM executions e WHERE e.status = 'running' AND e.owner = k.owner)"},
    /* An owner with no keelds row (its first heartbeat never landed, or its row was forgotten
     * while it was paused) and no liveness lock is registered as dead, for STMT_TAKE_OVER. */
    [STMT_KEELDS_ORPHANS] = {"keelds_orphans",
                             "WITH " LIVE_KEELDS " INSERT INTO keelds (owner, alive_until) "
                             "SELECT DISTINCT e.owner, '-infinity'::timestamptz FROM executions e "
                             "WHERE e.status = 'running' AND e.owner IS NOT NULL AND e.owner <> $1 "
                             "AND NOT EXISTS (SELECT 1 FROM keelds k WHERE k.owner = e.owner) "
                             "AND hashtext(e.owner)::oid NOT IN (SELECT objid FROM live) "
                             "ON CONFLICT (owner) DO NOTHING RETURNING owner"},
    /* The live keelds, for dividing the host limits among them: alive by their lock and their
     * heartbeat, this one always; ranked by owner id in byte order (the same on every keeld). */
    /* An attempt waits for the capacity of its host, or no longer does ($3 NULL). */
    [STMT_STEP_CAPACITY] = {"step_capacity",
                            "UPDATE steps SET capacity_wait = $3::jsonb WHERE execution_id = $1 "
                            "AND path = $2 AND capacity_wait IS DISTINCT FROM $3::jsonb"},
    [STMT_KEELDS_LIVE] = {"keelds_live",
                          "WITH " LIVE_KEELDS " SELECT 1 + count(*), count(*) FILTER (WHERE "
                          "k.owner COLLATE \"C\" < $1 COLLATE \"C\") FROM keelds k WHERE "
                          "k.owner <> $1 AND k.alive_until >= now() AND hashtext(k.owner)::oid "
                          "IN (SELECT objid FROM live)"},
    [STMT_TASK_RELEASE] = {"task_release",
                           "UPDATE tasks SET lease_owner = NULL, lease_until = NULL "
                           "WHERE id = $1::bigint AND lease_owner = $2"},
    [STMT_SIGNAL_NEXT] =
        {"signal_next",
         "SELECT id, payload::text, name FROM signals WHERE execution_id = $1 AND "
         "name = ANY($2::text[]) AND consumed_seq IS NULL AND id <> ALL($3::bigint[]) ORDER BY "
         "id LIMIT 1 FOR UPDATE"},
    [STMT_SIGNAL_CONSUME] = {"signal_consume",
                             "UPDATE signals SET consumed_seq = $2 WHERE id = $1::bigint"},
    [STMT_SIGNAL_INSERT] = {"signal_insert",
                            "INSERT INTO signals (execution_id, name, payload, idempotency_key, "
                            "received_at) VALUES ($1, $2, $3::jsonb, $4, $5::timestamptz) "
                            "ON CONFLICT (execution_id, idempotency_key) DO NOTHING RETURNING id"},
    [STMT_SIGNAL_BY_KEY] = {"signal_by_key",
                            "SELECT id, name, payload::text, consumed_seq IS NOT NULL, "
                            "name = $3, payload = $4::jsonb FROM "
                            "signals WHERE execution_id = $1 AND idempotency_key = $2"},
    [STMT_TOKEN_INSERT] = {"token_insert",
                           "INSERT INTO attempt_tokens (token_hash, execution_id, step, attempt, "
                           "compensation) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"},
    [STMT_TOKEN_FIND] = {"token_find",
                         "SELECT execution_id, step FROM attempt_tokens WHERE token_hash = $1"},
    [STMT_TOKEN_LOCK] = {"token_lock",
                         "SELECT execution_id, step, attempt, compensation, used_at IS NOT NULL "
                         "FROM attempt_tokens WHERE token_hash = $1 FOR UPDATE"},
    [STMT_TOKEN_USE] = {"token_use",
                        "UPDATE attempt_tokens SET used_at = now() WHERE token_hash = $1"},
    [STMT_WORKFLOW_PICK_VERSION] = {"workflow_pick_version",
                                    "SELECT version FROM workflows WHERE name = $1 AND ($2::int "
                                    "IS NULL OR version = $2::int) ORDER BY version DESC LIMIT 1"},
    [STMT_EXEC_LOCK_STATUS] = {"exec_lock_status",
                               "SELECT status FROM executions WHERE id = $1 FOR UPDATE"},
    /* The backlog gauges of /metrics, each an index-only range scan of an existing index
     * (EXPLAIN): running executions from executions_by_owner (partial on status = 'running'),
     * tasks not leased by due time from tasks_unleased_by_due (the oldest is its first entry),
     * leased ones from tasks_by_lease. Only the count by kind of the tasks not yet due reads
     * their rows (a sequential scan when they are most of the table: about 5 ms for 30,000
     * here); api/backlog.c runs it at most every 5 s, under a statement timeout. */
    [STMT_BACKLOG] = {"backlog",
                      "SELECT (SELECT count(*) FROM executions WHERE status = 'running'), "
                      "(SELECT count(*) FROM tasks WHERE lease_until IS NULL AND due_at <= "
                      "now()), (SELECT count(*) FROM tasks WHERE lease_until IS NULL AND due_at "
                      "<= now() - $1::bigint * interval '1 millisecond'), (SELECT "
                      "coalesce(extract(epoch FROM now() - min(due_at)), 0)::float8 FROM tasks "
                      "WHERE lease_until IS NULL AND due_at <= now()), (SELECT count(*) FROM "
                      "tasks WHERE lease_until IS NOT NULL), (SELECT coalesce(json_object_agg("
                      "kind, n), '{}')::text FROM (SELECT kind, count(*) AS n FROM tasks WHERE "
                      "lease_until IS NULL AND due_at > now() GROUP BY kind) k)"},
};

int store_ok(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

char *store_error(const PGresult *r, PGconn *conn)
{
    const char *msg = r ? PQresultErrorMessage(r) : NULL;
    if (!msg || !*msg)
        msg = PQerrorMessage(conn);
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    return xstrndup(msg, len);
}

int store_prepare_all(PGconn *conn, char **why)
{
    for (int i = 0; i < STMT__COUNT; i++) {
        PGresult *r = PQprepare(conn, statements[i].name, statements[i].sql, 0, NULL);
        if (!store_ok(r)) {
            char *inner = store_error(r, conn);
            *why = xasprintf("preparing %s: %s", statements[i].name, inner);
            free(inner);
            PQclear(r);
            return -1;
        }
        PQclear(r);
    }
    return 0;
}

PGresult *store_run(PGconn *conn, enum store_stmt s, int n_params, const char *const *params)
{
    return PQexecPrepared(conn, statements[s].name, n_params, params, NULL, NULL, 0);
}

int store_pipeline(PGconn *conn, const struct store_call *calls, int n, PGresult **results,
                   char **why)
{
    for (int i = 0; i < n; i++)
        results[i] = NULL;
    if (!PQenterPipelineMode(conn)) {
        *why = store_error(NULL, conn);
        return -1;
    }
    bool sent = true;
    for (int i = 0; i < n && sent; i++) {
        if (calls[i].command)
            sent = PQsendQueryParams(conn, calls[i].command, 0, NULL, NULL, NULL, NULL, 0);
        else
            sent = PQsendQueryPrepared(conn, statements[calls[i].stmt].name, calls[i].n_params,
                                       calls[i].params, NULL, NULL, 0);
    }
    if (!sent || !PQpipelineSync(conn)) {
        *why = store_error(NULL, conn);
        PQexitPipelineMode(conn);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        results[i] = PQgetResult(conn);
        if (!results[i])
            break; /* the connection failed */
        if (!store_ok(results[i]) && rc == 0) {
            *why = store_error(results[i], conn);
            rc = -1;
        }
        /* Each call's results end with a NULL. */
        PGresult *extra;
        while ((extra = PQgetResult(conn)))
            PQclear(extra);
    }
    /* Read up to the sync point, which ends the pipeline. */
    for (;;) {
        PGresult *r = PQgetResult(conn);
        if (!r)
            break;
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st == PGRES_PIPELINE_SYNC)
            break;
    }
    for (int i = 0; i < n; i++) {
        if (!results[i] && rc == 0) {
            *why = store_error(NULL, conn);
            rc = -1;
        }
    }
    if (!PQexitPipelineMode(conn) && rc == 0) {
        *why = store_error(NULL, conn);
        rc = -1;
    }
    /* Test-only pause while holding an execution's lock in a transition of its own (a runner
     * job, such as a result, anywhere in a worker's batch; not an input that writes before its
     * lock, such as a start, whose insert must commit first) (pool.h). */
    if (rc == 0 && n >= 2 && calls[0].command && !strcmp(calls[0].command, "BEGIN")) {
        for (int i = 1; i < n; i++) {
            bool after_begin_or_read =
                calls[i - 1].command || calls[i - 1].stmt == STMT_EXEC_LOCKED_READ;
            if (!calls[i].command && calls[i].stmt == STMT_EXEC_LOCK && after_begin_or_read)
                store_test_pause_point(calls[i].params[0]);
        }
    }
    return rc;
}

void store_array_element(struct buf *b, const char *s)
{
    buf_putc(b, '"');
    for (const char *c = s; *c; c++) {
        if (*c == '"' || *c == '\\')
            buf_putc(b, '\\');
        buf_putc(b, *c);
    }
    buf_putc(b, '"');
}

void store_text_array(struct buf *b, const char *const *items, size_t n)
{
    buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_putc(b, ',');
        store_array_element(b, items[i]);
    }
    buf_putc(b, '}');
}

int store_command(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    int ok = store_ok(r);
    PQclear(r);
    return ok ? 0 : -1;
}
