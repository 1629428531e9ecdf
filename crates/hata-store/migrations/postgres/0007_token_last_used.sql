-- When each token was last used (telemetry, written in batches by the server like evaluation
-- counts; not exported, not in the change record).
ALTER TABLE tokens ADD COLUMN last_used_at TEXT;
