"""OpenTelemetry on a real PostgreSQL: one trace from the enqueue to the worker's run.

The tracer provider is the SDK's, set as the global one the way an
application sets it, with an in-memory exporter. OpenTelemetry lets the
global provider be set once per process, so the fixture puts the API's
globals back after each test (as opentelemetry's own test helpers do):
the other tests of the session run with tracing off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import structlog

import pgjobs
from pgjobs.testing import drain

pytest.importorskip("opentelemetry.sdk", reason="the tests need opentelemetry-sdk (pgjobs[test])")
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """The spans finished while the global tracer provider is the SDK's."""
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


@pytest.fixture
def app(dsn: str) -> Iterator[pgjobs.App]:
    application = pgjobs.App(dsn)
    yield application
    application.close()


def by_name(spans: Any) -> dict[str, list[ReadableSpan]]:
    named: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        named.setdefault(span.name, []).append(span)
    return named


def meta_of(conn: psycopg.Connection[Any], job_id: int | None) -> dict[str, Any]:
    row = conn.execute("SELECT meta FROM pgjobs.jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return dict(row[0])


def test_one_trace_runs_from_a_request_through_the_enqueue_to_the_run(
    app: pgjobs.App, exporter: InMemorySpanExporter, conn: psycopg.Connection[Any]
) -> None:
    tracer = trace.get_tracer("the-web-app")

    @app.task(name="traced.work", queue="mail")
    def work(n: int) -> None:
        with tracer.start_as_current_span("inside the handler"):
            pass

    with tracer.start_as_current_span("POST /signup") as request:
        job_id = work.enqueue(n=1)
    carried = meta_of(conn, job_id)["trace"]
    assert carried["traceparent"].startswith("00-")

    drain(app, queues=("mail",))
    spans = by_name(exporter.get_finished_spans())
    (send,) = spans["send mail"]
    (process,) = spans["process mail"]
    (inside,) = spans["inside the handler"]
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in (send, process, inside)} == {trace_id}
    assert send.parent is not None
    assert send.parent.span_id == request.get_span_context().span_id
    assert process.parent is not None
    assert process.parent.span_id == send.context.span_id
    assert process.parent.is_remote  # it came through the job's meta
    assert inside.parent is not None
    assert inside.parent.span_id == process.context.span_id
    _, carried_trace, carried_parent, _flags = carried["traceparent"].split("-")
    assert (carried_trace, carried_parent) == (f"{trace_id:032x}", f"{send.context.span_id:016x}")

    assert send.kind is SpanKind.PRODUCER
    assert dict(send.attributes or {}) == {
        "messaging.system": "pgjobs",
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.destination.name": "mail",
        "messaging.message.id": str(job_id),
    }
    assert process.kind is SpanKind.CONSUMER
    assert dict(process.attributes or {}) == {
        "messaging.system": "pgjobs",
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": "mail",
        "messaging.message.id": str(job_id),
        "pgjobs.task": "traced.work",
        "pgjobs.attempt": 1,
        "pgjobs.outcome": "succeeded",
    }
    assert process.status.status_code is StatusCode.UNSET


def test_a_failed_attempt_records_the_exception_and_ends_in_error(
    app: pgjobs.App, exporter: InMemorySpanExporter, conn: psycopg.Connection[Any]
) -> None:
    @app.task(name="traced.flaky", max_attempts=2, retry=pgjobs.Constant(seconds=0, jitter=0))
    def flaky() -> None:
        raise ValueError("the card was declined")

    job_id = flaky.enqueue()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        drain(app)
        row = conn.execute("SELECT status FROM pgjobs.jobs WHERE id = %s", (job_id,)).fetchone()
        if row == ("failed",):
            break
    spans = by_name(exporter.get_finished_spans())
    (send,) = spans["send default"]
    first, second = sorted(spans["process default"], key=lambda s: s.start_time or 0)
    for span, attempt, outcome in ((first, 1, "retried"), (second, 2, "failed")):
        assert span.parent is not None
        assert span.parent.span_id == send.context.span_id  # each attempt, from the enqueue
        attributes = dict(span.attributes or {})
        assert (attributes["pgjobs.attempt"], attributes["pgjobs.outcome"]) == (attempt, outcome)
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "the card was declined"
        (event,) = span.events
        assert event.name == "exception"
        event_attributes = dict(event.attributes or {})
        assert event_attributes["exception.type"] == "ValueError"
        assert event_attributes["exception.message"] == "the card was declined"
        assert "raise ValueError" in str(event_attributes["exception.stacktrace"])


def test_a_bulk_enqueue_is_one_send_span_that_parents_every_job(
    app: pgjobs.App, exporter: InMemorySpanExporter, conn: psycopg.Connection[Any]
) -> None:
    @app.task(name="traced.each")
    def each(i: int) -> None:
        pass

    ids = app.enqueue_many([each.job(i) for i in range(5)])
    with psycopg.connect(app.dsn) as own:  # the INSERT path, in the caller's transaction
        ids += app.enqueue_many([each.options(queue="other").job(9)], conn=own)
    drain(app, queues=("default", "other"))

    spans = by_name(exporter.get_finished_spans())
    (bulk,) = spans["send default"]
    assert dict(bulk.attributes or {})["messaging.batch.message_count"] == 5
    processed = spans["process default"]
    assert sorted(
        int(str((s.attributes or {})["messaging.message.id"])) for s in processed
    ) == sorted(ids[:5])
    for span in processed:
        assert span.parent is not None
        assert span.parent.span_id == bulk.context.span_id
    (single,) = spans["send other"]
    (other,) = spans["process other"]
    assert other.parent is not None
    assert other.parent.span_id == single.context.span_id
    assert other.context.trace_id != bulk.context.trace_id  # two enqueues, two traces


def test_a_job_enqueued_without_a_trace_starts_its_own(
    app: pgjobs.App, exporter: InMemorySpanExporter, conn: psycopg.Connection[Any]
) -> None:
    @app.task(name="traced.plain")
    def plain() -> None:
        pass

    # Written by SQL (as another language would), so it carries no context.
    conn.execute("SELECT pgjobs.enqueue('traced.plain', '{}'::jsonb)")
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("the caller of drain") as outer:
        drain(app)
    (process,) = by_name(exporter.get_finished_spans())["process default"]
    assert process.parent is None
    assert process.context.trace_id != outer.get_span_context().trace_id


def test_tracing_follows_the_global_provider(
    app: pgjobs.App, conn: psycopg.Connection[Any]
) -> None:
    # No provider set (the API's proxy): opentelemetry is imported, nothing is traced.
    @app.task(name="traced.off")
    def off() -> None:
        pass

    assert "trace" not in meta_of(conn, off.enqueue())


def test_with_tracing_the_correlation_id_is_the_trace_id_unless_one_was_given(
    app: pgjobs.App, exporter: InMemorySpanExporter, conn: psycopg.Connection[Any]
) -> None:
    seen: dict[str, str] = {}

    @app.task(name="traced.logs")
    def logs(key: str) -> None:
        seen[key] = str(structlog.contextvars.get_contextvars()["correlation_id"])

    tracer = trace.get_tracer("the-web-app")
    with tracer.start_as_current_span("GET /report") as request:
        logs.enqueue("traced")
        logs.options(correlation_id="req-1").enqueue("given")
    drain(app)
    assert seen == {
        "traced": f"{request.get_span_context().trace_id:032x}",
        "given": "req-1",
    }
