-- The database clock, which schedules' next fire times are computed against.
SELECT now() AS now
