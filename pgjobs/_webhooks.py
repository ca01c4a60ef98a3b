"""Webhooks declared in code: the model, its checks, and how a delivery is signed (pure).

A webhook is a row of `pgjobs.webhooks` (migration 0011). The database
decides when one fires: the statements that record a job's outcome enqueue
a delivery job (task `pgjobs.webhook`, DELIVERY_TASK) in the same
transaction, so a crash between the outcome and the notification cannot
lose it. A worker runs the delivery (pgjobs/worker/_webhooks.py): an HTTP
POST of the JSON payload, signed as `signature` says.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pgjobs._options import check_queue
from pgjobs._routing import is_pattern
from pgjobs._task import Task
from pgjobs.errors import ConfigurationError

#: The job events a webhook may listen to. `failed`: an attempt failed (a
#: retry follows, or none: the last attempt fails too); `dead-lettered`: the
#: job ended `failed`, no attempt left (or an error no retry can fix);
#: `succeeded`; `cancelled`.
EVENTS = ("failed", "dead-lettered", "succeeded", "cancelled")

#: The task of every delivery job; its own outcomes fire no webhook.
DELIVERY_TASK = "pgjobs.webhook"

#: The shortest accepted secret, in bytes (UTF-8): 128 bits.
MIN_SECRET_BYTES = 16

#: Longest accepted webhook name (the primary key of pgjobs.webhooks) and URL.
MAX_NAME_LENGTH = 200
MAX_URL_LENGTH = 2000

#: Seconds a delivery attempt may take by default, and at most.
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 300.0

#: Attempts of one delivery by default; with the delivery task's backoff
#: (1 s, then x3: 1, 3, 9, 27, 81, 243, 729 s) the last is about 18 minutes
#: after the first.
DEFAULT_MAX_ATTEMPTS = 8

# The request headers, documented in the README's Webhooks section.
HEADER_EVENT = "X-Pgjobs-Event"
HEADER_DELIVERY = "X-Pgjobs-Delivery"
HEADER_TIMESTAMP = "X-Pgjobs-Timestamp"
HEADER_SIGNATURE = "X-Pgjobs-Signature"

_SCHEME = re.compile(r"^https?://", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook as declared with `app.webhook`.

    Attributes:
        name: unique; the primary key of `pgjobs.webhooks` (default: the URL).
        url: where deliveries are POSTed (http or https).
        secret: the HMAC-SHA256 key of the signature header.
        events: the events it listens to, among EVENTS.
        tasks: only jobs of these task names; None: every task.
        queues: only jobs of these queues; None: every queue.
        queue: the queue of its delivery jobs; None: the queue of the job
            that fired (which a worker serves).
        timeout: seconds one delivery attempt may take.
        max_attempts: attempts of each delivery before it is dead-lettered.
    """

    name: str
    url: str
    secret: str
    events: tuple[str, ...]
    tasks: tuple[str, ...] | None = None
    queues: tuple[str, ...] | None = None
    queue: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def __repr__(self) -> str:
        # Never the secret: a repr ends up in logs.
        return f"<pgjobs.Webhook {self.name!r} {self.url!r} events={list(self.events)}>"


def declare(
    url: str,
    *,
    events: Iterable[str],
    secret: str,
    tasks: Iterable[Task[Any, Any] | str] | Task[Any, Any] | str | None = None,
    queues: Iterable[str] | str | None = None,
    name: str | None = None,
    queue: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Webhook:
    """Check a webhook's declaration; see `App.webhook` for the arguments.

    Raises:
        ConfigurationError: a URL that is not http(s), a secret shorter than
            16 bytes, an unknown event, or another bad option; the message
            says which and what to pass instead.
    """
    check_url(url)
    label = url if name is None else name
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_NAME_LENGTH:
        raise ConfigurationError(
            f"webhook name must be a non-empty string of at most {MAX_NAME_LENGTH} "
            f"characters, got {label!r}"
        )
    check_secret(secret, label)
    return Webhook(
        name=label,
        url=url,
        secret=secret,
        events=_events(events, label),
        tasks=_task_names(tasks, label),
        queues=_queues(queues, label),
        queue=_delivery_queue(queue),
        timeout=_timeout(timeout, label),
        max_attempts=_attempts(max_attempts, label),
    )


def check_url(url: object) -> None:
    """Raise ConfigurationError unless `url` is an absolute http(s) URL with a host."""
    if not isinstance(url, str) or not _SCHEME.match(url):
        raise ConfigurationError(
            f"webhook URL {url!r} is not an http:// or https:// URL; deliveries are HTTP "
            "POSTs, so give the endpoint's full address, such as 'https://example.com/hooks'"
        )
    parts = urlsplit(url)
    if not parts.hostname or any(c.isspace() for c in url) or len(url) > MAX_URL_LENGTH:
        raise ConfigurationError(
            f"webhook URL {url!r} has no usable host (or has spaces, or is over "
            f"{MAX_URL_LENGTH} characters); give the endpoint's full address, such as "
            "'https://example.com/hooks'"
        )


def check_secret(secret: object, name: str) -> None:
    """Raise ConfigurationError unless `secret` is text of at least MIN_SECRET_BYTES bytes."""
    if not isinstance(secret, str):
        raise ConfigurationError(
            f"webhook {name!r}: secret must be a string, got {type(secret).__name__}; "
            "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    size = len(secret.encode())
    if size < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"webhook {name!r}: the secret is {size} bytes, shorter than the "
            f"{MIN_SECRET_BYTES} it needs to make the signature worth checking; "
            "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"
        )


def _events(events: Iterable[str], name: str) -> tuple[str, ...]:
    if isinstance(events, str):
        events = [events]
    try:
        chosen = list(events)
    except TypeError:
        raise ConfigurationError(
            f"webhook {name!r}: events must be a list of {list(EVENTS)}, got {events!r}"
        ) from None
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown or not chosen:
        raise ConfigurationError(
            f"webhook {name!r}: events must be one or more of {list(EVENTS)}, got {chosen!r}"
        )
    return tuple(e for e in EVENTS if e in chosen)


def _task_names(
    tasks: Iterable[Task[Any, Any] | str] | Task[Any, Any] | str | None, name: str
) -> tuple[str, ...] | None:
    if tasks is None:
        return None
    given: list[Any] = [tasks] if isinstance(tasks, Task | str) else list(tasks)
    names = []
    for task in given:
        task_name = task.name if isinstance(task, Task) else task
        if not isinstance(task_name, str) or not task_name:
            raise ConfigurationError(
                f"webhook {name!r}: tasks must be Tasks or task names, got {task!r}"
            )
        if is_pattern(task_name):
            raise ConfigurationError(
                f"webhook {name!r}: task {task_name!r} is a pattern; a webhook matches "
                "full task names, so list them"
            )
        names.append(task_name)
    if not names:
        raise ConfigurationError(
            f"webhook {name!r}: tasks=[] matches no job; leave tasks out for every task"
        )
    return tuple(dict.fromkeys(names))


def _queues(queues: Iterable[str] | str | None, name: str) -> tuple[str, ...] | None:
    if queues is None:
        return None
    given = [queues] if isinstance(queues, str) else list(queues)
    for queue in given:
        check_queue(queue)
    if not given:
        raise ConfigurationError(
            f"webhook {name!r}: queues=[] matches no job; leave queues out for every queue"
        )
    return tuple(dict.fromkeys(given))


def _delivery_queue(queue: str | None) -> str | None:
    if queue is not None:
        check_queue(queue)
    return queue


def _timeout(timeout: float, name: str) -> float:
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or not 0 < timeout <= MAX_TIMEOUT
    ):
        raise ConfigurationError(
            f"webhook {name!r}: timeout must be seconds above 0 and at most {MAX_TIMEOUT:.0f}, "
            f"got {timeout!r}"
        )
    return float(timeout)


def _attempts(max_attempts: int, name: str) -> int:
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
        raise ConfigurationError(
            f"webhook {name!r}: max_attempts must be an integer from 1 to 100, got {max_attempts!r}"
        )
    if not 1 <= max_attempts <= 100:
        raise ConfigurationError(
            f"webhook {name!r}: max_attempts must be from 1 to 100, got {max_attempts}"
        )
    return max_attempts


def add(webhooks: dict[str, Webhook], webhook: Webhook) -> Webhook:
    """Add a declared webhook to an App's registry.

    Raises:
        ConfigurationError: the name is taken.
    """
    if webhook.name in webhooks:
        raise ConfigurationError(
            f"webhook {webhook.name!r} is declared twice; give each webhook of one URL "
            "its own name='...'"
        )
    webhooks[webhook.name] = webhook
    return webhook


def rows(webhooks: Mapping[str, Webhook]) -> dict[str, list[Any]]:
    """The webhooks as parallel arrays, the parameters of webhook_upsert.sql."""
    hooks = list(webhooks.values())
    return {
        "names": [w.name for w in hooks],
        "urls": [w.url for w in hooks],
        "secrets": [w.secret for w in hooks],
        # text[] elements of a text[][] cannot differ in length: JSON instead.
        "events": [_json_list(w.events) for w in hooks],
        "tasks": [None if w.tasks is None else _json_list(w.tasks) for w in hooks],
        "queues": [None if w.queues is None else _json_list(w.queues) for w in hooks],
        "queue": [w.queue for w in hooks],
        "timeouts": [w.timeout for w in hooks],
        "max_attempts": [w.max_attempts for w in hooks],
    }


def _json_list(items: Iterable[str]) -> str:
    return json.dumps(list(items))


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Pgjobs-Signature` of a delivery: `v1=` and the hex HMAC-SHA256 of
    `timestamp`, a dot, and the body, keyed with the webhook's secret.

    The timestamp is signed with the body so that a captured request cannot
    be replayed later under a fresh timestamp; receivers refuse old ones.
    """
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()
