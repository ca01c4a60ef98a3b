"""A test App with a webhook, whose endpoint and limits come from the environment.

PGJOBS_TEST_WEBHOOK_URL is the test's local HTTP server; the timeout and the
attempts of a delivery can be lowered (PGJOBS_TEST_WEBHOOK_TIMEOUT,
PGJOBS_TEST_WEBHOOK_ATTEMPTS) so that a hanging endpoint is given up soon.
"""

from __future__ import annotations

import os

import pgjobs

#: The webhook's signing key (what the receiving test checks signatures with).
SECRET = "test-secret-0123456789abcdef"

app = pgjobs.App()


@app.task(name="hooks.ok")
def ok(n: int) -> int:
    """Succeeds with n + 1."""
    return n + 1


@app.task(name="hooks.boom", max_attempts=2, retry=pgjobs.Constant(seconds=0.1, jitter=0))
def boom(n: int) -> None:
    """Fails every attempt: retried, then dead-lettered (enqueue it with max_attempts)."""
    raise ValueError(f"boom {n}")


@app.task(name="hooks.unwatched")
def unwatched() -> None:
    """A task no webhook listens to."""


app.webhook(
    os.environ.get("PGJOBS_TEST_WEBHOOK_URL", "http://127.0.0.1:9/hooks"),
    events=["succeeded", "failed", "dead-lettered", "cancelled"],
    secret=SECRET,
    tasks=[ok, "hooks.boom"],
    name="test-endpoint",
    timeout=float(os.environ.get("PGJOBS_TEST_WEBHOOK_TIMEOUT", "5")),
    max_attempts=int(os.environ.get("PGJOBS_TEST_WEBHOOK_ATTEMPTS", "3")),
)
