-- Engine and journal v2, storage per node: each step instance's interpreter state lives in its
-- own row (steps.engine), so a transition reads and writes only the instances it touches; the
-- execution keeps a small header (status, current top-level step, completion count, cancel
-- and saga flags: executions.state, version 2). A for_each's evaluated items are stored once,
-- apart (steps.items), and each iteration keeps its own element. Executions no longer need a
-- stored definition (step calls, next, have none).

ALTER TABLE steps ADD COLUMN engine jsonb;
ALTER TABLE steps ADD COLUMN items jsonb;

-- Version 1 states hold every instance in "steps": the top-level ones by position, the nested
-- ones with their "path".
UPDATE steps s SET engine = e.state->'steps'->s.position
FROM executions e
WHERE e.id = s.execution_id AND s.parent_path IS NULL
  AND jsonb_typeof(e.state->'steps') = 'array';

UPDATE steps s SET engine = x.el - 'path'
FROM executions e CROSS JOIN LATERAL jsonb_array_elements(e.state->'steps') AS x(el)
WHERE e.id = s.execution_id AND jsonb_typeof(e.state->'steps') = 'array'
  AND x.el->>'path' = s.path;

UPDATE steps SET items = engine->'items', engine = engine - 'items' WHERE engine ? 'items';

UPDATE steps s SET engine = s.engine || jsonb_build_object('item', p.items -> s.position)
FROM steps p
WHERE s.kind = 'iteration' AND p.execution_id = s.execution_id AND p.path = s.parent_path
  AND p.items IS NOT NULL;

UPDATE executions SET state = (state - 'steps') || '{"v": 2}' WHERE state ? 'steps';

ALTER TABLE executions DROP CONSTRAINT IF EXISTS executions_workflow_version_fkey;
