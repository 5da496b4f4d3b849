-- What a step is doing and why, for readers (issue 8, point 14): its latest failed attempt's
-- error, when its next attempt or its timer is due, and its last heartbeat. "scheduled" no
-- longer covers a backoff or a sleep: those are "retrying" and "sleeping".

ALTER TABLE steps
    ADD COLUMN last_error      jsonb,        -- {type, message, ...} of the latest failed attempt
    ADD COLUMN next_attempt_at timestamptz,  -- status retrying: when the next attempt is sent
    ADD COLUMN due_at          timestamptz,  -- sleeping: the timer; waiting: the timeout, if any
    ADD COLUMN heartbeat       jsonb;        -- {"at": time, "details": any} of the last heartbeat

ALTER TABLE steps DROP CONSTRAINT steps_status_check;
ALTER TABLE steps ADD CONSTRAINT steps_status_check
    CHECK (status IN ('pending', 'scheduled', 'running', 'retrying', 'sleeping', 'waiting',
                      'completed', 'failed', 'skipped', 'compensated'));
