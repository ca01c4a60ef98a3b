"""Backoff policies: how long to wait before attempt n+1 (pure functions)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from pgjobs.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Base policy. `jitter` is a fraction: 0.1 spreads each delay by ±10%.

    Subclasses define `base_delay`; `delay` applies the cap and the jitter.
    """

    cap: float = 3600.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.cap < 0:
            raise ConfigurationError(f"retry cap must be >= 0 seconds, got {self.cap}")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError(f"retry jitter must be between 0 and 1, got {self.jitter}")

    def base_delay(self, attempt: int) -> float:
        """The delay in seconds after failed attempt number `attempt` (1-based), before jitter."""
        raise NotImplementedError

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay in seconds before the next attempt, capped and jittered.

        Args:
            attempt: the attempt that just failed, counting from 1.
            rng: a random source, for reproducible tests.

        Returns:
            Seconds to wait; never negative, never above `cap`.
        """
        base = min(self.base_delay(max(attempt, 1)), self.cap)
        if self.jitter:
            spread = base * self.jitter
            base += (rng or random).uniform(-spread, spread)
        return max(0.0, min(base, self.cap))


@dataclass(frozen=True, slots=True)
class Exponential(RetryPolicy):
    """`base * factor ** (attempt - 1)`: 1s, 2s, 4s, 8s ... by default."""

    base: float = 1.0
    factor: float = 2.0

    def base_delay(self, attempt: int) -> float:
        """See RetryPolicy.base_delay."""
        # Cap the exponent so huge attempt counts cannot overflow a float.
        return float(self.base * self.factor ** min(attempt - 1, 200))


@dataclass(frozen=True, slots=True)
class Linear(RetryPolicy):
    """`step * attempt`: 5s, 10s, 15s ... by default."""

    step: float = 5.0

    def base_delay(self, attempt: int) -> float:
        """See RetryPolicy.base_delay."""
        return self.step * attempt


@dataclass(frozen=True, slots=True)
class Constant(RetryPolicy):
    """The same `seconds` before every retry."""

    seconds: float = 5.0

    def base_delay(self, attempt: int) -> float:
        """See RetryPolicy.base_delay."""
        return self.seconds
