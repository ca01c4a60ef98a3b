"""The worker runtime: fetcher, executor, completer, listener, heartbeat and rescuer."""

from pgjobs.worker._config import WorkerConfig
from pgjobs.worker._worker import Worker

__all__ = ["Worker", "WorkerConfig"]
