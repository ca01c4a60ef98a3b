"""app.queue: limits are checked at declaration, before any worker writes them."""

from __future__ import annotations

import pytest

import pgjobs
from pgjobs._options import MAX_KEY, EnqueueOptions
from pgjobs._queue import QueueSettings
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
