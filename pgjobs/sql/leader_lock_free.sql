-- Is the leader lock free? Asked by a worker that does not lead, through its
-- pool, before it opens a connection to try for the session lock: so that
-- a follower holds no connection of its own while another worker leads.
-- A transaction-level try of the same key conflicts with the session lock
-- (advisory locks of both levels share one key space) and is released when
-- this statement's transaction ends, a moment later; it works through a
-- transaction pooler too. Cheaper than reading pg_locks, which takes every
-- lock-manager partition lock of the server.
SELECT pg_try_advisory_xact_lock(CAST(:key AS bigint)) AS answer
