-- Keel's first tables. Every query of a running execution is keyed by its id, so executions can
-- later be partitioned by id without changing the queries.

-- Definitions are immutable: a change is a new version.
CREATE TABLE workflows (
    name        text        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    definition  jsonb       NOT NULL,
    digest      text        NOT NULL,  -- SHA-256 of the canonical JSON
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

CREATE TABLE executions (
    id            text        PRIMARY KEY,
    workflow      text        NOT NULL,
    version       integer     NOT NULL,
    status        text        NOT NULL
                  CHECK (status IN ('running', 'completed', 'failed', 'cancelled', 'terminated')),
    input         jsonb       NOT NULL DEFAULT 'null',
    output        jsonb,
    error         jsonb,
    state         jsonb       NOT NULL,      -- the interpreter's state
    last_seq      bigint      NOT NULL DEFAULT 0,  -- seq of the newest event
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    FOREIGN KEY (workflow, version) REFERENCES workflows (name, version)
);
-- Newest first, optionally by workflow or status; (created_at, id) is the keyset cursor.
CREATE INDEX executions_by_created ON executions (created_at DESC, id DESC);
CREATE INDEX executions_by_workflow ON executions (workflow, created_at DESC, id DESC);
CREATE INDEX executions_by_status ON executions (status, created_at DESC, id DESC);

-- The current state of each step, for cheap reads by the API and UI.
CREATE TABLE steps (
    execution_id  text        NOT NULL,
    step_id       text        NOT NULL,
    position      integer     NOT NULL,  -- index in the definition, for ordering
    status        text        NOT NULL
                  CHECK (status IN ('pending', 'scheduled', 'running', 'waiting', 'completed',
                                    'failed', 'skipped', 'compensated')),
    attempts      integer     NOT NULL DEFAULT 0,
    output        jsonb,
    error         jsonb,
    started_at    timestamptz,
    completed_at  timestamptz,
    PRIMARY KEY (execution_id, step_id)
);

-- The journal: append-only, never updated.
CREATE TABLE events (
    execution_id  text        NOT NULL,
    seq           bigint      NOT NULL,
    type          text        NOT NULL,
    step          text,
    attempt       integer,
    at            timestamptz NOT NULL DEFAULT now(),
    data          jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (execution_id, seq)
);

-- What is due to happen: an activity attempt, a timer, a wait timeout, a compensation.
-- A task whose lease has expired (its keeld died) is claimable again.
CREATE TABLE tasks (
    id            bigserial   PRIMARY KEY,
    execution_id  text        NOT NULL,
    kind          text        NOT NULL,
    step          text,
    attempt       integer,
    due_at        timestamptz NOT NULL DEFAULT now(),
    lease_owner   text,
    lease_until   timestamptz,
    payload       jsonb,               -- an activity attempt: url, evaluated input, timeout_ms
    token         text,                -- the task token sent with an activity attempt
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- A claimer sleeps until the earliest unleased due time or the earliest lease expiry.
CREATE INDEX tasks_unleased_by_due ON tasks (due_at) WHERE lease_until IS NULL;
CREATE INDEX tasks_by_lease ON tasks (lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX tasks_by_execution ON tasks (execution_id);

-- Signals sent to executions, kept until a wait consumes them.
CREATE TABLE signals (
    id               bigserial   PRIMARY KEY,
    execution_id     text        NOT NULL,
    name             text        NOT NULL,
    payload          jsonb       NOT NULL DEFAULT 'null',
    idempotency_key  text,
    received_at      timestamptz NOT NULL DEFAULT now(),
    consumed_seq     bigint,
    UNIQUE (execution_id, idempotency_key)
);
CREATE INDEX signals_unconsumed ON signals (execution_id, name, id) WHERE consumed_seq IS NULL;

-- Times in API answers: RFC 3339, UTC, milliseconds.
CREATE FUNCTION keel_ts(t timestamptz) RETURNS text
    LANGUAGE sql STABLE STRICT
    AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- Task tokens of attempts a receiver answered with 202, kept after their task is gone, so that
-- a repeated or late completion is told 409 (used) rather than 404 (never issued).
CREATE TABLE attempt_tokens (
    token         text        PRIMARY KEY,
    execution_id  text        NOT NULL,
    step          text        NOT NULL,
    attempt       integer     NOT NULL,
    compensation  boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    used_at       timestamptz
);
