-- Cancel one queued job, or ask the worker running it to stop (see pgjobs.cancel).
-- :by names who asked; NULL records the SQL role.
SELECT pgjobs.cancel(CAST(:id AS bigint), CAST(:by AS text))
