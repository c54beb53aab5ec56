"""Three worker processes on one real redis-server fire an every-minute schedule across two real minute
boundaries: each fire runs exactly once, and when the leader is killed (-9) another takes over without
losing or doubling a fire."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
import redis

from jobqueue.schedules import fire_job_id
from jobqueue_redis.schedule_store import schedule_keys
from tests.redis_servers import RedisServer
from tests.schedules.ticker_app import fires_key

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T], timeout: float, logs: Callable[[], str]) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; worker logs:\n{logs()}")


@pytest.mark.slow
def test_three_workers_fire_each_minute_once_and_survive_the_leader_being_killed(redis_server: RedisServer, tmp_path: Path) -> None:
    prefix = f"jqtick-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ, "JOBQUEUE_BACKEND": "redis", "REDIS_URL": redis_server.url, "JOBQUEUE_PREFIX": prefix,
        "JOBQUEUE_FALLBACK": "raise", "JOBQUEUE_REDIS_BLOCK": "0.5", "PYTHONPATH": str(ROOT),
    }
    env.pop("JOBQUEUE_REDIS_URL", None)
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    leader_key = schedule_keys(prefix)[2]
    workers: dict[int, subprocess.Popen[bytes]] = {}

    def logs() -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(tmp_path.glob("worker-*.log")))

    def fires() -> list[tuple[str, int]]:
        return [(job_id, int(pid)) for job_id, _, pid in (r.rpartition("|") for r in client.lrange(fires_key(prefix), 0, -1))]

    def leader_pid() -> int | None:
        owner = client.get(leader_key)  # "host:pid:random"
        return int(owner.split(":")[-2]) if owner else None

    try:
        for i in range(3):
            with open(tmp_path / f"worker-{i}.log", "wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "jobqueue.cli", "--app", "tests.schedules.ticker_app:app", "worker", "--concurrency", "2", "--processes", "1"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                )
            workers[process.pid] = process
        first_leader = wait_for("a worker to take the ticker's lease", leader_pid, 30, logs)
        assert first_leader in workers
        started = time.time()
        first = datetime.fromtimestamp((int(started) // 60 + 1) * 60, UTC)  # the next minute boundary
        second = datetime.fromtimestamp(first.timestamp() + 60, UTC)
        first_id, second_id = fire_job_id("every_minute", first), fire_job_id("every_minute", second)

        wait_for(f"the fire {first_id} to run", lambda: any(j == first_id for j, _ in fires()), first.timestamp() - time.time() + 20, logs)
        # kill the leader 3 s before the next fire: the others wait for its lease to run out (10 s), then fire late
        time.sleep(max(second.timestamp() - 3 - time.time(), 0))
        victim = leader_pid()
        assert victim in workers, f"the leader {victim} is not one of the workers"
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(10)
        wait_for(f"the fire {second_id} to run", lambda: any(j == second_id for j, _ in fires()), second.timestamp() - time.time() + 30, logs)
        new_leader = wait_for("another worker to lead", leader_pid, 5, logs)
        assert new_leader != victim and new_leader in workers

        time.sleep(2)  # room for a doubled run to show up
        runs = fires()
        counts = Counter(job_id for job_id, _ in runs)
        assert counts[first_id] == 1 and counts[second_id] == 1, f"runs: {runs}"
        assert all(n == 1 for n in counts.values()), f"a fire ran twice: {runs}"
        assert set(counts) <= {first_id, second_id}, f"unexpected fires: {runs}"  # nothing fired before the first boundary
        assert all(pid != victim for job_id, pid in runs if job_id == second_id)
        status_key = f"{prefix}:{{ticks}}:job:{second_id}"
        assert client.hget(status_key, "state") == "completed"
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
        client.close()
