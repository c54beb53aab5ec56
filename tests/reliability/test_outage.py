"""Broker outage: redis-server stopped for 10 seconds under a running worker and a producer.

Enqueue follows ``JOBQUEUE_FALLBACK`` (``sync``: one inline attempt; ``raise``: ``BrokerUnavailable`` within
its bound), health reads ``degraded`` / ``unhealthy`` while Redis is away and ``healthy`` after, and the
worker carries on by itself: the job it was running is recorded once Redis is back, new jobs run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from jobqueue import JobQueue, JobState
from jobqueue.errors import BrokerUnavailable
from tests.redis_servers import RedisServer
from tests.reliability.chaos_app import build

ROOT = Path(__file__).resolve().parents[2]
OUTAGE_SECONDS = 10.0


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0, logs: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}" + (f"; worker log: {logs.read_text()[-3000:]}" if logs else ""))


def started(runs: Path, job_id: str) -> bool:
    return any(f"S {job_id} " in p.read_text() for p in runs.glob("runs-*.log"))


@pytest.mark.slow
def test_ten_seconds_without_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = RedisServer(persist=True).start()
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("CHAOS_DIR", str(runs))  # inline runs in this process record themselves too
    env = {**os.environ, "JOBQUEUE_BACKEND": "redis", "REDIS_URL": server.url, "JOBQUEUE_PREFIX": f"outage-{uuid.uuid4().hex[:8]}",
           "JOBQUEUE_REDIS_BLOCK": "0.5", "CHAOS_DIR": str(runs), "PYTHONPATH": str(ROOT)}
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "tests.reliability.chaos_app", "--queues", "chaos", "--concurrency", "4"],
                                  cwd=ROOT, env={**env, "JOBQUEUE_FALLBACK": "raise"}, stdout=out, stderr=subprocess.STDOUT)
    inline_app: JobQueue = build({**env, "JOBQUEUE_FALLBACK": "sync", "JOBQUEUE_REDIS_DEGRADED_FOR": "3"})
    strict_app: JobQueue = build({**env, "JOBQUEUE_FALLBACK": "raise"})
    inline, strict = inline_app.registry["tick"], strict_app.registry["tick"]
    try:
        before = strict.enqueue_many([{"ms": 1} for _ in range(20)])
        wait_for("the jobs enqueued before the outage", lambda: all(h.status().state is JobState.COMPLETED for h in before), logs=log)
        assert inline_app.health().status == "healthy" and strict_app.health().status == "healthy"
        running = strict.enqueue(ms=4000)
        wait_for("a job to be running when Redis stops", lambda: started(runs, running.id), logs=log)

        server.stop()
        down_at = time.monotonic()
        inline_ran: list[str] = []
        refusals: list[float] = []
        health_seen: set[tuple[str, str]] = set()
        while time.monotonic() - down_at < OUTAGE_SECONDS:
            handle = inline.enqueue(ms=0)  # JOBQUEUE_FALLBACK=sync: one attempt, here, now
            status = handle.status()
            assert status is not None and status.state is JobState.COMPLETED and status.attempt == 1
            assert started(runs, handle.id) and f"runs-{os.getpid()}.log" in [p.name for p in runs.glob("runs-*.log")]
            inline_ran.append(handle.id)
            with pytest.raises(BrokerUnavailable, match="cannot run inline: it has a _job_id"):
                inline.enqueue(ms=0, _job_id=f"named-{len(inline_ran)}")  # might run twice if Redis had it: refused
            t0 = time.monotonic()
            with pytest.raises(BrokerUnavailable, match="did not answer"):
                strict.enqueue(ms=0)  # JOBQUEUE_FALLBACK=raise
            refusals.append(time.monotonic() - t0)
            for name, app in (("sync", inline_app), ("raise", strict_app)):
                health = app.health()
                assert not health.broker_reachable
                health_seen.add((name, health.status))
            assert worker.poll() is None, "the worker keeps running without Redis"
        assert health_seen == {("sync", "degraded"), ("raise", "unhealthy")}
        retry_for = strict_app.backend.settings.retry_for  # type: ignore[attr-defined]
        assert max(refusals) < retry_for + 5.0, f"a refusal took {max(refusals):.1f}s; the bound is {retry_for:g}s of retries"

        server.start()
        back_at = time.monotonic()
        after = strict.enqueue_many([{"ms": 1} for _ in range(20)])
        wait_for("the worker to run jobs enqueued after the outage", lambda: all(h.status().state is JobState.COMPLETED for h in after), logs=log)
        resumed = time.monotonic() - back_at
        wait_for("the job running during the outage to be recorded", lambda: running.status().state is JobState.COMPLETED, logs=log)
        assert running.status().attempt == 1, "its outcome was kept and written once Redis was back: it did not run again"
        assert all(h.status().state is JobState.COMPLETED for h in before), "what Redis had before the outage is still there"
        assert strict_app.health().status == "healthy"
        wait_for("health to turn healthy once the inline runs are older than JOBQUEUE_REDIS_DEGRADED_FOR",
                 lambda: inline_app.health().status == "healthy", timeout=10)
        assert worker.poll() is None
        assert "Redis is back" in log.read_text()
        print(f"\noutage {OUTAGE_SECONDS:g}s: {len(inline_ran)} jobs ran inline (fallback sync), {len(refusals)} enqueues refused "
              f"(fallback raise, slowest {max(refusals):.2f}s, bound {retry_for:g}s of retries), health {sorted(health_seen)}, "
              f"worker ran new jobs {resumed:.1f}s after Redis was back")
    finally:
        worker.kill()
        worker.wait(10)
        inline_app.close()
        strict_app.close()
        server.cleanup()
