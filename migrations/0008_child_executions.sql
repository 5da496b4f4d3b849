-- Child workflows: an execution started by a workflow step of another (its parent) knows the
-- parent and the step's path, so that its end is reported to that step (a child_ended task of
-- the parent, in the transaction that ends the child), and how deep it is in a chain of
-- children (a server limit bounds recursion).
ALTER TABLE executions ADD COLUMN parent_id text;
ALTER TABLE executions ADD COLUMN parent_path text;
ALTER TABLE executions ADD COLUMN depth integer NOT NULL DEFAULT 0;
-- GET /v1/executions?parent=<id>, newest first like the other lists.
CREATE INDEX executions_by_parent ON executions (parent_id, created_at DESC, id DESC)
    WHERE parent_id IS NOT NULL;
-- Tasks one execution's transition queues for another (a child's start, a parent's
-- child_ended, a parent's cancel or terminate of its child) take the other's owner as read
-- then; when that owner changed meanwhile (a takeover), the orphan sweep moves them. This
-- index keeps that sweep to these few tasks.
CREATE INDEX tasks_between_executions ON tasks (execution_id)
    WHERE kind IN ('child_start', 'child_ended', 'parent_cancel', 'parent_terminate');
