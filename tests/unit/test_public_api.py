"""The public names are deliberate: this test pins them."""

import types

import pgjobs
import pgjobs.errors


def test_top_level_names_are_pinned():
    assert pgjobs.__all__ == [
        "App",
        "Call",
        "CallNext",
        "Chain",
        "CircuitBreaker",
        "Constant",
        "Dependency",
        "Exponential",
        "Group",
        "Job",
        "JobContext",
        "JobSpec",
        "Linear",
        "Middleware",
        "Priority",
        "RetryPolicy",
        "Snooze",
        "Status",
        "Task",
        "Worker",
        "WorkerConfig",
        "after",
        "chain",
        "current_job",
        "group",
    ]
    assert pgjobs.__all__ == sorted(pgjobs.__all__)
    for name in pgjobs.__all__:
        assert hasattr(pgjobs, name)


def test_every_public_top_level_name_is_in_all():
    # Importing pgjobs.worker (or .errors, .testing, .web, ...) makes it an
    # attribute of pgjobs: a submodule is reached by its own path, not pinned
    # here. Anything else without an underscore is public, so it must be in
    # __all__, whose pinned list above then has to change with it.
    public = {
        name
        for name, value in vars(pgjobs).items()
        if not name.startswith("_")
        and not (isinstance(value, types.ModuleType) and value.__name__ == f"pgjobs.{name}")
    }
    assert sorted(public) == pgjobs.__all__


def test_error_names_are_pinned_and_share_a_base():
    assert pgjobs.errors.__all__ == sorted(pgjobs.errors.__all__)
    for name in pgjobs.errors.__all__:
        assert issubclass(getattr(pgjobs.errors, name), pgjobs.errors.PgjobsError)
