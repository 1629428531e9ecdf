-- Two-factor authentication. A user's TOTP secret (base32) is pending until confirmed with a
-- code; `last_step` is the last 30 s step a code was accepted for, so a code works once.
-- Recovery codes are kept as SHA-256 only. `users.mfa` mirrors "has a confirmed TOTP" for
-- the reads every request makes. None of this is exported: an authenticator is enrolled
-- again after a restore into another installation.
CREATE TABLE user_totp (
    user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret       TEXT NOT NULL,
    confirmed_at TEXT,
    last_step    BIGINT NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL
);

CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   TEXT,
    PRIMARY KEY (user_id, code_hash)
);

ALTER TABLE users ADD COLUMN mfa BIGINT NOT NULL DEFAULT 0;
