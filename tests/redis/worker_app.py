"""The app the process-level tests run workers of: ``python -m tests.redis.worker_app [--queues a,b] ...``.

Jobs write what they do to Redis lists under ``<JOBQUEUE_PREFIX>-log:`` so the test, in another
process, can see every run across workers (which pid ran which job, which attempt, how many at once).
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import redis
from pydantic import BaseModel

from jobqueue import Backoff, JobContext, JobQueue

app = JobQueue.from_env()
app.queue("work", attempts=3, backoff=Backoff.fixed(0.2))
app.queue("capped", attempts=1, concurrency=2)
app.queue("limited", attempts=1, rate_limit="5/2s")

_log: redis.Redis | None = None


def log() -> redis.Redis:
    global _log
    if _log is None:
        url = os.environ.get("JOBQUEUE_REDIS_URL") or os.environ["REDIS_URL"]
        _log = redis.Redis.from_url(url, decode_responses=True)
    return _log


def key(name: str) -> str:
    # a hash tag of its own: these keys belong to the test, not to a queue
    return f"{{{app.settings.prefix}-log}}:{name}"


class Work(BaseModel):
    tag: str
    seconds: float = 0.0


@app.on_worker_start
def started() -> None:
    log().rpush(key("workers"), f"start:{os.getpid()}")


@app.on_worker_stop
async def stopped() -> None:
    log().rpush(key("workers"), f"stop:{os.getpid()}")


@app.job(queue="work")
def sleepy(payload: Work, ctx: JobContext) -> str:
    log().rpush(key("runs"), f"{payload.tag}:{ctx.attempt}:{os.getpid()}")
    deadline = time.monotonic() + payload.seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    log().rpush(key("done"), payload.tag)
    return payload.tag


@app.job(queue="work")
async def async_sleepy(payload: Work, ctx: JobContext) -> str:
    import asyncio

    log().rpush(key("runs"), f"{payload.tag}:{ctx.attempt}:{os.getpid()}")
    await asyncio.sleep(payload.seconds)
    return payload.tag


@app.job(queue="capped")
def capped(payload: Work) -> str:
    now_running = log().incr(key("running"))
    log().rpush(key("overlap"), str(now_running))
    try:
        time.sleep(payload.seconds)
    finally:
        log().decr(key("running"))
    log().rpush(key("runs"), f"{payload.tag}:1:{os.getpid()}")
    return payload.tag


@app.job(queue="limited")
def limited(payload: Work) -> str:
    log().rpush(key("runs"), f"{payload.tag}:1:{os.getpid()}")
    return payload.tag


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queues", default="")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--grace", type=float, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    queues = [q for q in args.queues.split(",") if q] or None
    app.backend.run_worker(queues=queues, concurrency=args.concurrency, grace=args.grace)


if __name__ == "__main__":
    main()
