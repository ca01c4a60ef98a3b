"""A worker's /metrics on a real PostgreSQL, scraped over HTTP: counts match the jobs that ran."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Any

import psycopg
import pytest

import pgjobs

pytest.importorskip(
    "prometheus_client", reason="the metrics extra is not installed: pip install 'pgjobs[metrics]'"
)
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def app(dsn: str) -> Any:
    application = pgjobs.App(dsn)
    yield application
    application.close()


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def unfinished(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pgjobs.jobs WHERE status IN ('queued', 'running')"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_scraped_counters_and_histograms_match_the_jobs_that_ran(app: Any, dsn: str) -> None:
    failed_once: set[str] = set()

    @app.task(name="ok", queue="fast")
    async def ok(i: int) -> int:
        return i

    @app.task(name="flaky", retry=pgjobs.Constant(seconds=0.05, jitter=0))
    def flaky(key: str) -> None:
        if key not in failed_once:
            failed_once.add(key)
            raise RuntimeError("the first attempt fails")

    @app.task(name="doomed", max_attempts=1)
    def doomed() -> None:
        raise RuntimeError("never works")

    app.enqueue_many([ok.job(i) for i in range(7)])
    app.enqueue_many([flaky.job(f"k{i}") for i in range(3)])
    doomed.enqueue()
    with psycopg.connect(dsn, autocommit=True) as conn:  # a task no worker knows
        conn.execute("SELECT pgjobs.enqueue('ghost.task', '{}'::jsonb)")

    async def main() -> tuple[Samples, Samples, int]:
        worker = pgjobs.Worker(
            app, queues=("default", "fast"), concurrency=4, poll_interval=0.05, metrics_port=0
        )
        run = asyncio.create_task(worker.run())
        for _ in range(400):
            await asyncio.sleep(0.05)
            if worker.metrics_server is not None and await asyncio.to_thread(unfinished, dsn) == 0:
                break
        assert worker.metrics_server is not None
        port = worker.metrics_server.port
        # The completer writes outcomes in batches: the last may still be on its way.
        await asyncio.sleep(0.1)
        during = await asyncio.to_thread(scrape, port)
        worker.request_stop()
        assert await run == 0
        after = worker.metrics.exposition().decode() if worker.metrics else ""
        final = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(after)
            for s in family.samples
        }
        return during, final, port

    got, final, port = asyncio.run(main())

    def jobs(task: str, queue: str, outcome: str) -> float:
        labels = (("outcome", outcome), ("queue", queue), ("task", task))
        return got.get(("pgjobs_jobs_total", labels), 0.0)

    assert jobs("ok", "fast", "succeeded") == 7
    assert jobs("flaky", "default", "retried") == 3
    assert jobs("flaky", "default", "succeeded") == 3
    assert jobs("doomed", "default", "failed") == 1
    assert jobs("ghost.task", "default", "failed") == 1
    outcomes = {
        labels: value for (name, labels), value in got.items() if name == "pgjobs_jobs_total"
    }
    assert sum(outcomes.values()) == 7 + 6 + 1 + 1  # nothing else was counted
    for task, runs in (("ok", 7), ("flaky", 6), ("doomed", 1), ("ghost.task", 1)):
        for histogram in ("pgjobs_job_run_seconds", "pgjobs_job_wait_seconds"):
            assert got[(f"{histogram}_count", (("task", task),))] == runs, (histogram, task)
            inf = (("le", "+Inf"), ("task", task))
            assert got[(f"{histogram}_bucket", inf)] == runs
    # A retry waited out its 0.05 s backoff at least, then a poll: all under 5 s.
    assert got[("pgjobs_job_wait_seconds_bucket", (("le", "5.0"), ("task", "flaky")))] == 6
    assert got[("pgjobs_worker_running_jobs", ())] == 0
    assert got[("pgjobs_worker_free_slots", ())] == 4
    # Nothing more ran after the scrape: the stopped worker's counts are the same.
    assert {k: v for k, v in final.items() if k[0] == "pgjobs_jobs_total"} == {
        k: v for k, v in got.items() if k[0] == "pgjobs_jobs_total"
    }
    # The port is free again once the worker has stopped.
    with pytest.raises(urllib.error.URLError, match="refused"):
        scrape(port)


def test_a_worker_without_a_metrics_port_records_and_serves_nothing(app: Any) -> None:
    worker = pgjobs.Worker(app)
    assert worker.metrics is None
    assert worker.metrics_server is None


def test_a_job_interrupted_by_a_forced_stop_counts_as_released(app: Any, dsn: str) -> None:
    @app.task(name="endless")
    async def endless() -> None:
        await asyncio.sleep(60)

    endless.enqueue()

    async def main() -> Samples:
        worker = pgjobs.Worker(app, poll_interval=0.05, metrics_port=0)
        run = asyncio.create_task(worker.run())
        for _ in range(200):
            await asyncio.sleep(0.05)
            if worker.running:
                break
        assert worker.running, "the job never started"
        assert worker.metrics_server is not None
        running = await asyncio.to_thread(scrape, worker.metrics_server.port)
        assert running[("pgjobs_worker_running_jobs", ())] == 1
        assert running[("pgjobs_worker_free_slots", ())] == 9
        worker.request_stop(force=True)
        await run
        assert worker.metrics is not None
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(worker.metrics.exposition().decode())
            for s in family.samples
        }

    got = asyncio.run(main())
    released = (("outcome", "released"), ("queue", "default"), ("task", "endless"))
    assert got[("pgjobs_jobs_total", released)] == 1
    assert got[("pgjobs_job_wait_seconds_count", (("task", "endless"),))] == 1
    assert got[("pgjobs_job_run_seconds_count", (("task", "endless"),))] == 0
