"""The worker's own CPU for one run of a no-op job, with no database: `Executor.run` alone.

    PYTHONPATH=. python tests/bench/executor.py [--jobs 50000] [--repeat 7] [--sync]
        [--traced | --unsampled]

A drain's rate mixes the worker's CPU with PostgreSQL's and with whatever
else the machine runs; this isolates what pgjobs' Python does around each
handler (binding the arguments, the job context, the correlation id, the
outcome), which is where per-job features add their cost. 50 coroutines
run the jobs through one Executor as the worker's slots do; the best of
`--repeat` passes is printed, in µs of process CPU per job. Compare two
checkouts by running this file with each one's root as PYTHONPATH, in turn
(run as a file, not with -m, so that the checkout on PYTHONPATH is the
pgjobs imported).

`--traced` runs each job in its CONSUMER span (the SDK's TracerProvider, a
BatchSpanProcessor, an exporter that drops the spans), the jobs carrying a
sampled W3C trace context as a traced producer's do; `--unsampled` gives
them an unsampled one (the default parent-based sampler records nothing).
The `otel` extra must be installed for either.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
from collections.abc import Iterator

import pgjobs
from pgjobs.worker._executor import Executor
from pgjobs.worker._outcome import ClaimedJob

app = pgjobs.App("postgresql://unused@127.0.0.1/unused")


@app.task(name="bench.async_noop")
async def async_noop(i: int) -> None:
    """Nothing, in the event loop."""


@app.task(name="bench.sync_noop")
def sync_noop(i: int) -> None:
    """Nothing, in a thread of the executor's pool."""


async def _slot(executor: Executor, jobs: Iterator[ClaimedJob]) -> None:
    for job in jobs:
        outcome = await executor.run(job)
        if outcome.status != "succeeded":
            raise RuntimeError(f"a no-op job did not succeed: {outcome}")


def _traced() -> None:
    """The SDK's provider, batching spans to an exporter that keeps nothing."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Dropped(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped()))
    trace.set_tracer_provider(provider)


def _meta(i: int, flags: str | None) -> dict[str, object]:
    if flags is None:
        return {}
    return {"trace": {"traceparent": f"00-{i + 1:032x}-{i + 1:016x}-{flags}"}}


async def _best(task: str, n: int, repeat: int, flags: str | None) -> float:
    executor = Executor(app.tasks, 50, worker_id=1)
    now = dt.datetime.now(dt.UTC)
    jobs = [
        ClaimedJob(i, "default", task, {"i": i}, 2, 1, 3, _meta(i, flags), now) for i in range(n)
    ]
    await executor.run(jobs[0])  # imports and first-call caches out of the way
    best = float("inf")
    try:
        for _ in range(repeat):
            shared = iter(jobs)
            started = time.process_time()
            await asyncio.gather(*(_slot(executor, shared) for _ in range(50)))
            best = min(best, (time.process_time() - started) / n * 1e6)
    finally:
        executor.shutdown()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--sync", action="store_true", help="a sync handler (a thread per run)")
    traces = parser.add_mutually_exclusive_group()
    traces.add_argument("--traced", action="store_true", help="a recorded CONSUMER span per run")
    traces.add_argument("--unsampled", action="store_true", help="tracing on, traces not sampled")
    args = parser.parse_args()
    task = "bench.sync_noop" if args.sync else "bench.async_noop"
    flags = "01" if args.traced else "00" if args.unsampled else None
    if flags is not None:
        _traced()
    best = asyncio.run(_best(task, args.jobs, args.repeat, flags))
    mode = {"01": ", traced", "00": ", traced but not sampled", None: ""}[flags]
    print(f"{task}{mode}: {best:.2f} µs of CPU per run (best of {args.repeat} x {args.jobs:,})")


if __name__ == "__main__":
    main()
