-- Record the queues a worker serves, for a worker that serves every queue
-- ('*' first, then the queues it has found). Enqueuers notify a waiting
-- worker only of the queues in its row (enqueue.sql, pgjobs.wake), so the
-- found queues are listed by name; the '*' tells the leader's
-- unserved-queues check (unserved_queues.sql) that it serves any other too.
UPDATE pgjobs.workers SET queues = CAST(:queues AS text[])
WHERE id = CAST(:worker_id AS bigint)
