-- Bulk actions (issue 12): POST /v1/executions/cancel, /terminate and /retry with a filter
-- create a batch, which one keeld at a time works through in pages of executions in creation
-- order, each execution acted on by a transition of its own. batch_items records, in that
-- transition's transaction, that the batch reached the execution: after a kill -9 the batch
-- goes on from its cursor, and an execution it reached already is never acted on twice.
CREATE TABLE batches (
    id           text        PRIMARY KEY,
    action       text        NOT NULL CHECK (action IN ('cancel', 'terminate', 'retry')),
    filter       jsonb       NOT NULL,  -- {"workflow", "name", "status", "since", "until", "ids", "tags"}
    reason       text,
    status       text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed')),
    matched      bigint      NOT NULL,  -- executions matching the filter when it was created
    acted        bigint      NOT NULL DEFAULT 0,
    skipped      bigint      NOT NULL DEFAULT 0,  -- reached, but the action did not apply
    cursor_at    timestamptz,           -- the last execution reached: (created_at, id)
    cursor_id    text,
    owner        text,                  -- the keeld working on it (keelds.owner)
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    completed_at timestamptz
);
CREATE INDEX batches_by_created ON batches (created_at DESC, id DESC);
CREATE INDEX batches_running ON batches (created_at) WHERE status = 'running';

CREATE TABLE batch_items (
    batch_id      text        NOT NULL,
    created_at    timestamptz NOT NULL,  -- the execution's, for counting a page's range
    execution_id  text        NOT NULL,
    result        text        NOT NULL CHECK (result IN ('acted', 'skipped')),
    status        text,                  -- the execution's status once reached
    PRIMARY KEY (batch_id, created_at, execution_id)
);
