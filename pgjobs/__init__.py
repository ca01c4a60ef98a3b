"""pgjobs: a PostgreSQL-native background job queue for Python."""

from pgjobs._app import App
from pgjobs._breaker import CircuitBreaker
from pgjobs._context import CallNext, JobContext, Middleware, Snooze, current_job
from pgjobs._dependency import Dependency, after
from pgjobs._enqueue import JobSpec
from pgjobs._job import Job, Priority, Status
from pgjobs._retry import Constant, Exponential, Linear, RetryPolicy
from pgjobs._task import Call, Task
from pgjobs._workflow import Chain, Group, chain, group
from pgjobs.worker import Worker, WorkerConfig

__all__ = [
    "App",
    "Call",
    "CallNext",
    "Chain",
    "CircuitBreaker",
    "Constant",
    "Dependency",
    "Exponential",
    "Group",
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
    "after",
    "chain",
    "current_job",
    "group",
]

__version__ = "0.1.0"
