-- One job with every column, and its derived state.
SELECT * FROM pgjobs.job_states WHERE id = CAST(:id AS bigint)
