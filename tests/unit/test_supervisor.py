"""The supervisor of `worker --processes N`: its decisions, and its loop over trivial children."""

from __future__ import annotations

import argparse
import sys

import pytest
from structlog.testing import capture_logs

from pgjobs.cli._supervisor import (
    EXIT_CONFIGURATION,
    EXIT_GAVE_UP,
    Action,
    Exit,
    RestartPolicy,
    Restarts,
    Supervisor,
    child_argv,
    classify,
    parse_processes,
    stop_code,
)

# -- the option ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("2", 2), ("256", 256), (" 8 ", 8)])
def test_processes_accepts_1_to_256(text, value):
    assert parse_processes(text) == value


def test_processes_auto_is_the_usable_cores():
    assert 1 <= parse_processes("auto") <= 256
    assert parse_processes("AUTO") == parse_processes("auto")


@pytest.mark.parametrize("text", ["0", "-1", "257", "lots", "", "1.5"])
def test_processes_refuses_anything_else_and_names_the_range(text):
    with pytest.raises(argparse.ArgumentTypeError, match="auto or a whole number from 1 to 256"):
        parse_processes(text)


def test_child_argv_drops_processes_and_asks_for_one():
    argv = ["--log-format", "json", "worker", "app:app", "--processes", "4", "-c", "5"]
    assert child_argv(argv) == [
        "--log-format",
        "json",
        "worker",
        "app:app",
        "-c",
        "5",
        "--processes",
        "1",
    ]
    assert child_argv(["worker", "a:b", "--processes=auto"]) == [
        "worker",
        "a:b",
        "--processes",
        "1",
    ]
    # An abbreviation is left in place; the trailing --processes 1 wins over it.
    assert child_argv(["worker", "a:b", "--proc", "3"])[-2:] == ["--processes", "1"]


# -- the decisions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (0, Exit.CLEAN),
        (2, Exit.CONFIGURATION),
        (1, Exit.CRASH),
        (3, Exit.CRASH),
        (-9, Exit.CRASH),
        (-15, Exit.CRASH),
    ],
)
def test_classify(code, kind):
    assert classify(code) is kind


def test_delay_doubles_from_1_to_30_seconds():
    policy = RestartPolicy()
    assert [policy.delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.delay(10_000) == 30


def test_a_configuration_error_of_a_first_child_is_never_restarted():
    restarts = Restarts(RestartPolicy(), slots=2)
    assert restarts.exited(0, 2, uptime=0.5, now=0).action is Action.STOP_CONFIGURATION
    assert restarts.exited(1, 2, uptime=3600, now=1).action is Action.STOP_CONFIGURATION


def test_exit_2_of_a_restarted_child_is_a_crash_with_backoff_and_the_give_up_limit():
    # The same configuration started the slot before: a database down just as
    # the child restarted must not end the group, nor be retried forever.
    restarts = Restarts(RestartPolicy(), slots=1)
    assert restarts.exited(0, -9, uptime=3600, now=0).action is Action.RESTART  # crash 1
    decisions = [restarts.exited(0, 2, uptime=0.5, now=t) for t in (1, 3, 7, 15)]
    assert [d.action for d in decisions] == [Action.RESTART] * 4  # crashes 2 to 5
    assert [d.delay for d in decisions] == [1.0, 2.0, 4.0, 8.0]
    assert restarts.exited(0, 2, uptime=0.5, now=31).action is Action.GIVE_UP  # the 6th


def test_quick_crashes_of_a_slot_back_off():
    restarts = Restarts(RestartPolicy(), slots=2)
    delays = [restarts.exited(0, 3, uptime=0.5, now=t).delay for t in (0, 10, 70, 140)]
    assert delays == [1, 2, 4, 8]
    # The other slot has its own backoff.
    assert restarts.exited(1, -9, uptime=0.5, now=141).delay == 1


def test_a_child_that_stayed_up_resets_the_backoff():
    restarts = Restarts(RestartPolicy(), slots=1)
    for t in (0, 2, 5):
        restarts.exited(0, 1, uptime=0.5, now=t)
    decision = restarts.exited(0, -9, uptime=30, now=40)
    assert (decision.action, decision.delay) == (Action.RESTART, 1)
    # The count starts again from there.
    assert [restarts.exited(0, -9, uptime=1, now=t).delay for t in (42, 44)] == [1, 2]


def test_more_than_five_quick_crashes_in_a_minute_gives_up():
    restarts = Restarts(RestartPolicy(), slots=3)
    for i, t in enumerate((0, 1, 2, 3, 4)):
        assert restarts.exited(i % 3, 3, uptime=0.5, now=t).action is Action.RESTART
    assert restarts.exited(2, 3, uptime=0.5, now=59).action is Action.GIVE_UP


def test_crashes_spread_over_more_than_a_minute_are_restarted_forever():
    restarts = Restarts(RestartPolicy(), slots=1)
    # The delay grows to 30 s, so a child crashing at start ends up at about
    # two crashes a minute: restarted, never given up on.
    actions = {restarts.exited(0, 1, uptime=0.5, now=t * 13.0).action for t in range(50)}
    assert actions == {Action.RESTART}


def test_a_crash_after_a_long_run_forgets_earlier_crashes():
    restarts = Restarts(RestartPolicy(), slots=2)
    for t in range(5):
        restarts.exited(0, 1, uptime=0.5, now=t)
    assert restarts.exited(1, -9, uptime=45, now=10).action is Action.RESTART
    assert restarts.recent_crashes == 1
    for t in range(11, 15):
        assert restarts.exited(0, 1, uptime=0.5, now=t).action is Action.RESTART


def test_a_clean_exit_is_restarted_but_is_no_crash():
    restarts = Restarts(RestartPolicy(max_crashes=1), slots=1)
    for t in range(10):
        assert restarts.exited(0, 0, uptime=0.5, now=t).action is Action.RESTART
    assert restarts.recent_crashes == 0
    # Quick clean exits in a row still back off: no restart loop at full speed.
    assert restarts.exited(0, 0, uptime=0.5, now=11).delay == 30


def test_stop_code_is_0_only_if_every_child_exited_0():
    assert stop_code([0, 0, 0]) == 0
    assert stop_code([]) == 0
    assert stop_code([0, 1]) == 1
    assert stop_code([0, -9]) == 1


# -- the loop, over children that are not workers --------------------------------

QUICK = RestartPolicy(initial_delay=0.01, max_delay=0.05, max_crashes=3)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_children_that_keep_crashing_make_it_give_up():
    with capture_logs() as logs:
        supervisor = Supervisor(python("raise SystemExit(3)"), 2, QUICK, poll_interval=0.01)
        assert supervisor.run() == EXIT_GAVE_UP
    events = [e["event"] for e in logs]
    assert events[0] == "supervisor.started"
    # Every child it started (two, then the restarts) exited and was accounted for.
    assert events.count("supervisor.child_exited") == 2 + events.count("supervisor.child_started")
    gave_up = next(e for e in logs if e["event"] == "supervisor.gave_up")
    assert gave_up["crashes"] == QUICK.max_crashes + 1
    assert events[-1] == "supervisor.stopped"


def test_a_configuration_error_stops_the_others_and_exits_2(tmp_path):
    # The first child fails as an unknown App would; the other would run for a minute.
    first = tmp_path / "first"
    code = (
        "import os, sys, time\n"
        "try:\n"
        "    os.close(os.open(sys.argv[1], os.O_CREAT | os.O_EXCL))\n"
        "except FileExistsError:\n"
        "    time.sleep(60)\n"
        "else:\n"
        "    sys.exit(2)\n"
    )
    with capture_logs() as logs:
        supervisor = Supervisor([*python(code), str(first)], 2, QUICK, poll_interval=0.01)
        assert supervisor.run() == EXIT_CONFIGURATION
    exits = [e for e in logs if e["event"] == "supervisor.child_exited"]
    assert sorted(e["code"] for e in exits) == [-15, 2]  # the sleeper got SIGTERM
    assert all(e["restarting_in"] is None for e in exits)
    assert "supervisor.child_started" not in [e["event"] for e in logs]
    stopping = next(e for e in logs if e["event"] == "supervisor.stopping")
    assert stopping["reason"] == "configuration_error"
