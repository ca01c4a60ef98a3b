"""The benchmark's pure parts: arguments, the exactly-once check, the table, the targets."""

from __future__ import annotations

import argparse
from array import array
from typing import Any

import pytest

from pgjobs.bench import _bench, _soak
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


def test_job_cpu_takes_microseconds_from_zero_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args(["bench"]).job_cpu_us == 0
    assert build_parser().parse_args(["bench", "--job-cpu-us", "250"]).job_cpu_us == 250
    for bad in ("-1", "1.5", "lots"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["bench", "--job-cpu-us", bad])
        assert "expected an integer of 0 or more" in capsys.readouterr().err


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


def test_the_processes_target_names_what_the_idle_cores_allow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_bench.os, "cpu_count", lambda: 2)
    one = Result("drain", "pgjobs", 20000, "jobs/s", {"C": 50, "P": 1}, {"busy_cores": 1.25})
    two = Result("drain", "pgjobs", 32000, "jobs/s", {"C": 50, "P": 2}, {"busy_cores": 1.98})
    (checked,) = [t for t in targets([one, two]) if t.name.startswith("--processes")]
    assert checked.met  # 1.6x
    assert checked.measured == "1.600x (one kept 1.25 of 2 cores busy: <= 1.60x)"
    # A run that could not read /proc/stat gives the ratio alone.
    del one.extra["busy_cores"]
    (checked,) = [t for t in targets([one, two]) if t.name.startswith("--processes")]
    assert checked.measured == "1.600x"


def test_median_picks_the_middle_run() -> None:
    runs = [Result("drain", "raw", v, "jobs/s") for v in (5, 1, 9)]
    assert _bench._median(runs).value == 5


# -- the soak --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800.0), ("90s", 90.0), ("1h", 3600.0), ("120", 120.0), ("0.5", 0.5), (" 2m ", 120.0)],
)
def test_durations_take_a_unit_or_plain_seconds(text: str, seconds: float) -> None:
    assert _soak.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "0m", "-5", "abc", "5x", "", "1h30m", "m", "nan"])
def test_bad_durations_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="such as 30m, 90s, 1h or a number of seconds"):
        _soak.parse_duration(text)


@pytest.mark.parametrize(
    ("option", "value", "complaint"),
    [
        ("--duration", "5x", "such as 30m, 90s, 1h or a number of seconds"),
        ("--soak-interval", "0", "such as 30m, 90s, 1h or a number of seconds"),
        ("--rate", "0", "expected a positive integer, got '0'"),
        ("--rate", "2.5", "expected a positive integer, got '2.5'"),
    ],
)
def test_bad_soak_options_exit_2(
    option: str, value: str, complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["bench", "-w", "soak", option, value])
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_soak_options_and_the_long_transaction_duration_in_seconds() -> None:
    args = build_parser().parse_args(
        ["bench", "-w", "soak", "--duration", "30m", "--rate", "2000", "--soak-interval", "2s"]
    )
    assert (args.workload, args.duration, args.rate, args.soak_interval) == (
        ["soak"],
        1800.0,
        2000,
        2.0,
    )
    # The long-transaction workload's seconds, float as before.
    assert build_parser().parse_args(["bench", "--duration", "120"]).duration == 120.0
    assert build_parser().parse_args(["bench", "--duration", "7.5"]).duration == 7.5
    defaults = build_parser().parse_args(["bench"])
    assert (defaults.duration, defaults.soak_interval) == (None, 60.0)


def test_all_leaves_out_the_soak_unless_it_is_named() -> None:
    parse = build_parser().parse_args
    assert "soak" not in parse(["bench", "-w", "all"]).workload
    assert parse(["bench", "-w", "all,soak"]).workload == [*_bench.WORKLOADS, "soak"]
    assert "soak" not in _bench.DEFAULT_WORKLOADS
    assert "soak" in _bench.PgjobsSystem.supports
    assert "soak" not in _bench.RawSystem.supports  # pgjobs only, for now


def _snap(t: int, enqueued: int, handled: int, depth: int, dead: int) -> _soak.Snapshot:
    tables: dict[str, dict[str, int]] = {
        "jobs": {"live": handled, "dead": dead, "table_bytes": 2**20 * t, "index_bytes": 2**19},
        "queues": {"live": 1, "dead": 0, "table_bytes": 8192, "index_bytes": 16384},
    }
    for stats in tables.values():
        stats["total_bytes"] = stats["table_bytes"] + stats["index_bytes"]
    return _soak.Snapshot(t, enqueued, handled, depth, tables)


def _soak_rows() -> tuple[list[_soak.Snapshot], list[dict[str, Any]]]:
    snapshots = [
        _snap(0, 0, 0, 0, 0),
        _snap(60, 6000, 5900, 100, 300),
        _snap(120, 12000, 11000, 1000, 900),
    ]
    buckets = [array("d", [1.0, 2.0, 3.0, 100.0]), array("d")]
    return snapshots, _soak.series(snapshots, buckets, 60)


def test_series_has_a_row_per_interval_from_the_snapshots_and_latencies() -> None:
    _, rows = _soak_rows()
    first, second = rows
    assert [row["interval"] for row in rows] == [1, 2]
    assert (first["enqueued"], first["completed"], first["throughput"]) == (6000, 5900, 98.3)
    assert (second["completed"], second["queue_depth"]) == (5100, 1000)
    assert first["latency_p50_ms"] == 2.5
    assert 90 < first["latency_p99_ms"] <= 100
    assert second["latency_p50_ms"] is None  # nothing started in it
    assert second["tables"]["jobs"]["dead"] == 900


def test_latency_is_commit_of_the_jobs_batch_to_handler_start_by_interval() -> None:
    # Batches: jobs 0-9 committed at 100.0, jobs 10-19 at 100.5; the run began at 100.0.
    runs = [(array("q", [0, 10, 19]), array("d", [100.002, 100.51, 101.5]))]
    buckets = _soak.latency_buckets(runs, [0, 10], [100.0, 100.5], 100.0, 1.0, 2)
    assert [round(v, 3) for v in buckets[0]] == [2.0, 10.0]
    assert [round(v, 3) for v in buckets[1]] == [1000.0]
    # A handler that started after the last interval is left out.
    assert sum(map(len, _soak.latency_buckets(runs, [0, 10], [100.0, 100.5], 100.0, 1.0, 1))) == 2


def test_end_ratio_is_last_five_intervals_over_first_five_in_long_runs() -> None:
    # 12 intervals of 10 s: 100 jobs/s for the first 50 s, then 80 jobs/s.
    samples = [(float(t), 100 * min(t, 50) + 80 * max(0, t - 50)) for t in range(0, 121, 5)]
    r = _soak.end_ratio(samples, 10.0)
    assert (r["ratio"], r["window_s"], r["first_rate"], r["last_rate"]) == (0.8, 50.0, 100.0, 80.0)
    assert r["basis"].startswith("last 5 intervals")


def test_end_ratio_is_last_fifth_over_first_fifth_in_short_runs() -> None:
    samples = [(0.0, 0), (2.0, 200), (4.0, 350), (6.0, 450)]  # 100/s, then 75/s, then 50/s
    r = _soak.end_ratio(samples, 2.0)
    assert r["window_s"] == 1.2
    assert r["ratio"] == 0.5  # 50/s over 100/s
    assert "fifth" in r["basis"]
    assert _soak.end_ratio([(0.0, 0), (1.0, 0)], 2.0)["ratio"] is None  # nothing ran


def test_accounting_counts_the_lost_and_the_doubles() -> None:
    assert _soak.accounting([[0, 2], [1, 3]], 5, left=1) == {
        "ran": 4, "ran_twice": 0, "unexpected": 0, "left_queued": 1, "lost": 0,
    }  # fmt: skip
    counted = _soak.accounting([[0, 1, 1], [7]], 4, left=0)
    assert (counted["ran_twice"], counted["unexpected"], counted["lost"]) == (1, 1, 2)


def _soak_result() -> Result:
    snapshots, rows = _soak_rows()
    extra = {
        "interval_s": 60.0,
        "enqueued": 12000,
        "drained": 1000,
        "jobs": _soak.accounting([range(12000)], 12000, 0),
        "end_ratio": _soak.end_ratio([(s.t, s.handled) for s in snapshots], 60.0),
        "tables_at_start": snapshots[0].tables,
        "intervals": rows,
    }
    params = {"rate": 100, "C": 50, "P": 1, "seconds": 120}
    return Result("soak", "pgjobs", 91.7, "jobs/s", params, extra)


def test_the_soak_report_prints_a_row_per_interval() -> None:
    text = table([_soak_result()], ["pgjobs"])
    lines = text.splitlines()
    header = next(line for line in lines if "done/s" in line)
    for column in ("enq/s", "depth", "p50 ms", "p99 ms", "jobs live/dead", "jobs MB tbl+idx"):
        assert column in header
    assert "queues" not in header  # it did not change
    assert "  unchanged through the run: queues" in lines
    row1, row2 = (line.split() for line in lines[lines.index(header) + 2 :][:2])
    assert row1[:7] == ["1", "60", "100", "98", "100", "2.5", row1[6]]
    assert row1[7:] == ["5.9k/300", "60.0+0.5"]
    assert row2[:7] == ["2", "120", "100", "85", "1,000", "-", "-"]
    assert row2[7:] == ["11k/900", "120.0+0.5"]
    assert "throughput 0.864x at the end: last fifth over first fifth" in text
    assert "12,000 enqueued, 12,000 ran (1,000 of them after the producer stopped)" in text
    assert "0 lost, 0 ran twice" in text
    assert "intervals=" not in text  # the series is not dumped as a note


def test_each_long_workload_has_its_own_default_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    got: dict[str, float] = {}
    monkeypatch.setattr(
        _bench, "run_long_transaction", lambda system, seconds, c: got.update(lt=seconds) or []
    )
    monkeypatch.setattr(
        _bench,
        "run_soak",
        lambda system, **kw: got.update(soak=kw["duration"]) or Result("", "", 0, ""),
    )
    system = _bench.PgjobsSystem("postgresql://unused")
    args = build_parser().parse_args(["bench"])
    _bench._measure(system, "long-transaction", args)
    _bench._measure(system, "soak", args)
    assert got == {"lt": 120.0, "soak": 1800.0}
    args = build_parser().parse_args(["bench", "--duration", "90s"])
    _bench._measure(system, "long-transaction", args)
    _bench._measure(system, "soak", args)
    assert got == {"lt": 90.0, "soak": 90.0}


@pytest.mark.parametrize(
    ("text", "window"), [("3m:13m", (180.0, 780.0)), ("0:10s", (0.0, 10.0)), (":1m", (0.0, 60.0))]
)
def test_a_hold_window_is_two_durations(text: str, window: tuple[float, float]) -> None:
    assert _soak.parse_window(text) == window


@pytest.mark.parametrize("text", ["3m", "3m:2m", "3m:3m", "x:1m", "1m:"])
def test_a_bad_hold_window_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"FROM:TO|end after it starts"):
        _soak.parse_window(text)


def test_the_hold_summary_compares_the_rate_under_the_hold_and_times_the_recovery() -> None:
    # 100 jobs/s offered throughout; run at 100/s, then 50/s under the hold
    # (10..20 s), then 150/s until the backlog is gone at 30 s.
    samples = []
    handled = 0.0
    for t in range(41):
        samples.append((float(t), 100 * t, int(handled)))
        catching_up = handled + 150 <= 100 * (t + 1)
        handled += 100 if t < 10 else 50 if t < 20 else 150 if catching_up else 100
    summary = _soak.hold_summary(samples, (10.0, 20.0), interval=2.0)
    assert summary["baseline_rate"] == 100.0
    assert summary["held_rate"] == 50.0
    assert summary["ratio"] == 0.5
    assert summary["worst_interval_ratio"] == 0.5
    assert summary["baseline_backlog"] == 0
    assert summary["recovered_after_s"] == 10.0
