"""Hostile requests to the admin API: every one gets a 4xx with a reason (never a 500), the queue is left as it
was, and nothing a request names is imported or run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel
from starlette.testclient import TestClient

from jobqueue import FakeClock, JobQueue, JobState
from jobqueue.envelope import Envelope
from tests.hostile.conftest import HOSTILE_NAMES, PROBE, Probe

TOKEN = "hostile-admin-token"
QUEUE = "q"


class Anything(BaseModel):
    data: Any = None


@pytest.fixture
def app() -> Iterator[JobQueue]:
    made = JobQueue.from_env({"JOBQUEUE_BACKEND": "memory"}, clock=FakeClock())
    made.queue(QUEUE, attempts=2)

    @made.job(queue=QUEUE)
    def take(payload: Anything) -> str:
        return "ok"

    take.enqueue_many([{"data": i} for i in range(3)])
    yield made
    made.close()


@pytest.fixture
def client(app: JobQueue) -> Iterator[TestClient]:
    with TestClient(app.admin_asgi(token=TOKEN), raise_server_exceptions=False) as made:
        made.headers["Authorization"] = f"Bearer {TOKEN}"
        yield made


def snapshot(app: JobQueue) -> dict[str, Any]:
    return {"stats": app.stats(QUEUE).counts, "waiting": [j.id for j in app.list_jobs(QUEUE, JobState.WAITING, limit=100).jobs]}


HOSTILE_GETS = [
    "/api/jobs/..%2F..%2Fetc%2Fpasswd", "/api/jobs/%00", "/api/jobs/" + "x" * 20_000, "/api/jobs/%ff%fe",
    f"/api/jobs/{PROBE}:run", "/api/jobs?limit=1e309", "/api/jobs?limit=-1", "/api/jobs?limit=99999999999999999999999",
    "/api/jobs?state=__class__", "/api/jobs?state=os.system", "/api/jobs?cursor=-1:",
    "/api/jobs?cursor=%ff", "/api/jobs?queue=../../q", f"/api/jobs?queue={PROBE}", "/api/stats?minutes=1e9", "/api/stats?minutes=nan",
    "/api/stats?queue=%00", "/api/jobs/x?queue=nope",
]
HOSTILE_POSTS: list[tuple[str, bytes]] = [
    (f"/api/queues/{QUEUE}/clean", b"\xff\xfe\x00not utf-8"),
    (f"/api/queues/{QUEUE}/clean", b"[" * 200_000),
    (f"/api/queues/{QUEUE}/clean", b'{"state": "completed", "older_than": "' + b"9" * 5000 + b'"}'),
    (f"/api/queues/{QUEUE}/clean", b'{"state": "__import__(\'os\')", "older_than": "1h"}'),
    (f"/api/queues/{QUEUE}/clean", b'{"state": "waiting", "older_than": -5}'),
    (f"/api/queues/{QUEUE}/clean", b'{"state": "completed", "older_than": "1h", "__class__": {"__init__": 1}}'),
    (f"/api/queues/{QUEUE}/clean", b"\x80\x04\x95cos\nsystem\n(S'true'\ntR."),  # a pickle: only ever bytes to refuse
    ("/api/queues/..%2Fq/pause", b""),
    (f"/api/queues/{PROBE}/resume", b""),
    ("/api/jobs/%00/retry", b""),
    (f"/api/jobs/{'y' * 20_000}/cancel", b""),
]


@pytest.mark.parametrize("path", HOSTILE_GETS)
def test_hostile_queries_get_a_4xx_and_change_nothing(app: JobQueue, client: TestClient, probe: Probe, path: str) -> None:
    before = snapshot(app)
    answer = client.get(path)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:500])
    assert answer.json()["detail"]
    assert snapshot(app) == before and not probe.imported


def test_a_cursor_past_the_end_is_an_empty_page(client: TestClient) -> None:
    assert client.get("/api/jobs?cursor=99999999999999999999:x").json() == {"jobs": [], "next_cursor": None}


@pytest.mark.parametrize(("path", "body"), HOSTILE_POSTS)
def test_hostile_posts_get_a_4xx_and_change_nothing(app: JobQueue, client: TestClient, probe: Probe, path: str, body: bytes) -> None:
    before = snapshot(app)
    answer = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:500])
    assert answer.json()["detail"]
    assert snapshot(app) == before and not probe.imported


def test_retrying_a_job_with_a_hostile_name_imports_nothing(app: JobQueue, client: TestClient, probe: Probe) -> None:
    app.submit([Envelope(id=f"h{i}", name=name, queue=QUEUE, max_attempts=1) for i, name in enumerate(HOSTILE_NAMES)])
    app.backend.run_until_empty()  # type: ignore[attr-defined]
    for i in range(len(HOSTILE_NAMES)):
        assert client.post(f"/api/jobs/h{i}/retry").json()["state"] == "waiting"
    app.backend.run_until_empty()  # type: ignore[attr-defined]
    for i in range(len(HOSTILE_NAMES)):
        body = client.get(f"/api/jobs/h{i}").json()
        assert body["state"] == "failed" and "no handler is registered" in body["error"]["message"]
    assert not probe.imported


def test_requests_without_the_token_never_reach_the_backend(app: JobQueue, probe: Probe) -> None:
    calls: list[str] = []
    backend = app.backend
    for name in ("stats", "list_jobs", "get", "retry", "cancel", "pause", "resume", "clean", "retry_failed", "health"):
        original = getattr(backend, name)
        setattr(backend, name, lambda *a, _n=name, _o=original, **k: (calls.append(_n), _o(*a, **k))[1])
    with TestClient(app.admin_asgi(token=TOKEN), raise_server_exceptions=False) as anonymous:
        for method, path in [("GET", "/api/stats"), ("GET", "/api/jobs"), ("GET", "/api/jobs/x"), ("POST", "/api/jobs/x/retry"),
                             ("POST", f"/api/queues/{QUEUE}/pause"), ("POST", f"/api/queues/{QUEUE}/clean"), ("GET", "/metrics"),
                             ("GET", "/api/health")]:
            assert anonymous.request(method, path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert calls == []
