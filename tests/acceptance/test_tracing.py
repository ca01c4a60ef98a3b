"""One trace across processes: a span around an enqueue here, the run in a worker subprocess."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pgjobs

pytest.importorskip("opentelemetry.sdk", reason="the tests need opentelemetry-sdk (pgjobs[test])")
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """This process's spans, while the global tracer provider is the SDK's (then put back)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    try:
        yield memory
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
        trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]


def worker_spans(path: Path, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            spans = [json.loads(line) for line in path.read_text().splitlines()]
            if len(spans) >= count:
                return spans
        time.sleep(0.05)
    raise AssertionError(f"the worker exported fewer than {count} spans")


def test_the_worker_process_continues_the_trace_of_the_request_that_enqueued(
    dsn: str,
    exporter: InMemorySpanExporter,
    start_worker: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spans_file = tmp_path / "worker-spans.jsonl"
    monkeypatch.setenv("PGJOBS_TEST_SPANS", str(spans_file))
    producer = pgjobs.App(dsn, strict=False)  # the task lives in the worker's code only
    try:
        with trace.get_tracer("web").start_as_current_span("POST /hello") as request:
            job_id = producer.enqueue("traced.hello", {"name": "Ada"})
    finally:
        producer.close()
    (send,) = [s for s in exporter.get_finished_spans() if s.name == "send default"]
    trace_id = f"{request.get_span_context().trace_id:032x}"

    worker = start_worker("tests.apps.traced:app")
    worker.wait_for_output('"hello.said"')
    (process,) = worker_spans(spans_file, 1)
    assert process["name"] == "process default"
    assert process["kind"] == "CONSUMER"
    assert process["trace_id"] == trace_id
    assert process["parent_id"] == f"{send.context.span_id:016x}"
    assert process["attributes"]["messaging.message.id"] == str(job_id)
    assert process["attributes"]["pgjobs.task"] == "traced.hello"

    # The worker's JSON log: the handler's own line carries the trace id.
    (said,) = [json.loads(line) for line in worker.output().splitlines() if '"hello.said"' in line]
    assert (said["name"], said["correlation_id"]) == ("Ada", trace_id)
