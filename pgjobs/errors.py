"""Exceptions raised by pgjobs; each message says what was wrong and what to do."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AmbiguousTaskError",
    "ArgumentsError",
    "ConfigurationError",
    "DatabaseUnavailableError",
    "DuplicateJobError",
    "HandlerExitError",
    "IncompatibleWorkersError",
    "InvalidTransitionError",
    "JobCancelledError",
    "JobContextError",
    "JobFailedError",
    "JobNotFoundError",
    "PgjobsError",
    "ResultTooLargeError",
    "SchemaVersionError",
    "TaskTimeoutError",
    "TransactionIdleError",
    "UnknownTaskError",
]


class PgjobsError(Exception):
    """Base class of every error pgjobs raises on purpose."""


class ConfigurationError(PgjobsError, ValueError):
    """The configuration is unusable: a malformed DSN, a bad option value."""


class DatabaseUnavailableError(PgjobsError):
    """PostgreSQL could not be reached or refused the connection."""


class SchemaVersionError(PgjobsError):
    """The pgjobs schema is missing, older or newer than this code expects."""


class IncompatibleWorkersError(SchemaVersionError):
    """`migrate` refused: the target revision does not work with the code of running workers.

    Attributes:
        workers: the live rows of pgjobs.workers it would leave outside their window.
    """

    def __init__(self, message: str, workers: list[Any]) -> None:
        super().__init__(message)
        self.workers = workers


class UnknownTaskError(PgjobsError, LookupError):
    """A task name that the App has not registered."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = sorted(known)
        listing = ", ".join(self.known) if self.known else "(none)"
        super().__init__(
            f"unknown task {name!r}; registered tasks: {listing}. "
            "Register it with @app.task, or check the name for a typo."
        )


class AmbiguousTaskError(PgjobsError, LookupError):
    """A short task name that abbreviates more than one registered task."""

    def __init__(self, name: str, candidates: list[str]) -> None:
        self.name = name
        self.candidates = sorted(candidates)
        super().__init__(
            f"task name {name!r} is ambiguous: it could be {', '.join(self.candidates)}; "
            "give the full name of one of them."
        )


class ArgumentsError(PgjobsError, TypeError):
    """Task arguments that cannot be stored as JSON, or do not fit the signature."""


class ResultTooLargeError(ArgumentsError):
    """A handler returned more JSON than a stored result may hold: its job fails, not retried."""


class DuplicateJobError(PgjobsError):
    """An active (queued or running) job already holds this fingerprint."""

    def __init__(self, fingerprint: str, existing_id: int | None) -> None:
        self.fingerprint = fingerprint
        self.existing_id = existing_id
        super().__init__(
            f"an active job (id {existing_id}) already has fingerprint {fingerprint!r}; "
            "pass on_conflict='skip' or on_conflict='return' to accept duplicates quietly."
        )


class JobNotFoundError(PgjobsError, LookupError):
    """No job has this id."""


class InvalidTransitionError(PgjobsError):
    """The job is not in a state that allows this action (for example, retrying a running job)."""


class TaskTimeoutError(PgjobsError, TimeoutError):
    """A handler ran past its task's timeout."""


class TransactionIdleError(PgjobsError):
    """A transactional handler left its transaction idle past idle_in_transaction_session_timeout.

    PostgreSQL ended the session and rolled the transaction back, the
    handler's writes with it; the attempt fails and is retried by the task's
    policy.
    """

    def __init__(self, task: str, seconds: float, detail: str) -> None:
        self.seconds = seconds
        super().__init__(
            f"task {task!r} left its transaction idle longer than "
            f"idle_in_transaction_session_timeout ({seconds:g}s), so PostgreSQL ended the "
            f"session and rolled back its writes ({detail}). The transaction is open for "
            "the handler's whole run: move slow work that needs no database to a task of "
            "its own, or raise @app.task(idle_in_transaction_timeout=...)"
        )


class HandlerExitError(PgjobsError):
    """A handler called sys.exit() or raised KeyboardInterrupt: the job fails, the worker lives."""


class JobContextError(PgjobsError, LookupError):
    """`pgjobs.current_job()` was called outside a job handler."""


class JobCancelledError(PgjobsError):
    """The job was cancelled, or asked to stop.

    One class for both sides: `current_job().raise_if_cancelled()` raises it
    inside a handler whose job was asked to stop, and `app.result(id)` raises
    it for a job that ended cancelled.

    Attributes:
        job_id: the job's id.
        cancelled_by: who asked (`pgjobs.jobs.cancelled_by`), when known.
    """

    def __init__(
        self, job_id: int, message: str | None = None, *, cancelled_by: str | None = None
    ) -> None:
        self.job_id = job_id
        self.cancelled_by = cancelled_by
        super().__init__(
            message
            or f"job {job_id} was cancelled while it ran; the handler stopped at "
            "raise_if_cancelled(). Nothing to fix unless the cancel was a mistake: "
            "enqueue the job again."
        )


class JobFailedError(PgjobsError):
    """`app.result(id)` of a job that failed: it carries the last attempt's error.

    Attributes:
        job_id: the job's id.
        error: the last entry of `pgjobs.jobs.errors` (attempt, type, message,
            traceback, at), or None if the job failed without one.
    """

    def __init__(self, job_id: int, error: dict[str, Any] | None) -> None:
        self.job_id = job_id
        self.error = error
        if error:
            what = f"{error.get('type')}: {error.get('message')}"
            attempt = f" on attempt {error.get('attempt')}"
        else:
            what, attempt = "no error was recorded", ""
        super().__init__(
            f"job {job_id} failed{attempt}: {what}. See `python -m pgjobs jobs show {job_id}` "
            f"for the traceback; app.retry({job_id}) runs it again."
        )
