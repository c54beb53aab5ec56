"""The ``memory`` backend: jobs queue in this process until a test runs them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from jobqueue.backends.base import Backend
from jobqueue.backends.memory_store import MemoryStore
from jobqueue.backends.memory_workflows import MemoryWorkflowStore
from jobqueue.envelope import Envelope
from jobqueue.refs import JobRef
from jobqueue.runner import JobRunner, Outcome
from jobqueue.states import JobState
from jobqueue.status import EnqueueReceipt, Health, JobPage, JobStatus, QueueStats, Throughput

if TYPE_CHECKING:
    from jobqueue.app import JobQueue

logger = logging.getLogger("jobqueue.memory")


class _StoreSink:
    """What a running attempt writes to: the store. ``on_finish`` is told of every outcome kept, after its hooks."""

    def __init__(self, store: MemoryStore, on_finish: Callable[[JobRef], None] | None = None) -> None:
        self.store = store
        self.on_finish = on_finish

    def set_progress(self, envelope: Envelope, value: float) -> None:
        self.store.set_progress(envelope, value)

    def is_cancel_requested(self, envelope: Envelope) -> bool:
        return self.store.is_cancel_requested(envelope)

    def finish(self, envelope: Envelope, outcome: Outcome) -> bool:
        return self.store.finish(envelope, outcome)

    def after_finish(self, envelope: Envelope) -> None:
        # the finish just recorded whether the job left a follow-up; most jobs do not, and need no JobRef built
        if self.on_finish is not None and (envelope.queue, envelope.id) in self.store.followups:
            self.on_finish(envelope.ref)


class InProcessBackend(Backend):
    """State kept in a :class:`MemoryStore` of this process; the base of ``memory`` and ``sync``."""

    store: MemoryStore

    def bind(self, app: JobQueue) -> None:
        super().bind(app)
        self.store = MemoryStore(app.queue_config, app.clock.now)
        self.runner = JobRunner(app)
        self.workflows = MemoryWorkflowStore(self.store, app.clock.now)
        self.sink = _StoreSink(self.store, self._follow_up)

    def workflow_store(self) -> MemoryWorkflowStore:
        return self.workflows

    def _follow_up(self, job: JobRef) -> None:
        """Tell the dependents and group of a job that just ended (a no-op for a job without either)."""
        followup = self.workflows.followup(job)
        if followup is None:
            return
        try:
            self.app.workflows.after_end(followup)
        except Exception:
            logger.exception("job %s ended, but telling its dependents or group failed; recovery will retry", job)

    def get(self, job_id: str, queue: str | None = None) -> JobStatus | None:
        return self.store.get(job_id, queue)

    def stats(self, queue: str) -> QueueStats:
        return self.store.stats(queue)

    def list_jobs(self, queue: str, state: JobState, *, limit: int = 50, cursor: str | None = None) -> JobPage:
        return self.store.list_jobs(queue, state, limit, cursor)

    def throughput(self, queue: str, minutes: int = 15) -> Throughput:
        minutes = max(1, int(minutes))
        since, completed, failed = self.store.throughput(queue, minutes)
        return Throughput(queue=queue, minutes=minutes, since=since, completed=completed, failed=failed)

    def oldest_waiting_since(self, queue: str) -> float | None:
        return self.store.oldest_waiting_since(queue)

    def health(self) -> Health:
        return Health(status="healthy", backend=self.name, broker_reachable=True, latency_ms=0.0, detail="in-process")

    def cancel(self, job_id: str, queue: str | None = None) -> bool:
        status = self.store.get(job_id, queue)
        cancelled = self.store.cancel(job_id, queue)
        if cancelled and status is not None:
            self._follow_up(JobRef(queue=status.queue, id=job_id))
        return cancelled

    def retry(self, job_id: str, queue: str | None = None) -> bool:
        return self.store.retry(job_id, queue)

    def retry_failed(self, queue: str) -> int:
        return self.store.retry_failed(queue)

    def pause(self, queue: str) -> None:
        self.store.set_paused(queue, True)

    def resume(self, queue: str) -> None:
        self.store.set_paused(queue, False)

    def clean(self, queue: str, state: JobState, older_than: float = 0.0) -> int:
        return self.store.clean(queue, state, older_than)

    def _queues(self, queues: Sequence[str] | None) -> list[str]:
        if queues is not None:
            return list(queues)
        return list(dict.fromkeys([*self.app.queues, *self.store.queue_names()]))


class MemoryBackend(InProcessBackend):
    """Queues jobs in this process; ``run_until_empty()`` runs every due one (tests drive it).

    Delays, backoff, rate limits and retention follow the app's clock, so a test with a
    :class:`~jobqueue.clock.FakeClock` moves time by hand. Jobs run one at a time.
    """

    name: ClassVar[str] = "memory"

    def enqueue(self, envelopes: Sequence[Envelope]) -> list[EnqueueReceipt]:
        return self.store.add(envelopes)

    def run_next(self, queues: Sequence[str] | None = None) -> Outcome | None:
        """Run the most urgent due job of the first queue that has one; None if nothing is due."""
        for name in self._queues(queues):
            envelope = self.store.claim(name)
            if envelope is not None:
                return self.runner.execute(envelope, self.sink)
        return None

    def run_until_empty(self, queues: Sequence[str] | None = None, *, max_jobs: int | None = None) -> int:
        """Run due jobs until none is left (delayed ones wait for the clock); returns how many attempts ran."""
        ran = 0
        while max_jobs is None or ran < max_jobs:
            if self.run_next(queues) is None:
                break
            ran += 1
        return ran

    async def arun_until_empty(self, queues: Sequence[str] | None = None, *, max_jobs: int | None = None) -> int:
        """:meth:`run_until_empty` on an event loop: ``async def`` handlers run on this loop."""
        ran = 0
        while max_jobs is None or ran < max_jobs:
            for name in self._queues(queues):
                envelope = self.store.claim(name)
                if envelope is not None:
                    await self.runner.aexecute(envelope, self.sink)
                    ran += 1
                    break
            else:
                break
        return ran

    def next_due(self) -> float | None:
        """The time the next delayed job becomes due, if any."""
        times = [t for name in self._queues(None) if (t := self.store.next_due(name)) is not None]
        return min(times, default=None)
