"""Tracing and correlation ids: one trace from a web request to the worker that ran its job.

Needs the OpenTelemetry SDK (`pip install 'pgjobs[otel]' opentelemetry-sdk`) and
a migrated database:

    PGJOBS_DSN=postgresql://postgres@localhost/postgres python examples/tracing.py
"""

from __future__ import annotations

import logging

import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import pgjobs
from pgjobs.testing import drain

# The application sets up OpenTelemetry as usual; pgjobs needs nothing more.
# In production the processor would be a BatchSpanProcessor with an OTLP
# exporter; here the spans are kept in memory, to print them below.
spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("example.web")

app = pgjobs.App()
QUEUE = "example-tracing"
log = structlog.get_logger("example")


@app.task(name="tracing.send_receipt", queue=QUEUE)
def send_receipt(order_id: int) -> None:
    """Its log lines carry the correlation id; its own spans join the job's trace."""
    with tracer.start_as_current_span("render receipt"):
        log.info("receipt.sent", order_id=order_id)
    notify.enqueue(order_id)  # a child job: the same trace, the same correlation id


@app.task(name="tracing.notify", queue=QUEUE)
def notify(order_id: int) -> None:
    """Enqueued by send_receipt."""
    log.info("customer.notified", order_id=order_id)


def main() -> None:
    """A request enqueues; a worker runs the job and its child; print the trace."""
    with tracer.start_as_current_span("POST /orders"):  # what a web framework's span does
        send_receipt.enqueue(7)
    # Without tracing, an id given at enqueue plays the same part in the logs:
    send_receipt.options(correlation_id="req-8f41").enqueue(8)

    drain(app, queues=(QUEUE,))  # runs both jobs, and the children they enqueue
    app.close()

    finished = sorted(spans.get_finished_spans(), key=lambda s: s.start_time or 0)
    for trace_id in dict.fromkeys(s.context.trace_id for s in finished):
        names = [s.name for s in finished if s.context.trace_id == trace_id]
        print(f"trace {trace_id:032x}: {' > '.join(names)}")


if __name__ == "__main__":
    # The handlers' lines as JSON, with structlog's contextvars merged in
    # (pgjobs binds correlation_id there for each run).
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    main()
