-- The channel on which enqueues wake idle workers: pgjobs.wake() and the
-- enqueue statements notify it, with the queue's name as the payload.
LISTEN pgjobs
