-- Expand step for API v2: a new column with a default, so v1 code that does not know it
-- keeps inserting rows.
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
