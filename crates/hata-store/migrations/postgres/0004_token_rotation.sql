-- Token rotation: a rotated token keeps its previous secret's hash until a chosen time, so
-- clients can move to the new secret without an outage.
ALTER TABLE tokens ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE tokens ADD COLUMN previous_valid_until TEXT;
ALTER TABLE tokens ADD COLUMN rotated_at TEXT;
