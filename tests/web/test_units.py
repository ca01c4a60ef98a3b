"""The dashboard's pure parts: tokens, redaction, cursors, submissions, bind addresses."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'")

from pgjobs.cli._dashboard import check_exposure, parse_bind
from pgjobs.errors import ConfigurationError
from pgjobs.web import _auth, _http

A16 = "a1b2c3d4e5f6a7b8"
V20 = "v1w2x3y4z5v6w7x8y9z0"


def test_tokens_parse_roles_and_names() -> None:
    tokens = _auth.parse_tokens(f"admin:{A16}, ci=viewer:{V20}\n# note\n")
    assert [(t.role, t.secret) for t in tokens] == [("admin", A16), ("viewer", V20)]
    assert tokens[0].name.startswith("admin:")
    assert A16 not in tokens[0].name
    assert tokens[1].name == "ci"


@pytest.mark.parametrize(
    ("text", "needle"),
    [("root:" + "x" * 20, "role"), ("admin:short", "shorter"), ("justatoken" * 3, "role")],
)
def test_bad_tokens_are_refused(text: str, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        _auth.parse_tokens(text)


def test_tokens_file_and_environment(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    path = tmp_path / "tokens"
    path.write_text(f"viewer:{V20}\n")
    env = {_auth.TOKENS_ENV: f"admin:{A16}", _auth.TOKENS_FILE_ENV: str(path)}
    assert [t.role for t in _auth.load_tokens(environ=env)] == ["admin", "viewer"]
    with pytest.raises(ConfigurationError, match="cannot read"):
        _auth.load_tokens(tokens_file=tmp_path / "missing", environ={})


def test_redaction_matches_key_substrings_at_any_depth() -> None:
    value = {"user": "u", "DB_Password": "p", "nested": [{"x-api-key": "k", "ok": 1}]}
    assert _auth.redact(value, _auth.DEFAULT_REDACT_KEYS) == {
        "user": "u",
        "DB_Password": "[redacted]",
        "nested": [{"x-api-key": "[redacted]", "ok": 1}],
    }


def test_cursor_round_trip_and_garbage() -> None:
    assert _http.decode_cursor(_http.encode_cursor(12345)) == 12345
    assert _http.decode_cursor(None) is None
    for bad in ("%%%", "MTIz", "x" * 100, _http.encode_cursor(1)[:-2]):
        with pytest.raises(_http.HttpError) as caught:
            _http.decode_cursor(bad)
        assert caught.value.status == 400


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("127.9.9.9", True), ("0.0.0.0", False), ("10.0.0.1", False), ("example.com", False)],
)  # fmt: skip
def test_loopback(host: str, loopback: bool) -> None:
    assert _auth.is_loopback(host) is loopback


def test_bind_parsing_and_exposure() -> None:
    assert parse_bind("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_bind("[::1]:9000") == ("::1", 9000)
    assert parse_bind("8081") == ("127.0.0.1", 8081)
    with pytest.raises(ConfigurationError, match="HOST:PORT"):
        parse_bind("127.0.0.1:http")
    check_exposure("127.0.0.1", has_tokens=False, insecure=False)
    check_exposure("0.0.0.0", has_tokens=True, insecure=False)
    check_exposure("0.0.0.0", has_tokens=False, insecure=True)
    with pytest.raises(ConfigurationError, match="--insecure"):
        check_exposure("0.0.0.0", has_tokens=False, insecure=False)


def test_chart_scales_are_round_and_failures_have_their_own() -> None:
    import datetime as dt

    from pgjobs.web import _chart

    assert [_chart.nice_top(v) for v in (0, 1, 2, 3, 7, 10, 11, 150, 2_000_001)] == [
        1, 1, 2, 5, 10, 10, 20, 200, 5_000_000,
    ]  # fmt: skip
    rng = _chart.RANGES["1h"]
    start = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    buckets = [
        _chart.Bucket(start + dt.timedelta(minutes=i), 100_000, 1 if i == 30 else 0)
        for i in range(60)
    ]
    g = _chart.geometry(buckets, rng)
    # One failure among 6,000,000 successes is a full-height bar on the failures' own axis.
    assert g["bad_top"] == 1
    assert g["bars"][30]["bad_h"] == _chart.BAD_HEIGHT
    assert g["bars"][29]["bad_h"] == 0
    assert g["ok_top"] == 100_000
    assert [t["text"] for t in g["ticks"]] == [
        "12:00", "12:10", "12:20", "12:30", "12:40", "12:50",
    ]  # fmt: skip
    assert (g["succeeded"], g["failed"]) == (6_000_000, 1)
    assert g["rows"][30]["failed"] == 1
    week = _chart.geometry(buckets[:1], _chart.RANGES["7d"])
    assert week["ticks"][0]["text"] == "Thu 12:00"
    assert _chart.RANGES["24h"].step_label == "1 h"


def test_chart_ranges_and_bad_ones() -> None:
    from pgjobs.web import _chart
    from pgjobs.web._http import HttpError

    assert _http.chart_query({}) == (_chart.RANGES["1h"], None, None)
    assert _http.chart_query({"range": "7d", "queue": "mail", "task": " "}) == (
        _chart.RANGES["7d"],
        "mail",
        None,
    )
    with pytest.raises(HttpError, match="unknown range '2h'; use one of 1h, 24h, 7d"):
        _http.chart_query({"range": "2h"})


def test_tracebacks_are_cut_into_application_and_library_frames() -> None:
    from pgjobs.web import _traceback

    text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/.venv/lib/python3.11/site-packages/pgjobs/worker/_executor.py",'
        " line 10, in run\n"
        "    await handler()\n"
        '  File "/usr/lib/python3.11/asyncio/tasks.py", line 5, in wait_for\n'
        "    return await fut\n"
        '  File "/srv/app/jobs.py", line 3, in send\n'
        "    smtp.send(to)\n"
        "    ^^^^^^^^^^^^^\n"
        '  File "/srv/app/.venv/lib/python3.11/site-packages/smtplib2/client.py", line 9, in send\n'
        "    raise SMTPError(code)\n"
        "smtplib2.SMTPError: 550\n"
    )
    found = _traceback.blocks(text)
    assert "".join(b.text for b in found) == text
    assert [(b.library, b.frames) for b in found] == [
        (False, 0),  # the header
        (True, 2),  # the worker and asyncio
        (False, 1),  # the application's frame, with its caret line
        (True, 1),  # the library it called
        (False, 0),  # the error
    ]
    assert found[2].text.startswith('  File "/srv/app/jobs.py"')
    assert _traceback.blocks("") == []
