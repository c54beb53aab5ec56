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
app.queue("keyed", attempts=1)
# on a cluster these two queues live in different slots (tests/redis/test_workflow_processes.py checks the nodes)
app.queue("wf-parents", attempts=1)
app.queue("wf-children", attempts=1)

_log: redis.Redis | None = None


def log() -> redis.Redis:
    global _log
    if _log is None:
        url = os.environ.get("JOBQUEUE_REDIS_URL") or os.environ["REDIS_URL"]
        if os.environ.get("JOBQUEUE_REDIS_CLUSTER", "").lower() in ("1", "true", "yes"):
            _log = redis.RedisCluster.from_url(url, decode_responses=True)  # type: ignore[assignment]
        else:
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


class Keyed(BaseModel):
    tag: str
    key: str
    seconds: float = 0.0


@app.job(queue="keyed")
def keyed(payload: Keyed, ctx: JobContext) -> str:
    """Logs ``start``/``end`` with a sequence number from Redis (one order across processes) and the time."""
    log().rpush(key("keyed"), f"start:{payload.key}:{payload.tag}:{log().incr(key('seq'))}:{time.time()}:{os.getpid()}")
    time.sleep(payload.seconds)
    log().rpush(key("keyed"), f"end:{payload.key}:{payload.tag}:{log().incr(key('seq'))}:{time.time()}:{os.getpid()}")
    return payload.tag


@app.job(queue="wf-parents")
def wf_parent(payload: Work) -> str:
    log().rpush(key("runs"), f"{payload.tag}:1:{os.getpid()}")
    return f"parent {payload.tag}"


@app.job(queue="wf-children")
def wf_child(payload: Work, ctx: JobContext) -> dict[str, object]:
    log().rpush(key("runs"), f"{payload.tag}:1:{os.getpid()}")
    return ctx.parent_results


def crash_after_end() -> None:
    """Test-only fault: SIGKILL this process right after the ack that ended a job with dependents or a group,
    before any of its follow-up steps ran (the worker calls ``after_end`` only once that ack is applied)."""
    import signal

    def die(followup: object) -> None:
        log().rpush(key("crashed"), str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)

    app.workflows.after_end = die  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queues", default="")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--grace", type=float, default=None)
    parser.add_argument("--crash-after-end", action="store_true", help="test-only fault, see crash_after_end()")
    args = parser.parse_args()
    if args.crash_after_end:
        crash_after_end()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    queues = [q for q in args.queues.split(",") if q] or None
    app.backend.run_worker(queues=queues, concurrency=args.concurrency, grace=args.grace)


if __name__ == "__main__":
    main()
