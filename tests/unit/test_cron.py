"""Cron tick arithmetic, DST included, and schedule declarations: no database."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

import pgjobs
from pgjobs._cron import parse
from pgjobs._schedule import parse_backfill, plan
from pgjobs.errors import ArgumentsError, ConfigurationError

UTC = dt.UTC
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=zone, fold=fold).astimezone(UTC)


# -- plain arithmetic --------------------------------------------------------


def test_next_tick_is_strictly_after() -> None:
    cron = parse("*/5 * * * *")
    assert cron.next_tick(utc(2026, 1, 1, 10, 0)) == utc(2026, 1, 1, 10, 5)
    assert cron.next_tick(utc(2026, 1, 1, 10, 0, 0) - dt.timedelta(microseconds=1)) == utc(
        2026, 1, 1, 10, 0
    )
    assert cron.next_tick(utc(2026, 1, 1, 10, 3, 59, 999)) == utc(2026, 1, 1, 10, 5)


def test_results_are_utc_whatever_the_input_zone() -> None:
    cron = parse("0 9 * * *", "Europe/Paris")
    tick = cron.next_tick(dt.datetime(2026, 1, 1, 12, tzinfo=ZoneInfo("Asia/Tokyo")))
    assert tick.tzinfo is UTC
    assert tick == local(PARIS, 2026, 1, 1, 9)


def test_ticks_between_is_half_open() -> None:
    cron = parse("0 * * * *")
    ticks = cron.ticks_between(utc(2026, 1, 1, 10), utc(2026, 1, 1, 13))
    assert ticks == [utc(2026, 1, 1, 11), utc(2026, 1, 1, 12), utc(2026, 1, 1, 13)]
    assert cron.ticks_between(utc(2026, 1, 1, 10), utc(2026, 1, 1, 13), limit=2) == ticks[:2]


def test_seconds_field_is_the_sixth() -> None:
    cron = parse("* * * * * */15")
    assert cron.has_seconds
    ticks = cron.ticks_between(utc(2026, 1, 1, 10, 0, 0), utc(2026, 1, 1, 10, 1, 0))
    assert [t.second for t in ticks] == [15, 30, 45, 0]
    assert not parse("* * * * *").has_seconds


def test_every_second_for_an_hour() -> None:
    ticks = parse("* * * * * *").ticks_between(utc(2026, 1, 1), utc(2026, 1, 1, 1))
    assert len(ticks) == 3600
    assert len(set(ticks)) == 3600


def test_nicknames() -> None:
    assert parse("@hourly").next_tick(utc(2026, 1, 1, 10, 30)) == utc(2026, 1, 1, 11)
    assert parse("@daily").next_tick(utc(2026, 1, 1, 10, 30)) == utc(2026, 1, 2)
    assert parse("@yearly").next_tick(utc(2026, 3, 1)) == utc(2027, 1, 1)


def test_timezone_is_respected() -> None:
    cron = parse("30 9 * * 1-5", "America/New_York")
    # Friday 2026-01-02 09:30 EST is 14:30Z; the next is Monday the 5th.
    assert cron.next_tick(utc(2026, 1, 2, 12)) == utc(2026, 1, 2, 14, 30)
    assert cron.next_tick(utc(2026, 1, 2, 14, 30)) == utc(2026, 1, 5, 14, 30)


def test_a_sparse_schedule_across_transitions() -> None:
    # Once a year, local midnight in Paris, across both of a year's DST changes.
    cron = parse("0 0 1 1 *", "Europe/Paris")
    assert cron.ticks_between(utc(2026, 2, 1), utc(2028, 2, 1)) == [
        local(PARIS, 2027, 1, 1),
        local(PARIS, 2028, 1, 1),
    ]
    summer = parse("0 12 1 7 *", "Europe/Paris")
    assert summer.next_tick(utc(2026, 1, 1)) == utc(2026, 7, 1, 10)


# -- DST -----------------------------------------------------------------------
# Europe/Paris 2026: clocks jump from 02:00 to 03:00 on March 29 (01:00Z),
# and go back from 03:00 to 02:00 on October 25 (01:00Z).


def test_spring_forward_a_skipped_time_fires_once_as_the_clocks_jump() -> None:
    cron = parse("30 2 * * *", "Europe/Paris")
    ticks = cron.ticks_between(utc(2026, 3, 27, 12), utc(2026, 3, 31, 12))
    assert ticks == [
        local(PARIS, 2026, 3, 28, 2, 30),  # CET
        utc(2026, 3, 29, 1, 0),  # 02:30 does not exist: 03:00 CEST, once
        local(PARIS, 2026, 3, 30, 2, 30),  # CEST
        local(PARIS, 2026, 3, 31, 2, 30),
    ]


def test_spring_forward_several_skipped_times_collapse_into_one_tick() -> None:
    cron = parse("0,15,45 2 * * *", "Europe/Paris")
    ticks = cron.ticks_between(utc(2026, 3, 28, 20), utc(2026, 3, 29, 20))
    assert ticks == [utc(2026, 3, 29, 1, 0)]


def test_spring_forward_a_time_at_the_jump_is_not_doubled() -> None:
    cron = parse("0 3 * * *", "Europe/Paris")
    assert cron.ticks_between(utc(2026, 3, 28, 20), utc(2026, 3, 29, 20)) == [
        utc(2026, 3, 29, 1, 0)
    ]


def test_spring_forward_hourly_keeps_real_time_rhythm() -> None:
    cron = parse("*/30 * * * *", "Europe/Paris")
    ticks = cron.ticks_between(utc(2026, 3, 28, 23, 45), utc(2026, 3, 29, 2, 15))
    assert ticks == [utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0),
                     utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 2, 0)]  # fmt: skip


def test_fall_back_a_repeated_time_fires_once_at_its_first_occurrence() -> None:
    cron = parse("30 2 * * *", "Europe/Paris")
    ticks = cron.ticks_between(utc(2026, 10, 24, 12), utc(2026, 10, 26, 12))
    assert ticks == [
        local(PARIS, 2026, 10, 25, 2, 30, fold=0),  # 00:30Z, CEST
        local(PARIS, 2026, 10, 26, 2, 30),
    ]
    assert ticks[0] == utc(2026, 10, 25, 0, 30)


def test_fall_back_starting_inside_the_repeated_hour_does_not_fire_again() -> None:
    cron = parse("30 2 * * *", "Europe/Paris")
    inside_second_pass = utc(2026, 10, 25, 1, 10)  # 02:10 CET, after 02:30 CEST fired
    assert cron.next_tick(inside_second_pass) == local(PARIS, 2026, 10, 26, 2, 30)


def test_fall_back_hourly_schedules_keep_firing_through_the_repeated_hour() -> None:
    cron = parse("*/30 * * * *", "Europe/Paris")
    ticks = cron.ticks_between(utc(2026, 10, 24, 23, 45), utc(2026, 10, 25, 2, 15))
    # Every 30 minutes of real time, through both passes of 02:00-03:00.
    assert ticks == [utc(2026, 10, 25, 0, 0) + dt.timedelta(minutes=30 * i) for i in range(5)]


def test_new_york_transitions() -> None:
    # 2026: March 8 (02:00 EST -> 03:00 EDT, 07:00Z), November 1 (02:00 EDT -> 01:00 EST, 06:00Z).
    spring = parse("30 2 * * *", "America/New_York")
    assert spring.ticks_between(utc(2026, 3, 7, 12), utc(2026, 3, 9, 12)) == [
        utc(2026, 3, 8, 7, 0),
        local(NEW_YORK, 2026, 3, 9, 2, 30),
    ]
    fall = parse("30 1 * * *", "America/New_York")
    assert fall.ticks_between(utc(2026, 10, 31, 12), utc(2026, 11, 2, 12)) == [
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT, the first of the two
        local(NEW_YORK, 2026, 11, 2, 1, 30),
    ]


@pytest.mark.parametrize("tz", ["Europe/Paris", "America/New_York", "Australia/Lord_Howe"])
def test_ticks_are_strictly_increasing_across_a_year(tz: str) -> None:
    for expression in ("*/20 * * * *", "30 2 * * *", "0 1-3 * * *"):
        ticks = parse(expression, tz).ticks_between(utc(2026, 1, 1), utc(2027, 1, 1))
        assert all(a < b for a, b in itertools.pairwise(ticks)), expression
        # Restarting from any tick gives the same continuation.
        cron = parse(expression, tz)
        for i in range(0, len(ticks) - 1, max(1, len(ticks) // 50)):
            assert cron.next_tick(ticks[i]) == ticks[i + 1]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse("* * * * *").next_tick(dt.datetime(2026, 1, 1))


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("", "empty"),
        ("* * *", "3 fields"),
        ("* * * * * * *", "7 fields"),
        ("61 * * * *", "out of range"),
        ("a b c d e", "not acceptable"),
        ("0 0 31 2 *", "matches no date"),
        ("*/0 * * * *", ""),
    ],
)
def test_invalid_expressions_name_the_expression_and_the_reason(
    expression: str, reason: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse(expression)
    message = str(caught.value)
    assert repr(expression) in message
    assert "invalid" in message
    assert reason in message


@pytest.mark.parametrize("tz", ["Mars/Olympus", "Europe/Pariss", "", "../etc/passwd", "UTC "])
def test_invalid_timezones(tz: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse("*/5 * * * *", tz)
    assert repr(tz) in str(caught.value)
    assert "'*/5 * * * *'" in str(caught.value)


# -- declarations on the App ------------------------------------------------------


def test_cron_decorator_registers_a_task_and_a_schedule() -> None:
    app = pgjobs.App(dsn="postgresql://localhost/x")

    @app.cron("*/5 * * * *", tz="Europe/Paris", name="reports", queue="maintenance")
    def refresh_reports() -> None:
        """Refresh."""

    assert isinstance(refresh_reports, pgjobs.Task)
    assert app.tasks["reports"] is refresh_reports
    schedule = app.schedules["reports"]
    assert schedule.task == "reports"
    assert schedule.cron.timezone == "Europe/Paris"
    assert refresh_reports.defaults.queue == "maintenance"


def test_schedule_with_args_backfill_and_skip() -> None:
    app = pgjobs.App(dsn="postgresql://localhost/x")

    @app.task(name="cleanup")
    def cleanup(days: int) -> None:
        """Clean."""

    schedule = app.schedule(
        "nightly-cleanup", "0 3 * * *", cleanup, args={"days": 30}, queue="maintenance",
        backfill="1h", skip_if_running=True,
    )  # fmt: skip
    assert schedule.args == {"days": 30}
    assert schedule.args_json == '{"days":30}'
    assert schedule.backfill == dt.timedelta(hours=1)
    assert schedule.fingerprint == "cron:nightly-cleanup"
    assert app.schedules == {"nightly-cleanup": schedule}


def test_bad_declarations_fail_before_anything_runs() -> None:
    app = pgjobs.App(dsn="postgresql://localhost/x")

    @app.task(name="cleanup")
    def cleanup(days: int) -> None:
        """Clean."""

    with pytest.raises(ConfigurationError, match="'0 25 \\* \\* \\*' is invalid"):
        app.schedule("a", "0 25 * * *", cleanup, args={"days": 1})
    with pytest.raises(ConfigurationError, match="Nowhere/City"):
        app.schedule("a", "0 2 * * *", cleanup, args={"days": 1}, tz="Nowhere/City")
    with pytest.raises(ArgumentsError, match="schedule 'a'"):
        app.schedule("a", "0 2 * * *", cleanup, args={"weeks": 1})
    with pytest.raises(ConfigurationError, match="backfill"):
        app.schedule("a", "0 2 * * *", cleanup, args={"days": 1}, backfill="-1h")
    app.schedule("a", "0 2 * * *", cleanup, args={"days": 1})
    with pytest.raises(ConfigurationError, match="'a' is declared twice"):
        app.schedule("a", "0 4 * * *", cleanup, args={"days": 2})
    assert list(app.schedules) == ["a"]

    with pytest.raises(ConfigurationError, match="'61 \\* \\* \\* \\*' is invalid"):

        @app.cron("61 * * * *")
        def never() -> None:
            """Never registered."""

    assert all("never" not in name for name in app.tasks)


def test_unregistered_task_is_caught_by_the_startup_check() -> None:
    from pgjobs import _schedule

    app = pgjobs.App(dsn="postgresql://localhost/x")
    app.schedule("orphan", "@hourly", "not.registered")
    with pytest.raises(ConfigurationError, match=r"'not\.registered', which is not registered"):
        _schedule.check(app)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, 0), (0, 0), (90, 90), ("90s", 90), ("15m", 900), ("1h30m", 5400), ("2d", 172800),
     (dt.timedelta(minutes=5), 300), ("1.5h", 5400)],
)  # fmt: skip
def test_backfill_values(value: object, seconds: float) -> None:
    assert parse_backfill(value, "x").total_seconds() == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["soon", "1y", "-5m", -1, float("inf"), True, "1h and"])
def test_bad_backfill_values(value: object) -> None:
    with pytest.raises(ConfigurationError, match="backfill"):
        parse_backfill(value, "x")  # type: ignore[arg-type]


# -- which ticks are due ------------------------------------------------------------


def test_plan_fires_ticks_since_the_watermark_within_the_window() -> None:
    cron = parse("* * * * * *")
    now = utc(2026, 1, 1, 12, 0, 10, 500_000)
    due = plan(
        cron, last_fired_at=utc(2026, 1, 1, 12, 0, 7), active_since=utc(2026, 1, 1),
        now=now, window=dt.timedelta(seconds=10),
    )  # fmt: skip
    assert due.due == [utc(2026, 1, 1, 12, 0, s) for s in (8, 9, 10)]
    assert due.next_tick == utc(2026, 1, 1, 12, 0, 11)
    assert due.missed_after is None


def test_plan_skips_ticks_missed_beyond_the_window() -> None:
    cron = parse("* * * * *")
    now = utc(2026, 1, 1, 12, 0, 5)
    due = plan(
        cron, last_fired_at=utc(2026, 1, 1, 10), active_since=utc(2026, 1, 1),
        now=now, window=dt.timedelta(seconds=10),
    )  # fmt: skip
    assert due.due == [utc(2026, 1, 1, 12)]
    assert due.missed_after == utc(2026, 1, 1, 10)
    backfilled = plan(
        cron, last_fired_at=utc(2026, 1, 1, 10), active_since=utc(2026, 1, 1),
        now=now, window=dt.timedelta(hours=1),
    )  # fmt: skip
    assert len(backfilled.due) == 60  # 11:01 to 12:00; 11:00 is older than the hour


def test_plan_never_fires_before_the_schedule_existed() -> None:
    cron = parse("* * * * *")
    due = plan(
        cron, last_fired_at=None, active_since=utc(2026, 1, 1, 11, 59, 30),
        now=utc(2026, 1, 1, 12, 0, 1), window=dt.timedelta(days=1),
    )  # fmt: skip
    assert due.due == [utc(2026, 1, 1, 12)]
    assert due.missed_after is None
