"""BullMQ for Python: ``Queue.add`` / ``Queue.addBulk``; a worker script runs ``Worker`` (concurrency 1 by default).

BullMQ has no worker CLI: users write this script. ``python -m bench.peers.bullmq_peer [--concurrency N]``.
The worker keeps the last 1,000 completed and 5,000 failed jobs, as BullMQ's guide ("Auto-removal of jobs")
recommends for production instead of its default of keeping every finished job.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from bench.peers.common import QUEUE, awork, redis_url


async def process(job: Any, token: str) -> None:
    await awork(float(job.data["t"]))


class Producer:
    queue: Any = None

    def _queue(self) -> Any:
        if self.queue is None:
            from bullmq import Queue

            self.queue = Queue(QUEUE, {"connection": redis_url()})
        return self.queue

    async def one(self, t: float) -> None:
        await self._queue().add("job", {"t": t})

    async def bulk(self, ts: list[float]) -> None:
        await self._queue().addBulk([{"name": "job", "data": {"t": t}} for t in ts])

    async def close(self) -> None:
        if self.queue is not None:
            await self.queue.close()


def producer() -> Producer:
    return Producer()


async def run_worker(concurrency: int | None) -> None:
    from bullmq import Worker

    opts: dict[str, Any] = {"connection": redis_url(), "removeOnComplete": {"count": 1000}, "removeOnFail": {"count": 5000}}
    if concurrency is not None:
        opts["concurrency"] = concurrency
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(QUEUE, process, opts)
    await stop.wait()
    await worker.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=None)
    asyncio.run(run_worker(parser.parse_args().concurrency))
