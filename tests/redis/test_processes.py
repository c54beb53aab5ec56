"""Workers as real processes on a real redis-server: crashes, sharing, restarts, limits, shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from jobqueue import JobQueue, JobState
from tests.redis_servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]


class Lab:
    """A prefix of its own on a server, worker processes started on it, and the jobs' logs."""

    def __init__(self, server: RedisServer, tmp: Path, **env: str) -> None:
        self.server = server
        self.prefix = f"jqproc-{uuid.uuid4().hex[:8]}"
        self.tmp = tmp
        self.env = {
            **os.environ,
            "JOBQUEUE_BACKEND": "redis",
            "REDIS_URL": server.url,
            "JOBQUEUE_PREFIX": self.prefix,
            "JOBQUEUE_FALLBACK": "raise",
            "JOBQUEUE_REDIS_BLOCK": "0.5",
            "PYTHONPATH": str(ROOT),
            **env,
        }
        self.workers: list[subprocess.Popen[bytes]] = []
        self.app = self._app()
        self.log = redis.Redis.from_url(server.url, decode_responses=True)

    def _app(self) -> JobQueue:
        # the same module the workers import, with this lab's environment
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            sys.modules.pop("tests.redis.worker_app", None)
            import tests.redis.worker_app as module
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return module.app

    def job(self, name: str) -> object:
        return self.app.registry[name]

    def start_worker(self, *args: str) -> subprocess.Popen[bytes]:
        with open(self.tmp / f"worker-{len(self.workers)}.log", "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.redis.worker_app", *args], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )
        self.workers.append(process)
        return process

    def key(self, name: str) -> str:
        return f"{{{self.prefix}-log}}:{name}"

    def runs(self) -> list[tuple[str, int, int]]:
        return [(t, int(a), int(p)) for t, a, p in (r.split(":") for r in self.log.lrange(self.key("runs"), 0, -1))]

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; worker logs: {self.logs()}")

    def states(self, handles: list) -> list[JobState | None]:  # type: ignore[type-arg]
        return [(s.state if (s := h.status()) else None) for h in handles]

    def all_completed(self, handles: list) -> bool:  # type: ignore[type-arg]
        return all(state is JobState.COMPLETED for state in self.states(handles))

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("worker-*.log")))

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        self.app.close()
        self.log.close()


@pytest.fixture
def lab(redis_server: RedisServer, tmp_path: Path) -> Iterator[Lab]:
    made = Lab(redis_server, tmp_path)
    try:
        yield made
    finally:
        made.stop()


def test_kill_9_mid_job_then_another_worker_finishes_everything(redis_server: RedisServer, tmp_path: Path) -> None:
    lab = Lab(redis_server, tmp_path, JOBQUEUE_REDIS_LEASE="1.5")
    try:
        sleepy = lab.job("sleepy")
        handles = [sleepy.enqueue(tag=f"k{i}", seconds=1.0) for i in range(6)]  # type: ignore[attr-defined]
        first = lab.start_worker("--queues", "work", "--concurrency", "3")
        lab.wait_for("the first worker to start 3 jobs", lambda: len(lab.runs()) >= 3)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        interrupted = {tag for tag, _, pid in lab.runs() if pid == first.pid} - set(lab.log.lrange(lab.key("done"), 0, -1))
        assert interrupted, "the kill was meant to interrupt running jobs"
        lab.start_worker("--queues", "work", "--concurrency", "3")
        lab.wait_for("every job to complete", lambda: lab.all_completed(handles), timeout=30)
        statuses = {h.status().payload["tag"]: h.status() for h in handles}
        for tag in interrupted:
            assert statuses[tag].attempt >= 2, f"{tag} was delivered again as a new attempt"
    finally:
        lab.stop()


def test_jobs_handed_to_waiting_workers_survive_a_kill_9_between_them(redis_server: RedisServer, tmp_path: Path) -> None:
    # jobs enqueued one at a time while the workers wait go straight to a waiting worker (enqueue.lua's hand-over);
    # one worker dies while it waits, its registration still standing: a job handed to it comes back when its lease runs out
    lab = Lab(redis_server, tmp_path, JOBQUEUE_REDIS_LEASE="1.5")
    try:
        sleepy = lab.job("sleepy")
        workers = [lab.start_worker("--queues", "work", "--concurrency", "2") for _ in range(2)]
        lab.wait_for("both workers to start", lambda: lab.log.llen(lab.key("workers")) == 2)
        time.sleep(0.3)  # both wait for work
        handles = []
        for i in range(40):
            handles.append(sleepy.enqueue(tag=f"h{i}"))  # type: ignore[attr-defined]
            if i == 19:
                workers[0].send_signal(signal.SIGKILL)
                workers[0].wait(10)
            time.sleep(0.02)
        lab.wait_for("every job to complete", lambda: lab.all_completed(handles), timeout=30)
        tags = [tag for tag, _, _ in lab.runs()]
        assert set(tags) == {f"h{i}" for i in range(40)}, "every job ran"
        assert all(h.status().attempt <= 2 for h in handles)
        assert workers[1].poll() is None, "the survivor ran the rest"
    finally:
        lab.stop()


def test_two_workers_share_a_queue_and_run_each_job_once(lab: Lab) -> None:
    sleepy = lab.job("sleepy")
    workers = [lab.start_worker("--queues", "work", "--concurrency", "4") for _ in range(2)]
    lab.wait_for("both workers to start", lambda: lab.log.llen(lab.key("workers")) == 2)
    handles = sleepy.enqueue_many([{"tag": f"s{i}", "seconds": 0.1} for i in range(60)])  # type: ignore[attr-defined]
    lab.wait_for("every job to complete", lambda: lab.all_completed(handles), timeout=30)
    runs = lab.runs()
    tags = [tag for tag, _, _ in runs]
    assert sorted(tags) == sorted(f"s{i}" for i in range(60)) and len(set(tags)) == 60
    assert {pid for _, _, pid in runs} == {w.pid for w in workers}, "both workers took part"


def test_queue_concurrency_cap_and_rate_limit_hold_across_two_workers(lab: Lab) -> None:
    capped, limited = lab.job("capped"), lab.job("limited")
    capped_handles = capped.enqueue_many([{"tag": f"c{i}", "seconds": 0.3} for i in range(8)])  # type: ignore[attr-defined]
    limited_handles = limited.enqueue_many([{"tag": f"l{i}"} for i in range(12)])  # type: ignore[attr-defined]
    for _ in range(2):
        lab.start_worker("--queues", "capped,limited", "--concurrency", "4")
    lab.wait_for("every job to complete", lambda: lab.all_completed(capped_handles + limited_handles), timeout=30)
    assert max(int(n) for n in lab.log.lrange(lab.key("overlap"), 0, -1)) <= 2
    starts = sorted(h.status().started_at for h in limited_handles)
    window_start, in_window = starts[0], 0
    for started in starts:  # the windows are fixed, each opening at its first start...
        # ... or at most a few ms before it: a claim that took nothing (a worker recording outcomes) opens a window too
        if started >= window_start + 2.0 - 0.01:
            window_start, in_window = started, 0
        in_window += 1
        assert in_window <= 5, f"more than 5 starts in the window opened at {window_start}: {starts}"
    assert starts[-1] - starts[0] >= 4.0  # 12 jobs at 5 per 2s need three windows


def test_sigterm_lets_active_jobs_finish(lab: Lab) -> None:
    sleepy = lab.job("sleepy")
    handles = [sleepy.enqueue(tag=f"t{i}", seconds=1.0) for i in range(3)]  # type: ignore[attr-defined]
    worker = lab.start_worker("--queues", "work", "--concurrency", "3", "--grace", "10")
    lab.wait_for("the jobs to start", lambda: len(lab.runs()) == 3)
    later = sleepy.enqueue(tag="later", seconds=0)  # type: ignore[attr-defined]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    assert lab.all_completed(handles)
    assert later.status().state is JobState.WAITING, "a stopping worker takes no new job"
    assert lab.log.lrange(lab.key("workers"), 0, -1) == [f"start:{worker.pid}", f"stop:{worker.pid}"]


def test_sigterm_past_the_grace_gives_jobs_back_and_a_second_signal_exits_at_once(lab: Lab) -> None:
    sleepy = lab.job("sleepy")
    slow = sleepy.enqueue(tag="slow", seconds=30)  # type: ignore[attr-defined]
    worker = lab.start_worker("--queues", "work", "--concurrency", "1", "--grace", "0.5")
    lab.wait_for("the job to start", lambda: len(lab.runs()) == 1)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    status = slow.status()
    assert status.state is JobState.WAITING and status.attempt == 1

    second = lab.start_worker("--queues", "work", "--concurrency", "1", "--grace", "60")
    lab.wait_for("the job to start again", lambda: len(lab.runs()) == 2)
    second.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    started = time.monotonic()
    second.send_signal(signal.SIGINT)
    assert second.wait(10) == 0 and time.monotonic() - started < 5
    assert slow.status().state is JobState.WAITING


def test_the_worker_carries_on_when_redis_restarts(tmp_path: Path) -> None:
    server = RedisServer(persist=True).start()
    lab = Lab(server, tmp_path)
    try:
        sleepy = lab.job("sleepy")
        before = [sleepy.enqueue(tag=f"b{i}") for i in range(5)]  # type: ignore[attr-defined]
        worker = lab.start_worker("--queues", "work", "--concurrency", "2")
        lab.wait_for("the first jobs to complete", lambda: lab.all_completed(before))
        during = lab.job("async_sleepy").enqueue(tag="during", seconds=1.0)  # type: ignore[attr-defined]
        lab.wait_for("a job to be running", lambda: any(tag == "during" for tag, _, _ in lab.runs()))
        server.stop()
        time.sleep(2.5)  # longer than the worker's idle poll: it notices the outage
        server.start()
        assert worker.poll() is None, "the worker survived the outage"
        after = [sleepy.enqueue(tag=f"a{i}") for i in range(5)]  # type: ignore[attr-defined]
        lab.wait_for("the jobs enqueued after the restart to complete", lambda: lab.all_completed(after), timeout=30)
        assert lab.all_completed(before), "what Redis kept is still there"
        assert "Redis is back" in lab.logs()
        lab.wait_for("the job that finished during the outage to be recorded", lambda: lab.all_completed([during]))
        assert during.status().attempt == 1, "its outcome was kept and written once Redis was back"
    finally:
        lab.stop()
        server.cleanup()
