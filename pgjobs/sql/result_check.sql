-- Whether one job has finished, for app.result(): its status, its result,
-- its last error and who cancelled it. Through the view: live first (the
-- primary key), then the history (its id index, per partition).
SELECT status, result, errors -> -1 AS last_error, cancelled_by
FROM pgjobs.jobs
WHERE id = CAST(:id AS bigint)
