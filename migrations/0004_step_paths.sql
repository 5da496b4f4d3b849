-- Steps that hold steps (parallel, for_each): a step instance is named by its path
-- ("notify/email/send", "charge-all/3/charge"), which is its id at the top level. Step rows
-- are keyed by path and say where they sit in the tree; events say which instance they are
-- about. Rows and events written before keep working: a top-level step's path is its id.

ALTER TABLE steps ADD COLUMN path text;
ALTER TABLE steps ADD COLUMN parent_path text;  -- NULL at the top level
ALTER TABLE steps ADD COLUMN kind text;         -- the step kind, or 'branch' / 'iteration'

UPDATE steps s SET path = s.step_id,
    kind = (SELECT CASE WHEN x.d ? 'activity' THEN 'activity'
                        WHEN x.d ? 'sleep' THEN 'sleep'
                        WHEN x.d ? 'sleep_until' THEN 'sleep_until'
                        WHEN x.d ? 'wait' THEN 'wait' END
            FROM executions e
            JOIN workflows w ON w.name = e.workflow AND w.version = e.version,
            LATERAL (SELECT w.definition->'steps'->s.position AS d) x
            WHERE e.id = s.execution_id);

ALTER TABLE steps ALTER COLUMN path SET NOT NULL;
ALTER TABLE steps DROP CONSTRAINT steps_pkey;
ALTER TABLE steps ADD PRIMARY KEY (execution_id, path);

-- NULL for events about the whole execution, and for events written before this migration
-- (readers take step, which was the path of every step then).
ALTER TABLE events ADD COLUMN path text;
