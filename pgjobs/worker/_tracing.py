"""Around each run while tracing is on: its CONSUMER span, and its correlation id.

The executor calls `traced` in one place when a tracer is set; everything
here is about what surrounds a run, never about how a handler is called.
See pgjobs/_trace.py for when tracing is on and what an enqueue stores in
the job's meta.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pgjobs import _trace
from pgjobs.worker._outcome import ClaimedJob, Outcome

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

#: The executor's run of a job, given the correlation id to bind on its context.
Run = Callable[[ClaimedJob, str], Awaitable[Outcome]]

#: `pgjobs.outcome` of a run, by the status its Outcome writes.
OUTCOMES = {"succeeded": "succeeded", "queued": "retried", "failed": "failed"}


class _Otel:
    """The parts of opentelemetry a traced run uses, imported at the first one."""

    def __init__(self) -> None:
        from opentelemetry import context, propagate, trace

        self.attach, self.detach, self.Context = context.attach, context.detach, context.Context
        self.extract = propagate.extract
        self.set_span_in_context = trace.set_span_in_context
        self.CONSUMER = trace.SpanKind.CONSUMER
        self.error = trace.StatusCode.ERROR
        self.Status = trace.Status


_otel: _Otel | None = None


async def traced(tracer: Tracer, run: Run, job: ClaimedJob) -> Outcome:
    """`run(job)` in its CONSUMER span, with the job's correlation id bound.

    The correlation id is the one stored with the job (given at enqueue, or
    inherited from the job that enqueued it), else the trace id of the span.
    It is bound into structlog's contextvars as `correlation_id` for the run
    and taken off after. Without tracing, the executor binds the stored id
    or the job's id itself (Executor.run).
    """
    global _otel
    otel = _otel or (_otel := _Otel())
    carrier = job.meta.get(_trace.TRACE_KEY)
    # An empty Context, not the current one: a job enqueued without a trace
    # starts its own, whatever span the worker's code may be in.
    parent = otel.extract(carrier if isinstance(carrier, dict) else {}, context=otel.Context())
    span = tracer.start_span(
        f"process {job.queue}",
        context=parent,
        kind=otel.CONSUMER,
        attributes={
            "messaging.system": _trace.SYSTEM,
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": job.queue,
            "messaging.message.id": str(job.id),
            "pgjobs.task": job.task,
            "pgjobs.attempt": job.attempts,
        },
    )
    # The span is current for the run: the handler's own spans, and the
    # PRODUCER spans of the jobs it enqueues, are its children.
    attached = otel.attach(otel.set_span_in_context(span, parent))
    correlation_id = _trace.stored_correlation_id(job.meta) or format(
        span.get_span_context().trace_id, "032x"
    )
    logged = _trace.log_var().set(correlation_id)
    try:
        outcome = await run(job, correlation_id)
    except BaseException:  # only CancelledError: the worker stops and gives the job back
        span.set_attribute("pgjobs.outcome", "released")
        raise
    else:
        span.set_attribute("pgjobs.outcome", OUTCOMES.get(outcome.status, outcome.status))
        error = outcome.error
        if error is not None:
            # The exception itself stayed in the executor; its record has what
            # an "exception" event holds (semantic conventions).
            message = str(error.get("message", ""))
            span.add_event(
                "exception",
                {
                    "exception.type": str(error.get("type", "")),
                    "exception.message": message,
                    "exception.stacktrace": str(error.get("traceback", "")),
                },
            )
            span.set_status(otel.Status(otel.error, message[:200]))
        return outcome
    finally:
        _trace.log_var().reset(logged)
        otel.detach(attached)
        span.end()
