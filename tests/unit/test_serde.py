"""Arguments must survive the trip through jsonb, or be refused up front."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgjobs import _serde
from pgjobs._serde import dump_args
from pgjobs.errors import ArgumentsError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    # Floats from 1e16 up are refused: jsonb would hand them back as integers.
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: abs(f) < 1e16)
    | st.text().filter(lambda s: "\x00" not in s),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text().filter(lambda s: "\x00" not in s), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(min_size=1).filter(lambda s: "\x00" not in s), json_values))
def test_json_values_round_trip(args):
    text = dump_args(args)
    assert json.loads(text) == args
    # The prebuilt encoder writes exactly what json.dumps with the same settings does.
    assert text == json.dumps(args, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"x": object()}, "not JSON-serialisable"),
        ({"x": {1, 2}}, "not JSON-serialisable"),
        ({"x": math.nan}, "not JSON-serialisable"),
        ({"x": math.inf}, "not JSON-serialisable"),
        ({"x": "a\x00b"}, "NUL"),
        ({"x": {1: "a"}}, "non-string key"),
        ({"x": [{"ok": {2: 3}}]}, "non-string key"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(args, needle):
    with pytest.raises(ArgumentsError, match=needle):
        dump_args(args)


def test_a_cycle_is_refused_not_overflowed():
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with pytest.raises(ArgumentsError, match="nested more than"):
        dump_args({"x": cyclic})


def test_a_lone_surrogate_is_refused():
    with pytest.raises(ArgumentsError, match="not valid Unicode"):
        dump_args({"x": "bad \udc80 byte"})


def test_payload_size_limit():
    dump_args({"x": "a" * 100}, max_bytes=200)
    with pytest.raises(ArgumentsError, match="over the limit of 200"):
        dump_args({"x": "é" * 100}, max_bytes=200)  # 200 bytes of UTF-8 plus the JSON around it


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        '{"i": 1}',
        '{"trace": {"traceparent": "00-ab-cd-01"}, "correlation_id": "req-8f41"}',
        '[1, 2.5, null, true, "é ✓ \\u00e9"]',
        '"a string"',
        "42",
        "null",
        ' {"a": 1}',  # whitespace around: a json column keeps what was written
        '{"a": 1}\n',
        '{"a": 1} {"b": 2}',  # not one value
        "",
        "{",
        "NaN",
    ],
)
def test_load_json_reads_what_json_loads_reads_and_fails_as_it_does(text):
    for data in (text.encode(), text):
        outcomes = []
        for loads in (json.loads, _serde.load_json):
            try:
                value = loads(data)
            except json.JSONDecodeError as error:
                outcomes.append(("error", str(error)))
            else:
                # repr: NaN is not equal to itself, and 1 must not come back as 1.0
                outcomes.append(("value", repr(value)))
        assert outcomes[0] == outcomes[1]


@given(json_values)
def test_load_json_reads_any_value_as_json_loads_does(value):
    text = json.dumps(value, ensure_ascii=False)
    assert _serde.load_json(text.encode()) == json.loads(text)
