-- A transition reads the top-level rows, the input's instance with its ancestors, and their
-- children (not a for_each's iterations): each through an index, so that the read does not
-- scan every row of an execution with thousands of step instances.
CREATE INDEX steps_top ON steps (execution_id, position) WHERE parent_path IS NULL;
CREATE INDEX steps_children ON steps (execution_id, parent_path) WHERE kind <> 'iteration';
-- Waits, for a signal that names no step; on kind (which never changes), not on status, so
-- that a row's status can change in a HOT update.
CREATE INDEX steps_waits ON steps (execution_id) WHERE kind = 'wait';

-- A transition that drops pending tasks of one step finds them by (execution, step), not
-- among every task its execution ever had (deleted ones linger until vacuumed: an execution
-- with thousands of attempts would otherwise scan them all).
CREATE INDEX tasks_by_execution_step ON tasks (execution_id, step);
DROP INDEX tasks_by_execution;

-- Room in every page for new versions of its rows: a container's row is updated each time one
-- of its children ends (thousands of times for a large for_each), and an update that fits in
-- its page is a HOT update, which adds no index entries.
ALTER TABLE steps SET (fillfactor = 80);
