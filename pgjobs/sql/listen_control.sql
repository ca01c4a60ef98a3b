-- The channel on which pgjobs.cancel() asks a worker to stop a running job:
-- the payload is 'cancel WORKER_ID JOB_ID'.
LISTEN pgjobs_control
