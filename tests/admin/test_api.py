"""Every endpoint of the admin API, on every backend that has a conformance harness."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel
from starlette.testclient import TestClient

from jobqueue import JobState, Secret
from tests.admin.conftest import AUTH, TOKEN, client_for
from tests.conformance.harness import Harness
from tests.conformance.jobs import BACKOFF_SECONDS, QUEUE, Jobs

ENDPOINTS = [
    ("GET", "/api/stats"), ("GET", "/api/health"), ("GET", "/api/jobs"), ("GET", "/api/jobs/some-id"),
    ("POST", "/api/jobs/some-id/retry"), ("POST", "/api/jobs/some-id/cancel"),
    ("POST", f"/api/queues/{QUEUE}/pause"), ("POST", f"/api/queues/{QUEUE}/resume"),
    ("POST", f"/api/queues/{QUEUE}/retry-failed"), ("POST", f"/api/queues/{QUEUE}/clean"), ("GET", "/metrics"),
]


def failed_job(harness: Harness, jobs: Jobs, tag: str = "t1") -> str:
    handle = jobs.until_allowed.enqueue(tag=tag)
    harness.settle(jobs.app, QUEUE, step=BACKOFF_SECONDS)
    assert handle.status().state is JobState.FAILED
    return handle.id


def test_every_endpoint_needs_the_token(jobs: Jobs, api: TestClient) -> None:
    for method, path in ENDPOINTS:
        assert api.request(method, path, headers={"Authorization": ""}).status_code == 401, path
        answer = api.request(method, path, headers={"Authorization": "Bearer wrong"})
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert api.get("/api/openapi.json", headers={"Authorization": ""}).status_code == 200
    assert api.get("/", headers={"Authorization": ""}).status_code == 200


def test_stats_counts_throughput_and_oldest_waiting(harness: Harness, jobs: Jobs, api: TestClient) -> None:
    for value in range(3):
        jobs.echo.enqueue(value=value)
    failed_job(harness, jobs)
    harness.drain(jobs.app)
    body = api.get("/api/stats").json()
    assert body["backend"] == jobs.app.backend_name
    conf = body["queues"][QUEUE]
    assert conf["counts"]["completed"] == 3 and conf["counts"]["failed"] == 1 and conf["paused"] is False
    assert sum(conf["throughput"]["completed"]) == 3 and sum(conf["throughput"]["failed"]) == 1
    assert len(conf["throughput"]["completed"]) == 15 and conf["oldest_waiting_age"] is None
    assert api.get("/api/stats", params={"queue": QUEUE, "minutes": 3}).json()["queues"][QUEUE]["throughput"]["minutes"] == 3

    api.post(f"/api/queues/{QUEUE}/pause")
    jobs.echo.enqueue(value="held")
    harness.advance(max(harness.time_resolution, 1.0))
    held = api.get("/api/stats", params={"queue": QUEUE}).json()["queues"][QUEUE]
    assert held["paused"] is True and held["counts"]["waiting"] == 1
    assert held["oldest_waiting_age"] is not None and held["oldest_waiting_age"] >= 0.9
    assert api.get("/api/stats", params={"queue": "nope"}).status_code == 404
    assert api.get("/api/stats", params={"minutes": 0}).status_code == 422


def test_health_overall_and_per_queue(jobs: Jobs, api: TestClient) -> None:
    answer = api.get("/api/health")
    body = answer.json()
    assert answer.status_code == 200 and body["status"] in ("healthy", "degraded")
    assert body["broker_reachable"] is True and body["backend"] == jobs.app.backend_name
    assert body["queues"][QUEUE]["status"] == "healthy" and "latency_ms" in body


def test_degraded_when_a_job_waits_too_long(harness: Harness, jobs: Jobs) -> None:
    with client_for(jobs.app, token=TOKEN, stall_after=0.5) as api:
        api.headers.update(AUTH)
        jobs.app.pause(QUEUE)
        jobs.echo.enqueue(value=1)
        harness.advance(1.0)
        body = api.get("/api/health").json()
        assert body["queues"][QUEUE] | {"oldest_waiting_age": None} == {
            "status": "healthy", "paused": True, "waiting": 1, "active": 0, "failed": 0, "oldest_waiting_age": None, "reasons": ["paused"],
        }
        if jobs.app.backend_name == "sync":
            return  # the sync backend runs a job as soon as its queue resumes: nothing is left waiting
        jobs.app.resume(QUEUE)
        body = api.get("/api/health").json()
        assert body["status"] == "degraded" and body["queues"][QUEUE]["status"] == "degraded"
        assert "waited" in body["queues"][QUEUE]["reasons"][0]


def test_jobs_are_paged_with_a_cursor(harness: Harness, jobs: Jobs, api: TestClient) -> None:
    ids = [jobs.echo.enqueue(value=i).id for i in range(5)]
    harness.drain(jobs.app)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"queue": QUEUE, "state": "completed", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/api/jobs", params=params).json()
        assert len(page["jobs"]) <= 2
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    everywhere = api.get("/api/jobs", params={"state": "completed", "limit": 500}).json()
    assert {job["id"] for job in everywhere["jobs"]} >= set(ids)
    assert everywhere["jobs"][0]["timeline"][0]["event"] == "enqueued"
    # across queues, a page at a time
    seen, cursor = [], None
    for _ in range(10):
        params = {"state": "completed", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/jobs", params=params).json()
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)


@pytest.mark.parametrize("params", [{"state": "bogus"}, {"limit": "0"}, {"limit": "abc"}, {"limit": "501"}, {"cursor": "x"}])
def test_bad_query_is_422(jobs: Jobs, api: TestClient, params: dict[str, str]) -> None:
    answer = api.get("/api/jobs", params=params)
    assert answer.status_code == 422 and isinstance(answer.json()["detail"], list)


def test_one_job_and_404(harness: Harness, jobs: Jobs, api: TestClient) -> None:
    handle = jobs.echo.enqueue(value="x", _job_id="odd:id/with spaces")
    harness.drain(jobs.app)
    body = api.get("/api/jobs/odd:id/with spaces").json()
    assert body["id"] == "odd:id/with spaces" and body["state"] == "completed" and body["payload"] == {"value": "x"}
    assert body["result"] == {"echo": "x", "attempt": 1} and body["progress"] == 100
    assert body["timeline"][0]["event"] == "enqueued" and body["timeline"][-1]["event"] == "completed"
    assert api.get(f"/api/jobs/{handle.id}", params={"queue": QUEUE}).status_code == 200
    assert api.get("/api/jobs/no-such-job").status_code == 404
    assert api.post("/api/jobs/no-such-job/retry").status_code == 404
    assert api.post("/api/jobs/no-such-job/cancel").status_code == 404


def test_failed_job_shows_its_traceback_and_retries(harness: Harness, jobs: Jobs, api: TestClient) -> None:
    job_id = failed_job(harness, jobs, "gate")
    body = api.get(f"/api/jobs/{job_id}").json()
    assert body["error"]["type"] == "RuntimeError" and "until_allowed" in body["error"]["traceback"]
    assert api.post(f"/api/jobs/{job_id}/cancel").status_code == 409
    jobs.switches["gate"] = True
    answer = api.post(f"/api/jobs/{job_id}/retry")
    assert answer.status_code == 200 and answer.json()["ok"] is True
    assert answer.json()["state"] in ("waiting", "completed")  # sync runs it at once
    harness.drain(jobs.app)
    assert api.get(f"/api/jobs/{job_id}").json()["state"] == "completed"
    assert api.post(f"/api/jobs/{job_id}/retry").status_code == 409


def test_cancel_a_pending_job(harness: Harness, jobs: Jobs, api: TestClient) -> None:
    assert api.post(f"/api/queues/{QUEUE}/pause").json() == {"queue": QUEUE, "action": "pause", "paused": True, "count": None}
    handle = jobs.echo.enqueue(value=1)
    answer = api.post(f"/api/jobs/{handle.id}/cancel")
    assert answer.status_code == 200 and answer.json()["state"] == "cancelled"
    assert api.post(f"/api/jobs/{handle.id}/cancel").status_code == 409
    assert api.post(f"/api/queues/{QUEUE}/resume").json()["paused"] is False
    assert api.get("/api/stats").json()["queues"][QUEUE]["paused"] is False


def test_queue_actions(harness: Harness, jobs: Jobs, api: TestClient) -> None:
    failed = [failed_job(harness, jobs, f"f{i}") for i in range(2)]
    answer = api.post(f"/api/queues/{QUEUE}/retry-failed")
    assert answer.status_code == 200 and answer.json()["count"] == 2
    harness.settle(jobs.app, QUEUE, step=BACKOFF_SECONDS)
    assert all(jobs.app.get(job_id).state is JobState.FAILED for job_id in failed)
    jobs.echo.enqueue(value=1)
    harness.drain(jobs.app)
    answer = api.post(f"/api/queues/{QUEUE}/clean", json={"state": "completed", "older_than": 0})
    assert answer.status_code == 200 and answer.json() == {"queue": QUEUE, "action": "clean", "paused": None, "count": 1}
    assert api.post(f"/api/queues/{QUEUE}/clean", json={"state": "failed", "older_than": "1h"}).json()["count"] == 0
    assert api.post(f"/api/queues/{QUEUE}/clean").json()["count"] == 0  # no body: completed jobs of any age
    for action in ("pause", "resume", "retry-failed", "clean"):
        assert api.post(f"/api/queues/nope/{action}").status_code == 404


@pytest.mark.parametrize("body", [b"{not json", b'{"state": "active"}', b'{"older_than": "soon"}', b'{"colour": "red"}', b"[1]"])
def test_bad_clean_body_is_422(jobs: Jobs, api: TestClient, body: bytes) -> None:
    answer = api.post(f"/api/queues/{QUEUE}/clean", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text


def test_metrics_in_prometheus_format(harness: Harness, jobs: Jobs, api: TestClient) -> None:
    jobs.echo.enqueue(value=1)
    harness.drain(jobs.app)
    answer = api.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = answer.text
    assert f'jobqueue_jobs{{queue="{QUEUE}",state="completed"}} 1' in text
    assert f'jobqueue_queue_paused{{queue="{QUEUE}"}} 0' in text
    assert f'jobqueue_up{{backend="{jobs.app.backend_name}"}} 1' in text
    assert "# TYPE jobqueue_oldest_waiting_age_seconds gauge" in text


class Login(BaseModel):
    user: str
    password: Annotated[str, Secret()]
    card: dict[str, str] = {}


def test_secret_fields_are_stored_intact_and_shown_redacted(harness: Harness, jobs: Jobs, api: TestClient) -> None:
    seen: list[str] = []

    @jobs.app.job(queue=QUEUE, secret_fields=["card.number"])
    def login(payload: Login) -> str:
        seen.append(payload.password)
        return "ok"

    handle = login.enqueue(user="ada", password="hunter2", card={"number": "4242", "brand": "visa"})
    harness.drain(jobs.app)
    assert seen == ["hunter2"] and handle.status().payload["password"] == "hunter2"
    body = api.get(f"/api/jobs/{handle.id}").json()
    assert body["payload"] == {"user": "ada", "password": "[redacted]", "card": {"number": "[redacted]", "brand": "visa"}}
    assert body["redacted_fields"] == ["card.number", "password"]
    listed = api.get("/api/jobs", params={"queue": QUEUE, "state": "completed"}).json()["jobs"]
    assert all("hunter2" not in str(job["payload"]) for job in listed)


def test_openapi_describes_every_endpoint(jobs: Jobs, api: TestClient) -> None:
    doc = api.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for method, path in ENDPOINTS:
        template = path.replace("some-id", "{job_id}").replace(f"/queues/{QUEUE}/", "/queues/{name}/")
        assert method.lower() in doc["paths"][template], template
    assert {"JobView", "StatsResponse", "HealthResponse", "CleanRequest"} <= set(doc["components"]["schemas"])
