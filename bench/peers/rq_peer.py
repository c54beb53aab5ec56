"""RQ: ``Queue.enqueue`` / ``Queue.enqueue_many``; workers via ``rq worker`` (Worker or SimpleWorker)."""

from __future__ import annotations

from bench.peers.common import QUEUE, redis_url, work


def job(t: float) -> None:
    work(t)


class Producer:
    def __init__(self) -> None:
        from redis import Redis
        from rq import Queue

        self.Queue = Queue
        self.conn = Redis.from_url(redis_url())
        self.queue = Queue(QUEUE, connection=self.conn)

    def one(self, t: float) -> None:
        self.queue.enqueue(job, t)

    def bulk(self, ts: list[float]) -> None:
        self.queue.enqueue_many([self.Queue.prepare_data(job, (t,)) for t in ts])

    def close(self) -> None:
        self.conn.close()


def producer() -> Producer:
    return Producer()
