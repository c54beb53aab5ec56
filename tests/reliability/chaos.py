"""Chaos on Redis: jobs through worker processes that are SIGKILLed and restarted, and a redis-server that is
killed and restarted, then a proof that every job completed, none was lost, and the only jobs that ran more
than once were in flight at a kill.

    python -m tests.reliability.chaos --jobs 20000            # what `make chaos` runs
    python -m tests.reliability.chaos --jobs 1500 --redis-restarts 1 --kill-every 1

How the proof works:

- every run of a job appends ``S <id> <attempt> <pid>`` when it starts and ``E ...`` when it ends to a file
  of its worker process (``tests/reliability/chaos_app.py``), so runs are counted apart from Redis and
  survive the SIGKILL;
- right after a worker is killed (and before its leases can run out) the runner reads which jobs Redis holds
  as active under that worker's lease tokens (a token starts with ``<host>:<pid>:``): those were in flight
  at the kill, claimed but not yet recorded as finished;
- at the end every job's hash is read: ``lost`` is a job enqueued (the producer saw it accepted) that is not
  ``completed``; a duplicate is a job with more than one ``S`` line, and it must be one that was in flight at
  a kill, with no more extra runs than kills it was in flight at.

Redis runs with AOF and ``appendfsync always`` by default: Redis fsyncs the AOF before it answers a write,
so whatever a client was told has happened survives a SIGKILL of the server. With ``--appendfsync everysec``
(Redis' default) up to a second of acknowledged writes can be lost by a SIGKILL or power loss; the run then
reports what was lost instead of proving none was.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from jobqueue.errors import BrokerUnavailable
from tests.redis_servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "chaos"


@dataclass
class ChaosConfig:
    jobs: int = 20_000
    workers: int = 3
    concurrency: int = 8
    #: seconds between two worker kills (each one drawn from 0.75x..1.25x of it)
    kill_every: float = 2.0
    #: redis-server restarts: the first while the producer is half done, the next ones at later points of the drain
    redis_restarts: int = 2
    #: how redis-server is stopped: ``kill`` (SIGKILL, no last flush) or ``term`` (a clean shutdown)
    redis_stop: str = "kill"
    #: seconds redis-server stays down at each restart
    redis_down: float = 1.0
    appendfsync: str = "always"
    #: each job sleeps a random time up to this many milliseconds
    job_ms: float = 20.0
    #: the workers' lease (JOBQUEUE_REDIS_LEASE): how long a killed worker's jobs wait before they run again
    lease: float = 5.0
    timeout: float = 900.0
    seed: int = 1


@dataclass
class ChaosReport:
    config: dict[str, Any]
    enqueued: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    lost_ids: list[str] = field(default_factory=list)
    kills: int = 0
    worker_starts: int = 0
    redis_restarts: int = 0
    producer_retries: int = 0
    runs: int = 0
    #: jobs whose handler started more than once, and the extra starts they had
    duplicates: int = 0
    extra_runs: int = 0
    #: jobs that ran to the end more than once (their first outcome was lost with the killed worker)
    completed_twice: int = 0
    in_flight_at_kills: int = 0
    #: duplicates that were not in flight at any kill (must be 0 with appendfsync always)
    unexplained_duplicates: int = 0
    unexplained_ids: list[str] = field(default_factory=list)
    #: jobs with more extra runs than kills they were in flight at
    over_explained: int = 0
    never_ran: int = 0
    seconds_total: float = 0.0
    seconds_after_last_fault: float = 0.0
    drained: bool = False

    def ok(self) -> bool:
        return (self.drained and self.lost == 0 and self.failed == 0 and self.completed == self.enqueued
                and self.unexplained_duplicates == 0 and self.over_explained == 0 and self.never_ran == 0)

    def table(self) -> str:
        c = self.config
        rows = [
            ("jobs enqueued", f"{self.enqueued:,}"),
            ("worker processes", f"{c['workers']} x concurrency {c['concurrency']}"),
            ("workers killed (SIGKILL) and restarted", f"{self.kills}"),
            (f"redis-server restarts ({c['redis_stop']}, appendfsync {c['appendfsync']})", f"{self.redis_restarts}"),
            ("producer batches retried (Redis down)", f"{self.producer_retries}"),
            ("completed", f"{self.completed:,}"),
            ("failed", f"{self.failed}"),
            ("lost", f"{self.lost}"),
            ("handler runs", f"{self.runs:,}"),
            ("jobs run more than once", f"{self.duplicates} ({self.extra_runs} extra runs, {self.completed_twice} ran to the end twice)"),
            ("jobs in flight at a kill", f"{self.in_flight_at_kills}"),
            ("duplicates not in flight at a kill", f"{self.unexplained_duplicates}"),
            ("time to drain", f"{self.seconds_total:.1f} s ({self.seconds_after_last_fault:.1f} s after the last fault)"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


class Chaos:
    def __init__(self, config: ChaosConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.rng = random.Random(config.seed)
        self.server = RedisServer(persist=True, appendfsync=config.appendfsync)
        self.prefix = f"chaos-{uuid.uuid4().hex[:8]}"
        self.base = f"{self.prefix}:{{{QUEUE}}}:"
        self.runs_dir = workdir / "runs"
        self.logs_dir = workdir / "logs"
        self.workers: list[subprocess.Popen[bytes]] = []
        self.report = ChaosReport(config=asdict(config))
        self.in_flight: dict[str, int] = defaultdict(int)  # job id -> kills it was in flight at
        self.produced = 0
        self.accepted: set[str] = set()
        self.producer_done = threading.Event()
        self.producer_error: BaseException | None = None
        self.last_fault = 0.0

    # -- processes ----------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "JOBQUEUE_BACKEND": "redis", "REDIS_URL": self.server.url, "JOBQUEUE_PREFIX": self.prefix,
            "JOBQUEUE_FALLBACK": "raise", "JOBQUEUE_REDIS_LEASE": str(self.config.lease), "JOBQUEUE_REDIS_BLOCK": "0.5",
            "CHAOS_DIR": str(self.runs_dir), "PYTHONPATH": str(ROOT),
        }

    def start_worker(self) -> subprocess.Popen[bytes]:
        with open(self.logs_dir / f"worker-{self.report.worker_starts}.log", "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.chaos_app", "--queues", QUEUE, "--concurrency", str(self.config.concurrency)],
                cwd=ROOT, env=self.env(), stdout=out, stderr=subprocess.STDOUT,
            )
        self.report.worker_starts += 1
        self.workers.append(process)
        return process

    def live_workers(self) -> list[subprocess.Popen[bytes]]:
        return [w for w in self.workers if w.poll() is None]

    # -- faults -------------------------------------------------------------------------------------

    def kill_one(self, client: redis.Redis) -> None:
        victim = self.rng.choice(self.live_workers())
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        # the dead worker's leases outlive it by at least two thirds of a lease: read them now
        held = self._retry(lambda: self._held_by(client, victim.pid))
        for job_id in held:
            self.in_flight[job_id] += 1
        self.report.kills += 1
        self.last_fault = time.monotonic()
        self.start_worker()

    def _held_by(self, client: redis.Redis, pid: int) -> list[str]:
        ids = client.zrange(self.base + "active", 0, -1)
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(self.base + "job:" + job_id, "token")
        tokens = pipe.execute()
        return [job_id for job_id, token in zip(ids, tokens) if token and token.split(":")[1] == str(pid)]

    def restart_redis(self) -> None:
        if self.config.redis_stop == "kill":
            self.server.kill()
        else:
            self.server.stop()
        time.sleep(self.config.redis_down)
        self.server.start(timeout=60)
        self.report.redis_restarts += 1
        self.last_fault = time.monotonic()

    @staticmethod
    def _retry(call: Any, seconds: float = 30.0) -> Any:
        deadline = time.monotonic() + seconds
        while True:
            try:
                return call()
            except (redis.ConnectionError, redis.TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    # -- producing --------------------------------------------------------------------------------

    def produce(self) -> None:
        from tests.reliability.chaos_app import build

        app = build(self.env())
        tick = app.registry["tick"]
        try:
            batch = 200
            for start in range(0, self.config.jobs, batch):
                items = [{"ms": round(self.rng.uniform(0, self.config.job_ms), 2), "_job_id": f"c{i:06d}"}
                         for i in range(start, min(start + batch, self.config.jobs))]
                while True:
                    try:
                        handles = tick.enqueue_many(items)  # same ids again after a failure: one job each
                        break
                    except BrokerUnavailable:
                        self.report.producer_retries += 1
                        time.sleep(0.2)
                self.accepted.update(h.id for h in handles)
                self.produced = len(self.accepted)
                time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.producer_error = exc
        finally:
            app.close()
            self.producer_done.set()

    # -- the run ----------------------------------------------------------------------------------------

    def run(self) -> ChaosReport:
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.server.start()
        client = redis.Redis.from_url(self.server.url, decode_responses=True, socket_timeout=5, socket_connect_timeout=1)
        try:
            return self._run(client)
        finally:
            for worker in self.workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait(10)
            client.close()
            self.server.cleanup()

    def _pending(self, client: redis.Redis) -> int:
        pipe = client.pipeline(transaction=False)
        for name in ("waiting", "delayed", "active"):
            pipe.zcard(self.base + name)
        return sum(pipe.execute())

    def _run(self, client: redis.Redis) -> ChaosReport:
        cfg = self.config
        for _ in range(cfg.workers):
            self.start_worker()
        started = time.monotonic()
        self.last_fault = started
        producer = threading.Thread(target=self.produce, name="producer", daemon=True)
        producer.start()
        # when to restart Redis: the first when half the jobs are enqueued, the others as fractions of the completed jobs
        later = [("completed", 0.5 + 0.4 * (k + 1) / cfg.redis_restarts) for k in range(max(cfg.redis_restarts - 1, 0))]
        restart_marks = ([("produced", 0.5)] + later)[: cfg.redis_restarts]
        next_kill = started + cfg.kill_every * self.rng.uniform(0.75, 1.25)
        quiet_since: float | None = None
        while time.monotonic() - started < cfg.timeout:
            try:
                completed = client.zcard(self.base + "completed")
                pending = self._pending(client)
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.1)
                continue
            if self.producer_done.is_set() and pending == 0:
                # nothing left to run; with appendfsync always that is every job, else what survived
                if completed >= self.produced or (quiet_since is not None and time.monotonic() - quiet_since > 2 * cfg.lease):
                    self.report.drained = True
                    break
                quiet_since = quiet_since or time.monotonic()
            else:
                quiet_since = None
            now = time.monotonic()
            if restart_marks:
                kind, fraction = restart_marks[0]
                reached = self.produced if kind == "produced" else completed
                if reached >= fraction * cfg.jobs:
                    restart_marks.pop(0)
                    self.restart_redis()
                    continue
            if now >= next_kill:
                self.kill_one(client)
                next_kill = time.monotonic() + cfg.kill_every * self.rng.uniform(0.75, 1.25)
            time.sleep(0.05)
        drained_at = time.monotonic()
        self.report.seconds_total = round(drained_at - started, 2)
        self.report.seconds_after_last_fault = round(max(drained_at - self.last_fault, 0.0), 2)
        producer.join(30)
        if self.producer_error is not None:
            raise RuntimeError(f"the producer failed: {self.producer_error!r}") from self.producer_error
        for worker in self.live_workers():
            worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        self.verify(client)
        return self.report

    # -- the proof --------------------------------------------------------------------------------------

    def verify(self, client: redis.Redis) -> None:
        report = self.report
        ids = sorted(self.accepted)
        report.enqueued = len(ids)
        states: list[str | None] = []
        for start in range(0, len(ids), 1000):
            pipe = client.pipeline(transaction=False)
            for job_id in ids[start:start + 1000]:
                pipe.hget(self.base + "job:" + job_id, "state")
            states.extend(pipe.execute())
        by_state = Counter(states)
        report.completed = by_state.get("completed", 0)
        report.failed = by_state.get("failed", 0)
        lost = [job_id for job_id, state in zip(ids, states) if state != "completed" and state != "failed"]
        report.lost = len(lost)
        report.lost_ids = lost[:50]

        starts: Counter[str] = Counter()
        ends: Counter[str] = Counter()
        for path in self.runs_dir.glob("runs-*.log"):
            for line in path.read_text().splitlines():
                kind, job_id, _attempt, _pid = line.split()
                (starts if kind == "S" else ends)[job_id] += 1
        report.runs = sum(starts.values())
        duplicates = {job_id: n - 1 for job_id, n in starts.items() if n > 1}
        report.duplicates = len(duplicates)
        report.extra_runs = sum(duplicates.values())
        report.completed_twice = sum(1 for n in ends.values() if n > 1)
        report.in_flight_at_kills = len(self.in_flight)
        unexplained = sorted(set(duplicates) - set(self.in_flight))
        report.unexplained_duplicates = len(unexplained)
        report.unexplained_ids = unexplained[:50]
        report.over_explained = sum(1 for job_id, extra in duplicates.items() if extra > self.in_flight.get(job_id, 0))
        report.never_ran = sum(1 for job_id, state in zip(ids, states) if state == "completed" and ends[job_id] == 0)


def run_chaos(config: ChaosConfig, workdir: Path) -> ChaosReport:
    return Chaos(config, workdir).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = ChaosConfig()
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--workdir", type=Path, default=None, help="where run files and worker logs go (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    args = vars(parser.parse_args(argv))
    workdir = args.pop("workdir") or Path(os.environ.get("TMPDIR", "/tmp")) / f"jobqueue-chaos-{uuid.uuid4().hex[:8]}"
    out = args.pop("json")
    config = ChaosConfig(**args)
    print(f"chaos: {config.jobs:,} jobs, {config.workers} workers, a SIGKILL every ~{config.kill_every:g}s, "
          f"{config.redis_restarts} redis-server restart(s), appendfsync {config.appendfsync}; files in {workdir}", flush=True)
    report = run_chaos(config, workdir)
    print(report.table())
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print("OK: every job completed, none lost, duplicates only where a kill interrupted them" if report.ok() else "FAILED", flush=True)
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
