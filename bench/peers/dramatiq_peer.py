"""Dramatiq on its RedisBroker: ``actor.send``; worker via ``dramatiq module`` (default: one process per core, 8 threads)."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.peers.common import QUEUE, redis_url, work

broker = RedisBroker(url=redis_url())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE)
def job(t: float) -> None:
    work(t)


class Producer:
    def one(self, t: float) -> None:
        job.send(t)

    def close(self) -> None:
        broker.close()


def producer() -> Producer:
    return Producer()
