"""The client API's non-I/O core: what a job's row means to a waiter, and the result limit."""

from __future__ import annotations

import pytest

from pgjobs import _admin
from pgjobs._serde import MAX_RESULT_BYTES, dump_result
from pgjobs.errors import (
    ArgumentsError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    ResultTooLargeError,
)


def _row(status: str, **fields: object) -> dict[str, object]:
    return {"status": status, "result": None, "last_error": None, "cancelled_by": None} | fields


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_job_still_in_line_or_running_is_not_settled(status):
    assert _admin.settled(7, _row(status)) == (False, None)


def test_a_succeeded_job_gives_its_stored_result():
    assert _admin.settled(7, _row("succeeded", result={"url": "/x"})) == (True, {"url": "/x"})
    assert _admin.settled(7, _row("succeeded")) == (True, None)  # keep_result=False


def test_a_failed_job_raises_with_its_last_error():
    error = {"attempt": 3, "type": "ValueError", "message": "bad row", "traceback": "..."}
    with pytest.raises(JobFailedError) as raised:
        _admin.settled(7, _row("failed", last_error=error))
    assert raised.value.job_id == 7
    assert raised.value.error == error
    assert "job 7 failed on attempt 3: ValueError: bad row" in str(raised.value)
    assert "app.retry(7)" in str(raised.value)


def test_a_failed_job_without_an_error_still_says_it_failed():
    with pytest.raises(JobFailedError, match="job 7 failed: no error was recorded"):
        _admin.settled(7, _row("failed"))


def test_a_cancelled_job_raises_the_one_cancelled_error_naming_who():
    with pytest.raises(JobCancelledError) as raised:
        _admin.settled(7, _row("cancelled", cancelled_by="cli:ana"))
    assert raised.value.job_id == 7
    assert raised.value.cancelled_by == "cli:ana"
    assert "job 7 was cancelled by cli:ana" in str(raised.value)


def test_an_unknown_job_is_not_found():
    with pytest.raises(JobNotFoundError, match="no job with id 7"):
        _admin.settled(7, None)


def test_the_timeout_error_says_the_job_runs_on():
    error = _admin.timed_out(7, 1.5)
    assert isinstance(error, TimeoutError)
    assert "job 7 did not finish within 1.5 s" in str(error)


def test_a_result_at_the_limit_is_kept_and_one_byte_more_is_refused_naming_the_limit():
    # '"' + n characters + '"': the JSON of a string is 2 bytes longer.
    assert len(dump_result("x" * (MAX_RESULT_BYTES - 2))) == MAX_RESULT_BYTES
    with pytest.raises(ResultTooLargeError, match=f"over the limit of {MAX_RESULT_BYTES} bytes"):
        dump_result("x" * (MAX_RESULT_BYTES - 1))


def test_the_limit_counts_utf8_bytes_not_characters():
    assert dump_result("é" * 10, max_bytes=22) == '"' + "é" * 10 + '"'
    with pytest.raises(ResultTooLargeError, match="23 bytes of JSON, over the limit of 21"):
        dump_result("é" * 10 + "x", max_bytes=21)


def test_a_too_large_result_is_an_arguments_error_too():
    assert issubclass(ResultTooLargeError, ArgumentsError)


def test_a_handler_returning_too_much_fails_its_job_at_once_naming_the_limit():
    import pgjobs
    from pgjobs.worker._executor import Executor
    from tests.unit.test_middleware import claimed, run

    app = pgjobs.App(dsn="postgresql://nowhere.invalid/none")

    @app.task(name="big")
    def big() -> str:
        return "x" * MAX_RESULT_BYTES

    @app.task(name="small")
    def small() -> str:
        return "x" * 100

    too_big, fine = run(Executor(app.tasks, threads=1), claimed("big", 1), claimed("small", 2))
    assert too_big.status == "failed"  # not retried: it would be as large again
    assert too_big.result_json is None
    assert too_big.error is not None
    assert too_big.error["type"] == "pgjobs.errors.ResultTooLargeError"
    assert f"over the limit of {MAX_RESULT_BYTES} bytes" in too_big.error["message"]
    assert fine.status == "succeeded"
    assert fine.result_json == '"' + "x" * 100 + '"'
