"""Cron schedules declared in code: the model, its checks, and which ticks are due (pure)."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pgjobs._cron import Cron, parse
from pgjobs._options import check_priority, check_queue
from pgjobs._routing import is_pattern, route
from pgjobs._serde import DEFAULT_MAX_PAYLOAD_BYTES, dump_args
from pgjobs._task import Task
from pgjobs.errors import ArgumentsError, ConfigurationError

#: Longest accepted schedule name (it is the primary key of pgjobs.schedules).
MAX_NAME_LENGTH = 200

#: The most missed ticks counted for a log line; beyond it the count says "at least".
MISSED_COUNT_CAP = 10_000

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as declared: fire `task` with `args` at every tick of `cron`.

    Attributes:
        name: unique per App; the primary key of `pgjobs.schedules`.
        cron: the checked expression and timezone.
        task: the registered task name the ticks enqueue.
        args: the job's arguments, by parameter name.
        args_json: the same, as the JSON stored in `jobs.args`.
        queue: the queue of its jobs; None means the task's.
        priority: the priority of its jobs; None means the task's.
        backfill: how far back missed ticks are still fired when workers
            come back (zero: missed ticks are skipped).
        skip_if_running: skip a tick while the previous job of this schedule
            is still queued or running (through the fingerprint `cron:<name>`).
    """

    name: str
    cron: Cron
    task: str
    args: dict[str, Any] = field(default_factory=dict)
    args_json: str = "{}"
    queue: str | None = None
    priority: int | None = None
    backfill: dt.timedelta = dt.timedelta(0)
    skip_if_running: bool = False

    @property
    def fingerprint(self) -> str | None:
        """The dedup key of its jobs when `skip_if_running`, else None."""
        return fingerprint(self.name) if self.skip_if_running else None


def fingerprint(name: str) -> str:
    """The fingerprint of a skip_if_running schedule's jobs."""
    return f"cron:{name}"


def declare(
    name: str,
    expression: str,
    task: Task[Any, Any] | str,
    *,
    args: dict[str, Any] | None = None,
    queue: str | None = None,
    priority: int | None = None,
    tz: str = "UTC",
    backfill: str | float | dt.timedelta | None = None,
    skip_if_running: bool = False,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> Schedule:
    """Check a schedule's declaration; see `App.schedule` for the arguments.

    Raises:
        ConfigurationError: a bad name, expression, timezone, queue, priority
            or backfill; the message names the schedule and the reason.
        ArgumentsError: `args` are not JSON, or do not fit the task's signature.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise ConfigurationError(
            f"schedule name must be a non-empty string of at most {MAX_NAME_LENGTH} "
            f"characters, got {name!r}"
        )
    cron = parse(expression, tz)
    if queue is not None:
        check_queue(queue)
    if priority is not None:
        check_priority(priority)
    if not isinstance(skip_if_running, bool):
        raise ConfigurationError(f"skip_if_running must be True or False, got {skip_if_running!r}")
    arguments = dict(args or {})
    if isinstance(task, Task):
        task_name = task.name
        arguments = _bind(name, task, arguments)
    elif isinstance(task, str) and task:
        task_name = task
    else:
        raise ConfigurationError(
            f"schedule {name!r}: task must be a registered Task or a task name, got {task!r}"
        )
    if is_pattern(task_name):
        raise ConfigurationError(
            f"schedule {name!r} fires {task_name!r}, a pattern: a job needs a full name. "
            f"Pass task='{task_name[:-1]}<name>' (the pattern's handler runs it)"
        )
    try:
        args_json = dump_args(arguments, max_bytes=max_payload_bytes)
    except ArgumentsError as exc:
        raise ArgumentsError(f"schedule {name!r}: {exc}") from None
    return Schedule(
        name=name,
        cron=cron,
        task=task_name,
        args=arguments,
        args_json=args_json,
        queue=queue,
        priority=priority,
        backfill=parse_backfill(backfill, name),
        skip_if_running=skip_if_running,
    )


def parse_backfill(value: str | float | dt.timedelta | None, name: str = "?") -> dt.timedelta:
    """A backfill window: None or 0 (none), seconds, a timedelta, or text like "90s", "1h30m".

    Raises:
        ConfigurationError: a negative, infinite or unreadable window.
    """
    if value is None:
        return dt.timedelta(0)
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        parts = _DURATION.findall(text)
        if not parts or _DURATION.sub("", text).strip():
            raise ConfigurationError(
                f"schedule {name!r}: backfill {value!r} is not a duration; "
                "use seconds, a timedelta, or text such as '90s', '15m', '1h30m', '2d'"
            )
        seconds = sum(float(amount) * _UNIT_SECONDS[unit.lower()] for amount, unit in parts)
    else:
        raise ConfigurationError(
            f"schedule {name!r}: backfill must be seconds, a timedelta or text like '1h', "
            f"got {value!r}"
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigurationError(f"schedule {name!r}: backfill must be >= 0, got {value!r}")
    return dt.timedelta(seconds=seconds)


def add(schedules: dict[str, Schedule], schedule: Schedule) -> Schedule:
    """Add a declared schedule to an App's registry.

    Raises:
        ConfigurationError: the name is taken.
    """
    if schedule.name in schedules:
        raise ConfigurationError(
            f"schedule name {schedule.name!r} is declared twice; give one of them another name "
            "(for @app.cron, name='...')"
        )
    schedules[schedule.name] = schedule
    return schedule


def _bind(name: str, task: Task[Any, Any], args: dict[str, Any]) -> dict[str, Any]:
    try:
        return task.bind((), args)
    except ArgumentsError as exc:
        raise ArgumentsError(f"schedule {name!r} of task {task.name!r}: {exc}") from None


class Registry(Protocol):
    """What schedules are checked against: an App's schedules and tasks."""

    @property
    def schedules(self) -> Mapping[str, Schedule]:
        """Declared schedules by name."""

    @property
    def tasks(self) -> Mapping[str, Task[Any, Any]]:
        """Registered tasks by name."""


def check(app: Registry) -> None:
    """Check the App's schedules against its tasks, before a worker starts.

    Raises:
        ConfigurationError: a schedule fires a task the App has not registered.
        ArgumentsError: a schedule's arguments do not fit its task's signature.
    """
    rows(app)


def rows(app: Registry) -> list[dict[str, Any]]:
    """The App's schedules as `pgjobs.schedules` values, checked against its tasks.

    Queue, priority and max_attempts left out of a declaration come from the task.

    Raises:
        ConfigurationError: a schedule fires a task the App has not registered.
        ArgumentsError: a schedule's arguments do not fit its task's signature.
    """
    result = []
    for schedule in app.schedules.values():
        registered = route(app.tasks, schedule.task)
        task = None if registered is None else app.tasks[registered]
        if task is None:
            known = ", ".join(sorted(app.tasks)) or "(none)"
            raise ConfigurationError(
                f"schedule {schedule.name!r} ({schedule.cron.expression!r}) fires task "
                f"{schedule.task!r}, which is not registered; registered tasks: {known}. "
                "Register it with @app.task, or fix the name."
            )
        _bind(schedule.name, task, schedule.args)
        result.append(
            {
                "name": schedule.name,
                "expression": schedule.cron.expression,
                "timezone": schedule.cron.timezone,
                "task": schedule.task,
                "args": schedule.args_json,
                "queue": schedule.queue or task.defaults.queue,
                "priority": int(
                    task.defaults.priority if schedule.priority is None else schedule.priority
                ),
                "max_attempts": task.defaults.max_attempts,
                "backfill": schedule.backfill,
                "skip_if_running": schedule.skip_if_running,
            }
        )
    return result


@dataclass(frozen=True, slots=True)
class Plan:
    """What a schedule must do now.

    Attributes:
        due: the ticks to fire, oldest first.
        next_tick: the first tick after now (or after the last due one, when
            `due` was cut at its limit).
        missed_after: when ticks were missed (older than the window), the
            watermark they lie after; None when none were.
    """

    due: list[dt.datetime]
    next_tick: dt.datetime
    missed_after: dt.datetime | None


def plan(
    cron: Cron,
    *,
    last_fired_at: dt.datetime | None,
    active_since: dt.datetime,
    now: dt.datetime,
    window: dt.timedelta,
    limit: int = 1000,
) -> Plan:
    """Which ticks are due at `now` (the database clock).

    Ticks after the watermark (the last tick fired, or when the schedule
    became active if that is later) and no older than `window` are due.
    Older ones were missed, while no worker ran, and are skipped.

    Args:
        cron: the schedule's expression.
        last_fired_at: `schedules.last_fired_at`.
        active_since: when the schedule was (re)activated.
        now: the database's current time.
        window: how late a tick may still fire: the larger of the schedule's
            backfill and the worker's on-time grace.
        limit: the most ticks returned at once.
    """
    watermark = max(last_fired_at, active_since) if last_fired_at else active_since
    oldest = now - window
    lower = max(watermark, oldest)
    due = cron.ticks_between(lower, now, limit=limit)
    after = due[-1] if len(due) >= limit else now
    missed_after = watermark if watermark < oldest and cron.next_tick(watermark) <= oldest else None
    return Plan(due=due, next_tick=cron.next_tick(after), missed_after=missed_after)


def count_missed(cron: Cron, after: dt.datetime, until: dt.datetime) -> tuple[int, bool]:
    """How many ticks lie in (after, until], capped; True when the count hit the cap."""
    count = len(cron.ticks_between(after, until, limit=MISSED_COUNT_CAP))
    return count, count >= MISSED_COUNT_CAP
