"""The Backend contract's default throughput and oldest-waiting (for backends that do not override them)."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import BaseModel
from starlette.testclient import TestClient

from jobqueue import FakeClock, JobQueue
from jobqueue.admin import app as admin_app
from jobqueue.backends.base import Backend
from jobqueue.backends.memory import MemoryBackend


class ScanningBackend(MemoryBackend):
    """The memory backend with the contract's default insight methods instead of its counters."""

    name: ClassVar[str] = "scanning"
    throughput = Backend.throughput
    oldest_waiting_since = Backend.oldest_waiting_since


class Work(BaseModel):
    fail: bool = False


def make(backend: MemoryBackend) -> tuple[JobQueue, object]:
    clock = FakeClock(start=1_700_000_000.0)
    app = JobQueue(backend=backend, clock=clock)
    app.queue("q", attempts=1)

    @app.job(queue="q")
    def work(payload: Work) -> None:
        if payload.fail:
            raise ValueError("asked to")

    return app, work


def test_default_throughput_and_oldest_waiting_agree_with_the_memory_counters() -> None:
    results = []
    for backend in (MemoryBackend(), ScanningBackend()):
        app, work = make(backend)
        clock = app.clock
        assert isinstance(clock, FakeClock)
        for minute in range(4):
            for n in range(minute + 1):
                work.enqueue(fail=n == 0)
            app.backend.run_until_empty()  # type: ignore[attr-defined]
            clock.advance(60)
        app.pause("q")
        work.enqueue()
        clock.advance(30)
        work.enqueue()
        flow = app.throughput("q", 6)
        results.append((flow.since, flow.completed, flow.failed, app.clock.now() - (app.oldest_waiting_since("q") or 0)))
    assert results[0] == results[1]
    _since, completed, failed, age = results[0]
    # minute by minute: 1 job (it fails), 2 jobs (1 fails), 3, 4; then the current minute, with none finished
    assert completed == [0, 0, 1, 2, 3, 0] and failed == [0, 1, 1, 1, 1, 0] and age == 30


def test_the_admin_app_caches_a_scanning_throughput(monkeypatch: pytest.MonkeyPatch) -> None:
    app, work = make(ScanningBackend())
    client = TestClient(app.admin_asgi(token="t"), headers={"Authorization": "Bearer t"})
    work.enqueue()
    app.backend.run_until_empty()  # type: ignore[attr-defined]
    first = client.get("/api/stats").json()["queues"]["q"]
    work.enqueue()
    app.backend.run_until_empty()  # type: ignore[attr-defined]
    second = client.get("/api/stats").json()["queues"]["q"]
    assert second["counts"]["completed"] == 2  # counts are always fresh
    assert sum(second["throughput"]["completed"]) == sum(first["throughput"]["completed"]) == 1  # kept a few seconds
    monkeypatch.setattr(admin_app, "THROUGHPUT_CACHE_SECONDS", 0.0)
    assert sum(client.get("/api/stats").json()["queues"]["q"]["throughput"]["completed"]) == 2
