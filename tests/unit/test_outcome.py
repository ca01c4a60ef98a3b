"""What a run's result means for its job (pure)."""

import datetime as dt

from pgjobs import Constant
from pgjobs.worker._outcome import ClaimedJob, failed, succeeded


def job(attempt, max_attempts=3):
    return ClaimedJob(7, "default", "t", {}, 2, attempt, max_attempts, {}, dt.datetime.now(dt.UTC))


def boom():
    try:
        raise ValueError("bad value")
    except ValueError as exc:
        return exc


def test_failure_with_attempts_left_retries_after_the_policy_delay():
    outcome = failed(job(1), boom(), Constant(seconds=4, jitter=0))
    assert (outcome.status, outcome.delay, outcome.attempt) == ("queued", 4, 1)
    assert outcome.error is not None
    assert outcome.error["type"] == "ValueError"
    assert outcome.error["message"] == "bad value"
    assert "raise ValueError" in outcome.error["traceback"]


def test_last_attempt_fails_for_good():
    outcome = failed(job(3), boom(), Constant(seconds=4, jitter=0))
    assert outcome.status == "failed"


def test_no_policy_means_no_retry():
    assert failed(job(1), boom(), None).status == "failed"


def test_success_keeps_the_result():
    outcome = succeeded(job(1), '{"ok":true}')
    assert (outcome.status, outcome.result_json, outcome.error) == (
        "succeeded",
        '{"ok":true}',
        None,
    )
