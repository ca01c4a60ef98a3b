-- Mark whether this worker has free slots and waits on LISTEN. Enqueuers
-- send NOTIFY only when some worker of the queue is waiting (DESIGN §6).
UPDATE pgjobs.workers SET awaiting_work = CAST(:awaiting AS boolean), last_seen_at = now()
WHERE id = CAST(:worker_id AS bigint)
