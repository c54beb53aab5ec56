"""Load: many jobs through Redis with two worker processes, and through the memory backend, with memory figures.

    python -m tests.reliability.load --jobs 100000 --check-rss      # what `make load` runs
    python -m tests.reliability.load --jobs 10000                   # the short run in `make test`

What it shows:

- every job ran (each run appends its id to a file of its process; the ids read back are the ids enqueued);
- no leak in the workers: their RSS at the end is within ``--rss-tolerance`` (10%) of their RSS after the
  first 10,000 jobs (asserted with ``--check-rss``; a short run is too short to tell, so it only reports);
- Redis holds what the retention settings allow: after the run the queue keeps at most the last 1,000
  completed jobs (the load queue's ``Retention(completed=(1000, "24h"))``, the default), and Redis' memory is
  back within that many job records of where it started;
- the same on the memory backend: the process' RSS and the jobs the store keeps.

The producer enqueues in batches of 500 and holds back while more than 5,000 jobs wait, as a web app
under steady traffic would; the peak Redis memory is reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from jobqueue import JobQueue
from jobqueue.states import JobState
from tests.redis_servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "load"
BATCH = 500
BACKLOG = 5000
BLOB = "x" * 200  # a payload of a realistic size


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def ran_ids(runs: Path) -> list[str]:
    return [line.split()[1] for p in runs.glob("runs-*.log") for line in p.read_text().splitlines()]


@dataclass
class LoadReport:
    backend: str
    jobs: int
    workers: int = 0
    ran: int = 0
    ran_twice: int = 0
    missing: int = 0
    failed: int = 0
    seconds: float = 0.0
    #: RSS of each worker (or of this process on the memory backend) after the first 10,000 jobs and at the end
    rss_first: list[int] = field(default_factory=list)
    rss_end: list[int] = field(default_factory=list)
    rss_growth: float = 0.0
    retained_completed: int = 0
    retention_max_count: int = 0
    #: Redis: used_memory before, at its peak during the run, and after
    redis_before: int = 0
    redis_peak: int = 0
    redis_after: int = 0
    job_keys_after: int = 0
    job_record_bytes: int = 0

    def count_runs(self, runs: Path) -> None:
        ids = ran_ids(runs)
        self.ran = len(set(ids))
        self.ran_twice = len(ids) - self.ran
        self.missing = self.jobs - self.ran

    def read_stats(self, app: JobQueue) -> None:
        stats = app.stats(QUEUE)
        self.failed = stats[JobState.FAILED]
        self.retained_completed = stats[JobState.COMPLETED]

    def line(self) -> str:
        mib = 1024 * 1024
        text = (f"{self.backend}: {self.jobs:,} jobs, {self.ran:,} ran ({self.missing} missing, {self.ran_twice} twice, {self.failed} failed) "
                f"in {self.seconds:.1f}s; RSS after 10,000 {'/'.join(f'{r / mib:.1f}' for r in self.rss_first)} MiB, "
                f"at the end {'/'.join(f'{r / mib:.1f}' for r in self.rss_end)} MiB ({self.rss_growth:+.1%}); "
                f"completed jobs kept {self.retained_completed:,} (retention {self.retention_max_count:,})")
        if self.backend == "redis":
            text += (f"; Redis used_memory {self.redis_before / mib:.1f} MiB before, {self.redis_peak / mib:.1f} MiB peak, "
                     f"{self.redis_after / mib:.1f} MiB after ({self.job_keys_after:,} job records of ~{self.job_record_bytes:,} bytes)")
        return text


def _growth(first: list[int], end: list[int]) -> float:
    return max((e - f) / f for f, e in zip(first, end)) if first else 0.0


def run_redis(jobs: int, workdir: Path, *, workers: int = 2, concurrency: int = 10, timeout: float = 1800.0) -> LoadReport:
    from tests.reliability.chaos_app import LOAD_RETENTION, build

    runs = workdir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    server = RedisServer().start()
    prefix = f"load-{uuid.uuid4().hex[:8]}"
    base = f"{prefix}:{{{QUEUE}}}:"
    env = {**os.environ, "JOBQUEUE_BACKEND": "redis", "REDIS_URL": server.url, "JOBQUEUE_PREFIX": prefix, "JOBQUEUE_FALLBACK": "raise",
           "CHAOS_DIR": str(runs), "PYTHONPATH": str(ROOT)}
    client = redis.Redis.from_url(server.url, decode_responses=True)
    report = LoadReport(backend="redis", jobs=jobs, workers=workers, retention_max_count=LOAD_RETENTION.completed.max_count or 0)
    processes: list[subprocess.Popen[bytes]] = []
    app = build(env)
    try:
        report.redis_before = int(client.info("memory")["used_memory"])
        for i in range(workers):
            with open(workdir / f"worker-{i}.log", "wb") as out:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "tests.reliability.chaos_app", "--queues", QUEUE, "--concurrency", str(concurrency)],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
        work = app.registry["work"]
        produced = threading.Event()

        def produce() -> None:
            for start in range(0, jobs, BATCH):
                while client.zcard(base + "waiting") > BACKLOG:
                    time.sleep(0.02)
                work.enqueue_many([{"n": i, "blob": BLOB} for i in range(start, min(start + BATCH, jobs))])
            produced.set()

        started = time.monotonic()
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        first_mark = min(10_000, jobs)
        while time.monotonic() - started < timeout:
            finished = int(client.get(base + "fseq") or 0)
            report.redis_peak = max(report.redis_peak, int(client.info("memory")["used_memory"]))
            if not report.rss_first and finished >= first_mark:
                report.rss_first = [rss_bytes(p.pid) for p in processes]
            if produced.is_set() and finished >= jobs:
                break
            if any(p.poll() is not None for p in processes):
                raise RuntimeError(f"a worker exited: {(workdir / 'worker-0.log').read_text()[-2000:]}")
            time.sleep(0.1)
        report.seconds = round(time.monotonic() - started, 1)
        producer.join(10)
        time.sleep(1.0)  # let the workers settle (acks flushed, threads idle) before reading their memory
        report.rss_end = [rss_bytes(p.pid) for p in processes]
        report.rss_growth = _growth(report.rss_first, report.rss_end)
        for p in processes:
            p.send_signal(signal.SIGTERM)
        for p in processes:
            p.wait(60)
        report.read_stats(app)
        report.redis_after = int(client.info("memory")["used_memory"])
        job_keys = list(client.scan_iter(match=base + "job:*", count=1000))
        report.job_keys_after = len(job_keys)
        sample = job_keys[:50]
        if sample:
            report.job_record_bytes = sum(int(client.memory_usage(k) or 0) for k in sample) // len(sample)
        report.count_runs(runs)
        return report
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        app.close()
        client.close()
        server.cleanup()


def run_memory(jobs: int, workdir: Path) -> LoadReport:
    from tests.reliability.chaos_app import LOAD_RETENTION, build

    runs = workdir / "runs-memory"
    runs.mkdir(parents=True, exist_ok=True)
    saved = os.environ.get("CHAOS_DIR")
    os.environ["CHAOS_DIR"] = str(runs)
    app = build({"JOBQUEUE_BACKEND": "memory"})
    report = LoadReport(backend="memory", jobs=jobs, retention_max_count=LOAD_RETENTION.completed.max_count or 0)
    try:
        work = app.registry["work"]
        started = time.monotonic()
        for start in range(0, jobs, BATCH):
            work.enqueue_many([{"n": i, "blob": BLOB} for i in range(start, min(start + BATCH, jobs))])
            app.backend.run_until_empty()  # type: ignore[attr-defined]
            if not report.rss_first and start + BATCH >= min(10_000, jobs):
                report.rss_first = [rss_bytes(os.getpid())]
        report.seconds = round(time.monotonic() - started, 1)
        report.rss_end = [rss_bytes(os.getpid())]
        report.rss_growth = _growth(report.rss_first, report.rss_end)
        report.read_stats(app)
        report.count_runs(runs)
        return report
    finally:
        app.close()
        if saved is None:
            os.environ.pop("CHAOS_DIR", None)
        else:
            os.environ["CHAOS_DIR"] = saved


def problems(report: LoadReport, *, check_rss: bool, rss_tolerance: float = 0.10) -> list[str]:
    """What the run failed to show (empty when it held)."""
    found = []
    if report.missing or report.ran != report.jobs:
        found.append(f"{report.missing} of {report.jobs} jobs never ran")
    if report.failed:
        found.append(f"{report.failed} jobs failed")
    if report.retained_completed > report.retention_max_count:
        found.append(f"{report.retained_completed} completed jobs kept; retention allows {report.retention_max_count}")
    if report.backend == "redis":
        if report.job_keys_after > report.retention_max_count:
            found.append(f"{report.job_keys_after} job records left in Redis; retention allows {report.retention_max_count}")
        allowed = report.retention_max_count * report.job_record_bytes * 2 + 4 * 1024 * 1024
        if report.redis_after - report.redis_before > allowed:
            found.append(f"Redis grew by {report.redis_after - report.redis_before:,} bytes; the retained jobs explain {allowed:,.0f}")
    if check_rss and report.rss_growth > rss_tolerance:
        found.append(f"RSS grew {report.rss_growth:.1%} from the first 10,000 jobs to the end (tolerance {rss_tolerance:.0%})")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", default="redis,memory")
    parser.add_argument("--check-rss", action="store_true", help="fail when RSS grew more than --rss-tolerance")
    parser.add_argument("--rss-tolerance", type=float, default=0.10)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(os.environ.get("TMPDIR", "/tmp")) / f"jobqueue-load-{uuid.uuid4().hex[:8]}"
    reports: list[dict[str, Any]] = []
    failed = False
    for backend in args.backends.split(","):
        print(f"load: {args.jobs:,} jobs on {backend}" + (f" with {args.workers} worker processes" if backend == "redis" else "") + " ...", flush=True)
        report = run_redis(args.jobs, workdir / backend, workers=args.workers) if backend == "redis" else run_memory(args.jobs, workdir / backend)
        print(report.line(), flush=True)
        found = problems(report, check_rss=args.check_rss, rss_tolerance=args.rss_tolerance)
        for problem in found:
            print(f"  FAILED: {problem}", flush=True)
        failed = failed or bool(found)
        reports.append(asdict(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports, indent=2) + "\n")
    print("FAILED" if failed else "OK", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
