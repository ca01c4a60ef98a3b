"""Per-call enqueue options, validated before anything touches the database (pure)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, TypedDict

from pgjobs._dependency import Dependency, always_ids, check_depends_on, parent_ids
from pgjobs._job import Priority
from pgjobs.errors import ConfigurationError

OnConflict = Literal["raise", "skip", "return"]
_ON_CONFLICT = ("raise", "skip", "return")

#: The key of `jobs.meta` that holds a job's correlation id.
CORRELATION_KEY = "correlation_id"
#: The longest correlation id accepted (a UUID is 36, a W3C trace id 32).
MAX_CORRELATION_ID = 128
#: The longest job key accepted (the domain pgjobs.job_key refuses longer ones).
MAX_KEY = 255
#: The key of `jobs.meta` that holds the ids a job depends on (`depends_on`).
DEPENDS_ON_KEY = "depends_on"
#: The key of `jobs.meta` that holds those of them named with `pgjobs.after(id, always=True)`.
DEPENDS_ALWAYS_KEY = "depends_on_always"


class EnqueueKwargs(TypedDict, total=False):
    """The enqueue options as keyword arguments: `**options: Unpack[EnqueueKwargs]`.

    `Task.options`, `App.job` and `App.enqueue` take these; an option left
    out, or passed as None, keeps its default (the task's, else pgjobs').
    At run time this is a plain dict: `EnqueueOptions.merge` checks it.

    Attributes:
        queue: the queue to put the job on.
        priority: 0 (critical) to 4 (bulk); lower runs first.
        delay: seconds (or a timedelta) to wait before the job may run.
        run_at: an aware datetime before which the job may not run.
        max_attempts: attempts before the job is `failed`.
        fingerprint: dedup key among active (queued or running) jobs.
        on_conflict: what a duplicate fingerprint does: "raise"
            (DuplicateJobError), "skip" (enqueue returns None) or
            "return" (enqueue returns the existing job's id).
        meta: JSON metadata stored with the job (trace ids, tags).
        correlation_id: the id bound as `correlation_id` in the log lines of
            the job's run (stored as `meta["correlation_id"]`): a request id,
            say. At most 128 characters. Left out, a job enqueued while
            another runs takes that one's id.
        timeout: seconds this job's run may take, instead of its task's
            timeout (stored in `jobs.timeout`).
        key: what the job's queue limits by, such as "customer:42"
            (`app.queue(..., key_concurrency=N)` runs at most N jobs of one
            key at once). 1 to 255 characters; stored in `jobs.key`.
    """

    queue: str | None
    priority: int | None
    delay: float | dt.timedelta | None
    run_at: dt.datetime | None
    max_attempts: int | None
    fingerprint: str | None
    on_conflict: OnConflict | None
    meta: dict[str, Any] | None
    correlation_id: str | None
    timeout: float | None
    key: str | None
    depends_on: Sequence[int | Dependency] | None


@dataclass(frozen=True, slots=True)
class EnqueueOptions:
    """Where, when and how a job is queued. Every field has been checked."""

    queue: str = "default"
    priority: int = Priority.NORMAL
    delay: float | None = None
    run_at: dt.datetime | None = None
    max_attempts: int = 3
    fingerprint: str | None = None
    on_conflict: OnConflict = "raise"
    meta: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
    timeout: float | None = None
    key: str | None = None
    depends_on: tuple[int | Dependency, ...] | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        check_priority(self.priority)
        if self.delay is not None:
            if isinstance(self.delay, dt.timedelta):
                object.__setattr__(self, "delay", self.delay.total_seconds())
            if not isinstance(self.delay, int | float) or isinstance(self.delay, bool):
                raise ConfigurationError(
                    f"delay must be seconds or a timedelta, got {self.delay!r}"
                )
            if not math.isfinite(self.delay) or self.delay < 0:
                raise ConfigurationError(
                    f"delay must be a finite number of seconds >= 0, got {self.delay!r}; "
                    "to run a job now, leave delay out"
                )
        if self.run_at is not None:
            if not isinstance(self.run_at, dt.datetime):
                raise ConfigurationError(f"run_at must be a datetime, got {self.run_at!r}")
            offset = self.run_at.utcoffset()
            if offset is None:
                raise ConfigurationError(
                    f"run_at {self.run_at.isoformat()} has no timezone, so its instant is "
                    "ambiguous; "
                    "pass an aware datetime, e.g. datetime.now(timezone.utc) + timedelta(hours=1)"
                )
            if offset % dt.timedelta(minutes=1):
                # Python allows seconds in an offset (old local mean times),
                # PostgreSQL's input does not: keep the instant, in UTC.
                object.__setattr__(self, "run_at", self.run_at.astimezone(dt.UTC))
            if self.delay is not None:
                raise ConfigurationError("pass either delay or run_at, not both")
        if (
            not isinstance(self.max_attempts, int)
            or isinstance(self.max_attempts, bool)
            or not 1 <= self.max_attempts <= 1000
        ):
            raise ConfigurationError(
                f"max_attempts must be an integer from 1 to 1000, got {self.max_attempts!r}"
            )
        if self.fingerprint is not None and (
            not isinstance(self.fingerprint, str) or not self.fingerprint
        ):
            raise ConfigurationError(
                f"fingerprint must be a non-empty string, got {self.fingerprint!r}"
            )
        if self.on_conflict not in _ON_CONFLICT:
            raise ConfigurationError(
                f"on_conflict must be one of {', '.join(_ON_CONFLICT)}, got {self.on_conflict!r}"
            )
        if not isinstance(self.meta, dict):
            raise ConfigurationError(f"meta must be a dict, got {type(self.meta).__name__}")
        if self.timeout is not None and (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int | float)
            or not math.isfinite(self.timeout)
            or self.timeout <= 0
        ):
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, got {self.timeout!r}"
            )
        if self.key is not None:
            check_key(self.key)
        if self.depends_on is not None:
            parents = check_depends_on(self.depends_on)
            if self.fingerprint is not None:
                raise ConfigurationError(
                    "a job with depends_on cannot have a fingerprint: a blocked job does not "
                    "hold its fingerprint, so a duplicate could be queued meanwhile; leave "
                    "fingerprint out"
                )
            object.__setattr__(self, "depends_on", parents)
            ids, always = parent_ids(parents), always_ids(parents)
            if self.meta.get(DEPENDS_ON_KEY) != ids or self.meta.get(DEPENDS_ALWAYS_KEY) != (
                always or None
            ):
                meta = {**self.meta, DEPENDS_ON_KEY: ids}
                meta.pop(DEPENDS_ALWAYS_KEY, None)
                if always:
                    meta[DEPENDS_ALWAYS_KEY] = always
                object.__setattr__(self, "meta", meta)
        if self.correlation_id is not None:
            check_correlation_id(self.correlation_id)
            if self.meta.get(CORRELATION_KEY) != self.correlation_id:
                meta = {**self.meta, CORRELATION_KEY: self.correlation_id}
                object.__setattr__(self, "meta", meta)

    def merge(self, changes: EnqueueKwargs) -> EnqueueOptions:
        """These options with `changes` applied and checked; `None` values are ignored.

        Raises:
            ConfigurationError: an option is out of range.
            TypeError: a key is not an enqueue option.
        """
        given: dict[str, Any] = {k: v for k, v in changes.items() if v is not None}
        if not given:
            return self  # frozen, so sharing it is safe
        try:
            return replace(self, **given)
        except TypeError:
            unknown = sorted(changes.keys() - _FIELDS)
            if not unknown:
                raise
            raise TypeError(
                f"unknown enqueue option(s) {', '.join(unknown)}; "
                f"the options are {', '.join(sorted(_FIELDS))}"
            ) from None


_FIELDS = frozenset(f.name for f in fields(EnqueueOptions))


def check_queue(queue: object) -> None:
    """Raise ConfigurationError unless `queue` is a usable queue name."""
    if not isinstance(queue, str) or not queue or len(queue) > 128:
        raise ConfigurationError(
            f"queue name must be a non-empty string of at most 128 characters, got {queue!r}"
        )
    if "\x00" in queue:
        raise ConfigurationError(f"queue name {queue!r} contains a NUL character")


def check_priority(priority: object) -> None:
    """Raise ConfigurationError unless `priority` is 0 (critical) to 4 (bulk)."""
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 4:
        raise ConfigurationError(
            f"priority must be an integer from 0 (critical) to 4 (bulk), got {priority!r}; "
            "use pgjobs.Priority.HIGH and friends"
        )


def check_correlation_id(value: object) -> None:
    """Raise ConfigurationError unless `value` is a usable correlation id."""
    if not isinstance(value, str):
        raise ConfigurationError(
            f"correlation_id must be a string, got {type(value).__name__} {value!r}; "
            "pass str(...) of it, e.g. the request id"
        )
    if not value or len(value) > MAX_CORRELATION_ID or "\x00" in value:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise ConfigurationError(
            f"correlation_id must be 1 to {MAX_CORRELATION_ID} characters with no NUL, "
            f"got {len(value)} characters ({shown!r})"
        )


def check_key(value: object) -> None:
    """Raise ConfigurationError unless `value` is a usable job key."""
    if not isinstance(value, str):
        raise ConfigurationError(
            f"key must be a string, got {type(value).__name__} {value!r}; "
            'pass str(...) of it, e.g. f"customer:{customer_id}"'
        )
    if not value or len(value) > MAX_KEY or "\x00" in value:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise ConfigurationError(
            f"key must be 1 to {MAX_KEY} characters with no NUL, "
            f"got {len(value)} characters ({shown!r}); a longer identifier can be "
            "shortened with a hash, e.g. hashlib.sha256(...).hexdigest()"
        )
