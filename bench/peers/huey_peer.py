"""Huey on Redis: calling the task enqueues it; worker via ``huey_consumer module.huey`` (default: one thread)."""

from __future__ import annotations

from huey import RedisHuey

from bench.peers.common import QUEUE, redis_url, work

huey = RedisHuey(QUEUE, url=redis_url())


@huey.task()
def job(t: float) -> None:
    work(t)


class Producer:
    def one(self, t: float) -> None:
        job(t)

    def close(self) -> None:
        pass


def producer() -> Producer:
    return Producer()
