"""Row factories that read columns by name (pgjobs/_rows.py), without a database."""

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from pgjobs._rows import column_row, fields_row


@dataclass(frozen=True, slots=True)
class Pair:
    left: int
    right: str


def cursor(*names: str) -> SimpleNamespace:
    return SimpleNamespace(description=[SimpleNamespace(name=n) for n in names])


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

    assert fields_row(Pair)(SimpleNamespace(description=None)) is no_result
    assert column_row("id")(SimpleNamespace(description=None)) is no_result
