-- Enqueue one job with a fingerprint, in the caller's transaction, through the
-- SQL API: no row and no wake-up when an active job already holds the
-- fingerprint. A delay is added to the database clock, never to the client's.
-- A job without a fingerprint takes enqueue.sql.
SELECT pgjobs.enqueue(
    task         => CAST(:task AS text),
    args         => CAST(:args AS jsonb),
    queue        => CAST(:queue AS text),
    priority     => CAST(:priority AS integer),
    run_at       => coalesce(CAST(:run_at AS timestamptz),
                             now() + make_interval(secs => CAST(:delay AS double precision))),
    fingerprint  => CAST(:fingerprint AS text),
    max_attempts => CAST(:max_attempts AS integer),
    meta         => CAST(:meta AS jsonb),
    timeout      => CAST(:timeout AS double precision),
    key          => CAST(:key AS text)
) AS id
