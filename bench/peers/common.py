"""What every adapter shares: where Redis is, the workload's keys, and recording a job's start.

The workload is the same for every library: a job that increments ``bench:done`` (one ``INCR``, sent as
such: redis-py's ``incr()`` sends ``INCRBY``, which some libraries use themselves, and the harness
subtracts exactly the workload's ``INCR`` calls from the command counts).
For the pick-up latency run the producer passes ``t`` = its wall-clock time at enqueue, and the
job also pushes ``start - t`` onto ``bench:lat``; in every other run ``t`` is 0 and the job does
nothing but the ``INCR``. Imports nothing but the standard library and redis-py, lazily.
"""

from __future__ import annotations

import os
import time
from typing import Any

COUNTER = "bench:done"
LATENCIES = "bench:lat"
QUEUE = "bench"


def redis_url() -> str:
    """The throwaway server's URL, given by the harness (``BENCH_REDIS_URL``, else ``REDIS_URL``)."""
    url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("REDIS_URL")
    if not url:
        raise RuntimeError("set BENCH_REDIS_URL (bench/run.py does) to the benchmark's redis-server")
    return url


_sync: dict[int, Any] = {}


def sync_client() -> Any:
    """One redis-py client per process (created after a fork, never shared across one)."""
    pid = os.getpid()
    client = _sync.get(pid)
    if client is None:
        import redis

        client = _sync[pid] = redis.Redis.from_url(redis_url())
    return client


def work(t: float) -> None:
    """The job body for sync libraries: note the start, count the job."""
    start = time.time()
    client = sync_client()
    if t:
        pipe = client.pipeline(transaction=False)
        pipe.rpush(LATENCIES, start - t)
        pipe.execute_command("INCR", COUNTER)
        pipe.execute()
    else:
        client.execute_command("INCR", COUNTER)


_async: dict[tuple[int, int], Any] = {}


def async_client() -> Any:
    """One redis.asyncio client per process and event loop."""
    import asyncio

    key = (os.getpid(), id(asyncio.get_running_loop()))
    client = _async.get(key)
    if client is None:
        import redis.asyncio

        client = _async[key] = redis.asyncio.Redis.from_url(redis_url())
    return client


async def awork(t: float, client: Any = None) -> None:
    """The job body for asyncio libraries (``client``: the library's own connection, if it hands one)."""
    start = time.time()
    client = client if client is not None else async_client()
    if t:
        pipe = client.pipeline(transaction=False)
        pipe.rpush(LATENCIES, start - t)
        pipe.execute_command("INCR", COUNTER)
        await pipe.execute()
    else:
        await client.execute_command("INCR", COUNTER)
