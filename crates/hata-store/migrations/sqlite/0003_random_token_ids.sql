-- Token ids used to be `tok_` and the first 64 bits of the secret's SHA-256: an offline
-- guessing oracle for operator-chosen secrets, shown in lists, the change record, exports and
-- stream tickets. New tokens get random ids; this gives the existing ones random ids too.
-- (Change records written before keep the ids they had: the record is history.)
UPDATE tokens
SET id = 'tok_' || lower(hex(randomblob(8)))
WHERE id = 'tok_' || substr(secret_hash, 1, 16);
