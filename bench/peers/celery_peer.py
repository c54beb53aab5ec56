"""Celery on its Redis broker: ``task.delay``, ``group(...).apply_async``; ``celery worker`` prefork or threads.

No result backend (Celery's default), so the no-op job stores nothing.
"""

from __future__ import annotations

from celery import Celery, group

from bench.peers.common import QUEUE, redis_url, work

app = Celery("bench", broker=redis_url())
app.conf.update(
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.job")
def job(t: float) -> None:
    work(t)


class Producer:
    def one(self, t: float) -> None:
        job.delay(t)

    def bulk(self, ts: list[float]) -> None:
        group(job.s(t) for t in ts).apply_async()

    def close(self) -> None:
        pass


def producer() -> Producer:
    return Producer()
