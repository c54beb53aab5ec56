"""SAQ: ``Queue.enqueue``; worker via ``saq module.settings`` (one process, concurrency 10 by default)."""

from __future__ import annotations

from typing import Any

from saq import Queue

from bench.peers.common import QUEUE, awork, redis_url

queue = Queue.from_url(redis_url(), name=QUEUE)


async def job(ctx: dict[str, Any], *, t: float) -> None:
    await awork(t)


settings = {"queue": queue, "functions": [job]}


class Producer:
    connected = False

    async def one(self, t: float) -> None:
        if not self.connected:
            await queue.connect()
            self.connected = True
        await queue.enqueue("job", t=t)

    async def close(self) -> None:
        await queue.disconnect()


def producer() -> Producer:
    return Producer()
