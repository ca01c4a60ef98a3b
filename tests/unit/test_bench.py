"""The benchmark's pure parts: arguments, the exactly-once check, the table, the targets."""

from __future__ import annotations

import argparse

import pytest

from pgjobs.bench import _bench
from pgjobs.bench._bench import Result, check_exactly_once, table, targets
from pgjobs.cli import build_parser
from pgjobs.cli._terminal import csv_ints


def test_bench_is_a_cli_command() -> None:
    args = build_parser().parse_args(
        ["bench", "--jobs", "50", "-c", "10,50", "-w", "drain", "-w", "latency", "--compare-raw"]
    )
    assert args.jobs == 50
    assert args.concurrency == [10, 50]
    assert args.workload == ["drain", "latency"]
    assert args.compare_raw
    assert args.systems == ["pgjobs"]


def test_workload_all_expands_and_unknown_names_are_refused() -> None:
    assert build_parser().parse_args(["bench", "-w", "all"]).workload == list(_bench.WORKLOADS)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "-w", "drian"])
    with pytest.raises(argparse.ArgumentTypeError):
        csv_ints("10,0")


def test_exactly_once_accepts_each_job_once_in_any_order() -> None:
    check_exactly_once([2, 0, 1], range(3))


@pytest.mark.parametrize(
    ("ids", "complaint"),
    [([0, 1, 1, 2], "1 ran twice"), ([0, 2], "1 never ran"), ([0, 1, 2, 7], "1 unexpected")],
)
def test_exactly_once_names_what_went_wrong(ids: list[int], complaint: str) -> None:
    with pytest.raises(RuntimeError, match=complaint):
        check_exactly_once(ids, range(3))


def _results() -> list[Result]:
    drain = {"C": 50, "P": 1}
    return [
        Result("drain", "pgjobs", 9000, "jobs/s", drain, {"rss_mb": 60.0}),
        Result("drain", "raw", 12000, "jobs/s", drain),
        Result("drain", "pgqueuer", 2500, "jobs/s", drain),
        Result("drain", "pgjobs", 3000, "jobs/s", {"C": 100, "P": 1}, {"rss_mb": 120.0}),
        Result("latency", "pgjobs", 1.5, "ms p50", {}, {"p50_ms": 1.5, "p95_ms": 2, "p99_ms": 6}),
        Result("latency", "raw", 1.0, "ms p50", {}, {"p50_ms": 1.0, "p95_ms": 1, "p99_ms": 2}),
    ]


def test_table_has_a_row_per_workload_and_pgjobs_ratios() -> None:
    text = table(_results(), ["pgjobs", "raw", "pgqueuer"])
    drain = next(line for line in text.splitlines() if line.startswith("drain C=50 P=1"))
    assert "9,000" in drain
    assert "0.75x" in drain  # pgjobs / raw
    assert "3.60x (pgqueuer)" in drain
    latency = next(line for line in text.splitlines() if line.startswith("latency"))
    assert "1.5/2.0/6.0" in latency
    assert "0.67x" in latency  # lower is better: raw / pgjobs


def test_targets_judge_each_bar() -> None:
    checked = {t.name: t for t in targets(_results())}
    assert checked["drain C=50 vs raw"].met  # 0.75 >= 0.6
    assert checked["drain C=50 vs best peer (pgqueuer)"].met  # 3.6 >= 3
    assert not checked["latency (idle worker)"].met  # p99 6 > 5
    assert not checked["worker RSS at C=100 (P=1)"].met  # 120 MB
    assert "drain C=10 vs raw" not in checked  # not measured, not judged


def test_median_picks_the_middle_run() -> None:
    runs = [Result("drain", "raw", v, "jobs/s") for v in (5, 1, 9)]
    assert _bench._median(runs).value == 5
