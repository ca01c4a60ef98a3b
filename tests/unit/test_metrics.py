"""Prometheus metrics without a database: what a worker records, the dashboard's text, Grafana."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pgjobs.cli._main import build_parser
from pgjobs.errors import ConfigurationError
from pgjobs.worker import WorkerConfig
from pgjobs.worker._outcome import ClaimedJob

prometheus_client = pytest.importorskip(
    "prometheus_client", reason="the metrics extra is not installed: pip install 'pgjobs[metrics]'"
)
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from pgjobs.web import _metrics as web_metrics  # noqa: E402
from pgjobs.worker._metrics import Metrics  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "examples" / "grafana-pgjobs.json"


def job(task: str = "t", queue: str = "q", waited: float = 2.0) -> ClaimedJob:
    run_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=waited)
    return ClaimedJob(1, queue, task, {}, 2, 1, 3, {}, run_at)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `text` by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_worker_counts_outcomes_by_task_queue_and_outcome() -> None:
    metrics = Metrics(running=lambda: 3, free=lambda: 7)
    a, b = job("a", "q1"), job("b", "q2")
    metrics.finished(a, "succeeded", 0.002)
    metrics.finished(a, "succeeded", 0.004)
    metrics.finished(a, "queued", 0.5)
    metrics.finished(b, "failed", 2.0)
    metrics.released(b, 1.0)
    got = samples(metrics.exposition().decode())

    def count(task: str, queue: str, outcome: str) -> float:
        labels = (("outcome", outcome), ("queue", queue), ("task", task))
        return got.get(("pgjobs_jobs_total", labels), 0.0)

    assert count("a", "q1", "succeeded") == 2
    assert count("a", "q1", "retried") == 1
    assert count("b", "q2", "failed") == 1
    assert count("b", "q2", "released") == 1
    assert count("a", "q1", "failed") == 0
    # Run times: every finished run, not the released one; waits: all of them.
    assert got[("pgjobs_job_run_seconds_count", (("task", "a"),))] == 3
    assert got[("pgjobs_job_run_seconds_count", (("task", "b"),))] == 1
    assert got[("pgjobs_job_wait_seconds_count", (("task", "b"),))] == 2
    assert got[("pgjobs_job_run_seconds_sum", (("task", "a"),))] == pytest.approx(0.506)
    # Buckets are cumulative, `le` inclusive: 0.002 and 0.004 are within 0.005.
    assert got[("pgjobs_job_run_seconds_bucket", (("le", "0.0025"), ("task", "a")))] == 1
    assert got[("pgjobs_job_run_seconds_bucket", (("le", "0.005"), ("task", "a")))] == 2
    assert got[("pgjobs_job_run_seconds_bucket", (("le", "+Inf"), ("task", "a")))] == 3
    # A wait ends where the run began, its seconds before now: a's jobs became
    # due 2 s ago and waited 2, 2 and 1.5 s; b's, 0 s (a 2 s run) and 1 s.
    assert got[("pgjobs_job_wait_seconds_bucket", (("le", "1.0"), ("task", "a")))] == 0
    assert got[("pgjobs_job_wait_seconds_bucket", (("le", "2.5"), ("task", "a")))] == 3
    assert got[("pgjobs_job_wait_seconds_bucket", (("le", "0.25"), ("task", "b")))] == 1
    assert got[("pgjobs_worker_running_jobs", ())] == 3
    assert got[("pgjobs_worker_free_slots", ())] == 7
    assert ("process_cpu_seconds_total", ()) in got


def test_a_job_due_in_the_future_by_the_workers_clock_waited_zero() -> None:
    metrics = Metrics(running=lambda: 0, free=lambda: 1)
    metrics.finished(job(waited=-30.0), "succeeded", 0.001)  # clocks 30 s apart
    got = samples(metrics.exposition().decode())
    assert got[("pgjobs_job_wait_seconds_sum", (("task", "t"),))] == 0.0
    assert got[("pgjobs_job_wait_seconds_bucket", (("le", "0.001"), ("task", "t")))] == 1


def test_the_dashboard_text_parses_and_escapes_label_values() -> None:
    odd = 'we"ird\\queue\nname'
    text = web_metrics.exposition(
        [web_metrics.QueueDepth(odd, 5, 2, 1, 12.5), web_metrics.QueueDepth("idle", 0, 0, 0, 0.0)],
        [web_metrics.TableRows("jobs", 100, 40)],
    )
    got = samples(text)
    assert got[("pgjobs_queue_jobs", (("queue", odd), ("state", "available")))] == 5
    assert got[("pgjobs_queue_jobs", (("queue", odd), ("state", "scheduled")))] == 2
    assert got[("pgjobs_queue_jobs", (("queue", odd), ("state", "running")))] == 1
    assert got[("pgjobs_queue_jobs", (("queue", "idle"), ("state", "available")))] == 0
    assert got[("pgjobs_queue_oldest_due_seconds", (("queue", odd),))] == 12.5
    assert got[("pgjobs_table_dead_tuples", (("table", "jobs"),))] == 40
    assert got[("pgjobs_table_live_tuples", (("table", "jobs"),))] == 100
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert set(types.values()) == {"gauge"}


# -- the Grafana dashboard ----------------------------------------------------------

#: A PromQL identifier that names a pgjobs metric.
_METRIC = re.compile(r"\bpgjobs_[a-zA-Z0-9_:]*")


def _queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    variables = [
        v["definition"] for v in dashboard["templating"]["list"] if v.get("type") == "query"
    ]
    return exprs + variables


def _exported() -> set[str]:
    """Every sample name a worker and the dashboard expose, once each has something to say."""
    metrics = Metrics(running=lambda: 0, free=lambda: 1)
    metrics.finished(job(), "succeeded", 0.01)
    worker_text = metrics.exposition().decode()
    web_text = web_metrics.exposition(
        [web_metrics.QueueDepth("q", 1, 0, 0, 1.0)], [web_metrics.TableRows("jobs", 1, 1)]
    )
    return {
        s.name
        for text in (worker_text, web_text)
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_every_grafana_query_names_only_metrics_pgjobs_exports() -> None:
    dashboard = json.loads(GRAFANA.read_text())
    queries = _queries(dashboard)
    assert len(queries) >= 8
    exported = _exported()
    named = {name for query in queries for name in _METRIC.findall(query)}
    assert named, "no pgjobs metric found in the dashboard's queries"
    assert named <= exported, f"not exported: {sorted(named - exported)}"
    # Each panel of the brief is there.
    for wanted in (
        "pgjobs_jobs_total",
        "pgjobs_job_run_seconds_bucket",
        "pgjobs_job_wait_seconds_bucket",
        "pgjobs_worker_running_jobs",
        "pgjobs_worker_free_slots",
        "pgjobs_queue_jobs",
        "pgjobs_queue_oldest_due_seconds",
        "pgjobs_table_dead_tuples",
    ):
        assert wanted in named, wanted


def test_a_misspelt_metric_in_a_query_is_caught() -> None:
    exported = _exported()
    assert not set(_METRIC.findall("rate(pgjobs_job_total[5m])")) <= exported


# -- configuration and the command line ------------------------------------------


@pytest.mark.parametrize("port", [-1, 65_536])
def test_a_metrics_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ConfigurationError, match="metrics_port must be 0 to 65535"):
        WorkerConfig(metrics_port=port)


@pytest.mark.parametrize("text", ["0", "65536", "http", "-5"])
def test_the_cli_refuses_a_bad_metrics_port(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["worker", "x:app", "--metrics-port", text])
    assert exited.value.code == 2
    assert "expected a TCP port from 1 to 65535" in capsys.readouterr().err


def test_metrics_with_several_processes_are_refused() -> None:
    args = build_parser().parse_args(
        ["worker", "tests.apps.basic:app", "--processes", "2", "--metrics-port", "9100"]
    )
    with pytest.raises(ConfigurationError, match="would all take the same port"):
        args.handler(args)


def test_the_cli_passes_the_metrics_port_and_address_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.unit.test_cli_worker import run

    config = run(monkeypatch, "--metrics-port", "9187", "--metrics-address", "127.0.0.1")
    assert (config.metrics_port, config.metrics_address) == (9187, "127.0.0.1")
    assert run(monkeypatch).metrics_port is None  # off by default
