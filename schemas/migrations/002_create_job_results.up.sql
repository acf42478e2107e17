CREATE TABLE job_results (
    job_id INTEGER NOT NULL PRIMARY KEY,
    score DOUBLE PRECISION NOT NULL,
    finished_at VARCHAR(32) NOT NULL
);
CREATE INDEX job_results_finished_at ON job_results (finished_at);
