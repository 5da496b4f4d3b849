-- Step calls (issue 10): a code execution's step row keeps the body of the call that created
-- it, written once. A later call of the same key is answered from the row: its kind and an
-- activity's URL must match (else 409), and a different body is marked as such (jsonb equality,
-- so key order and spacing do not count). NULL for every row of a definition's execution.
ALTER TABLE steps ADD COLUMN request jsonb;
