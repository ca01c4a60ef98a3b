"""A traced App for tests/acceptance/test_tracing.py: its process's spans go to a file.

Importing it sets the global tracer provider, as an application's module
does; each finished span is one JSON line in $PGJOBS_TEST_SPANS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import pgjobs


class JsonLines(SpanExporter):
    """Appends each span, as a JSON line, to a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a", encoding="utf-8") as out:
            for span in spans:
                parent = span.parent
                line = {
                    "name": span.name,
                    "kind": span.kind.name,
                    "trace_id": f"{span.context.trace_id:032x}",
                    "span_id": f"{span.context.span_id:016x}",
                    "parent_id": None if parent is None else f"{parent.span_id:016x}",
                    "attributes": dict(span.attributes or {}),
                }
                out.write(json.dumps(line) + "\n")
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(JsonLines(os.environ["PGJOBS_TEST_SPANS"])))
trace.set_tracer_provider(provider)

app = pgjobs.App()
log = structlog.get_logger("tests.apps.traced")


@app.task(name="traced.hello")
def hello(name: str) -> None:
    """Logs one line of its own."""
    log.info("hello.said", name=name)
