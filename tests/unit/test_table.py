"""The plain-text table and key/value formatting of the operator commands."""

import datetime as dt

import pytest

from pgjobs import _table


def test_columns_align_and_numbers_go_right():
    out = _table.table(("id", "task", "n"), [(7, "send", 3), (1234, "resize_image", 12)])
    assert out.splitlines() == [
        "  id  task           n",
        "----  ------------  --",
        "   7  send           3",
        "1234  resize_image  12",
    ]


def test_a_column_with_any_text_is_left_aligned():
    out = _table.table(("attempts",), [("1/3",), ("10/10",)])
    assert out.splitlines()[2:] == ["1/3", "10/10"]


def test_none_is_blank_and_trailing_spaces_are_stripped():
    out = _table.table(("id", "error"), [(1, None), (2, "ValueError")])
    lines = out.splitlines()
    assert lines[2] == " 1"
    assert lines[3] == " 2  ValueError"
    assert all(line == line.rstrip() for line in lines)


def test_blank_cells_do_not_make_a_number_column_textual():
    out = _table.table(("id", "n"), [(1, None), (2, 5)])
    assert out.splitlines()[3] == " 2  5"


def test_booleans_are_not_numbers():
    out = _table.table(("flag",), [(True,), (False,)])
    assert out.splitlines()[2:] == ["True", "False"]


def test_long_and_multiline_cells_are_cut_to_one_line():
    out = _table.table(("msg",), [("a\nb\tc",), ("x" * 100,)], max_width=10)
    lines = out.splitlines()
    assert lines[2] == "a b c"
    assert lines[3] == "x" * 9 + "…"
    assert len(lines[3]) == 10


def test_empty_table_is_just_the_header():
    assert _table.table(("id", "task"), []) == "id  task\n--  ----"


def test_a_row_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="2 values for 3 columns"):
        _table.table(("a", "b", "c"), [(1, 2)])


def test_fields_align_values_and_indent_continuations():
    out = _table.fields([("id", 5), ("fingerprint", None), ("args", '{\n  "a": 1\n}')])
    assert out.splitlines() == [
        "id:           5",
        "fingerprint:",
        "args:         {",
        '                "a": 1',
        "              }",
    ]


def test_fields_of_nothing_is_empty():
    assert _table.fields([]) == ""


def test_timestamps_are_shown_in_utc():
    paris = dt.timezone(dt.timedelta(hours=2))
    assert _table.timestamp(dt.datetime(2026, 6, 1, 12, 30, 5, 999, tzinfo=paris)) == (
        "2026-06-01 10:30:05Z"
    )
    assert _table.timestamp(None) == ""


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, ""),
        (-3, "0s"),
        (0.4, "0s"),
        (45.9, "45s"),
        (60, "1m00s"),
        (192, "3m12s"),
        (3_600 * 2 + 5 * 60 + 59, "2h05m"),
        (86_400 * 3 + 3_600 * 4 + 1, "3d04h"),
    ],
)
def test_durations_use_their_two_largest_units(seconds, text):
    assert _table.duration(seconds) == text
