"""Tracing and correlation ids: what a job carries in its meta from enqueue to its run.

OpenTelemetry is optional (the `otel` extra), and pgjobs never imports it
first. A tracer provider can only have been set by code that imported
`opentelemetry.trace`, so while that module is not in `sys.modules` tracing
is off, and finding that out costs an enqueue one dict lookup. Once it is
imported, tracing is on while the global tracer provider is a real one (not
the API's default proxy, nor its no-op). PGJOBS_TRACING=off turns it off
whatever the provider.

When tracing is on, an enqueue is a PRODUCER span ("send <queue>") whose
W3C trace context (the global propagator's fields: `traceparent`, and
`tracestate` when there is one) is stored as `meta["trace"]`; the worker runs
the job in a CONSUMER span ("process <queue>") whose parent is that context
(pgjobs/worker/_tracing.py).

A correlation id is bound into structlog's contextvars while a job runs (the
executor sets the variable, `log_var()`, around each run). The id of the run
in progress is also kept on its JobContext, so that a job enqueued from
inside a handler inherits it (stored as `meta["correlation_id"]`): a
`correlation_id` the application binds itself is its own, not inherited.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from structlog.contextvars import bind_contextvars

from pgjobs._context import current_correlation_id
from pgjobs._options import CORRELATION_KEY, MAX_CORRELATION_ID, EnqueueOptions

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

#: The key of `jobs.meta` that holds the W3C trace context of the enqueue.
TRACE_KEY = "trace"
#: The value of `messaging.system`.
SYSTEM = "pgjobs"

#: PGJOBS_TRACING=off (or 0, false, no) keeps pgjobs from tracing at all.
DISABLED = os.environ.get("PGJOBS_TRACING", "").strip().lower() in ("off", "0", "false", "no")

# The provider the tracer below was made from: it is made again when the
# application sets another provider.
_provider: object = None
_tracer: Tracer | None = None


def tracer() -> Tracer | None:
    """pgjobs' tracer while tracing is on (see the module docstring), else None."""
    if DISABLED:
        return None
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    provider = trace.get_tracer_provider()
    if provider is not _provider:
        _remember(trace, provider)
    return _tracer


def _remember(trace: Any, provider: Any) -> None:
    global _provider, _tracer
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        made = None
    else:
        version = getattr(sys.modules.get("pgjobs"), "__version__", None)
        made = provider.get_tracer("pgjobs", version)
    _provider, _tracer = provider, made


# -- correlation ids ------------------------------------------------------------


def current() -> str | None:
    """The correlation id of the job running in this context, if any."""
    return current_correlation_id()


# structlog's context variable for `correlation_id`, found at the first run.
_logged: ContextVar[Any] | None = None


def log_var() -> ContextVar[Any]:
    """The variable `bind_contextvars(correlation_id=...)` sets, which merge_contextvars reads.

    The executor sets and resets it around each run: that is what binding
    does, without building the key and the mapping of tokens every time (a
    run's whole correlation costs about 0.4 µs so).
    """
    global _logged
    if _logged is None:
        token = bind_contextvars(correlation_id=None)["correlation_id"]
        token.var.reset(token)
        _logged = token.var
    return _logged


def stored_correlation_id(meta: dict[str, Any]) -> str | None:
    """The correlation id a job's meta carries, if it is a usable one.

    The meta may have been written by another client (SQL, another language):
    anything but a short string is ignored rather than trusted.
    """
    value = meta.get(CORRELATION_KEY)
    if isinstance(value, str) and 0 < len(value) <= MAX_CORRELATION_ID:
        return value
    return None


# -- enqueue ----------------------------------------------------------------------


def stamped(options: EnqueueOptions, carrier: dict[str, str] | None) -> EnqueueOptions:
    """`options` with the trace context and the inherited correlation id in its meta.

    An explicit correlation id (the option, or a key the caller put in meta)
    is kept; only a job without one inherits the running job's.
    """
    meta = options.meta
    inherited = current_correlation_id()
    if inherited is not None and CORRELATION_KEY not in meta:
        meta = {**meta, CORRELATION_KEY: inherited}
    if carrier:
        meta = {**meta, TRACE_KEY: carrier}
    if meta is options.meta:
        return options
    return replace(options, meta=meta)


@contextlib.contextmanager
def sending(tracer: Tracer, queues: Sequence[str], count: int) -> Iterator[SendSpan]:
    """The PRODUCER span of an enqueue of `count` jobs, current while the jobs are written.

    An exception raised inside is recorded on the span, which ends in error.
    """
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    distinct = sorted(set(queues))
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
    }
    if len(distinct) == 1:
        attributes["messaging.destination.name"] = distinct[0]
        name = f"send {distinct[0]}"
    else:
        name = "send"
    if count != 1:
        attributes["messaging.batch.message_count"] = count
    with tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=attributes) as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield SendSpan(span, carrier)


class SendSpan:
    """An enqueue's span, and the trace context its jobs carry."""

    __slots__ = ("carrier", "span")

    def __init__(self, span: Span, carrier: dict[str, str]) -> None:
        self.span = span
        self.carrier = carrier

    def sent(self, job_id: int | None) -> None:
        """Name the job written (a single enqueue; None when a duplicate was skipped)."""
        if job_id is not None:
            self.span.set_attribute("messaging.message.id", str(job_id))
