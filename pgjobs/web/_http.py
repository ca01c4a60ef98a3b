"""Request input made safe (filters, cursors, ids, JSON bodies) and errors as 4xx (pure)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pgjobs import _admin
from pgjobs.errors import ConfigurationError
from pgjobs.web import _chart

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


def chart_query(params: Mapping[str, str]) -> tuple[_chart.Range, str | None, str | None]:
    """The chart's range, queue and task from a query string (`range=24h&queue=mail`).

    Raises:
        HttpError: 400, an unknown range or a bad name.
    """
    name = params.get("range") or _chart.DEFAULT_RANGE
    if name not in _chart.RANGES:
        raise bad_request(
            f"unknown range {name[:20]!r}; use one of {', '.join(_chart.RANGES)}",
        )
    queue = text_field(params.get("queue"), "queue", max_length=128)
    task = text_field(params.get("task"), "task")
    return _chart.RANGES[name], queue, task


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
    check_text(value, name)
    if len(value) > max_length:
        raise bad_request(f"{name} is longer than {max_length} characters")
    return value


def is_unicode(text: str) -> bool:
    """Whether `text` can be encoded as UTF-8 (it holds no lone surrogate such as \\ud800)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(text: str, name: str) -> None:
    """Refuse a string from a request that is not Unicode text.

    JSON's `\\ud800` escapes decode to lone surrogates, which no UTF-8
    encoder (psycopg's, the response's) accepts; refused here, they never
    reach the database or a template.

    Raises:
        HttpError: 400.
    """
    if not is_unicode(text):
        raise bad_request(
            f"{name} contains a lone UTF-16 surrogate (such as \\ud800), which is not "
            "Unicode text; send the character itself or a valid surrogate pair"
        )


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


def same_origin(origin: str, host: str, scheme: str) -> bool:
    """Whether a browser's Origin header names the site the request was made to.

    Args:
        origin: the Origin header (`null` names no site, so never matches).
        host: the Host header the request came with.
        scheme: the request's own scheme, `http` or `https`; an https origin
            also matches an http request, as behind a proxy that ends TLS.

    Returns:
        True when the origin's host and port are the Host header's, exactly.
    """
    origin_scheme, sep, rest = origin.partition("://")
    if not sep or not host or rest.lower() != host.lower():
        return False
    return origin_scheme == "https" or origin_scheme == scheme == "http"


# -- hosts and URLs --------------------------------------------------------


def parse_allowed_hosts(hosts: str | Iterable[str]) -> tuple[str, ...]:
    """Host names from `a.example.com,*.example.org` (or a list): lower case, no port.

    `*` allows any host; `*.example.org` allows its subdomains (not example.org itself).

    Raises:
        ConfigurationError: an empty list, or an entry that is not a host name.
    """
    entries = hosts.split(",") if isinstance(hosts, str) else list(hosts)
    found = tuple(e.strip().lower().rstrip(".") for e in entries if e.strip())
    for entry in found:
        name = entry.removeprefix("*.")
        if entry.startswith("[") and entry.endswith("]"):  # an IPv6 address
            continue
        if entry != "*" and (not name or any(c in name for c in "*/:@ []")):
            raise ConfigurationError(
                f"allowed hosts: {entry[:60]!r} is not a host name; give names such as "
                "dash.example.com or *.example.com, without a scheme or port"
            )
    if not found:
        raise ConfigurationError(
            "allowed hosts: the list is empty; give the names the dashboard is reached by "
            "(e.g. dash.example.com), or * for any"
        )
    return found


def host_name(host_header: str) -> str:
    """The name in a Host header, without its port, in lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    name, sep, port = host.rpartition(":")
    return (name if sep and port.isdigit() else host).rstrip(".")


def host_allowed(host_header: str, allowed: tuple[str, ...]) -> bool:
    """Whether a request's Host header names one of `allowed` (from parse_allowed_hosts)."""
    name = host_name(host_header)
    if not name:
        return "*" in allowed
    for pattern in allowed:
        if pattern in ("*", name) or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return True
    return False


def url_is_utf8(raw_path: bytes, query_string: bytes) -> bool:
    """Whether a URL's path and query, percent-decoded, are UTF-8 text.

    Servers decode invalid bytes (`%ED%A0%80`, a surrogate's encoding) to
    U+FFFD, so a name would silently change; such a URL is refused instead.
    """
    for raw in (raw_path, query_string.replace(b"+", b" ")):
        try:
            urllib.parse.unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


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
    #: "newest" (the default), "oldest" or "priority".
    order: str = "newest"
    #: Only jobs whose args contain this JSON object (jsonb @>), as JSON text.
    args: str | None = None
    #: Only jobs with an error whose recorded text contains this (any case).
    error: str | None = None

    @property
    def searched(self) -> bool:
        """Whether the page needs the search query (jobs_search.sql), not a plain list."""
        return self.order != "newest" or self.args is not None or self.error is not None

    def search_params(self) -> dict[str, Any]:
        """Parameters for jobs_search.sql."""
        params = self.filter.params()
        params.pop("before_id")
        return {
            **params,
            "cursor": self.before_id,
            "order": self.order,
            "args": self.args,
            "error": self.error,
        }

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
            "order": None if self.order == "newest" else self.order,
            "args": self.args,
            "error": self.error,
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
        order=_order(params.get("order")),
        args=_args_filter(params.get("args")),
        error=text_field(params.get("error"), "error", max_length=500),
    )


#: How the jobs list may be sorted.
ORDERS = ("newest", "oldest", "priority")


def _order(value: str | None) -> str:
    order = text_field(value, "order", max_length=16) or "newest"
    if order not in ORDERS:
        raise bad_request(f"unknown order {order!r}; use one of {', '.join(ORDERS)}")
    return order


def _args_filter(value: str | None) -> str | None:
    """A JSON object for args containment, as canonical JSON text."""
    text = text_field(value, "args", max_length=2000)
    if text is None:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        raise bad_request(
            'args must be a JSON object, such as {"user_id": 42}; it finds jobs whose args '
            "contain it"
        ) from None
    if not isinstance(found, dict) or not found:
        raise bad_request(
            'args must be a non-empty JSON object, such as {"user_id": 42}; '
            f"got {type(found).__name__}"
        )
    _check_strings(found)
    return json.dumps(found, ensure_ascii=False)


# -- JSON bodies -----------------------------------------------------------


def check_json_content_type(content_type: str | None) -> None:
    """Refuse a body that does not say it is JSON.

    A browser can send a cross-site form as `text/plain` whose body happens
    to parse as JSON; only `application/json` (which a cross-site page cannot
    send without a CORS preflight this API never grants) is read as JSON.

    Raises:
        HttpError: 415.
    """
    media = (content_type or "").partition(";")[0].strip().lower()
    if media != "application/json":
        shown = f"Content-Type {media!r}" if media else "no Content-Type"
        raise HttpError(
            415,
            f"the request body must be JSON sent as Content-Type: application/json, got {shown}",
        )


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            shown = key[:60] if is_unicode(key) else ascii(key)[:60]
            raise bad_request(
                f"the key {shown!r} appears twice in one JSON object; send each key once"
            )
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise bad_request(f"{name} is not JSON; send a number, or null")


def _check_strings(value: Any) -> None:
    """Refuse a lone surrogate in any key or string of a parsed JSON value."""
    # Iterative: a body may nest as deeply as the parser allowed.
    stack: list[tuple[str, Any]] = [("the request body", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            check_text(item, where)
        elif isinstance(item, dict):
            for key, child in item.items():
                check_text(key, f"a key in {where}")
                stack.append((key if where == "the request body" else f"{where}.{key}", child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", child) for i, child in enumerate(item))


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object of Unicode text, each key once.

    Raises:
        HttpError: 400 when it is not JSON, not an object, repeats a key in
            an object, or holds a lone surrogate in a string.
    """
    if not body.strip():
        raise bad_request("the request body is empty; send a JSON object")
    try:
        value = json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = (
            f" at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise bad_request(f"the request body is not valid JSON{where}") from None
    except RecursionError:
        raise bad_request("the request body nests too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise bad_request(f"the request body holds a value Python cannot read: {exc}") from None
    if not isinstance(value, dict):
        raise bad_request(f"the request body must be a JSON object, got {type(value).__name__}")
    _check_strings(value)
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
