-- Bound this session's lock waits (autocommit DDL of the pruner): :timeout, e.g. '5s'.
SELECT set_config('lock_timeout', CAST(:timeout AS text), false)
