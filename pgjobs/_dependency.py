"""A job's parents as `depends_on` names them: ids, or `pgjobs.after(id, always=True)` (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pgjobs.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Dependency:
    """One parent of a job, with what the parent's outcome means for it.

    Made by `pgjobs.after(job_id, always=True)`; a plain id in `depends_on`
    is a Dependency with `always` False.

    Attributes:
        job_id: the parent job's id (what enqueue returned).
        always: True: the job runs once this parent has ended, whether it
            succeeded, failed or was cancelled. False: only once it has
            succeeded; if it fails or is cancelled, the job is cancelled
            (and so are the jobs that wait for that one).
    """

    job_id: int
    always: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.job_id, bool) or not isinstance(self.job_id, int) or self.job_id <= 0:
            raise ConfigurationError(
                f"a dependency names a job id, a positive integer (what enqueue returns), "
                f"got {self.job_id!r}"
            )
        if not isinstance(self.always, bool):
            raise ConfigurationError(f"always must be True or False, got {self.always!r}")


def after(job_id: int, *, always: bool = False) -> Dependency:
    """A parent for `depends_on`, with its policy: `depends_on=[a, pgjobs.after(b, always=True)]`.

    Args:
        job_id: the parent job's id.
        always: run the dependent job once this parent has ended, whatever
            its outcome (a clean-up or a report that must run even when a
            step failed). False is the same as the bare id: the dependent
            runs only if the parent succeeds, and is cancelled otherwise.

    Raises:
        ConfigurationError: job_id is not a positive integer, or always not a bool.
    """
    return Dependency(job_id, always)


def check_depends_on(value: object) -> tuple[int | Dependency, ...]:
    """`depends_on` in order and once each: ids, and a Dependency for each `always` parent.

    Raises:
        ConfigurationError: not a list of ids and Dependency objects, empty,
            or one job named twice with different policies.
    """
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
        raise ConfigurationError(
            f"depends_on must be a list of job ids (what enqueue returns), got {value!r}"
        )
    always: dict[int, bool] = {}
    for item in value:
        if isinstance(item, Dependency):
            job_id, anyway = item.job_id, item.always
        elif isinstance(item, bool) or not isinstance(item, int) or item <= 0:
            raise ConfigurationError(
                f"depends_on must hold job ids, positive integers (what enqueue returns), or "
                f"pgjobs.after(id, always=True), got {item!r}"
            )
        else:
            job_id, anyway = item, False
        if always.setdefault(job_id, anyway) != anyway:
            raise ConfigurationError(
                f"depends_on names job {job_id} twice, once with always=True and once "
                "without; name it once"
            )
    if not always:
        raise ConfigurationError(
            "depends_on is empty; name the jobs to wait for, or leave depends_on out"
        )
    return tuple(Dependency(j, True) if a else j for j, a in always.items())


def parent_ids(depends_on: Sequence[int | Dependency]) -> list[int]:
    """Every parent's id, in order."""
    return [d.job_id if isinstance(d, Dependency) else d for d in depends_on]


def always_ids(depends_on: Sequence[int | Dependency]) -> list[int]:
    """The ids of the parents named with `always=True`, in order."""
    return [d.job_id for d in depends_on if isinstance(d, Dependency) and d.always]


__all__ = ["Dependency", "after", "always_ids", "check_depends_on", "parent_ids"]
