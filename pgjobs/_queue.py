"""Queue settings declared in code (`app.queue`): the model and its checks (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pgjobs._options import check_queue
from pgjobs.errors import ConfigurationError

#: Seconds in each unit a rate limit may be given per.
RATE_UNITS = {"s": 1, "m": 60, "h": 3600}
#: The most jobs a rate may name per unit (the table's CHECK allows 9 digits).
MAX_RATE = 999_999_999
#: A queue's limits, as `app.queue` takes them and `pgjobs.queues` holds them.
LIMITS = (
    "concurrency",
    "key_concurrency",
    "rate_limit",
    "rate_burst",
    "key_rate_limit",
    "key_rate_burst",
)

# Loose on purpose, so that a near miss gets a message saying what is wrong.
_RATE = re.compile(r"\s*([+-]?\d+)\s*/\s*([A-Za-z]*)\s*")


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """A queue's limits as declared in code; workers write them to `pgjobs.queues`.

    Attributes:
        name: the queue.
        concurrency: at most this many of its jobs run at once, across every
            worker process; None for no limit.
        key_concurrency: at most this many of its jobs with the same key
            (`options(key=...)`) run at once, across every worker; None for
            no limit. Jobs without a key are limited by `concurrency` only.
        rate_limit: at most N of its jobs start per second, minute or hour
            (`"N/s"`, `"N/m"`, `"N/h"`), across every worker; None for no limit.
        rate_burst: how many of its jobs may start at once after a quiet
            spell; None for the default (see `default_burst`).
        key_rate_limit: `rate_limit` for each key (`options(key=...)`) on
            its own; jobs without a key are held by `rate_limit` only.
        key_rate_burst: `rate_burst` of each key's rate.
    """

    name: str
    concurrency: int | None = None
    key_concurrency: int | None = None
    rate_limit: str | None = None
    rate_burst: int | None = None
    key_rate_limit: str | None = None
    key_rate_burst: int | None = None


def parse_rate(queue: str, rate: object, option: str = "rate_limit") -> tuple[int, int]:
    """A rate limit such as "100/m" as (jobs, seconds per unit); `option` names it in errors.

    Raises:
        ConfigurationError: not a string of the form N/s, N/m or N/h with N a
            positive whole number.
    """
    shape = "a string such as '100/m': a positive whole number of jobs, '/', and s, m or h"
    if not isinstance(rate, str):
        raise ConfigurationError(f"queue {queue!r}: {option} must be {shape}; got {rate!r}")
    match = _RATE.fullmatch(rate)
    if match is None:
        raise ConfigurationError(
            f"queue {queue!r}: {option} {rate!r} does not parse; it must be {shape}"
        )
    count, unit = int(match.group(1)), match.group(2)
    if count < 1 or count > MAX_RATE:
        raise ConfigurationError(
            f"queue {queue!r}: {option} {rate!r} must allow 1 to {MAX_RATE} jobs per unit; "
            "to set no limit, leave it out"
        )
    if unit not in RATE_UNITS:
        raise ConfigurationError(
            f"queue {queue!r}: {option} {rate!r} has the unknown unit {unit!r}; "
            "use s (per second), m (per minute) or h (per hour)"
        )
    if rate != f"{count}/{unit}":
        raise ConfigurationError(
            f"queue {queue!r}: write {option} {rate!r} as {f'{count}/{unit}'!r}, "
            "with no spaces or sign"
        )
    return count, RATE_UNITS[unit]


def default_burst(count: int, unit_seconds: int) -> int:
    """The burst of a rate given none: a tenth of a second's worth of jobs, at least 1.

    pgjobs.claim_within_limits() (migration 0013) computes the same.
    """
    return max(1, count // (10 * unit_seconds))


def declare(
    name: str,
    *,
    concurrency: int | None = None,
    key_concurrency: int | None = None,
    rate_limit: str | None = None,
    rate_burst: int | None = None,
    key_rate_limit: str | None = None,
    key_rate_burst: int | None = None,
) -> QueueSettings:
    """Checked settings for `app.queue`.

    Raises:
        ConfigurationError: a bad queue name, a limit or burst that is not a
            positive integer, a rate limit that does not parse, or a burst
            without a rate limit.
    """
    check_queue(name)
    for prefix, rate, burst in (
        ("", rate_limit, rate_burst),
        ("key_", key_rate_limit, key_rate_burst),
    ):
        if rate is not None:
            parse_rate(name, rate, f"{prefix}rate_limit")
        elif burst is not None:
            raise ConfigurationError(
                f"queue {name!r}: {prefix}rate_burst={burst!r} is given without a "
                f"{prefix}rate_limit; a burst says how far the rate may be run ahead of, "
                "so give both or neither"
            )
    for option, value in (
        ("concurrency", concurrency),
        ("key_concurrency", key_concurrency),
        ("rate_burst", rate_burst),
        ("key_rate_burst", key_rate_burst),
    ):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            meaning = "start at once" if option.endswith("rate_burst") else "run at once"
            raise ConfigurationError(
                f"queue {name!r}: {option} must be a positive integer (the most jobs that "
                f"{meaning}), got {value!r}; to set no limit, leave it out"
            )
    return QueueSettings(
        name, concurrency, key_concurrency, rate_limit, rate_burst, key_rate_limit, key_rate_burst
    )


def add(queues: dict[str, QueueSettings], declared: QueueSettings) -> QueueSettings:
    """Record `declared` in `queues`; declaring the same settings again is allowed.

    Raises:
        ConfigurationError: the queue was declared already with other settings.
    """
    known = queues.get(declared.name)
    if known is not None and known != declared:
        raise ConfigurationError(
            f"queue {declared.name!r} is declared twice with different settings "
            f"({known} and {declared}); declare each queue once"
        )
    queues[declared.name] = declared
    return declared


def changed(current: QueueSettings, changes: Mapping[str, object]) -> QueueSettings:
    """`current` with some limits changed (None: no limit), checked as `app.queue` checks them.

    For the HTTP API and the dashboard, which change one limit at a time: a
    rate cleared takes its burst with it, unless the burst is given too.

    Raises:
        ConfigurationError: a name that is not a limit, or a value that
            `app.queue` would refuse.
    """
    unknown = sorted(set(changes) - set(LIMITS))
    if unknown:
        raise ConfigurationError(
            f"queue {current.name!r}: unknown limit(s) {', '.join(unknown)}; "
            f"a queue's limits are {', '.join(LIMITS)}"
        )
    merged: dict[str, Any] = {name: getattr(current, name) for name in LIMITS}
    merged.update(changes)
    for rate in ("rate_limit", "key_rate_limit"):
        burst = rate.replace("limit", "burst")
        if rate in changes and changes[rate] is None and burst not in changes:
            merged[burst] = None
    return declare(current.name, **merged)
