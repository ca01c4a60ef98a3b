-- The first statement of a transactional job's transaction
-- (pgjobs/worker/_transaction.py): bounds how long the handler may leave
-- it idle. Local to the transaction (is_local true), so the pooled
-- connection goes back with the server's own setting, and it works through
-- a transaction-pooling PgBouncer. PostgreSQL ends the session of a
-- transaction idle past this, rolling it back.
SELECT set_config('idle_in_transaction_session_timeout', CAST(:idle_ms AS text), true)
