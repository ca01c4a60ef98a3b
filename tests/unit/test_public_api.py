"""The public names are deliberate: this test pins them."""

import pgjobs
import pgjobs.errors


def test_top_level_names_are_pinned():
    assert pgjobs.__all__ == [
        "App",
        "Call",
        "Constant",
        "Exponential",
        "Job",
        "JobSpec",
        "Linear",
        "Priority",
        "RetryPolicy",
        "Status",
        "Task",
        "Worker",
        "WorkerConfig",
    ]
    assert pgjobs.__all__ == sorted(pgjobs.__all__)
    for name in pgjobs.__all__:
        assert hasattr(pgjobs, name)


def test_error_names_are_pinned_and_share_a_base():
    assert pgjobs.errors.__all__ == sorted(pgjobs.errors.__all__)
    for name in pgjobs.errors.__all__:
        assert issubclass(getattr(pgjobs.errors, name), pgjobs.errors.PgjobsError)
