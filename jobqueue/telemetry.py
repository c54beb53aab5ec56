"""OpenTelemetry, when it is installed (extra ``otel``): the W3C trace context travels in the envelope.

At enqueue, :func:`inject` writes the caller's current context (``traceparent``, ``tracestate``,
baggage) into ``envelope.trace``; when an attempt runs, :func:`job_span` opens a ``job {name}`` span
whose parent is that context. So one trace spans the web request, the enqueue and the job's run, on
every backend, because every backend runs attempts through the same runner.

Without ``opentelemetry-api`` both are no-ops, and so they are until something in the process imported it
(a tracer provider, an instrumentation) or ``OTEL_PYTHON_TRACER_PROVIDER`` is set: before that there is no
trace context to carry and nothing to record a span, so the API is not imported for nothing (a cold Lambda
would pay for it). The tracer comes from ``app.tracer_provider`` when the
app sets one, else from the global provider.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobqueue.app import JobQueue
    from jobqueue.envelope import Envelope

_otel: Any = None  # None: not looked for yet; False: not installed; else (trace, propagate, context)
_env_provider: bool | None = None  # OTEL_PYTHON_TRACER_PROVIDER names a provider the API loads on first use


def _load(*, force: bool = False) -> Any:
    global _otel, _env_provider
    if _otel is None:
        if _env_provider is None:
            import os

            _env_provider = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
        if not force and "opentelemetry" not in sys.modules and not _env_provider:
            # Nothing in this process set tracing up (a provider, an instrumentation, a span all import the
            # API first): there is no context to carry and no provider to record a span. Skip the API's import
            # (a cold Lambda would pay it for nothing) and look again next time.
            return False
        try:
            import opentelemetry.propagate as propagate
            from opentelemetry import context, trace
        except ImportError:
            _otel = False
        else:
            _otel = (trace, propagate, context)
    return _otel


def available() -> bool:
    """Whether ``opentelemetry-api`` is importable."""
    return bool(_load(force=True))


def inject() -> dict[str, str]:
    """The current trace context as W3C headers (``{"traceparent": ...}``); empty without OpenTelemetry or a span."""
    otel = _load()
    if not otel or not otel[2].get_current():  # no span and no baggage: nothing to carry (skips the propagators' cost)
        return {}
    carrier: dict[str, str] = {}
    otel[1].inject(carrier)
    return carrier


def tracing(app: JobQueue) -> bool:
    """Whether an attempt of ``app``'s jobs would record a span now: OpenTelemetry is loaded and a tracer
    provider is set (the app's or a global one). A few dictionary lookups when it is not, so the runner
    asks it before every attempt and skips :func:`job_span` (a provider set later is seen at the next job).
    """
    otel = _otel
    if otel is None:
        if _env_provider is False and "opentelemetry" not in sys.modules:  # _load's own first test, inlined
            return False
        otel = _load()
    if not otel:
        return False
    return getattr(app, "tracer_provider", None) is not None or _has_global_provider(otel[0])


@contextmanager
def job_span(app: JobQueue, envelope: Envelope) -> Iterator[Any]:
    """A ``job {name}`` span (kind CONSUMER) around one attempt, child of the context the envelope carries."""
    otel = _load()
    if not otel or (getattr(app, "tracer_provider", None) is None and not _has_global_provider(otel[0])):
        yield None  # nothing would record the span: skip its cost (a provider set later is seen at the next job)
        return
    trace, propagate, _ = otel
    parent = propagate.extract(envelope.trace) if envelope.trace else None
    from jobqueue import __version__

    tracer = trace.get_tracer("jobqueue", __version__, tracer_provider=getattr(app, "tracer_provider", None))
    attributes = {
        "messaging.system": "jobqueue",
        "messaging.operation.type": "process",
        "messaging.destination.name": envelope.queue,
        "messaging.message.id": envelope.id,
        "jobqueue.job.name": envelope.name,
        "jobqueue.job.attempt": envelope.attempt,
        "jobqueue.job.max_attempts": envelope.max_attempts,
        "jobqueue.backend": app.backend_name,
    }
    with tracer.start_as_current_span(
        f"job {envelope.name}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes,
        record_exception=False, set_status_on_exception=True,
    ) as span:
        yield span


def _has_global_provider(trace: Any) -> bool:
    """Whether a tracer provider was set globally (the default proxy records nothing until one is)."""
    provider = getattr(trace, "_TRACER_PROVIDER", False)  # None until one is set (the API's own global)
    if provider is None and not _env_provider:
        return False
    return not isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def record_outcome(span: Any, state: str, error: Any = None) -> None:
    """Mark ``span`` with the attempt's outcome (``completed``, ``delayed``, ``failed``, ``cancelled``)."""
    if span is None:
        return
    trace = _load()[0]
    span.set_attribute("jobqueue.job.outcome", state)
    if error is not None:
        span.set_attribute("exception.type", error.type)
        span.set_attribute("exception.message", error.message)
        if state in ("failed", "delayed"):
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{error.type}: {error.message}"[:500]))


def record_metrics(app: JobQueue, meter_provider: Any = None) -> bool:
    """Count finished attempts and time them as OpenTelemetry metrics, from the app's hooks.

    ``jobqueue.job.attempts`` (counter; attributes queue, job, outcome: completed, retrying, failed,
    cancelled) and ``jobqueue.job.duration`` (histogram, seconds). They are recorded where attempts run
    (the worker, the Lambda, or the caller on ``sync``) and exported by whatever reader the provider has
    (OTLP, Prometheus...). ``meter_provider`` defaults to the global one. False without OpenTelemetry.
    """
    if not _load(force=True):
        return False
    from opentelemetry import metrics

    from jobqueue import __version__

    meter = metrics.get_meter("jobqueue", __version__, meter_provider=meter_provider)
    attempts = meter.create_counter("jobqueue.job.attempts", unit="{attempt}", description="Attempts that ended, by outcome")
    duration = meter.create_histogram("jobqueue.job.duration", unit="s", description="How long attempts ran")
    outcomes = {"job_completed": "completed", "attempt_failed": "retrying", "job_failed": "failed", "job_cancelled": "cancelled"}

    def record(event: Any) -> None:
        labels = {"queue": event.envelope.queue, "job": event.envelope.name, "outcome": outcomes[event.kind]}
        attempts.add(1, labels)
        if event.duration is not None:
            duration.record(event.duration, labels)

    for kind in outcomes:
        app.hooks.add(kind, record)  # type: ignore[arg-type]
    return True
