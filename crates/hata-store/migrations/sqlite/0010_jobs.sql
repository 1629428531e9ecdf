-- Scheduled jobs (issue 26): one row per occurrence of a job, scheduled or asked for through
-- the API. Operational telemetry, not configuration: written by the scheduler outside the one
-- write path (nobody changed anything; nothing here belongs in the change record).
--
-- Exactly one replica runs each occurrence: the occurrence is inserted once (the unique
-- (job, scheduled_at) makes every replica's insert of it but the first a no-op), and a replica
-- takes it (outcome pending/retrying -> running) with a conditional UPDATE in a transaction
-- that holds the job's lock (PostgreSQL: an advisory transaction lock; SQLite: its one
-- writer). A running row carries a lease its replica renews; past the lease, another replica
-- counts the attempt as failed and retries it.
CREATE TABLE job_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job             TEXT NOT NULL,
    -- When the occurrence was due (RFC 3339 UTC, milliseconds); for a run asked for through
    -- the API, when it was asked for.
    scheduled_at    TEXT NOT NULL,
    -- schedule | manual
    origin          TEXT NOT NULL,
    -- Who asked for a manual run (the actor's id), else NULL.
    requested_by    TEXT,
    -- pending | running | retrying | succeeded | failed
    outcome         TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    -- The current or last attempt.
    started_at      TEXT,
    finished_at     TEXT,
    duration_ms     BIGINT,
    -- The last failed attempt's error; what a succeeded run reported, if anything, in detail.
    error           TEXT,
    detail          TEXT,
    -- When a retrying run's next attempt is due.
    next_attempt_at TEXT,
    -- The replica running (or that last ran) it, and until when its claim holds.
    replica         TEXT,
    lease_until     TEXT,
    UNIQUE (job, scheduled_at)
);
CREATE INDEX job_runs_outcome ON job_runs (job, outcome);
CREATE INDEX job_runs_finished ON job_runs (job, outcome, finished_at);

-- Retention deletes evaluation data by age in small batches; without these each batch would
-- scan the whole table.
CREATE INDEX evaluation_counts_hour ON evaluation_counts (hour);
CREATE INDEX flag_last_evaluated_at ON flag_last_evaluated (at);
