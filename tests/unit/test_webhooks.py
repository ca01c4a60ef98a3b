"""Webhook declarations: bad input refused with what to pass, and the signature receivers check."""

from __future__ import annotations

import hashlib
import hmac
import time
from email.message import Message
from typing import Any

import pytest

import pgjobs
from pgjobs import _webhooks
from pgjobs.cli._worker import default_queues
from pgjobs.errors import ConfigurationError
from pgjobs.worker._webhooks import DELIVERY_RETRY
from tests.readme import snippet

SECRET = "0123456789abcdef"  # exactly 16 bytes


def readme_verify() -> Any:
    """The `verify` function of the README's webhook-verify snippet, as receivers copy it."""
    namespace: dict[str, Any] = {}
    exec(snippet("webhook-verify", "python"), namespace)  # noqa: S102 - the README's own code, under test
    return namespace["verify"]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "example.com/hook", "/hooks", "", "http://", "https:// x", 42]
)
def test_a_url_that_is_not_http_is_refused_at_declaration(url: Any) -> None:
    app = pgjobs.App("postgresql://nowhere/db")
    with pytest.raises(ConfigurationError, match=r"http:// or https://|no usable host"):
        app.webhook(url, events=["failed"], secret=SECRET)
    assert app.webhooks == {}


@pytest.mark.parametrize("secret", ["", "short", "0123456789abcde", b"0123456789abcdefgh"])
def test_a_secret_shorter_than_16_bytes_is_refused_at_declaration(secret: Any) -> None:
    app = pgjobs.App("postgresql://nowhere/db")
    with pytest.raises(ConfigurationError, match=r"secret") as refused:
        app.webhook("https://example.com/hook", events=["failed"], secret=secret)
    assert "secrets.token_hex" in str(refused.value)
    assert app.webhooks == {}


def test_sixteen_bytes_of_utf8_are_enough() -> None:
    app = pgjobs.App("postgresql://nowhere/db")
    app.webhook("https://example.com/hook", events=["failed"], secret=SECRET)
    app.webhook("https://example.com/hook", events=["failed"], secret="é" * 8, name="accents")
    assert sorted(app.webhooks) == ["accents", "https://example.com/hook"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"events": []}, "one or more of"),
        ({"events": ["failed", "exploded"]}, "one or more of"),
        ({"tasks": []}, "matches no job"),
        ({"tasks": ["reports.*"]}, "is a pattern"),
        ({"queues": []}, "matches no job"),
        ({"queue": ""}, "queue name"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 301}, "timeout"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    app = pgjobs.App("postgresql://nowhere/db")
    kwargs: dict[str, Any] = {"events": ["failed"], "secret": SECRET, **options}
    with pytest.raises(ConfigurationError, match=message):
        app.webhook("https://example.com/hook", **kwargs)


def test_one_url_twice_needs_names() -> None:
    app = pgjobs.App("postgresql://nowhere/db")
    app.webhook("https://example.com/hook", events=["failed"], secret=SECRET)
    with pytest.raises(ConfigurationError, match=r"declared twice.*name="):
        app.webhook("https://example.com/hook", events=["succeeded"], secret=SECRET)
    app.webhook("https://example.com/hook", events=["succeeded"], secret=SECRET, name="wins")
    assert sorted(app.webhooks) == ["https://example.com/hook", "wins"]


def test_a_declaration_keeps_the_events_in_order_and_task_names() -> None:
    app = pgjobs.App("postgresql://nowhere/db")

    @app.task(name="billing.refund")
    def refund() -> None: ...

    webhook = app.webhook(
        "https://example.com/hook",
        events=["succeeded", "dead-lettered"],
        secret=SECRET,
        tasks=[refund, "other"],
        queues="billing",
    )
    assert webhook.events == ("dead-lettered", "succeeded")
    assert webhook.tasks == ("billing.refund", "other")
    assert webhook.queues == ("billing",)
    assert SECRET not in repr(webhook)


def test_the_readme_snippet_verifies_a_signature_and_refuses_the_rest() -> None:
    verify = readme_verify()
    body = b'{"event":"succeeded"}'
    timestamp = str(int(time.time()))
    headers = Message()
    headers["X-Pgjobs-Timestamp"] = timestamp
    headers["X-Pgjobs-Signature"] = _webhooks.signature(SECRET, timestamp, body)
    assert verify(SECRET, headers, body)
    assert not verify("another-secret-of-16", headers, body)
    assert not verify(SECRET, headers, body + b" ")
    old = str(int(time.time()) - 3600)
    stale = Message()
    stale["X-Pgjobs-Timestamp"] = old
    stale["X-Pgjobs-Signature"] = _webhooks.signature(SECRET, old, body)
    assert not verify(SECRET, stale, body)


def test_the_signature_is_the_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"k" * 16, b"1700000000.{}", hashlib.sha256).hexdigest()
    assert _webhooks.signature("k" * 16, "1700000000", b"{}") == "v1=" + expected


def test_deliveries_back_off_by_three_for_about_18_minutes() -> None:
    delays = [DELIVERY_RETRY.base_delay(n) for n in range(1, _webhooks.DEFAULT_MAX_ATTEMPTS)]
    assert delays == [1, 3, 9, 27, 81, 243, 729]
    assert 17 * 60 < sum(delays) < 19 * 60


def test_a_worker_serves_the_queue_its_webhooks_deliver_on() -> None:
    app = pgjobs.App("postgresql://nowhere/db")

    @app.task(name="send", queue="mail")
    def send() -> None: ...

    assert default_queues(app) == ("default", "mail")
    app.webhook("https://example.com/hook", events=["failed"], secret=SECRET, queue="hooks")
    assert default_queues(app) == ("default", "hooks", "mail")
