"""OpenTelemetry metrics from the hooks: attempts by outcome and their durations, on every harness."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from jobqueue.telemetry import record_metrics
from tests.conformance.harness import Harness
from tests.conformance.jobs import BACKOFF_SECONDS, QUEUE, Jobs


def test_attempts_and_durations_are_recorded(harness: Harness, jobs: Jobs) -> None:
    reader = InMemoryMetricReader()
    assert record_metrics(jobs.app, MeterProvider(metric_readers=[reader]))
    jobs.echo.enqueue(value=1)
    jobs.echo.enqueue(value=2)
    jobs.always_fails.enqueue(value=3)
    harness.settle(jobs.app, QUEUE, step=BACKOFF_SECONDS)
    data = reader.get_metrics_data()
    metrics = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    counts = {
        (p.attributes["job"], p.attributes["outcome"]): p.value for p in metrics["jobqueue.job.attempts"].data.data_points
    }
    assert counts[("echo", "completed")] == 2 and counts[("always_fails", "failed")] == 1
    assert counts[("always_fails", "retrying")] == 1  # two attempts: one retried, one final
    durations = {p.attributes["job"]: p.count for p in metrics["jobqueue.job.duration"].data.data_points if p.attributes["outcome"] != "retrying"}
    assert durations == {"echo": 2, "always_fails": 1}
    assert all(p.attributes["queue"] == QUEUE for p in metrics["jobqueue.job.attempts"].data.data_points)
