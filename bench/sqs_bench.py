"""jobqueue's SQS path against a moto server: AWS requests per job, by service and operation.

    python -m bench.sqs_bench [--n 1000]          # with the project's .venv (moto[server] comes with the dev extra)

A moto server on a free loopback port; ``python -m jobqueue_sqs init`` creates the queue, its DLQ and
the job table; then, counting every HTTP request botocore sends (retries included):
- the producer enqueues N jobs one call per job, then N more with ``enqueue_many``;
- the local worker (``python -m jobqueue_sqs worker``: the stand-in for Lambda's event source mapping
  calling the handler) runs the 2N jobs; its requests are counted in its own process.
Prints JSON; ``{"skipped": reason}`` when the SQS backend is not installed.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.moto import missing, start_stack

ROOT = Path(__file__).resolve().parent.parent
COUNTS: collections.Counter[str] = collections.Counter()


def count_requests() -> None:
    """Count every HTTP attempt botocore makes, as ``service:Operation``."""
    from botocore.endpoint import Endpoint

    original = Endpoint._get_response

    def counted(self: Any, request: Any, operation_model: Any, context: Any) -> Any:
        COUNTS[f"{operation_model.service_model.endpoint_prefix}:{operation_model.name}"] += 1
        return original(self, request, operation_model, context)

    Endpoint._get_response = counted  # type: ignore[method-assign]


def _per_job(counts: dict[str, int], jobs: int) -> dict[str, float]:
    return {op: n / jobs for op, n in sorted(counts.items(), key=lambda kv: -kv[1])}


def run(n: int, timeout: float) -> dict[str, Any]:
    reason = missing()
    if reason is not None:
        return {"skipped": reason}
    moto_server, env = start_stack("bench")
    worker = None
    try:
        os.environ.update(env)
        count_requests()
        from bench.peers.sqs_app import app, noop

        _ = app.backend  # built (and its clients) before the clock and the counters start
        COUNTS.clear()
        started = time.perf_counter()
        for _ in range(n):
            noop.enqueue(t=0.0)
        one_s = time.perf_counter() - started
        one = dict(COUNTS)
        COUNTS.clear()
        started = time.perf_counter()
        noop.enqueue_many([{"t": 0.0}] * n)
        bulk_s = time.perf_counter() - started
        bulk = dict(COUNTS)

        counts_file = Path(tempfile.mkstemp(prefix="jobqueue-bench-sqs-", suffix=".json")[1])
        worker = subprocess.Popen([sys.executable, "-m", "bench.sqs_bench", "_worker", str(counts_file)], cwd=ROOT,
                                  env={**env, "BENCH_SQS_COUNTS": str(counts_file)}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        started = time.perf_counter()
        while True:
            depths = app.backend.depths("bench")
            if depths.get("visible", 1) == 0 and depths.get("in_flight", 1) == 0 and depths.get("delayed", 0) == 0:
                break
            if worker.poll() is not None:
                raise RuntimeError(f"the SQS worker exited: {worker.stderr.read()[-1500:] if worker.stderr else ''}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"the SQS worker did not drain the queue in {timeout:.0f}s: {depths}")
            time.sleep(0.5)
        process_s = time.perf_counter() - started
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        processed = json.loads(counts_file.read_text() or "{}")
        counts_file.unlink(missing_ok=True)
        completed = app.stats("bench").model_dump(mode="json")
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        os.killpg(moto_server.pid, signal.SIGTERM)
        moto_server.wait(10)
    send_bulk = sum(v for k, v in bulk.items() if k.startswith("sqs:SendMessage"))
    return {
        "n": n, "enqueue_one": {"seconds": one_s, "per_job": _per_job(one, n)},
        "enqueue_bulk": {"seconds": bulk_s, "per_job": _per_job(bulk, n), "send_message_per_job": send_bulk / n},
        "worker": {"seconds": process_s, "per_job": _per_job(processed, 2 * n)},
        "stats": completed,
    }


def _worker(counts_file: str) -> None:
    """``python -m jobqueue_sqs worker`` with its AWS requests counted, dumped at exit."""
    import runpy

    count_requests()
    atexit.register(lambda: Path(counts_file).write_text(json.dumps(dict(COUNTS))))
    sys.argv = ["jobqueue_sqs", "worker"]  # one batch at a time, as one Lambda invocation handles it
    runpy.run_module("jobqueue_sqs", run_name="__main__", alter_sys=True)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_worker":
        _worker(sys.argv[2])
        return
    parser = argparse.ArgumentParser(prog="python -m bench.sqs_bench")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.timeout)))


if __name__ == "__main__":
    main()
