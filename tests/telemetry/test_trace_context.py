"""One trace spans the caller's span, the enqueue and the job's run, on every backend with a harness."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.conformance.harness import Harness
from tests.conformance.jobs import BACKOFF_SECONDS, QUEUE, Jobs


@pytest.fixture
def exporter(jobs: Jobs) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    jobs.app.tracer_provider = provider
    return exporter


def test_span_around_enqueue_is_the_parent_of_the_job_span(harness: Harness, jobs: Jobs, exporter: InMemorySpanExporter) -> None:
    tracer = jobs.app.tracer_provider.get_tracer("web")
    with tracer.start_as_current_span("POST /signup") as request_span:
        handle = jobs.echo.enqueue(value="traced")
    harness.drain(jobs.app)
    assert handle.status().state.value == "completed"
    job_spans = [s for s in exporter.get_finished_spans() if s.name == "job echo"]
    assert len(job_spans) == 1
    span = job_spans[0]
    parent = request_span.get_span_context()
    assert span.parent is not None and span.parent.span_id == parent.span_id
    assert span.context.trace_id == parent.trace_id
    assert span.kind is SpanKind.CONSUMER
    assert span.attributes["messaging.message.id"] == handle.id
    assert span.attributes["messaging.destination.name"] == QUEUE
    assert span.attributes["jobqueue.job.outcome"] == "completed"


def test_every_attempt_is_a_span_of_the_same_trace(harness: Harness, jobs: Jobs, exporter: InMemorySpanExporter) -> None:
    tracer = jobs.app.tracer_provider.get_tracer("web")
    with tracer.start_as_current_span("request") as request_span:
        jobs.always_fails.enqueue(value=1)
    harness.settle(jobs.app, QUEUE, step=BACKOFF_SECONDS)
    spans = [s for s in exporter.get_finished_spans() if s.name == "job always_fails"]
    assert [s.attributes["jobqueue.job.attempt"] for s in spans] == [1, 2]
    assert {s.context.trace_id for s in spans} == {request_span.get_span_context().trace_id}
    assert [s.attributes["jobqueue.job.outcome"] for s in spans] == ["delayed", "failed"]
    assert spans[-1].status.status_code is StatusCode.ERROR


def test_without_a_current_span_the_job_starts_its_own_trace(harness: Harness, jobs: Jobs, exporter: InMemorySpanExporter) -> None:
    handle = jobs.echo.enqueue(value=1)
    harness.drain(jobs.app)
    spans = [s for s in exporter.get_finished_spans() if s.name == "job echo"]
    assert len(spans) == 1 and spans[0].parent is None and handle.status().state.value == "completed"
