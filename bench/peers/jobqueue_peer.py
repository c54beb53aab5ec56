"""jobqueue on its Redis backend: ``job.enqueue`` / ``job.enqueue_many``; worker via ``jobqueue worker``.

Import-safe without the Redis backend: the app is declared here but its backend is built on first
use. :func:`unavailable` says why the bench must skip jobqueue (``jobqueue_redis`` not installed, or
it has no ``RedisBackend`` yet). The app is built as the README builds it, ``JobQueue.from_env()``:
the harness sets ``REDIS_URL``, ``JOBQUEUE_BACKEND=redis`` and ``JOBQUEUE_FALLBACK=raise`` (so a
misconfigured run fails instead of silently running jobs inline in the producer).
Set ``BENCH_JOBQUEUE_ASYNC=1`` to measure an ``async def`` job instead of a ``def`` one.
"""

from __future__ import annotations

import os

from pydantic import BaseModel

from bench.peers.common import QUEUE, awork, redis_url, work
from jobqueue import JobContext, JobQueue

app = JobQueue.from_env(backend="redis")
app.queue(QUEUE)


class Tick(BaseModel):
    t: float = 0.0


if os.environ.get("BENCH_JOBQUEUE_ASYNC") == "1":

    @app.job(name="bench_job", queue=QUEUE)
    async def job(payload: Tick, ctx: JobContext) -> None:
        await awork(payload.t)

else:

    @app.job(name="bench_job", queue=QUEUE)
    def job(payload: Tick, ctx: JobContext) -> None:
        work(payload.t)


def unavailable() -> str | None:
    """Why jobqueue's Redis backend cannot be measured here, or None when it can."""
    try:
        import jobqueue_redis
    except ImportError as exc:
        return f"jobqueue_redis is not installed ({exc}); run `make venv`"
    if not hasattr(jobqueue_redis, "RedisBackend"):
        return "jobqueue_redis has no RedisBackend yet (the Redis backend, issue 3, has not landed)"
    return None


class Producer:
    def __init__(self) -> None:
        redis_url()  # fail early without the harness's server
        # the backend is built here, outside the driver's clock, as the peers build their brokers when their
        # module is imported (huey's RedisHuey, dramatiq's RedisBroker): it imports redis-py (~0.1 s). Left to
        # the first enqueue, that import landed in the first paced job's pick-up latency, and the jobs sent
        # back to back to catch up the schedule after it queued behind one another. No connection is opened.
        _ = app.backend

    def one(self, t: float) -> None:
        job.enqueue(t=t)

    def bulk(self, ts: list[float]) -> None:
        job.enqueue_many([{"t": t} for t in ts])

    def close(self) -> None:
        app.close()


def producer() -> Producer:
    return Producer()
