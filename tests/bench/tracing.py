"""`python -m tests.bench.tracing ARGS`: `python -m pgjobs ARGS` with traced pgjobs systems.

The drain rate with tracing on against off, in one run: the systems take
turns on each repeat (in alternating order), so load elsewhere on the
machine hits them alike. From the repository's root:

    python -m tests.bench.tracing --log-level warning bench -w drain --jobs 10000 --repeat 3 \\
        --systems pgjobs-unobserved,pgjobs-meta,pgjobs-traced,pgjobs-traced-unsampled,\\
pgjobs-traced-metrics

Every system's jobs carry a W3C trace context in `meta.trace`, as the jobs of
a traced producer do (each job its own trace), so the rows claimed are the
same size:
- pgjobs-meta: tracing off (no tracer provider): the baseline.
- pgjobs-unobserved: pgjobs-meta with no correlation id bound (`Executor.run`
  goes straight to its `_run`), the code as it was before tracing: what the
  correlation id costs every drain.
- pgjobs-traced: the worker has the SDK's TracerProvider, with a
  BatchSpanProcessor whose exporter drops the spans (a network exporter
  would add its own serialisation, in the processor's thread): a CONSUMER
  span per job.
- pgjobs-traced-unsampled: the same, with the producers' traces not sampled
  (traceparent flags 00): the default parent-based sampler records nothing,
  so each run costs the extraction and a non-recording span.
- pgjobs-traced-metrics: pgjobs-traced with Prometheus metrics on
  (`metrics_port=0`).

The adapters stay here, like the peers' (tests/bench/peers.py): the wheel never carries them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from pgjobs.bench import _bench
from pgjobs.bench._bench import PgjobsSystem, noop
from pgjobs.worker import WorkerConfig


class _Dropped:
    """A span exporter that keeps nothing (the spans are still made and batched)."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is held."""
        return True


@contextlib.contextmanager
def cpu_per_job(name: str) -> Iterator[None]:
    """Print the worker process's CPU time per job, from its first job's start to its last's.

    The CPU a job costs is steadier than the drain rate on a shared machine:
    it does not count the time spent waiting for a core.
    """
    seen: list[float] = []
    counted = _bench.Hook.on_job

    def on_job(i: int) -> None:
        seen.append(time.process_time())
        counted(i)

    _bench.Hook.on_job = on_job
    try:
        yield
    finally:
        _bench.Hook.on_job = counted
        if len(seen) > 1:
            each = (seen[-1] - seen[0]) / (len(seen) - 1) * 1e6
            print(f"  {name}: {each:.1f} us of worker CPU a job", file=sys.stderr, flush=True)


class MetaSystem(PgjobsSystem):
    """pgjobs with tracing off, on jobs that carry a trace context."""

    name = "pgjobs-meta"
    supports = frozenset({"drain"})
    #: The traceparent's flags: 01 sampled, 00 not.
    flags = "01"

    def insert(self, start: int, count: int, *, finished: bool = False) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO pgjobs.jobs (task, args, meta)"
                " SELECT %s, jsonb_build_object('i', g), jsonb_build_object('trace',"
                "  jsonb_build_object('traceparent', '00-' || md5(g::text) || '-'"
                "  || left(md5('span' || g), 16) || '-' || %s))"
                " FROM generate_series(%s::bigint, %s::bigint) AS g",
                (noop.name, self.flags, start, start + count - 1),
            )

    def tracing(self) -> None:
        """Set up tracing in the worker process (none here)."""

    async def work(self, concurrency: int, stop: asyncio.Event) -> None:
        self.tracing()
        with cpu_per_job(self.name):
            await super().work(concurrency, stop)


class UnobservedSystem(MetaSystem):
    """pgjobs-meta without the correlation id around each run."""

    name = "pgjobs-unobserved"

    def tracing(self) -> None:
        from pgjobs.worker._executor import Executor

        async def bare(self: Executor, job: Any) -> Any:
            return await self._run(job, "")

        Executor.run = bare  # type: ignore[method-assign]


class TracedSystem(MetaSystem):
    """pgjobs with the SDK's tracer provider in the worker: a span per job."""

    name = "pgjobs-traced"

    def tracing(self) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(_Dropped()))  # type: ignore[arg-type]
        trace.set_tracer_provider(provider)


class UnsampledSystem(TracedSystem):
    """Traced, on jobs whose producers' traces were not sampled."""

    name = "pgjobs-traced-unsampled"
    flags = "00"


class TracedMetricsSystem(TracedSystem):
    """Traced, with the worker's Prometheus metrics on."""

    name = "pgjobs-traced-metrics"

    def worker_config(self, concurrency: int) -> WorkerConfig:
        return dataclasses.replace(super().worker_config(concurrency), metrics_port=0)


SYSTEMS = {
    cls.name: f"tests.bench.tracing:{cls.__name__}"
    for cls in (MetaSystem, UnobservedSystem, TracedSystem, UnsampledSystem, TracedMetricsSystem)
}

if __name__ == "__main__":
    from pgjobs.cli import main

    _bench.SYSTEMS.update(SYSTEMS)
    sys.exit(main(sys.argv[1:]))
