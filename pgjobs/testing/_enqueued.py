"""assert_enqueued: check that the code under test queued the jobs it should have."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.rows import dict_row

from pgjobs import _connect, _dsn, _sql
from pgjobs._app import App
from pgjobs._serde import dump_args
from pgjobs._task import Task
from pgjobs.errors import ConfigurationError

__all__ = ["assert_enqueued", "failure_message", "matching"]

#: How many queued jobs a failure message lists before it counts the rest.
LISTED = 20


def assert_enqueued(
    task: Task[Any, Any] | str,
    args: Mapping[str, Any] | None = None,
    *,
    count: int | None = None,
    dsn: str | None = None,
) -> list[dict[str, Any]]:
    """Check that jobs of `task` are queued (waiting to run), and return them.

    Args:
        task: the Task, or its name.
        args: arguments, by parameter name, that each job must have with these
            values; it may have others too. None (the default) matches any.
        count: how many jobs must match, exactly; None means at least one.
            `count=0` checks that none is queued.
        dsn: the database to look in. Default: the Task's App's, or for a
            name PGJOBS_DSN (which the pgjobs_dsn fixture sets), else DATABASE_URL.

    Returns:
        The matching jobs, oldest first, as dicts of their `id`, `task`,
        `queue`, `priority`, `args`, `run_at` and `attempts`.

    Raises:
        AssertionError: the jobs queued are not those expected; the message
            lists what is queued instead.
        ConfigurationError: a negative count, or no database configured.
        ArgumentsError: `args` are not JSON, so no job could have them.
    """
    __tracebackhide__ = True  # pytest reports the failure at the test's line
    if count is not None and count < 0:
        raise ConfigurationError(f"count must be 0 or more, got {count}")
    name = task.name if isinstance(task, Task) else task
    expected = None if args is None else json.loads(dump_args(dict(args)))
    if dsn is None:
        owner = task.app if isinstance(task, Task) else None
        dsn = owner.dsn if isinstance(owner, App) else _dsn.require()
    with _connect.connect(dsn, _connect.APP, autocommit=True, row_factory=dict_row) as conn:
        queued = conn.execute(_sql.psycopg("testing_queued"), {}).fetchall()
    found = matching(queued, name, expected)
    failed = not found if count is None else len(found) != count
    if failed:
        raise AssertionError(failure_message(name, expected, count, found, queued))
    return found


def matching(
    queued: Sequence[Mapping[str, Any]], task: str, args: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The jobs of `queued` that are of `task` and have `args` among their arguments."""
    return [
        dict(job)
        for job in queued
        if job["task"] == task
        and (args is None or all(_has(job["args"], key, value) for key, value in args.items()))
    ]


def _has(arguments: Mapping[str, Any], key: str, value: Any) -> bool:
    # Compared as JSON, so that 1 and True, or 1 and 1.0, stay apart as jsonb keeps them.
    return key in arguments and _json(arguments[key]) == _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def failure_message(
    task: str,
    args: Mapping[str, Any] | None,
    count: int | None,
    found: Sequence[Mapping[str, Any]],
    queued: Sequence[Mapping[str, Any]],
) -> str:
    """What `assert_enqueued` says when its check fails: what was expected, and what is queued."""
    wanted = "a queued job" if count is None else f"{count} queued job{'s' if count != 1 else ''}"
    condition = "" if args is None else f" with args containing {_json(dict(args))}"
    lines = [f"expected {wanted} of task {task!r}{condition}, found {len(found) or 'none'}."]
    if not queued:
        lines.append("No job is queued.")
    else:
        lines.append(f"Queued jobs ({len(queued)}):")
        lines += [
            f"  #{job['id']} {job['task']} {_json(job['args'])} queue={job['queue']}"
            for job in queued[:LISTED]
        ]
        if len(queued) > LISTED:
            lines.append(f"  ... and {len(queued) - LISTED} more")
    return "\n".join(lines)
