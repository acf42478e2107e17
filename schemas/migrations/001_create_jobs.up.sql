-- The optimisation jobs the example service accepts (API v1).
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    payload TEXT NOT NULL,
    created_at VARCHAR(32) NOT NULL
);
