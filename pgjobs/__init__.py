"""pgjobs: a PostgreSQL-native background job queue for Python."""

from pgjobs._app import App
from pgjobs._context import CallNext, JobContext, Middleware, Snooze, current_job
from pgjobs._enqueue import JobSpec
from pgjobs._job import Job, Priority, Status
from pgjobs._retry import Constant, Exponential, Linear, RetryPolicy
from pgjobs._task import Call, Task
from pgjobs.worker import Worker, WorkerConfig

__all__ = [
    "App",
    "Call",
    "CallNext",
    "Constant",
    "Exponential",
    "Job",
    "JobContext",
    "JobSpec",
    "Linear",
    "Middleware",
    "Priority",
    "RetryPolicy",
    "Snooze",
    "Status",
    "Task",
    "Worker",
    "WorkerConfig",
    "current_job",
]

__version__ = "0.1.0"
