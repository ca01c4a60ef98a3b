"""Request input made safe (filters, cursors, ids, JSON bodies) and errors as 4xx (pure)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pgjobs import _admin
from pgjobs.errors import ConfigurationError

#: The largest request body accepted, in bytes.
MAX_BODY_BYTES = 256 * 1024

#: The largest page the dashboard and the API return.
MAX_PAGE = 500

_BIGINT_MAX = 2**63 - 1


class HttpError(Exception):
    """A request the dashboard refuses, with its status and a message for people.

    Args:
        status: the HTTP status (4xx, or 503 when the database is unavailable).
        message: what was wrong and what to do.
        extra: more JSON fields for the API's error body.
    """

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The API's error body: {"error": {"status", "message", ...}}."""
        return {"error": {"status": self.status, "message": self.message, **self.extra}}


def bad_request(message: str, **extra: Any) -> HttpError:
    """A 400."""
    return HttpError(400, message, **extra)


# -- scalar fields ---------------------------------------------------------


def text_field(value: object, name: str, *, max_length: int = 255) -> str | None:
    """An optional filter string: blank means absent; NUL and overlong values are refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value:
        return None
    if "\x00" in value:
        raise bad_request(f"{name} contains a NUL character, which PostgreSQL text cannot hold")
    if len(value) > max_length:
        raise bad_request(f"{name} is longer than {max_length} characters")
    return value


def job_id(text: str) -> int:
    """A job id from a URL path segment."""
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) > _BIGINT_MAX:
        raise bad_request(f"job id must be a positive integer, got {text[:40]!r}")
    value = int(text)
    if value < 1:
        raise bad_request(f"job id must be a positive integer, got {text[:40]!r}")
    return value


def page_size(value: object, default: int = 50) -> int:
    """The `limit` query parameter: 1 to MAX_PAGE."""
    if value is None or value == "":
        return default
    text = str(value)
    if not text.isascii() or not text.isdigit() or not 1 <= int(text[:6]) <= MAX_PAGE:
        raise bad_request(f"limit must be an integer from 1 to {MAX_PAGE}, got {text[:40]!r}")
    return int(text)


# -- cursors ---------------------------------------------------------------

_CURSOR_PREFIX = "pgjobs1:"


def encode_cursor(before_id: int) -> str:
    """An opaque cursor for the page after the job `before_id`."""
    raw = f"{_CURSOR_PREFIX}{before_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor continues before; None for the first page."""
    if not cursor:
        return None
    invalid = bad_request(
        "cursor is not one this API returned; pass the next_cursor of the previous page "
        "verbatim, or leave it out for the first page"
    )
    if len(cursor) > 64:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise invalid from None
    number = raw.removeprefix(_CURSOR_PREFIX)
    if number == raw or not number.isdigit() or not 1 <= int(number) <= _BIGINT_MAX:
        raise invalid
    return int(number)


# -- job filters -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobQuery:
    """The jobs list's filters: status/queue/task, or a fingerprint, plus the page."""

    status: str | None = None
    queue: str | None = None
    task: str | None = None
    fingerprint: str | None = None
    limit: int = 50
    before_id: int | None = None

    @property
    def filter(self) -> _admin.JobFilter:
        """The core's filter for the same page."""
        return _admin.JobFilter(
            status=self.status,
            queue=self.queue,
            task=self.task,
            limit=self.limit,
            before_id=self.before_id,
        )

    def links(self) -> dict[str, str]:
        """The filters as query parameters (for links), without the page position."""
        out = {
            "status": self.status,
            "queue": self.queue,
            "task": self.task,
            "fingerprint": self.fingerprint,
        }
        return {k: v for k, v in out.items() if v}


def job_query(params: Mapping[str, str]) -> JobQuery:
    """Parse the jobs list's query parameters.

    Raises:
        HttpError: 400 for an unknown status, a bad limit or cursor, a bad string.
    """
    status = text_field(params.get("status"), "status", max_length=32)
    if status is not None and status not in _admin.STATES:
        raise bad_request(
            f"unknown status {status!r}; use one of {', '.join(_admin.STATES)}",
            allowed=list(_admin.STATES),
        )
    return JobQuery(
        status=status,
        queue=text_field(params.get("queue"), "queue", max_length=128),
        task=text_field(params.get("task"), "task"),
        fingerprint=text_field(params.get("fingerprint"), "fingerprint", max_length=1000),
        limit=page_size(params.get("limit")),
        before_id=decode_cursor(text_field(params.get("cursor"), "cursor", max_length=200)),
    )


# -- JSON bodies -----------------------------------------------------------


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object.

    Raises:
        HttpError: 400 when it is not JSON or not an object.
    """
    if not body.strip():
        raise bad_request("the request body is empty; send a JSON object")
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = (
            f" at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise bad_request(f"the request body is not valid JSON{where}") from None
    except RecursionError:
        raise bad_request("the request body nests too deeply") from None
    if not isinstance(value, dict):
        raise bad_request(f"the request body must be a JSON object, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class Submission:
    """A checked `POST /api/v1/jobs` body."""

    task: str
    args: dict[str, Any]
    queue: str | None
    priority: int | None
    delay: float | None
    run_at: dt.datetime | None
    fingerprint: str | None
    max_attempts: int | None


_SUBMIT_FIELDS = {
    "task",
    "args",
    "queue",
    "priority",
    "delay",
    "run_at",
    "fingerprint",
    "max_attempts",
}


def submission(body: Mapping[str, Any]) -> Submission:
    """Check a job submission's fields and types (the task's own checks come later).

    Raises:
        HttpError: 422 naming the field that is wrong.
    """
    unknown = sorted(set(body) - _SUBMIT_FIELDS)
    if unknown:
        raise HttpError(
            422,
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_SUBMIT_FIELDS))}",
        )
    task = body.get("task")
    if not isinstance(task, str) or not task.strip():
        raise HttpError(422, "task is required: the registered name of the task to run")
    args = body.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise HttpError(
            422, f"args must be a JSON object of arguments by name, got {type(args).__name__}"
        )

    def optional(name: str, kinds: tuple[type, ...], what: str) -> Any:
        value = body.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise HttpError(422, f"{name} must be {what}, got {json.dumps(value)[:60]}")
        return value

    queue = optional("queue", (str,), "a string")
    priority = optional("priority", (int,), "an integer from 0 (critical) to 4 (bulk)")
    delay = optional("delay", (int, float), "a number of seconds >= 0")
    if delay is not None and (not math.isfinite(delay) or delay < 0 or delay > 10 * 365 * 86400):
        raise HttpError(422, f"delay must be a number of seconds from 0 to ten years, got {delay}")
    run_at_text = optional("run_at", (str,), "an ISO 8601 timestamp with a timezone")
    run_at = None
    if run_at_text is not None:
        try:
            run_at = dt.datetime.fromisoformat(run_at_text)
        except ValueError:
            raise HttpError(
                422,
                f"run_at {run_at_text[:60]!r} is not an ISO 8601 timestamp; "
                "e.g. 2030-01-01T12:00:00Z",
            ) from None
        if run_at.tzinfo is None:
            raise HttpError(422, "run_at needs a timezone (e.g. a trailing Z or +02:00)")
        if delay is not None:
            raise HttpError(422, "pass either delay or run_at, not both")
    fingerprint = optional("fingerprint", (str,), "a non-empty string")
    max_attempts = optional("max_attempts", (int,), "an integer from 1 to 1000")
    for name, value in (("task", task), ("queue", queue), ("fingerprint", fingerprint)):
        if isinstance(value, str) and "\x00" in value:
            raise HttpError(422, f"{name} contains a NUL character, which PostgreSQL cannot store")
    # The unique index on fingerprints holds keys of at most ~2.7 kB.
    if fingerprint is not None and (not fingerprint or len(fingerprint.encode()) > 1000):
        raise HttpError(422, "fingerprint must be 1 to 1000 bytes of UTF-8")
    return Submission(task, args, queue, priority, delay, run_at, fingerprint, max_attempts)


def config_error(exc: ConfigurationError) -> HttpError:
    """An option the core refused, as a 422."""
    return HttpError(422, str(exc))
