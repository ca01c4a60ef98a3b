-- Put one failed, cancelled or queued job back in line (see pgjobs.retry).
SELECT pgjobs.retry(CAST(:id AS bigint))
