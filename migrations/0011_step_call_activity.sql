-- Step calls (issue 10): what the program's calls leave behind without writing in their own
-- path. A replay writes nothing when it is answered; keeld counts replays per key and the time
-- of the last call per execution in memory and adds them here in one statement about once a
-- second (api/call_tracker.c), so that the UI can show replays and how long a program has
-- been idle. The handler (a URL Keel calls to run the program again) and its run counter.
ALTER TABLE steps ADD COLUMN replays integer NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN last_call_at timestamptz;
ALTER TABLE executions ADD COLUMN handler jsonb;
ALTER TABLE executions ADD COLUMN run integer NOT NULL DEFAULT 0;
