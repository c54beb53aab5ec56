"""The app the chaos and load runs start workers of: ``python -m tests.reliability.chaos_app --concurrency 8``.

Each run of a job appends one line to a file of its worker process (``$CHAOS_DIR/runs-<pid>.log``, opened
``O_APPEND`` and written with one unbuffered ``write``), at the start (``S``) and at the end (``E``). The
lines survive a SIGKILL of the worker and do not depend on Redis, so the runner can count every run of
every job, also the ones whose outcome never reached Redis.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Mapping

from pydantic import BaseModel

from jobqueue import JobContext, JobQueue, Retention

CHAOS_QUEUE = "chaos"
LOAD_QUEUE = "load"
#: the load queue keeps what the README's defaults keep: the last 1,000 completed jobs
LOAD_RETENTION = Retention(completed=(1000, "24h"), failed=(10000, "7d"))

_files: dict[str, int] = {}


def _record(line: str) -> None:
    path = os.path.join(os.environ["CHAOS_DIR"], f"runs-{os.getpid()}.log")
    fd = _files.get(path)
    if fd is None:
        fd = _files[path] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, (line + "\n").encode())


class Tick(BaseModel):
    ms: float = 0.0


def tick(payload: Tick, ctx: JobContext) -> None:
    _record(f"S {ctx.job_id} {ctx.attempt} {os.getpid()}")
    if payload.ms:
        time.sleep(payload.ms / 1000)
    _record(f"E {ctx.job_id} {ctx.attempt} {os.getpid()}")


class Work(BaseModel):
    n: int
    blob: str = ""


def work(payload: Work, ctx: JobContext) -> int:
    _record(f"E {ctx.job_id} {ctx.attempt} {os.getpid()}")
    return payload.n


def build(environ: Mapping[str, str] | None = None) -> JobQueue:
    """The app, on the backend ``environ`` names (the workers' and the runner's producer are the same)."""
    made = JobQueue.from_env(environ)
    # every chaos job stays readable to the end (the check reads each one); five attempts: a job in flight
    # at several kills in a row must not run out of them
    made.queue(CHAOS_QUEUE, attempts=5, retention=Retention(completed=(1_000_000, "1d"), failed=(1_000_000, "1d")))
    made.queue(LOAD_QUEUE, attempts=3, retention=LOAD_RETENTION)
    made.job(queue=CHAOS_QUEUE)(tick)
    made.job(queue=LOAD_QUEUE)(work)
    return made


app = build()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queues", default=CHAOS_QUEUE)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    app.backend.run_worker(queues=args.queues.split(","), concurrency=args.concurrency)


if __name__ == "__main__":
    main()
