"""pgjobs.Snooze through the real executor, without a database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pytest

import pgjobs
from pgjobs.errors import ConfigurationError
from pgjobs.worker._executor import Executor
from pgjobs.worker._outcome import batch_params
from tests.unit.test_middleware import claimed, run


@pytest.fixture
def app() -> pgjobs.App:
    return pgjobs.App(dsn="postgresql://nowhere.invalid/none")


@pytest.mark.parametrize(
    ("delay", "seconds"), [(30, 30.0), (0, 0.0), (2.5, 2.5), (dt.timedelta(minutes=2), 120.0)]
)
def test_a_snooze_requeues_without_counting_the_attempt(app, delay, seconds):
    @app.task(name="wait")
    def wait() -> None:
        raise pgjobs.Snooze(delay)

    (outcome,) = run(Executor(app.tasks, threads=1), claimed("wait"))
    assert (outcome.status, outcome.delay, outcome.snooze) == ("queued", seconds, True)
    assert outcome.error is None
    # complete.sql's arrays, as the literals it casts: the snooze flag, and the delay.
    params = batch_params(1, [outcome])
    assert (params["snoozes"], params["delays"]) == ("{t}", f"{{{seconds}}}")


@pytest.mark.parametrize(
    ("delay", "needle"),
    [
        (-1, "a delay of 0 seconds or more, got -1"),
        (math.nan, "got nan"),
        (math.inf, "got inf"),
        (dt.timedelta(seconds=-5), "got -5.0"),
        ("10", "takes seconds or a timedelta, got str '10'"),
    ],
)
def test_a_bad_snooze_delay_fails_the_attempt_saying_why(app, delay, needle):
    @app.task(name="bad", max_attempts=1)
    async def bad() -> None:
        raise pgjobs.Snooze(delay)

    (outcome,) = run(Executor(app.tasks, threads=1), claimed("bad"))
    assert outcome.status == "queued"  # a retry: attempt 1 of 3 failed
    assert outcome.snooze is False
    assert outcome.error is not None
    assert outcome.error["type"] == "ValueError"
    assert needle in outcome.error["message"]


def test_the_snooze_cap_fails_the_attempt_that_would_pass_it(app):
    @app.task(name="forever", max_snoozes=3)
    def forever() -> None:
        raise pgjobs.Snooze(1)

    below = dataclasses.replace(claimed("forever"), snoozes=2)
    at_cap = dataclasses.replace(claimed("forever"), snoozes=3)
    first, second = run(Executor(app.tasks, threads=1), below, at_cap)
    assert first.snooze is True
    assert second.snooze is False
    assert second.error is not None
    assert (
        "snoozed 3 times, the most its task allows (@app.task(max_snoozes=3))"
        in (second.error["message"])
    )


def test_a_bad_cap_is_refused_at_registration(app):
    with pytest.raises(ConfigurationError, match="max_snoozes must be 0 or more, got -1"):
        app.task(name="x", max_snoozes=-1)
