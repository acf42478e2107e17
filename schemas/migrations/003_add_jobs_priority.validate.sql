-- Every existing job got the default priority.
SELECT COUNT(*) = 0 FROM jobs WHERE priority IS NULL
