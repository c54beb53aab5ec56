"""examples/fastapi: routes enqueue jobs; the admin API and dashboard are mounted at /admin."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("fastapi")
from starlette.testclient import TestClient

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi" / "app.py"
TOKEN = "example-token"


def load(monkeypatch: pytest.MonkeyPatch, backend: str) -> ModuleType:
    monkeypatch.setenv("JOBQUEUE_BACKEND", backend)
    monkeypatch.setenv("JOBQUEUE_ADMIN_TOKEN", TOKEN)
    spec = importlib.util.spec_from_file_location(f"fastapi_example_{backend}", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, spec.name, module)
    return module


@pytest.mark.parametrize("backend", ["sync", "memory"])
def test_routes_enqueue_and_admin_sees_the_jobs(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    example = load(monkeypatch, backend)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(example.web) as client:
        ok = client.post("/reports/42").json()["job_id"]
        bad = client.post("/reports/0").json()["job_id"]
        client.post("/signup", json={"email": "ada@example.org", "name": "Ada"})
        assert client.post("/signup", json={"email": "no name"}).status_code == 422
        deadline = time.monotonic() + 10
        while client.get(f"/jobs/{ok}").json()["state"] != "completed":
            assert time.monotonic() < deadline, "the job did not complete in time"
            time.sleep(0.05)
        assert client.get(f"/jobs/{ok}").json() == {"state": "completed", "progress": 100.0, "result": {"account_id": 42, "rows": 120}}
        job = client.get(f"/admin/api/jobs/{ok}", headers=auth).json()
        assert job["payload"] == {"account_id": 42, "api_key": "[redacted]"}
        while client.get(f"/jobs/{bad}").json()["state"] != "failed":
            assert time.monotonic() < deadline + 20, "the failing job did not fail in time"
            time.sleep(0.05)  # on memory, the retry waits its backoff on the wall clock
        stats = client.get("/admin/api/stats", headers=auth).json()["queues"]
        assert stats["reports"]["counts"]["completed"] == 1 and stats["reports"]["counts"]["failed"] == 1
        assert client.get("/admin/api/stats").status_code == 401
        page = client.get("/admin/")
        assert page.status_code == 200 and 'content="/admin"' in page.text


@pytest.mark.parametrize("backend", ["sync", "memory"])  # memory: the job runs in another thread, parented by the envelope
def test_one_trace_spans_the_request_the_enqueue_and_the_job(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    example = load(monkeypatch, backend)
    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    example.jobs.tracer_provider = provider
    with TestClient(example.web) as client:
        job_id = client.post("/reports/7").json()["job_id"]
        deadline = time.monotonic() + 10
        while client.get(f"/jobs/{job_id}").json()["state"] != "completed":
            assert time.monotonic() < deadline, "the job did not complete in time"
            time.sleep(0.05)
    spans = {span.name: span for span in exporter.get_finished_spans()}
    request, job = spans["POST /reports/7"], spans["job build_report"]
    assert job.parent is not None and job.parent.span_id == request.context.span_id
    assert job.context.trace_id == request.context.trace_id
