-- Limits per destination (issue 12, point 4): an attempt that waits for the capacity of its
-- host (KEEL_HOST_LIMITS) says so on its step while it waits: {host, limit, concurrency, rate,
-- attempt, since}, set by the journal-only transition that writes waiting_for_capacity, cleared
-- by the one that follows its sending and by any later write of the step's row.
ALTER TABLE steps ADD COLUMN capacity_wait jsonb;
