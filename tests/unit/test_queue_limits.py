"""app.queue: limits are checked at declaration, before any worker writes them."""

from __future__ import annotations

import pytest

import pgjobs
from pgjobs._options import MAX_KEY, EnqueueOptions
from pgjobs._queue import QueueSettings, changed, default_burst, parse_rate
from pgjobs.errors import ConfigurationError


def test_a_declared_queue_keeps_its_limits():
    app = pgjobs.App("postgresql://unused/db")
    assert app.queue("exports", concurrency=5) == QueueSettings("exports", 5, None)
    assert app.queue("reports", key_concurrency=1) == QueueSettings("reports", None, 1)
    # The same declaration again (a module imported twice) is no error.
    app.queue("exports", concurrency=5)
    assert sorted(app.queues) == ["exports", "reports"]


@pytest.mark.parametrize("option", ["concurrency", "key_concurrency"])
@pytest.mark.parametrize("value", [0, -1, True, 2.5, "3"])
def test_a_limit_that_is_not_a_positive_integer_is_refused(option, value):
    app = pgjobs.App("postgresql://unused/db")
    with pytest.raises(ConfigurationError, match=f"{option} must be a positive integer"):
        app.queue("exports", **{option: value})
    assert app.queues == {}


def test_a_bad_queue_name_or_a_second_declaration_with_other_limits_is_refused():
    app = pgjobs.App("postgresql://unused/db")
    with pytest.raises(ConfigurationError, match="queue name"):
        app.queue("", concurrency=1)
    app.queue("exports", concurrency=5)
    with pytest.raises(ConfigurationError, match="declared twice with different settings"):
        app.queue("exports", concurrency=6)
    assert app.queues["exports"].concurrency == 5


def test_a_key_of_the_maximum_length_is_accepted():
    assert EnqueueOptions(key="k" * MAX_KEY).key == "k" * MAX_KEY
    assert EnqueueOptions().merge({"key": "customer:1"}).key == "customer:1"


def test_a_declared_rate_limit_keeps_its_rate_and_burst():
    app = pgjobs.App("postgresql://unused/db")
    assert app.queue("partner-api", rate_limit="100/m") == QueueSettings(
        "partner-api", rate_limit="100/m"
    )
    assert app.queue("bulk", rate_limit="5/s", rate_burst=10, concurrency=3) == QueueSettings(
        "bulk", 3, None, "5/s", 10
    )
    assert parse_rate("q", "3/h") == (3, 3600)


@pytest.mark.parametrize(
    ("rate", "message"),
    [
        ("100", "does not parse"),
        ("ten/m", "does not parse"),
        ("1.5/s", "does not parse"),
        ("/m", "does not parse"),
        ("", "does not parse"),
        (100, "rate_limit must be a string such as '100/m'"),
        ("0/s", "must allow 1 to 999999999 jobs per unit"),
        ("-5/m", "must allow 1 to 999999999 jobs per unit"),
        ("1000000000/s", "must allow 1 to 999999999 jobs per unit"),
        ("100/min", "unknown unit 'min'; use s .per second., m .per minute. or h"),
        ("100/d", "unknown unit 'd'"),
        ("100/", "unknown unit ''"),
        ("100 / m", "write rate_limit '100 / m' as '100/m'"),
        ("+5/m", "write rate_limit '\\+5/m' as '5/m'"),
    ],
)
def test_a_rate_that_does_not_parse_is_refused_at_declaration(rate, message):
    app = pgjobs.App("postgresql://unused/db")
    with pytest.raises(ConfigurationError, match=f"queue 'api': (rate_limit )?.*{message}"):
        app.queue("api", rate_limit=rate)
    assert app.queues == {}


@pytest.mark.parametrize("burst", [0, -1, True, 1.5])
def test_a_burst_that_is_not_a_positive_integer_or_has_no_rate_is_refused(burst):
    app = pgjobs.App("postgresql://unused/db")
    with pytest.raises(ConfigurationError, match="rate_burst must be a positive integer"):
        app.queue("api", rate_limit="1/s", rate_burst=burst)
    with pytest.raises(ConfigurationError, match="rate_burst=2 is given without a rate_limit"):
        app.queue("api", rate_burst=2)
    assert app.queues == {}


def test_the_default_burst_is_a_tenth_of_a_second_of_the_rate_and_at_least_one():
    assert [default_burst(*parse_rate("q", r)) for r in ("1/h", "100/m", "10/s", "19/s")] == [
        1,
        1,
        1,
        1,
    ]
    assert [default_burst(*parse_rate("q", r)) for r in ("20/s", "100/s", "6000/m")] == [2, 10, 10]


def test_a_key_rate_is_checked_as_the_queue_rate_is():
    app = pgjobs.App("postgresql://unused/db")
    assert app.queue("api", key_rate_limit="10/s", key_rate_burst=3) == QueueSettings(
        "api", key_rate_limit="10/s", key_rate_burst=3
    )
    with pytest.raises(ConfigurationError, match="key_rate_limit '10/min' has the unknown unit"):
        app.queue("other", key_rate_limit="10/min")
    with pytest.raises(ConfigurationError, match="key_rate_limit '0/s' must allow 1 to"):
        app.queue("other", key_rate_limit="0/s")
    with pytest.raises(ConfigurationError, match="key_rate_burst=2 is given without a key_rate"):
        app.queue("other", key_rate_burst=2, rate_limit="1/s")
    with pytest.raises(ConfigurationError, match="key_rate_burst must be a positive integer"):
        app.queue("other", key_rate_limit="1/s", key_rate_burst=0)
    assert sorted(app.queues) == ["api"]


def test_changed_merges_some_limits_and_checks_the_result():
    current = QueueSettings("q", concurrency=5, rate_limit="10/s", rate_burst=4)
    assert changed(current, {"key_concurrency": 1}) == QueueSettings(
        "q", 5, 1, "10/s", 4, None, None
    )
    # A rate removed takes its burst, unless the burst is given (then refused).
    assert changed(current, {"rate_limit": None}) == QueueSettings("q", concurrency=5)
    with pytest.raises(ConfigurationError, match="without a rate_limit"):
        changed(current, {"rate_limit": None, "rate_burst": 4})
    with pytest.raises(ConfigurationError, match="unknown limit"):
        changed(current, {"paused": True})
    with pytest.raises(ConfigurationError, match="concurrency must be a positive integer"):
        changed(current, {"concurrency": 0})
