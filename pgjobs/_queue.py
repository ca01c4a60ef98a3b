"""Queue settings declared in code (`app.queue`): the model and its checks (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from pgjobs._options import check_queue
from pgjobs.errors import ConfigurationError


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
    """

    name: str
    concurrency: int | None = None
    key_concurrency: int | None = None


def declare(
    name: str, *, concurrency: int | None = None, key_concurrency: int | None = None
) -> QueueSettings:
    """Checked settings for `app.queue`.

    Raises:
        ConfigurationError: a bad queue name, or a limit that is not a positive integer.
    """
    check_queue(name)
    for option, value in (("concurrency", concurrency), ("key_concurrency", key_concurrency)):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigurationError(
                f"queue {name!r}: {option} must be a positive integer (the most jobs that "
                f"run at once), got {value!r}; to set no limit, leave it out"
            )
    return QueueSettings(name, concurrency, key_concurrency)


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
