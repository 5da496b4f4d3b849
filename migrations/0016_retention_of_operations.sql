-- Retention (issue 12) of what operations leave behind: a schedule's events and a completed
-- batch's items go the way of the executions once older than KEEL_RETENTION, a small batch at
-- a time, found by these indexes.
CREATE INDEX schedule_events_by_at ON schedule_events (at);
CREATE INDEX batches_completed ON batches (completed_at) WHERE status = 'completed';
