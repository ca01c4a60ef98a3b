"""Row factories that read columns by name (pgjobs/_rows.py), without a database."""

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from psycopg import pq

from pgjobs._rows import column_row, fields_row


@dataclass(frozen=True, slots=True)
class Pair:
    left: int
    right: str


def cursor(*names: str) -> SimpleNamespace:
    """What the factories read of a cursor: its result's status and raw column names."""
    fields = [n.encode() for n in names]
    result = SimpleNamespace(
        status=pq.ExecStatus.TUPLES_OK, nfields=len(fields), fname=fields.__getitem__
    )
    return SimpleNamespace(pgresult=result)


def test_fields_are_taken_from_the_columns_of_their_names_in_any_order():
    make = fields_row(Pair)(cursor("extra", "right", "left"))
    assert make((0, "r", 1)) == Pair(1, "r")


def test_a_field_without_its_column_is_an_error_that_names_both():
    with pytest.raises(LookupError, match=r"no column left .*returns right"):
        fields_row(Pair)(cursor("right"))


def test_a_column_is_read_by_name():
    make = column_row("id")(cursor("queue", "id"))
    assert [make(row) for row in [("q", 1), ("q", 2)]] == [1, 2]
    with pytest.raises(LookupError, match="no column id"):
        column_row("id")(cursor("queue"))


def test_a_statement_without_a_result_makes_no_rows():
    from psycopg.rows import no_result

    no_statement = SimpleNamespace(pgresult=None)
    a_command = SimpleNamespace(pgresult=SimpleNamespace(status=pq.ExecStatus.COMMAND_OK))
    for cur in (no_statement, a_command):
        assert fields_row(Pair)(cur) is no_result
        assert column_row("id")(cur) is no_result
