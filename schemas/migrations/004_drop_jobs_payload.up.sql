-- engine-ops: contract
-- Contract step of release v2: drops `jobs.payload`, which only release v1 reads. It breaks
-- v1, so it runs after the deploy, once no v1 instance is left (`up --phase contract`);
-- API v1 clients are served by release v2 by then and never needed the column.
ALTER TABLE jobs DROP COLUMN payload;
