"""Prefix routing: which registration serves a task name, and which names can be registered."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pgjobs
from pgjobs import _schedule
from pgjobs._app import resolve_task_name
from pgjobs._routing import check_name, route
from pgjobs.errors import ConfigurationError, UnknownTaskError

REGISTERED = {"reports.*", "reports.daily", "reports.pdf.*", "billing.charge", "a.b.*"}


@pytest.mark.parametrize(
    ("name", "serves"),
    [
        ("reports.daily", "reports.daily"),  # an exact name wins over the pattern
        ("reports.weekly", "reports.*"),
        ("reports.pdf.big", "reports.pdf.*"),  # the longest prefix wins
        ("reports.pdf", "reports.*"),  # "reports.pdf" does not start with "reports.pdf."
        ("reports.", "reports.*"),  # starts with "reports.": the rest may be empty
        ("reports.*", "reports.*"),
        ("a.b.c.d", "a.b.*"),
        ("reports", None),  # no dot after the prefix
        ("reportsx.daily", None),
        ("billing.refund", None),
        ("billing.charge", "billing.charge"),
        (".x", None),
        ("", None),
    ],
)
def test_route_prefers_the_exact_name_then_the_longest_prefix(name, serves):
    assert route(REGISTERED, name) == serves


@given(st.text(alphabet="ab.", max_size=12))
def test_route_agrees_with_a_scan_of_every_pattern(name):
    registered = {"a.*", "a.b.*", "a.b.a.*", "b.*", "ab.*", "a.b", "b.a.b"}
    if name in registered:
        expected: str | None = name
    else:
        prefixes = [p[:-1] for p in registered if p.endswith(".*") and name.startswith(p[:-1])]
        expected = max(prefixes, key=len) + "*" if prefixes else None
    assert route(registered, name) == expected


@pytest.mark.parametrize(
    "name", ["*", ".*", "reports*", "reports.*.pdf", "re*ports.x", "reports..*", "a.**", "*.x"]
)
def test_a_wildcard_anywhere_but_a_trailing_dot_star_is_refused(name):
    with pytest.raises(ConfigurationError, match=r"only wildcard is a trailing '\.\*'"):
        check_name(name)


@pytest.mark.parametrize("name", ["reports.*", "a.b.*", "reports.daily", "x"])
def test_names_and_patterns_that_are_accepted(name):
    check_name(name)


def test_registering_a_bad_pattern_registers_nothing():
    app = pgjobs.App(dsn="postgresql://nowhere.invalid/none")
    with pytest.raises(ConfigurationError, match=r"reports\.daily"):

        @app.task(name="reports*")
        def handler() -> None: ...

    assert app.tasks == {}


def test_the_app_resolves_names_and_refuses_to_enqueue_a_pattern():
    app = pgjobs.App(dsn="postgresql://nowhere.invalid/none")

    @app.task(name="reports.*", queue="reports", max_attempts=7)
    def reports(day: str) -> None: ...

    @app.task(name="reports.daily")
    def daily() -> None: ...

    assert app.task_for("reports.weekly") is reports
    assert app.task_for("reports.daily") is daily
    assert app.task_for("other") is None
    # A strict App takes a name a pattern serves, with the pattern's defaults
    # and signature; the job keeps its full name.
    spec = app.job("reports.weekly", {"day": "mon"})
    assert (spec.task, spec.options.queue, spec.options.max_attempts) == (
        "reports.weekly",
        "reports",
        7,
    )
    with pytest.raises(pgjobs.errors.ArgumentsError):
        app.job("reports.weekly", {"month": 1})
    with pytest.raises(UnknownTaskError):
        app.job("invoices.monthly")
    with pytest.raises(ConfigurationError, match="a pattern, not a task name"):
        app.job("reports.*")
    with pytest.raises(ConfigurationError, match="a pattern, not a task name"):
        reports.enqueue("mon")
    with pytest.raises(ConfigurationError, match="a pattern, not a task name"):
        reports.job("mon")
    with pytest.raises(ConfigurationError, match="a pattern, not a task name"):
        reports.options(priority=1).job("mon")


def test_the_command_line_keeps_a_name_a_pattern_serves():
    registered = ["reports.*", "myapp.jobs.send_welcome"]
    assert resolve_task_name(registered, "reports.weekly") == "reports.weekly"
    assert resolve_task_name(registered, "send_welcome") == "myapp.jobs.send_welcome"
    with pytest.raises(UnknownTaskError):
        resolve_task_name(registered, "invoices.monthly")


def test_a_schedule_cannot_fire_a_pattern():
    app = pgjobs.App(dsn="postgresql://nowhere.invalid/none")

    @app.task(name="reports.*", queue="reports")
    def reports() -> None: ...

    with pytest.raises(ConfigurationError, match="a pattern"):
        app.schedule("nightly", "@daily", reports)
    with pytest.raises(ConfigurationError, match="a pattern"):
        app.cron("@daily", name="other.*")(lambda: None)
    assert set(app.tasks) == {"reports.*"}
    assert app.schedules == {}
    # A full name that the pattern serves is fine.
    app.schedule("nightly", "@daily", "reports.nightly")
    (row,) = _schedule.rows(app)
    assert (row["task"], row["queue"]) == ("reports.nightly", "reports")
