-- Single sign-on: which account at which OpenID provider (issuer, subject) is which user. A
-- user is found by this link, never by email alone (an email at a provider may change hands).
CREATE TABLE user_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX user_identities_by_user ON user_identities (user_id);

-- Whether the session was opened with a second factor (a TOTP code at login, a confirmation
-- in it, or a provider saying so): what the MFA policies read.
ALTER TABLE sessions ADD COLUMN mfa BIGINT NOT NULL DEFAULT 0;
