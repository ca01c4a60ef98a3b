"""The connection parameters each role adds to a DSN, worked out without a database."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgjobs import _connect, _names
from pgjobs._connect import Role, conninfo_params

DSN = "postgresql://alice@db.example:5432/shop"
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


def params(dsn: str = DSN, role: Role = _connect.APP, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("environ", {})
    return conninfo_params(dsn, role, pid=4242, **kwargs)


def effective(dsn: str, role: Role, **kwargs: Any) -> dict[str, Any]:
    """What libpq is given: the DSN merged with the role's parameters."""
    return conninfo_to_dict(make_conninfo(dsn, **params(dsn, role, **kwargs)))


def test_a_plain_dsn_gets_the_roles_name_a_timeout_and_keepalives() -> None:
    assert params() == {
        "fallback_application_name": "pgjobs-app",
        "connect_timeout": 10,
        **KEEPALIVES,
    }


def test_keepalives_notice_a_dead_server_well_within_a_minute() -> None:
    silence = _connect.KEEPALIVES_IDLE + _connect.KEEPALIVES_INTERVAL * _connect.KEEPALIVES_COUNT
    assert silence <= 20


@pytest.mark.parametrize(
    ("role", "name"),
    [
        (_connect.WORKER, "pgjobs-worker pid=4242"),
        (_connect.LEADER, "pgjobs-leader pid=4242"),
        (_connect.LISTENER, "pgjobs-listener pid=4242"),
        (_connect.DASHBOARD, "pgjobs-dashboard"),
        (_connect.APP, "pgjobs-app"),
        (_connect.CLI, "pgjobs-cli"),
        (_connect.MIGRATE, "pgjobs-migrate"),
    ],
)
def test_each_role_names_its_connections(role: Role, name: str) -> None:
    assert params(role=role)["fallback_application_name"] == name


def test_the_leaders_name_carries_the_pid_the_dashboard_reads_back() -> None:
    name = params(role=_connect.LEADER)["fallback_application_name"]
    assert _names.pid_from_application_name(name, _names.APP_NAME_LEADER) == 4242


def test_roles_declare_the_session_settings_their_code_relies_on() -> None:
    assert params(role=_connect.DASHBOARD)["options"] == "-c statement_timeout=5000"


def test_behind_a_transaction_pooler_no_session_settings_are_sent() -> None:
    # A stock PgBouncer refuses the `options` startup parameter.
    assert "options" not in params(role=_connect.DASHBOARD, pooled=True)
    users = params(role=_connect.DASHBOARD, pooled=True, environ={"PGOPTIONS": "-c a=b"})
    assert "options" not in users  # libpq sends PGOPTIONS itself, as the user asked


@pytest.mark.parametrize(
    "role",
    [_connect.WORKER, _connect.LEADER, _connect.LISTENER, _connect.APP, _connect.CLI],
)
def test_a_role_without_settings_sends_no_options(role: Role) -> None:
    # A pooler may refuse the startup `options` parameter: send it only when needed.
    assert "options" not in params(role=role)


def test_with_settings_changes_a_value_in_place_and_adds_new_ones() -> None:
    role = _connect.DASHBOARD.with_settings(statement_timeout=1234, lock_timeout="1s")
    assert role.settings == (("statement_timeout", "1234"), ("lock_timeout", "1s"))
    assert params(role=role)["options"] == "-c statement_timeout=1234 -c lock_timeout=1s"
    assert _connect.DASHBOARD.settings == (("statement_timeout", "5000"),)  # unchanged


def test_roles_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _connect.DASHBOARD.name = "other"  # type: ignore[misc]


def test_a_value_with_a_space_or_backslash_is_escaped_for_the_server() -> None:
    role = Role("x", (("search_path", "a b"), ("x.y", "c\\d")))
    assert params(role=role)["options"] == "-c search_path=a\\ b -c x.y=c\\\\d"


def test_the_users_application_name_wins() -> None:
    dsn = DSN + "?application_name=billing"
    assert effective(dsn, _connect.LEADER)["application_name"] == "billing"


def test_the_users_timeout_and_keepalives_win() -> None:
    dsn = "host=db dbname=shop connect_timeout=3 keepalives_idle=60"
    found = params(dsn)
    assert "connect_timeout" not in found
    assert "keepalives_idle" not in found
    assert effective(dsn, _connect.APP)["keepalives_idle"] == "60"
    assert found["keepalives_interval"] == 2


def test_pgconnect_timeout_in_the_environment_wins_over_the_default() -> None:
    assert "connect_timeout" not in params(environ={"PGCONNECT_TIMEOUT": "2"})


def test_a_caller_may_ask_for_another_connect_timeout() -> None:
    assert params(connect_timeout=5)["connect_timeout"] == 5
    assert "connect_timeout" not in params(DSN + "?connect_timeout=7", connect_timeout=5)


def test_the_users_options_are_kept_before_the_roles_settings() -> None:
    dsn = "host=db options='-c search_path=shop'"
    merged = effective(dsn, _connect.DASHBOARD)["options"]
    assert merged == "-c search_path=shop -c statement_timeout=5000"


def test_pgoptions_is_kept_when_the_dsn_has_no_options() -> None:
    found = params(role=_connect.DASHBOARD, environ={"PGOPTIONS": "-c work_mem=64MB"})
    assert found["options"] == "-c work_mem=64MB -c statement_timeout=5000"


def test_the_users_options_reach_the_server_untouched_when_the_role_has_none() -> None:
    dsn = "host=db options='-c search_path=shop'"
    assert effective(dsn, _connect.APP)["options"] == "-c search_path=shop"


def test_a_key_value_dsn_and_a_url_give_the_same_parameters() -> None:
    assert params("host=db.example port=5432 user=alice dbname=shop") == params(DSN)
