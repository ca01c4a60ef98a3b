"""The worker runtime: a Worker, the executor that runs handlers, and the services it supervises.

Each service is a `Service` (pgjobs/worker/_service.py) in a module of its
own: the fetcher claims jobs, the completer writes their outcomes in
batches, the heartbeat keeps the worker's row fresh, the listener wakes the
fetcher on NOTIFY (not in poll-only mode), and the leader elects one worker
per database to run the maintenance duties: the scheduler fires cron ticks,
the rescuer returns the jobs of dead workers, the pruner deletes old
finished jobs.
"""

from pgjobs.worker._config import WorkerConfig
from pgjobs.worker._worker import Worker

__all__ = ["Worker", "WorkerConfig"]
