-- Code executions (step calls, issue 10): an execution with no definition, driven by its
-- program's calls. Its name (which groups it in lists, like a workflow's name) is kept in
-- `workflow`, so that the lists, their filters and their indexes serve both kinds, and its
-- version is 0 (no definition; the engine runs defn_code() for it).
ALTER TABLE executions ADD COLUMN kind text NOT NULL DEFAULT 'workflow'
    CHECK (kind IN ('workflow', 'code'));
