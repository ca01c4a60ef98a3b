"""A run's correlation id is bound for the run only, whatever way the run ends."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
import structlog

from pgjobs import _trace
from pgjobs.worker._outcome import ClaimedJob, Outcome, succeeded
from pgjobs.worker._tracing import observed


def claimed(meta: dict[str, Any]) -> ClaimedJob:
    return ClaimedJob(41, "default", "t", {}, 2, 1, 3, meta, dt.datetime.now(dt.UTC))


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
    seen: list[tuple[object, object]] = []

    async def run(job: ClaimedJob) -> Outcome:
        seen.append(
            (structlog.contextvars.get_contextvars().get("correlation_id"), _trace.current())
        )
        return succeeded(job, None)

    async def main() -> None:
        await observed(run, claimed(meta))
        assert "correlation_id" not in structlog.contextvars.get_contextvars()
        assert _trace.current() is None

    asyncio.run(main())
    assert seen == [(bound, bound)]


def test_a_cancelled_run_unbinds_too() -> None:
    async def run(job: ClaimedJob) -> Outcome:
        raise asyncio.CancelledError

    async def main() -> None:
        with pytest.raises(asyncio.CancelledError):
            await observed(run, claimed({"correlation_id": "req-9"}))
        assert "correlation_id" not in structlog.contextvars.get_contextvars()
        assert _trace.current() is None

    asyncio.run(main())
