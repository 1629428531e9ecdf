-- Evaluation counts (issue: serving). Telemetry, not configuration: written by the server's
-- counter flusher in batches, outside the one write path (nothing here is a change anyone
-- made, so nothing here belongs in the change record or bumps a revision).

-- How often each (environment, flag, variant, reason) was evaluated, per hour.
-- `hour` is the bucket's start as RFC 3339 UTC, e.g. `2026-11-23T14:00:00Z`.
CREATE TABLE evaluation_counts (
    project     TEXT NOT NULL,
    environment TEXT NOT NULL,
    flag        TEXT NOT NULL,
    hour        TEXT NOT NULL,
    variant     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (project, environment, flag, hour, variant, reason)
);

-- When each flag was last evaluated in each environment (the stale-flag report reads this).
CREATE TABLE flag_last_evaluated (
    project     TEXT NOT NULL,
    environment TEXT NOT NULL,
    flag        TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (project, environment, flag)
);

-- When the environment's revision last increased (OFREP `lastModified`). Existing rows start
-- from their last update.
ALTER TABLE environments ADD COLUMN revised_at TEXT NOT NULL DEFAULT '';
UPDATE environments SET revised_at = updated_at;
