"""The README's example App: tasks named by default as `module.qualname`."""

from __future__ import annotations

import pgjobs

app = pgjobs.App()


@app.task(queue="emails", max_attempts=5)
def send_welcome(user_id: int) -> None:
    """The README's example task, stored as tests.apps.welcome.send_welcome."""


@app.task
def cleanup() -> None:
    """One of two tasks whose names end in `cleanup`: the short name is ambiguous."""


@app.task(name="reports.cleanup")
def cleanup_reports() -> None:
    """The other `cleanup`."""
