-- Step down: release the leader lock, so another worker takes over at once.
SELECT pg_advisory_unlock(CAST(:key AS bigint)) AS answer
