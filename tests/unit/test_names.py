"""The names pgjobs goes by in PostgreSQL: what the SQL and the README say agrees with them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pgjobs import _names
from tests.conftest import REPO

# Every way SQL text names a notification channel (keywords in capitals, as
# pgjobs writes SQL, so that prose such as "Notify channel ..." is not one).
_CHANNEL = re.compile(r"pg_notify\(\s*'([^']*)'|\b(?:LISTEN|NOTIFY)\s+\"?(\w+)")


def _sql_texts() -> list[Path]:
    """The SQL pgjobs runs: its .sql files, and the migrations that define SQL functions."""
    return sorted(
        [
            *(REPO / "pgjobs" / "sql").glob("*.sql"),
            *(REPO / "pgjobs" / "web" / "sql").glob("*.sql"),
            *(REPO / "migrations" / "versions").glob("*.py"),
        ]
    )


def _channels(text: str) -> set[str]:
    """The channels `text` notifies or listens on, outside `--` comments."""
    code = re.sub(r"--[^\n]*", "", text)
    return {match.group(1) or match.group(2) for match in _CHANNEL.finditer(code)}


def test_the_sql_notifies_the_channel_workers_listen_on() -> None:
    used = {path.name: _channels(path.read_text(encoding="utf-8")) for path in _sql_texts()}
    assert used["enqueue.sql"] == {_names.WAKE_CHANNEL}  # the check must see the channel
    assert used["complete.sql"] == {_names.DONE_CHANNEL}
    assert used["listen_control.sql"] == {_names.CONTROL_CHANNEL}
    known = {_names.WAKE_CHANNEL, _names.CONTROL_CHANNEL, _names.DONE_CHANNEL}
    stray = {name: channels for name, channels in used.items() if channels - known}
    assert stray == {}


def test_the_channel_check_would_catch_another_name() -> None:
    assert _channels("SELECT pg_notify('jobs', q)") == {"jobs"}
    assert _channels("LISTEN other_channel;") == {"other_channel"}


def test_the_readme_documents_the_names_operators_look_for() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"`{_names.LEADER_LOCK_KEY}`" in readme
    assert f"`{_names.APP_NAME_LEADER}`" in readme
    assert f"`LISTEN {_names.WAKE_CHANNEL}`" in readme
    assert f"`{_names.LIVENESS_LOCK_CLASSID}`" in readme


def test_the_leader_key_splits_into_the_ids_pg_locks_shows() -> None:
    assert (_names.LEADER_LOCK_CLASSID << 32 | _names.LEADER_LOCK_OBJID) == (
        _names.LEADER_LOCK_KEY & 0xFFFFFFFFFFFFFFFF
    )
    assert 0 <= _names.LEADER_LOCK_CLASSID < 2**32
    assert 0 <= _names.LEADER_LOCK_OBJID < 2**32


def test_the_liveness_key_is_an_int4_that_reads_the_same_in_pg_locks() -> None:
    # Positive, so the int4 argument and pg_locks' unsigned classid agree.
    assert 0 < _names.LIVENESS_LOCK_CLASSID < 2**31
    assert _names.LIVENESS_LOCK_CLASSID == 894977988  # documented in _names.py and the README


@pytest.mark.parametrize(
    ("worker_id", "objid"),
    [
        (1, 1),
        (2**31 - 1, 2**31 - 1),
        (2**31, -(2**31)),
        (2**32 - 1, -1),
        (2**32, 0),
        (2**32 + 5, 5),
    ],
)
def test_a_worker_id_becomes_the_int4_objid_of_its_liveness_lock(
    worker_id: int, objid: int
) -> None:
    assert _names.liveness_lock_objid(worker_id) == objid
    # pg_locks shows the same 32 bits unsigned, which rescue.sql compares with id & 4294967295.
    assert objid & 0xFFFFFFFF == worker_id & 0xFFFFFFFF


def test_the_lock_keys_are_distinct_signed_64_bit_values() -> None:
    keys = {_names.MIGRATE_LOCK_KEY, _names.LEADER_LOCK_KEY}
    assert len(keys) == 2
    assert all(-(2**63) <= key < 2**63 for key in keys)


@pytest.mark.parametrize(
    ("application_name", "pid"),
    [
        ("pgjobs-leader pid=42", 42),
        ("pgjobs-leader", None),
        ("pgjobs-leader pid=", None),
        ("pgjobs-leader pid=42x", None),
        ("pgjobs-leaderx pid=42", None),
        ("pgjobs-listener pid=42", None),
        ("", None),
        (None, None),
    ],
)
def test_pid_from_application_name(application_name: str | None, pid: int | None) -> None:
    assert _names.pid_from_application_name(application_name, _names.APP_NAME_LEADER) == pid


def test_with_pid_round_trips() -> None:
    name = _names.with_pid(_names.APP_NAME_LEADER, 7)
    assert _names.pid_from_application_name(name, _names.APP_NAME_LEADER) == 7
