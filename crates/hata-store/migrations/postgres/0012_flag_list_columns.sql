-- The flags list's columns (issue 25, web UI): what a project's flag list filters and sorts
-- by, kept beside each flag's document so that a page of 10,000 flags is found in SQL without
-- decoding every document (`hata_store::flag_list`). Derived from the document: written with
-- it by the one write path and by imports. NULL `name_lower` marks a row whose columns are not
-- filled yet (written before this migration, or by a replica of an earlier version during a
-- rolling upgrade); the store fills such rows from their document at start-up and before a
-- list reads them, which the partial index keeps cheap to find.
--   name_lower, description_lower: name and description lower-cased (Unicode, by Rust), for
--     case-insensitive search and sorting by name;
--   owner: as written; flag_type: `boolean`, `string`, `number` or `json`;
--   tags_lower: the tags lower-cased, as a JSON array (a tag filter matches one element
--     exactly, quotes included); archived: 0 or 1.
ALTER TABLE flags ADD COLUMN name_lower TEXT;
ALTER TABLE flags ADD COLUMN description_lower TEXT;
ALTER TABLE flags ADD COLUMN owner TEXT;
ALTER TABLE flags ADD COLUMN flag_type TEXT;
ALTER TABLE flags ADD COLUMN tags_lower TEXT;
ALTER TABLE flags ADD COLUMN archived BIGINT;
CREATE INDEX flags_unlisted ON flags (project) WHERE name_lower IS NULL;
-- The list's query in key order without a search or tag reads only this index (an index-only
-- scan, once vacuum has marked the pages visible). Descriptions and tags are left out: a
-- B-tree entry must stay under about 2.7 KB, and a description may hold 10,000 characters.
CREATE INDEX flags_list ON flags (project, archived, key) INCLUDE (name_lower, updated_at, owner, flag_type);
