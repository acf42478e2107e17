-- Brings the column back for a rollback to release v1; the values are gone, so existing
-- jobs get an empty payload. (A literal default on a TEXT column needs MariaDB 10.2 or
-- later; MySQL 8.0 wants it as an expression: DEFAULT ('{}').)
ALTER TABLE jobs ADD COLUMN payload TEXT NOT NULL DEFAULT '{}';
