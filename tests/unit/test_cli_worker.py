"""`pgjobs worker` options: retentions parsed, refused with the forms they take, passed on."""

from __future__ import annotations

import argparse
from typing import Any, ClassVar

import pytest

from pgjobs.cli import _worker
from pgjobs.cli._main import build_parser
from pgjobs.cli._worker import retention
from pgjobs.errors import ConfigurationError
from pgjobs.worker import WorkerConfig


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3600", 3600.0),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("12h", 43_200.0),
        ("1d", 86_400.0),
        ("7D", 604_800.0),
        ("1.5h", 5400.0),
        (" 2d ", 172_800.0),
        ("none", None),
        ("forever", None),
        ("Forever", None),
    ],
)
def test_retentions_that_are_understood(text: str, seconds: float | None) -> None:
    assert retention(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        *("0", "0d", "0.0h", "-1", "-1d", "", "1w", "d", "1 d", "1e3", "inf", "nan", "soon"),
        *("1h30m", "59s", "59", "0.5m"),  # the last three: shorter than a minute
    ],
)
def test_retentions_that_are_refused_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        retention(text)
    message = str(refused.value)
    assert "7d, 12h, 30m, 90s or 3600 (seconds), or none" in message
    assert "a minute or more" in message
    assert repr(text) in message


@pytest.mark.parametrize(("text", "seconds"), [("1d", 86_400.0), ("6h", 21_600.0), ("15m", 900.0)])
def test_partition_intervals_that_divide_a_day(text: str, seconds: float) -> None:
    assert _worker.partition_interval(text) == seconds


@pytest.mark.parametrize("text", ["7h", "10m", "2d", "0", "90s", "soon", "25m"])
def test_partition_intervals_that_do_not_divide_a_day_are_refused_with_the_range(
    text: str,
) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        _worker.partition_interval(text)
    message = str(refused.value)
    assert "must divide a day evenly, from 15 minutes to 1 day" in message
    assert repr(text) in message


def test_the_worker_gets_the_partition_interval_and_the_vacuum_switch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = run(monkeypatch, "--partition-interval", "6h", "--vacuum-interval", "off")
    assert (config.partition_interval, config.vacuum_interval) == (21_600.0, None)


def test_a_bad_retention_exits_2_with_the_forms(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["worker", "x:app", "--retention-failed=-3d"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--retention-failed" in err
    assert "or none (or forever) to keep them" in err


class FakeWorker:
    """Stands in for Worker: records the config the command builds, and runs nothing."""

    configs: ClassVar[list[WorkerConfig]] = []

    def __init__(self, app: object, config: WorkerConfig) -> None:
        self.configs.append(config)

    async def run(self, *, handle_signals: bool = False) -> int:
        return 0


def run(monkeypatch: pytest.MonkeyPatch, *options: str) -> WorkerConfig:
    monkeypatch.setattr(_worker, "Worker", FakeWorker)
    FakeWorker.configs.clear()
    args = build_parser().parse_args(["worker", "tests.apps.basic:app", *options])
    assert args.handler(args) == 0
    (config,) = FakeWorker.configs
    return config


def test_the_worker_gets_the_retentions(monkeypatch: pytest.MonkeyPatch) -> None:
    config = run(
        monkeypatch,
        "--retention-succeeded",
        "12h",
        "--retention-failed",
        "forever",
        "--retention-cancelled",
        "30m",
    )
    assert (config.retention_succeeded, config.retention_failed, config.retention_cancelled) == (
        43_200.0,
        None,
        1800.0,
    )


def test_without_options_the_worker_gets_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    config: Any = run(monkeypatch)
    defaults = WorkerConfig()
    for name in (
        "retention_succeeded",
        "retention_failed",
        "retention_cancelled",
        "rescue_interval",
        "leader_interval",
        "stale_after",
    ):
        assert getattr(config, name) == getattr(defaults, name), name


def test_a_star_serves_every_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    config = run(monkeypatch, "--queues", "*")
    assert config.queues == ("*",)
    assert config.every_queue
    assert not run(monkeypatch, "--queues", "a,b").every_queue


@pytest.mark.parametrize("queues", [("*", "emails"), ("default", "*")])
def test_a_star_among_other_queues_is_refused(queues: tuple[str, ...]) -> None:
    with pytest.raises(ConfigurationError, match=r"'\*' serves every queue and stands alone"):
        WorkerConfig(queues=queues)
