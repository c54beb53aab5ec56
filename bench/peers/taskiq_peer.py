"""taskiq with taskiq-redis's RedisStreamBroker: ``task.kiq``; worker via ``taskiq worker module:broker``."""

from __future__ import annotations

from taskiq_redis import RedisStreamBroker

from bench.peers.common import QUEUE, awork, redis_url

broker = RedisStreamBroker(redis_url(), queue_name=QUEUE)


@broker.task(task_name="bench.job")
async def job(t: float) -> None:
    await awork(t)


class Producer:
    started = False

    async def one(self, t: float) -> None:
        if not self.started:
            await broker.startup()  # creates the stream's consumer group, as a producer must
            self.started = True
        await job.kiq(t)

    async def close(self) -> None:
        if self.started:
            await broker.shutdown()


def producer() -> Producer:
    return Producer()
