-- The change record becomes the audit log (hata-audit): every entry is linked to the one
-- before it by `prev_hash` and `hash` (SHA-256 over the previous hash and the entry's
-- canonical JSON), and the chain head is signed from time to time (`audit_checkpoints`).
-- `id` is the entry's sequence number, given by the write path under the chain lock, never
-- by the column's default. Rows written before this migration are hashed, oldest first, by
-- the store right after migrating (their `at` rewritten with microseconds, as entries have).
ALTER TABLE changes ADD COLUMN actor_name TEXT;
ALTER TABLE changes ADD COLUMN role TEXT;
ALTER TABLE changes ADD COLUMN environment TEXT;
ALTER TABLE changes ADD COLUMN patch TEXT;
ALTER TABLE changes ADD COLUMN ip TEXT;
ALTER TABLE changes ADD COLUMN user_agent TEXT;
ALTER TABLE changes ADD COLUMN prev_hash TEXT;
ALTER TABLE changes ADD COLUMN hash TEXT;
CREATE INDEX changes_resource ON changes (resource_type, resource_key, id);
CREATE INDEX changes_at ON changes (at);

-- Signed chain heads: `signature` is Ed25519 over the head (`seq`, `hash`, `at`, `key_id`).
CREATE TABLE audit_checkpoints (
    seq       BIGINT PRIMARY KEY,
    hash      TEXT NOT NULL,
    at        TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL
);

-- The chain head, read under the chain lock in one round trip: a volatile PL/pgSQL function
-- takes a new snapshot for each query under READ COMMITTED, so the SELECT sees every entry
-- committed before the lock was granted (a single SQL statement would not: its snapshot is
-- taken before it waits).
CREATE FUNCTION hata_audit_head(lock_key BIGINT) RETURNS TABLE (id BIGINT, hash TEXT)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN QUERY SELECT c.id, c.hash FROM changes c ORDER BY c.id DESC LIMIT 1;
END
$$;

-- A replica still running the previous version during a rolling upgrade would append rows
-- without hashes (and with ids from the column's sequence, which the chain does not use),
-- breaking the chain for everyone. Refuse them: that replica's admin writes fail until it is
-- upgraded (its evaluations are unaffected). An import of a document written before the chain
-- (`SET LOCAL hata.importing = 'on'`) may insert unchained rows; they are chained after it.
CREATE FUNCTION hata_changes_chained() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.hash IS NULL AND current_setting('hata.importing', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'the change record is an audit chain since this database was upgraded: upgrade this hata replica';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER changes_chained BEFORE INSERT ON changes
    FOR EACH ROW EXECUTE FUNCTION hata_changes_chained();
