"""A run's correlation id is bound for the run only, whatever way the run ends."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
import structlog

import pgjobs
from pgjobs import _trace
from pgjobs.worker._executor import Executor
from pgjobs.worker._outcome import ClaimedJob

app = pgjobs.App("postgresql://unused@127.0.0.1/unused")
seen: list[tuple[object, object, object]] = []


@app.task(name="looks")
async def looks() -> None:
    seen.append(
        (
            structlog.contextvars.get_contextvars().get("correlation_id"),
            _trace.current(),
            pgjobs.current_job().correlation_id,
        )
    )


@app.task(name="stops")
async def stops() -> None:
    raise asyncio.CancelledError


def claimed(task: str, meta: dict[str, Any]) -> ClaimedJob:
    return ClaimedJob(41, "default", task, {}, 2, 1, 3, meta, dt.datetime.now(dt.UTC))


def unbound() -> bool:
    return "correlation_id" not in structlog.contextvars.get_contextvars()


@pytest.mark.parametrize(
    ("meta", "bound"),
    [
        ({"correlation_id": "req-9"}, "req-9"),
        ({}, "41"),  # none stored: the job's id
        ({"correlation_id": 12}, "41"),  # written by another client, not a string: ignored
        ({"correlation_id": "x" * 129}, "41"),
    ],
)
def test_the_id_is_bound_during_the_run_and_gone_after(meta: dict[str, Any], bound: str) -> None:
    seen.clear()

    async def main() -> None:
        executor = Executor(app.tasks, 1)
        try:
            outcome = await executor.run(claimed("looks", meta))
        finally:
            executor.shutdown()
        assert outcome.status == "succeeded"
        assert unbound()
        assert _trace.current() is None

    asyncio.run(main())
    assert seen == [(bound, bound, bound)]


def test_a_cancelled_run_unbinds_too() -> None:
    async def main() -> None:
        executor = Executor(app.tasks, 1)
        try:
            with pytest.raises(asyncio.CancelledError):
                await executor.run(claimed("stops", {"correlation_id": "req-9"}))
        finally:
            executor.shutdown()
        assert unbound()
        assert _trace.current() is None

    asyncio.run(main())
