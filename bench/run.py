"""The benchmark harness: jobqueue against the Python job queues users would pick instead.

    bench/.venv-peers/bin/python -m bench.run                 # everything (make bench)
    bench/.venv-peers/bin/python -m bench.run --quick         # jobqueue + the two fastest peers (make bench-quick)
    bench/.venv-peers/bin/python -m bench.run --n 1000 --rounds 1 --only rq,arq

One throwaway ``redis-server`` on a free loopback port serves every measurement; the database is
flushed before each one. Each measurement runs in fresh processes inside the library's own
virtualenv (the peers share ``bench/.venv-peers``; jobqueue uses the project's ``.venv``). Rounds
interleave the libraries (the order rotates every round) and every figure is the median over the
rounds, so a ratio holds while the machine drifts.

Redis commands per job come from ``INFO commandstats`` (commands run inside Lua scripts are counted
there too), less the harness's own polling and the workload's ``INCR``; redis-server CPU per job is
``used_cpu_user + used_cpu_sys`` from ``INFO cpu`` (the server's own getrusage).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import redis

from bench.peers import LIBRARIES, PEER_SETUPS, SETUPS, Setup
from bench.peers.common import COUNTER, LATENCIES

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
VENVS = {
    "peers": Path(os.environ.get("BENCH_PEERS_VENV", BENCH / ".venv-peers")),
    "project": Path(os.environ.get("BENCH_PROJECT_VENV", ROOT / ".venv")),
}
#: the two fastest peers when no earlier full run says otherwise (from the last full run we saw)
QUICK_FALLBACK = ["dramatiq", "huey"]
POLL = 0.005


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the server ---------------------------------------------------------------------------------


class RedisServer:
    """A throwaway redis-server on a free loopback port, without persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed: run bench/setup_peers.sh (it apt-installs it)")
        self.dir = tempfile.mkdtemp(prefix="jobqueue-bench-redis-")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--loglevel", "warning", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis.from_url(self.url, decode_responses=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("redis-server did not start") from None
                time.sleep(0.05)
        self.version = self.client.info("server")["redis_version"]

    def flush(self) -> None:
        self.client.flushall()

    def snapshot(self) -> dict[str, Any]:
        info = self.client.execute_command("INFO", "cpu", "commandstats")
        calls = {k[len("cmdstat_"):]: v["calls"] for k, v in info.items() if k.startswith("cmdstat_")}
        return {"cpu": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]), "calls": calls, "t": time.perf_counter()}

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def usage(before: dict[str, Any], after: dict[str, Any], jobs: int, own_gets: int = 0, workload_incrs: int = 0) -> dict[str, Any]:
    """Redis commands and server CPU between two snapshots, less the harness's own commands."""
    diff = {cmd: n - before["calls"].get(cmd, 0) for cmd, n in after["calls"].items()}
    diff["get"] = diff.get("get", 0) - own_gets
    diff["info"] = diff.get("info", 0) - 1  # the first snapshot's INFO is counted once it has run
    diff["incr"] = diff.get("incr", 0) - workload_incrs
    diff = {cmd: n for cmd, n in diff.items() if n > 0}
    total = sum(diff.values())
    cpu = after["cpu"] - before["cpu"]
    return {
        "commands": total,
        "commands_per_job": total / jobs,
        "commands_by_name": dict(sorted(diff.items(), key=lambda kv: -kv[1])),
        "cpu_s": cpu,
        "cpu_us_per_job": cpu / jobs * 1e6,
    }


# -- processes ------------------------------------------------------------------------------------


def venv_of(lib: str) -> Path:
    return VENVS[LIBRARIES[lib].venv]


def child_env(server: RedisServer) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
        BENCH_REDIS_URL=server.url,
        REDIS_URL=server.url,
        JOBQUEUE_BACKEND="redis",
        JOBQUEUE_FALLBACK="raise",  # never run jobs inline in the producer when the server does not answer
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("VIRTUAL_ENV", None)
    return env


def driver(server: RedisServer, lib: str, *args: str, timeout: float = 600) -> dict[str, Any]:
    python = venv_of(lib) / "bin" / "python"
    proc = subprocess.run(
        [str(python), "-m", "bench.driver", *args], cwd=ROOT, env=child_env(server),
        capture_output=True, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"driver {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def worker_argv(setup: Setup, launch: str, server: RedisServer) -> list[str] | None:
    argv = setup.default if launch == "default" else setup.c10
    if argv is None or isinstance(argv, str):
        return None
    venv = venv_of(setup.library)
    return [a.format(bin=venv / "bin", py=venv / "bin" / "python", redis_url=server.url) for a in argv]


class Worker:
    """A worker launched as its users launch it, in its own session so it and its children stop together."""

    def __init__(self, argv: list[str], server: RedisServer, log_path: Path, env: tuple[tuple[str, str], ...] = ()) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env={**child_env(server), **dict(env)}, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.argv = argv

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kib(self) -> int:
        """Resident memory of the worker and its children (KiB)."""
        total = 0
        for pid in self._tree():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def _tree(self) -> list[int]:
        pids, frontier = [self.proc.pid], [self.proc.pid]
        while frontier:
            pid = frontier.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                pids.append(child)
                frontier.append(child)
        return pids

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # children left behind by the main process
        except ProcessLookupError:
            pass
        self.log.close()


def wait_for_count(server: RedisServer, target: int, worker: Worker, timeout: float, stall: float = 60.0) -> tuple[list[tuple[float, int]], int]:
    """Poll the counter until it reaches ``target``; returns the (time, count) samples and how many GETs that took."""
    client = server.client
    samples: list[tuple[float, int]] = []
    gets = 0
    started = last_change = time.perf_counter()
    last = -1
    while True:
        count = int(client.get(COUNTER) or 0)
        gets += 1
        now = time.perf_counter()
        samples.append((now, count))
        if count >= target:
            return samples, gets
        if count != last:
            last, last_change = count, now
        if not worker.alive():
            raise RuntimeError(f"the worker exited ({worker.proc.returncode}) at {count}/{target} jobs; see {worker.log.name}")
        if now - started > timeout or now - last_change > stall:
            raise RuntimeError(f"timed out at {count}/{target} jobs after {now - started:.0f}s; see {worker.log.name}")
        time.sleep(POLL)


def steady_rate(samples: list[tuple[float, int]], n: int) -> float | None:
    """Jobs per second between the 10th and the 90th percentile of completions."""
    lo = next((t for t, c in samples if c >= n * 0.1), None)
    hi = next((t for t, c in samples if c >= n * 0.9), None)
    if lo is None or hi is None or hi <= lo:
        return None
    lo_count = next(c for t, c in samples if t == lo)
    hi_count = next(c for t, c in samples if t == hi)
    return (hi_count - lo_count) / (hi - lo)


# -- measurements -----------------------------------------------------------------------------------


@dataclass
class Bench:
    server: RedisServer
    n: int
    latency_jobs: int
    timeout: float
    logs: Path
    runs: list[dict[str, Any]] = field(default_factory=list)

    def record(self, kind: str, key: str, round_: int, result: dict[str, Any] | None, error: str | None = None) -> None:
        entry = {"kind": kind, "key": key, "round": round_, "result": result, "error": error}
        self.runs.append(entry)
        if error:
            log(f"{kind:<14} {key:<22} {'' if error.startswith('skipped') else 'FAILED: '}{error.splitlines()[0][:300]}")
        else:
            shown = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in (result or {}).items()
                     if k in ("rate", "steady_rate", "p50_ms", "p99_ms", "commands_per_job", "cpu_us_per_job", "per_job_us", "rss_growth_kib")}
            log(f"{kind:<14} {key:<22} {shown}")

    def fill(self, lib: str) -> None:
        """Queue N jobs the fastest way the library offers (not measured)."""
        mode = "bulk" if LIBRARIES[lib].bulk else "one"
        driver(self.server, lib, "enqueue", lib, "--mode", mode, "--n", str(self.n))
        queued = self.server.client.dbsize()
        if not queued:
            raise RuntimeError(f"{lib}: nothing was queued")

    def enqueue(self, lib: str, mode: str) -> dict[str, Any]:
        self.server.flush()
        before = self.server.snapshot()
        out = driver(self.server, lib, "enqueue", lib, "--mode", mode, "--n", str(self.n))
        after = self.server.snapshot()
        return {"rate": out["rate"], "seconds": out["seconds"], **usage(before, after, self.n)}

    def process(self, setup: Setup, launch: str, round_: int) -> dict[str, Any]:
        argv = worker_argv(setup, launch, self.server)
        assert argv is not None
        self.server.flush()
        self.fill(setup.library)
        before = self.server.snapshot()
        worker = Worker(argv, self.server, self.logs / f"{setup.name}-{launch}-r{round_}.log", setup.env)
        try:
            samples, gets = wait_for_count(self.server, self.n, worker, self.timeout)
            after = self.server.snapshot()
            rss = worker.rss_kib()
        finally:
            worker.stop()
        first = next((t for t, c in samples if c > 0), samples[-1][0])
        elapsed = samples[-1][0] - before["t"]
        return {
            "rate": self.n / elapsed, "seconds": elapsed, "first_job_s": first - before["t"],
            "steady_rate": steady_rate(samples, self.n), "worker_rss_kib": rss,
            **usage(before, after, self.n, own_gets=gets, workload_incrs=self.n),
        }

    def latency(self, setup: Setup, round_: int) -> dict[str, Any]:
        argv = worker_argv(setup, "default", self.server)
        assert argv is not None
        self.server.flush()
        worker = Worker(argv, self.server, self.logs / f"{setup.name}-latency-r{round_}.log", setup.env)
        try:
            driver(self.server, setup.library, "enqueue", setup.library, "--mode", "one", "--n", "1")
            wait_for_count(self.server, 1, worker, self.timeout)  # the worker is up and has run one job
            time.sleep(1.0)  # ... and is idle
            driver(self.server, setup.library, "enqueue", setup.library, "--mode", "paced", "--n", str(self.latency_jobs),
                   "--interval", "0.002")
            wait_for_count(self.server, self.latency_jobs + 1, worker, self.timeout)
        finally:
            worker.stop()
        values = sorted(float(v) * 1000 for v in self.server.client.lrange(LATENCIES, 0, -1))
        if len(values) != self.latency_jobs:
            raise RuntimeError(f"{len(values)} latencies recorded for {self.latency_jobs} jobs")
        return {
            "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99), "max_ms": values[-1],
            "mean_ms": statistics.fmean(values), "jobs": len(values),
        }

    def memory(self, setup: Setup, total: int, round_: int) -> dict[str, Any]:
        """Worker RSS after its first 1,000 jobs and after ``total`` jobs (queued in bulk, 10,000 at a time)."""
        argv = worker_argv(setup, "default", self.server)
        assert argv is not None
        self.server.flush()
        lib = setup.library
        mode = "bulk" if LIBRARIES[lib].bulk else "one"
        driver(self.server, lib, "enqueue", lib, "--mode", mode, "--n", "1000")
        worker = Worker(argv, self.server, self.logs / f"{setup.name}-memory-r{round_}.log", setup.env)
        try:
            wait_for_count(self.server, 1000, worker, self.timeout)
            rss_before = worker.rss_kib()
            done = 1000
            while done < total:
                chunk = min(10_000, total - done)
                driver(self.server, lib, "enqueue", lib, "--mode", mode, "--n", str(chunk))
                done += chunk
                wait_for_count(self.server, done, worker, self.timeout)
            rss_after = worker.rss_kib()
        finally:
            worker.stop()
        return {"jobs": total, "rss_before_kib": rss_before, "rss_after_kib": rss_after, "rss_growth_kib": rss_after - rss_before}

    def project_tool(self, module: str, *args: str) -> dict[str, Any]:
        """A jobqueue-alone measurement run with the project's virtualenv; it prints one JSON object."""
        python = VENVS["project"] / "bin" / "python"
        env = {k: v for k, v in child_env(self.server).items() if k not in ("JOBQUEUE_BACKEND", "REDIS_URL", "BENCH_REDIS_URL")}
        proc = subprocess.run([str(python), "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip()[-2000:])
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if "skipped" in result:
            raise Skipped(result["skipped"])
        return result

    def sync(self, name: str, venv: str, jobs: int) -> dict[str, Any]:
        python = VENVS[venv] / "bin" / "python"
        proc = subprocess.run([str(python), "-m", "bench.sync_bench", name, "--n", str(jobs)], cwd=ROOT,
                              env=child_env(self.server), capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip()[-2000:])
        return json.loads(proc.stdout.strip().splitlines()[-1])


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


# -- the plan ---------------------------------------------------------------------------------------


def check_libraries(server: RedisServer, libs: list[str]) -> dict[str, dict[str, Any]]:
    found = {}
    for lib in libs:
        python = venv_of(lib) / "bin" / "python"
        if not python.exists():
            found[lib] = {"ok": False, "reason": f"no virtualenv at {python.parent.parent} (make bench-setup / make venv)"}
        else:
            try:
                found[lib] = driver(server, lib, "check", lib, timeout=120)
            except Exception as exc:
                found[lib] = {"ok": False, "reason": str(exc)}
        if not found[lib]["ok"]:
            log(f"skipping {lib}: {found[lib]['reason']}")
    return found


def quick_peers() -> list[str]:
    """The two peer setups with the fastest default-launch processing in the last full run, if any."""
    latest = RESULTS / "latest-full.json"
    if latest.exists():
        data = json.loads(latest.read_text())
        ranked = sorted(
            ((s, m.get("rate")) for s, m in data["summary"].get("process_default", {}).items() if s in PEER_SETUPS and m.get("rate")),
            key=lambda kv: -kv[1],
        )
        if len(ranked) >= 2:
            return [s for s, _ in ranked[:2]]
    return list(QUICK_FALLBACK)


def rotate(items: list[str], k: int) -> list[str]:
    if not items:
        return items
    k %= len(items)
    return items[k:] + items[:k]


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.only:
        setups = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in setups if s not in SETUPS]
        if unknown:
            raise SystemExit(f"unknown setup(s) {unknown}; known: {', '.join(SETUPS)}")
    elif args.quick:
        setups = ["jobqueue", *quick_peers()]
    else:
        setups = list(SETUPS)
    kinds = set(args.kinds.split(",")) if args.kinds else {"enqueue", "bulk", "process", "latency", "sync", "memory", "cold_import", "sqs"}
    server = RedisServer()
    requested = list(setups)
    log(f"redis-server {server.version} on {server.url}; N={args.n}, rounds={args.rounds}, setups={','.join(setups)}")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    bench = Bench(server, args.n, args.latency_jobs, args.timeout, RESULTS / "logs" / stamp)
    started = time.time()
    try:
        checks = check_libraries(server, sorted({SETUPS[s].library for s in setups}))
        setups = [s for s in setups if checks[SETUPS[s].library]["ok"]]
        libs = sorted({SETUPS[s].library for s in setups}, key=lambda lib: [SETUPS[s].library for s in setups].index(lib))
        for r in range(args.rounds):
            log(f"round {r + 1}/{args.rounds}")
            if "enqueue" in kinds:
                for lib in rotate(libs, r):
                    attempt(bench, "enqueue", lib, r, partial(bench.enqueue, lib, "one"))
            if "bulk" in kinds:
                for lib in rotate([lib for lib in libs if LIBRARIES[lib].bulk], r):
                    attempt(bench, "bulk", lib, r, partial(bench.enqueue, lib, "bulk"))
            if "process" in kinds:
                for name in rotate(setups, r):
                    attempt(bench, "process_default", name, r, partial(bench.process, SETUPS[name], "default", r))
                for name in rotate([s for s in setups if isinstance(SETUPS[s].c10, tuple)], r):
                    attempt(bench, "process_c10", name, r, partial(bench.process, SETUPS[name], "c10", r))
            if "latency" in kinds:
                for name in rotate(setups, r):
                    attempt(bench, "latency", name, r, partial(bench.latency, SETUPS[name], r))
            if "sync" in kinds:
                for name, venv in rotate_pairs(SYNC_CASES, r, checks):
                    attempt(bench, "sync", name, r, partial(bench.sync, name, venv, args.sync_jobs))
        if "cold_import" in kinds:
            attempt(bench, "cold_import", "jobqueue", 0, lambda: bench.project_tool("bench.cold_import", "--rounds", "15"))
        if "sqs" in kinds and args.sqs_jobs:
            attempt(bench, "sqs", "jobqueue", 0, lambda: bench.project_tool("bench.sqs_bench", "--n", str(args.sqs_jobs)))
        if "memory" in kinds and "jobqueue" in setups and args.memory_jobs:
            attempt(bench, "memory", "jobqueue", 0, lambda: bench.memory(SETUPS["jobqueue"], args.memory_jobs, 0))
    finally:
        server.stop()
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": time.time() - started,
        "command": " ".join(["python -m bench.run", *sys.argv[1:]]),
        "n": args.n, "rounds": args.rounds, "latency_jobs": args.latency_jobs, "sync_jobs": args.sync_jobs,
        "memory_jobs": args.memory_jobs, "sqs_jobs": args.sqs_jobs, "quick": args.quick, "setups": setups, "requested": requested,
        "machine": machine(server.version), "checks": checks, "runs": bench.runs,
        "summary": summarize(bench.runs),
    }


#: the sync-backend comparison: (case, virtualenv); see bench/sync_bench.py
SYNC_CASES = [("jobqueue-sync", "project"), ("celery-apply", "peers"), ("huey-immediate", "peers")]


def rotate_pairs(cases: list[tuple[str, str]], r: int, checks: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    usable = [(name, venv) for name, venv in cases if (VENVS[venv] / "bin" / "python").exists()]
    k = r % len(usable) if usable else 0
    return usable[k:] + usable[:k]


class Skipped(Exception):
    """A measurement that cannot run here yet (say, a backend that has not landed)."""


def attempt(bench: Bench, kind: str, key: str, round_: int, fn: Any) -> None:
    try:
        bench.record(kind, key, round_, fn())
    except Skipped as exc:
        bench.record(kind, key, round_, None, f"skipped: {exc}")
    except Exception as exc:
        bench.record(kind, key, round_, None, f"{type(exc).__name__}: {exc}")


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per kind and key: the median of every numeric field over the rounds that succeeded."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    errors: dict[tuple[str, str], list[str]] = {}
    for run_ in runs:
        key = (run_["kind"], run_["key"])
        if run_["result"] is not None:
            grouped.setdefault(key, []).append(run_["result"])
        else:
            errors.setdefault(key, []).append(run_["error"])
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for (kind, key) in {*grouped, *errors}:
        results = grouped.get((kind, key), [])
        merged: dict[str, Any] = {"runs": len(results), "errors": errors.get((kind, key), [])}
        if results:
            for field_ in results[0]:
                values = [r[field_] for r in results if isinstance(r.get(field_), (int, float))]
                if values:
                    merged[field_] = statistics.median(values)
                elif field_ != "commands_by_name":
                    merged[field_] = results[-1][field_]  # nested details (the SQS counts): the last run's
            names: dict[str, list[float]] = {}
            for r in results:
                for cmd, count in r.get("commands_by_name", {}).items():
                    names.setdefault(cmd, []).append(count)
            if names:
                merged["commands_by_name"] = {cmd: statistics.median(v + [0] * (len(results) - len(v))) for cmd, v in names.items()}
        summary.setdefault(kind, {})[key] = merged
    # where the default launch already is one process at concurrency 10, the c10 figure is that one
    for name, setup in SETUPS.items():
        if setup.c10 == "default" and name in summary.get("process_default", {}):
            summary.setdefault("process_c10", {})[name] = {**summary["process_default"][name], "same_as_default": True}
    return summary


def machine(redis_version: str) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "os": platform.platform(), "python": platform.python_version(),
            "redis_server": redis_version}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="jobqueue and the two fastest peers only")
    parser.add_argument("--only", default=None, help="comma-separated setups (e.g. jobqueue,arq,rq-simple)")
    parser.add_argument("--kinds", default=None, help="comma-separated subset of enqueue,bulk,process,latency,sync,memory,cold_import,sqs")
    parser.add_argument("--n", type=int, default=10_000, help="jobs per measurement (default 10000)")
    parser.add_argument("--rounds", type=int, default=None, help="runs per figure (median); default 3, quick 3")
    parser.add_argument("--latency-jobs", type=int, default=1000, help="paced jobs in the pick-up latency run")
    parser.add_argument("--sync-jobs", type=int, default=10_000, help="jobs per sync-backend run")
    parser.add_argument("--memory-jobs", type=int, default=100_000, help="jobs through one jobqueue worker for its memory (0: skip)")
    parser.add_argument("--sqs-jobs", type=int, default=1000, help="jobs through the SQS path on a moto server (0: skip)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one measurement may take")
    parser.add_argument("--json", default=None, help="where to write the results (default bench/results/<stamp>.json)")
    parser.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"), help="the report to render ('' for none)")
    parser.add_argument("--chart", default=str(BENCH / "benchmarks.png"), help="the chart to draw ('' for none)")
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = 3
    if args.quick:  # the jobqueue-alone measurements belong to the full run
        args.memory_jobs = 0 if args.memory_jobs == 100_000 else args.memory_jobs
        args.kinds = args.kinds or "enqueue,bulk,process,latency"
    results = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(args.json) if args.json else RESULTS / "runs" / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    if not args.quick and not args.only and not args.kinds:
        (RESULTS / "latest-full.json").write_text(json.dumps(results, indent=1))
    log(f"results: {out}")
    from bench.report import render

    render(results, markdown=Path(args.markdown) if args.markdown else None, chart=Path(args.chart) if args.chart else None)


if __name__ == "__main__":
    main()
