-- hata schema v1 (PostgreSQL). Keep in step with ../sqlite/0001_init.sql: same tables, columns
-- and meaning; only types and id generation differ. Booleans are BIGINT 0/1 and timestamps
-- RFC 3339 TEXT so that one set of queries serves both backends.

CREATE TABLE projects (
    key         TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    version     BIGINT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE environments (
    id          BIGSERIAL PRIMARY KEY,
    project     TEXT NOT NULL REFERENCES projects(key) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    protected   BIGINT NOT NULL,
    position    BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    -- Increases on every change that affects what this environment evaluates.
    revision    BIGINT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (project, key)
);

-- A flag with all its environment configs as one JSON document (the model's `Flag`).
CREATE TABLE flags (
    project     TEXT NOT NULL REFERENCES projects(key) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    doc         TEXT NOT NULL,
    version     BIGINT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (project, key)
);

CREATE TABLE segments (
    project     TEXT NOT NULL REFERENCES projects(key) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    doc         TEXT NOT NULL,
    version     BIGINT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (project, key)
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    project     TEXT,
    environment TEXT,
    role        TEXT,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT
);

-- Every change, written by the one write path in the same transaction as the change itself.
CREATE TABLE changes (
    id            BIGSERIAL PRIMARY KEY,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    project       TEXT,
    resource_key  TEXT NOT NULL,
    old_value     TEXT,
    new_value     TEXT,
    revisions     TEXT NOT NULL
);
CREATE INDEX changes_project ON changes (project, id);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
