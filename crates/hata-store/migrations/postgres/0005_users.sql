-- People: users with passwords (argon2id PHC strings; NULL for single-sign-on-only users),
-- their roles in projects, and their browser sessions. Booleans are BIGINT 0/1 and times RFC
-- 3339 TEXT, as everywhere, so one set of queries serves both backends.
CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    -- Trimmed and lower-cased: the login name.
    email           TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    password_hash   TEXT,
    admin           BIGINT NOT NULL,
    disabled        BIGINT NOT NULL,
    version         BIGINT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    password_changed_at TEXT,
    last_login_at   TEXT,
    -- Consecutive failed logins since the last success or lock, and until when the next
    -- attempt must wait (slowed down or locked; see hata_access::lockout).
    failed_logins   BIGINT NOT NULL DEFAULT 0,
    retry_after     TEXT,
    locked_until    TEXT
);

CREATE TABLE memberships (
    project     TEXT NOT NULL REFERENCES projects(key) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (project, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

-- Only the SHA-256 of the cookie's secret is kept.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
