"""The ``sync`` backend: a job runs in the caller, at enqueue, through the same runner as every backend."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from jobqueue.backends.base import Capability
from jobqueue.backends.memory import InProcessBackend
from jobqueue.backends.memory_store import MemoryStore
from jobqueue.backends.memory_workflows import MemoryWorkflowStore
from jobqueue.envelope import Envelope
from jobqueue.refs import JobRef
from jobqueue.states import JobState
from jobqueue.status import EnqueueReceipt
from jobqueue.workflows.store import Followup, JobEnd

if TYPE_CHECKING:
    from jobqueue.app import JobQueue

logger = logging.getLogger("jobqueue.sync")


class SyncBackend(InProcessBackend):
    """Runs each job inline when it is enqueued; statuses stay in this process.

    Attempts run back to back (the caller never sleeps for a backoff). A ``_delay``ed job,
    or one enqueued to a paused queue, waits until :meth:`run_due` is called after its time.
    Inside a running event loop, ``enqueue`` of an ``async def`` job schedules it on that loop
    and returns at once; ``aenqueue`` awaits it.
    """

    name: ClassVar[str] = "sync"
    lacks: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.RETRY_BACKOFF, Capability.RATE_LIMIT, Capability.CONCURRENCY_LIMIT, Capability.CONCURRENCY_KEY}
    )

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def enqueue(self, envelopes: Sequence[Envelope]) -> list[EnqueueReceipt]:
        receipts = self.store.add(envelopes)
        for envelope, receipt in zip(envelopes, receipts):
            if receipt.created:
                self._start(envelope)
        return receipts

    async def aenqueue(self, envelopes: Sequence[Envelope]) -> list[EnqueueReceipt]:
        receipts = self.store.add(envelopes)
        for envelope, receipt in zip(envelopes, receipts):
            if receipt.created:
                await self._arun_inline(envelope.queue, envelope.id)
        return receipts

    def bind(self, app: JobQueue) -> None:
        super().bind(app)
        self.workflows = _InlineWorkflowStore(self.store, app.clock.now, self)

    def _start(self, envelope: Envelope) -> None:
        job = self.app.registry.get(envelope.name)
        if job is not None and job.is_async:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                task = loop.create_task(self._arun_inline(envelope.queue, envelope.id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return
        self._run_inline(envelope.queue, envelope.id)

    def _run_inline(self, queue: str, job_id: str) -> None:
        """Run every attempt of one job, back to back, until it ends (or its queue is paused)."""
        envelope = self.store.claim_id(queue, job_id)
        if envelope is not None and self.runner.execute(envelope, self.sink).state is JobState.DELAYED:
            self._run_retries(queue, job_id)

    def _run_retries(self, queue: str, job_id: str) -> None:
        while (envelope := self.store.claim_id(queue, job_id, ignore_delay=True)) is not None:
            if self.runner.execute(envelope, self.sink).state is not JobState.DELAYED:
                return

    async def _arun_inline(self, queue: str, job_id: str) -> None:
        retrying = False
        while (envelope := self.store.claim_id(queue, job_id, ignore_delay=retrying)) is not None:
            outcome = await self.runner.aexecute(envelope, self.sink)
            retrying = outcome.state is JobState.DELAYED
            if not retrying:
                return

    def run_due(self, queues: Sequence[str] | None = None) -> int:
        """Run every job that is due now: delayed jobs whose time has passed, and jobs of resumed queues."""
        ran = 0
        for name in self._queues(queues):
            while (envelope := self.store.claim(name, honour_limits=False)) is not None:
                ran += 1
                if self.runner.execute(envelope, self.sink).state is JobState.DELAYED:
                    self._run_retries(name, envelope.id)
        return ran

    def resume(self, queue: str) -> None:
        super().resume(queue)
        self.run_due([queue])

    def retry(self, job_id: str, queue: str | None = None) -> bool:
        status = self.store.get(job_id, queue)
        if status is None or not super().retry(job_id, status.queue):
            return False
        self._run_inline(status.queue, job_id)
        return True

    def retry_failed(self, queue: str) -> int:
        count = super().retry_failed(queue)
        self.run_due([queue])
        return count


class _InlineWorkflowStore(MemoryWorkflowStore):
    """The sync backend runs a child inline as soon as its last parent completes."""

    def __init__(self, store: MemoryStore, now: Callable[[], float], backend: SyncBackend) -> None:
        super().__init__(store, now)
        self.backend = backend

    def resolve(self, child: JobRef, parent: JobRef, end: JobEnd) -> Envelope | Followup | None:
        outcome = super().resolve(child, parent, end)
        if isinstance(outcome, Envelope):
            self.backend._start(outcome)
        return outcome
