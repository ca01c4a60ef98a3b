"""Circuit breakers: the declaration `@app.task(circuit_breaker=...)` and its checks (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pgjobs import _routing
from pgjobs.errors import ConfigurationError

#: The states of a breaker, as `pgjobs.task_breakers.state` holds them.
STATES = ("closed", "open", "half_open")


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """Stop running a task's jobs for a while after it failed `failures` times in a row.

    `@app.task(circuit_breaker=pgjobs.CircuitBreaker(failures=5, cooldown=60))`:
    after 5 consecutive failed attempts of the task (a retried attempt counts,
    a snooze or a cancel does not; a success starts the count again), no
    worker claims its jobs for 60 seconds. Then one trial job runs: its
    success closes the breaker and the jobs run again, its failure holds
    them for another cooldown. The state is the row of the task in
    `pgjobs.task_breakers`, shared by every worker.

    Attributes:
        failures: consecutive failed attempts that open the breaker (1 or more).
        cooldown: seconds the open breaker holds the task's jobs before a
            trial (more than 0).

    Raises:
        ConfigurationError: failures not a positive integer, or cooldown
            not a positive finite number of seconds.
    """

    failures: int = 5
    cooldown: float = 60.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.failures, bool)
            or not isinstance(self.failures, int)
            or self.failures < 1
        ):
            raise ConfigurationError(
                f"CircuitBreaker(failures={self.failures!r}): failures must be a positive "
                "integer, the consecutive failed attempts that open the breaker"
            )
        if (
            isinstance(self.cooldown, bool)
            or not isinstance(self.cooldown, int | float)
            or not math.isfinite(self.cooldown)
            or self.cooldown <= 0
        ):
            raise ConfigurationError(
                f"CircuitBreaker(cooldown={self.cooldown!r}): cooldown must be a positive "
                "number of seconds, how long an open breaker holds the task's jobs"
            )


def check(task: str, breaker: object) -> CircuitBreaker | None:
    """`breaker` as given to `@app.task(circuit_breaker=...)`, checked.

    Raises:
        ConfigurationError: not a CircuitBreaker (nor None), or given for a
            pattern task (`name="reports.*"`), whose jobs have many names.
    """
    if breaker is None:
        return None
    if not isinstance(breaker, CircuitBreaker):
        raise ConfigurationError(
            f"task {task!r}: circuit_breaker must be a pgjobs.CircuitBreaker(failures=..., "
            f"cooldown=...), got {breaker!r}"
        )
    if _routing.is_pattern(task):
        raise ConfigurationError(
            f"task {task!r}: a pattern task cannot have a circuit_breaker (a breaker holds "
            "one task name's jobs); give each task its own name and breaker"
        )
    return breaker
