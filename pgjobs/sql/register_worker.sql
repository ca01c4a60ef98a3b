-- A worker announces itself; its id marks the jobs it claims. code_revision
-- and version (revision 0015) tell `migrate` which schemas its code runs on.
INSERT INTO pgjobs.workers (id, host, pid, queues, concurrency, meta, code_revision, version)
OVERRIDING SYSTEM VALUE
VALUES (
    coalesce(CAST(:id AS bigint), nextval(pg_get_serial_sequence('pgjobs.workers', 'id'))),
    CAST(:host AS text), CAST(:pid AS integer), CAST(:queues AS text[]),
    CAST(:concurrency AS integer), CAST(:meta AS jsonb), CAST(:code_revision AS text),
    CAST(:version AS text)
)
ON CONFLICT (id) DO UPDATE SET last_seen_at = now()
RETURNING id
