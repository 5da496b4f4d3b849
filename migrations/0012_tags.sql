-- Tags (issue 12): string pairs given at start, e.g. {"customer": "42"}. The execution keeps
-- them as an object (returned with it, compared by a repeated start); execution_tags holds
-- one row per tag so that "the newest executions with customer=42" is one ordered index range
-- however many executions there are, and however many of them carry the tag. Rows are
-- written in the start's insert and removed with their execution.
ALTER TABLE executions ADD COLUMN tags jsonb;

CREATE TABLE execution_tags (
    key           text        NOT NULL,
    value         text        NOT NULL,
    created_at    timestamptz NOT NULL,  -- the execution's, for newest-first keyset pages
    execution_id  text        NOT NULL,
    PRIMARY KEY (key, value, created_at, execution_id)
);
