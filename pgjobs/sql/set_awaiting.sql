-- Mark whether this worker has free slots and waits on LISTEN. Enqueuers
-- send NOTIFY only when some worker of the queue is waiting, since a
-- notifying commit takes a cluster-wide lock (README, How it works: Enqueue
-- and the conditional NOTIFY).
UPDATE pgjobs.workers SET awaiting_work = CAST(:awaiting AS boolean), last_seen_at = now()
WHERE id = CAST(:worker_id AS bigint)
