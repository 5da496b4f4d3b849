-- Retention (issue 12): the purge takes the executions that ended longest ago first, a small
-- batch at a time; this index holds only ended executions, so running ones cost it nothing.
CREATE INDEX executions_ended ON executions (completed_at) WHERE status <> 'running';
