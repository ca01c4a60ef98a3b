"""Task-name routing: exact names and `prefix.*` patterns, and which one serves a job (pure).

`@app.task(name="reports.*")` registers a handler for every job whose task
name starts with "reports." and has no registration of its own: jobs
enqueued by name, from SQL or another language, whose full set of names the
Python side does not list. An exact name wins, then the longest prefix.

A pattern is stored in `app.tasks` under its own text ("reports.*"), so
everything that lists or counts the App's tasks (the worker's queues, its
registration, the dashboard) sees it as one task. Every prefix ends with a
dot, so the prefixes of a name that can match are exactly its parts up to
each of its dots: the lookup tries them from the longest, one dict lookup
each, and never scans the registrations.
"""

from __future__ import annotations

from collections.abc import Container

from pgjobs.errors import ConfigurationError

#: What ends a prefix pattern: `reports.*` serves every name starting with `reports.`.
WILDCARD = ".*"


def is_pattern(name: str) -> bool:
    """Whether `name` is a prefix pattern ("reports.*") rather than a task name."""
    return name.endswith(WILDCARD)


def check_name(name: str) -> None:
    """Raise ConfigurationError unless `name` is a usable task name or prefix pattern.

    A name is 1 to 255 characters with no NUL. A `*` may appear only as the
    trailing `.*` of a pattern, after a prefix that neither is empty nor
    ends with a dot.
    """
    if not name or len(name) > 255 or "\x00" in name:
        raise ConfigurationError(
            f"task name {name!r} is not usable: it must be 1 to 255 characters "
            "with no NUL; pass another name='...'"
        )
    prefix = name[: -len(WILDCARD)] if is_pattern(name) else name
    if "*" in prefix or (prefix is not name and (not prefix or prefix.endswith("."))):
        raise ConfigurationError(
            f"task name {name!r} is not a usable pattern: the only wildcard is a trailing "
            "'.*' after a prefix, as in name='reports.*' (which serves 'reports.daily', "
            "'reports.weekly.pdf', ...)"
        )


def route(registered: Container[str], name: str) -> str | None:
    """The registration that serves jobs named `name`: itself, else the longest matching pattern.

    Args:
        registered: the App's task names and patterns (`app.tasks`).
        name: a job's task name, as stored.

    Returns:
        `name` if it is registered, else the pattern with the longest prefix
        that `name` starts with, else None.
    """
    if name in registered:
        return name
    end = name.rfind(".")
    while end > 0:
        pattern = name[:end] + WILDCARD
        if pattern in registered:
            return pattern
        end = name.rfind(".", 0, end)
    return None
