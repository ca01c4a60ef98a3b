-- Cancel one queued job (see pgjobs.cancel).
SELECT pgjobs.cancel(CAST(:id AS bigint))
