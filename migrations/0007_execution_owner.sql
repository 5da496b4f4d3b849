-- Engine and journal v2, ownership: a running execution is driven by one keeld, its owner. The
-- owner alone sends its attempts, claims its due tasks and journals its webhook results, so an
-- attempt sent at once needs no task row (no insert and delete per attempt): the step row says
-- it is in flight and the owner is its lease. The owner changes only at the start and when a
-- keeld takes over the executions of one that died (its liveness lock is gone) or stopped
-- making progress (its heartbeat in keelds ran out).

ALTER TABLE executions ADD COLUMN owner text;
CREATE INDEX executions_by_owner ON executions (owner) WHERE status = 'running';

-- One row per keeld that may own executions: alive_until is pushed forward every second or so
-- while the keeld makes progress. A keeld is dead when its liveness lock is gone or this has
-- run out; its running executions are then taken over.
CREATE TABLE keelds (
    owner        text        PRIMARY KEY,
    alive_until  timestamptz NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now()
);

-- Running executions from before: owned by a keeld that will never be alive, so that the first
-- keeld to look takes them over (and sends again the attempts they had in flight).
INSERT INTO keelds (owner, alive_until) VALUES ('keel:before-0007', '-infinity');
UPDATE executions SET owner = 'keel:before-0007' WHERE status = 'running';

-- Attempts sent at once used to hold a task leased until their timeout. Their execution's new
-- owner sends the ones in flight again; a task leased but not yet journaled as started is
-- claimed again by the owner. Every task is free to claim.
UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL;

-- A task belongs to its execution's owner (copied here, and moved with it at a takeover), so
-- that an owner claims its due tasks with an index scan in due order, reading no others and
-- none that it has claimed already.
ALTER TABLE tasks ADD COLUMN owner text;
UPDATE tasks t SET owner = e.owner FROM executions e WHERE e.id = t.execution_id;
CREATE INDEX tasks_claimable_by_owner ON tasks (owner, due_at) WHERE lease_until IS NULL;
