"""``jobqueue worker --processes N``: a supervisor and N worker processes on a real redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobqueue import JobState
from tests.redis.test_processes import ROOT, Lab, lab  # noqa: F401 - the fixture


def start_supervisor(lab: Lab, *args: str) -> subprocess.Popen[bytes]:
    with open(lab.tmp / f"worker-{len(lab.workers)}.log", "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobqueue.cli", "--app", "tests.redis.worker_app:app", "worker", *args],
            cwd=ROOT, env=lab.env, stdout=out, stderr=subprocess.STDOUT,
        )
    lab.workers.append(process)
    return process


def started(lab: Lab) -> list[int]:
    return [int(entry.split(":")[1]) for entry in lab.log.lrange(lab.key("workers"), 0, -1) if entry.startswith("start:")]


def stopped(lab: Lab) -> list[int]:
    return [int(entry.split(":")[1]) for entry in lab.log.lrange(lab.key("workers"), 0, -1) if entry.startswith("stop:")]


def test_workers_are_restarted_and_sigterm_drains_them_all(lab: Lab) -> None:
    supervisor = start_supervisor(lab, "--queues", "work", "--processes", "2", "--concurrency", "2", "--grace", "10")
    lab.wait_for("two worker processes to start", lambda: len(started(lab)) == 2)
    first = started(lab)
    assert supervisor.pid not in first and len(set(first)) == 2, "each worker is a process of its own"

    os.kill(first[0], signal.SIGKILL)
    lab.wait_for("the killed worker to be replaced", lambda: len(started(lab)) == 3)
    live = started(lab)[1:]
    assert supervisor.poll() is None

    sleepy = lab.job("sleepy")
    handles = [sleepy.enqueue(tag=f"p{i}", seconds=1.0) for i in range(4)]  # type: ignore[attr-defined]
    lab.wait_for("the jobs to start in both workers", lambda: len(lab.runs()) == 4)
    assert {pid for _, _, pid in lab.runs()} == set(live)
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(20) == 0
    assert lab.all_completed(handles), "active jobs finished within the grace"
    assert sorted(stopped(lab)) == sorted(live), "every worker ran its stop hooks"
    for pid in live:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_a_second_signal_makes_every_worker_give_its_jobs_back_at_once(lab: Lab) -> None:
    sleepy = lab.job("sleepy")
    slow = [sleepy.enqueue(tag=f"slow{i}", seconds=30) for i in range(2)]  # type: ignore[attr-defined]
    supervisor = start_supervisor(lab, "--queues", "work", "--processes", "2", "--concurrency", "1", "--grace", "60")
    lab.wait_for("both jobs to start", lambda: len(lab.runs()) == 2)
    supervisor.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # the first signal reached the workers: they drain
    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(15) == 0
    assert [s.state for s in (h.status() for h in slow)] == [JobState.WAITING, JobState.WAITING]
