-- A batch of jobs by COPY, as the text rows of copy_chunks in pgjobs/_enqueue.py,
-- once enqueue_copy_begin.sql has drawn their ids and woken the workers.
COPY pgjobs.jobs_live (id, task, args, queue, priority, run_at, max_attempts, meta, timeout, key) FROM STDIN
