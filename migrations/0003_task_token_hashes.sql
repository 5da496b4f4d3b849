-- Task tokens are capabilities: only their SHA-256 (hex) is stored, never the token itself.
-- Every token is recorded in attempt_tokens in the transaction that journals its attempt as
-- started, so it is valid from the moment it is sent; a keeld that sends an attempt again
-- (after taking it over) issues a new token and records it too. A token completes its attempt
-- while that attempt is in flight (the interpreter decides), and only once (used_at).

-- Existing rows keep working: a token sent before this migration hashes to its new key.
ALTER TABLE attempt_tokens ADD COLUMN token_hash text;
UPDATE attempt_tokens SET token_hash = encode(sha256(convert_to(token, 'UTF8')), 'hex');
ALTER TABLE attempt_tokens DROP CONSTRAINT attempt_tokens_pkey;
ALTER TABLE attempt_tokens DROP COLUMN token;
ALTER TABLE attempt_tokens ALTER COLUMN token_hash SET NOT NULL;
ALTER TABLE attempt_tokens ADD PRIMARY KEY (token_hash);
ALTER TABLE attempt_tokens RENAME COLUMN created_at TO issued_at;
CREATE INDEX attempt_tokens_by_execution ON attempt_tokens (execution_id);

-- Tokens of attempts on the wire were kept only in their task: record them, so a receiver
-- that got one before the upgrade can still complete its attempt.
INSERT INTO attempt_tokens (token_hash, execution_id, step, attempt, compensation)
SELECT encode(sha256(convert_to(token, 'UTF8')), 'hex'), execution_id, step, attempt,
       kind = 'compensation'
FROM tasks
WHERE token IS NOT NULL AND step IS NOT NULL AND attempt IS NOT NULL
  AND kind IN ('activity', 'compensation')
ON CONFLICT (token_hash) DO NOTHING;

-- A task keeps only the hash of the token it was first sent with (it pairs the tasks a
-- transition inserts with their new ids); a resend issues a new token.
ALTER TABLE tasks RENAME COLUMN token TO token_hash;
UPDATE tasks SET token_hash = encode(sha256(convert_to(token_hash, 'UTF8')), 'hex')
WHERE token_hash IS NOT NULL;
