-- Schedules (issue 12): a workflow started on a cron calendar in an IANA time zone. A keeld's
-- scheduler takes a due schedule (FOR UPDATE SKIP LOCKED), starts the execution
-- "<schedule id>:<due time>" (ON CONFLICT DO NOTHING: never twice, whoever tries) and moves
-- next_due_at on, in one transaction. After downtime only the latest missed due time starts;
-- schedule_events says which were missed, skipped or started.
CREATE TABLE schedules (
    id                 text        PRIMARY KEY,
    workflow           text        NOT NULL,
    cron               text        NOT NULL,
    timezone           text        NOT NULL,
    input              jsonb       NOT NULL DEFAULT 'null',
    tags               jsonb,
    overlap            text        NOT NULL CHECK (overlap IN ('skip', 'allow', 'cancel_previous')),
    paused             boolean     NOT NULL DEFAULT false,
    next_due_at        timestamptz,  -- NULL: it never fires again
    last_due_at        timestamptz,
    last_execution_id  text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_due_at) WHERE NOT paused;

CREATE TABLE schedule_events (
    schedule_id   text        NOT NULL,
    seq           bigserial,
    type          text        NOT NULL,  -- created, started, skipped, missed, paused, resumed, triggered, start_failed
    due_at        timestamptz,
    execution_id  text,
    data          jsonb       NOT NULL DEFAULT '{}',
    at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, seq)
);
