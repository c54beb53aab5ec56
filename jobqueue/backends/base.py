"""The contract every backend keeps. The conformance suite in ``tests/conformance`` holds them to it."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from jobqueue.envelope import Envelope
from jobqueue.errors import CapabilityMissing
from jobqueue.refs import JobRef
from jobqueue.states import JobState
from jobqueue.status import EnqueueReceipt, Health, JobPage, JobStatus, QueueStats, Throughput

if TYPE_CHECKING:
    from jobqueue.app import JobQueue
    from jobqueue.schedules.store import ScheduleStore
    from jobqueue.workflows.store import WorkflowStore


class Capability(str, Enum):
    """Things a backend may lack; the README's feature table and the conformance suite read these."""

    DELAY = "delay"                      # a _delay holds the job until its time
    RETRY_BACKOFF = "retry_backoff"      # a failed attempt waits its backoff before the next
    PRIORITY = "priority"                # 1 runs before 10; FIFO within a priority
    RATE_LIMIT = "rate_limit"            # N job starts per period, across all workers
    CONCURRENCY_LIMIT = "concurrency_limit"  # at most N active jobs of a queue, across all workers
    RETENTION_COUNT = "retention_count"  # keep only the last N finished jobs
    CANCEL_ACTIVE = "cancel_active"      # an active job sees ctx.cancelled
    PAUSE = "pause"                      # a paused queue starts no job
    LIST_JOBS = "list_jobs"              # list a queue's jobs by state
    WORKER = "worker"                    # a long-running worker process (`jobqueue worker`)
    DEPENDENCIES = "dependencies"        # _depends_on holds a job in waiting-children until its parents end
    GROUPS = "groups"                    # app.group([...]).then(callback): the callback runs once, after all
    IDEMPOTENCY_KEY = "idempotency_key"  # _idempotency_key: one job per key within its window
    CONCURRENCY_KEY = "concurrency_key"  # _concurrency_key: at most N active jobs per key, across workers

    def __str__(self) -> str:
        return self.value


class Backend(ABC):
    """Stores jobs and their states, and gets them run.

    ``queue`` arguments are optional where an id alone is enough; a backend that keys ids
    per queue uses it to find the job quickly and otherwise looks through the app's queues.
    Async twins default to running the sync method in a thread; a backend with a native
    asyncio client overrides them.
    """

    name: ClassVar[str] = "backend"
    lacks: ClassVar[frozenset[Capability]] = frozenset()
    #: the smallest delay, in seconds, the backend resolves; the conformance suite waits at least this long
    time_resolution: ClassVar[float] = 0.0

    app: JobQueue
    _schedule_store: ScheduleStore | None = None

    def bind(self, app: JobQueue) -> None:
        """Attach to the app whose jobs, queues, clock and hooks this backend serves."""
        self.app = app

    def supports(self, capability: Capability) -> bool:
        return capability not in self.lacks

    def require(self, capability: Capability) -> None:
        """Raise :class:`CapabilityMissing` if this backend lacks ``capability``."""
        if capability in self.lacks:
            raise CapabilityMissing(self.name, capability.value)

    # -- producing ----------------------------------------------------------------------------

    @abstractmethod
    def enqueue(self, envelopes: Sequence[Envelope]) -> list[EnqueueReceipt]:
        """Store and deliver ``envelopes`` (already validated). An id that exists in its queue is not a new job."""

    # -- reading ------------------------------------------------------------------------------

    @abstractmethod
    def get(self, job_id: str, queue: str | None = None) -> JobStatus | None:
        """The status of a job, or None if unknown or no longer retained."""

    @abstractmethod
    def stats(self, queue: str) -> QueueStats:
        """Counts per state of ``queue`` and whether it is paused."""

    @abstractmethod
    def list_jobs(self, queue: str, state: JobState, *, limit: int = 50, cursor: str | None = None) -> JobPage:
        """Jobs of ``queue`` in ``state``, oldest first, a page at a time."""

    @abstractmethod
    def health(self) -> Health:
        """Whether the broker answers, and how fast."""

    # -- steering -----------------------------------------------------------------------------

    @abstractmethod
    def cancel(self, job_id: str, queue: str | None = None) -> bool:
        """Cancel a pending job, or ask an active one to stop. False if it is finished or unknown."""

    @abstractmethod
    def retry(self, job_id: str, queue: str | None = None) -> bool:
        """Send a failed or cancelled job back to waiting with fresh attempts. False otherwise."""

    @abstractmethod
    def retry_failed(self, queue: str) -> int:
        """:meth:`retry` every failed job of ``queue``; returns how many."""

    @abstractmethod
    def pause(self, queue: str) -> None:
        """Start no more jobs of ``queue`` until :meth:`resume`. Enqueueing still works."""

    @abstractmethod
    def resume(self, queue: str) -> None:
        """Undo :meth:`pause`."""

    @abstractmethod
    def clean(self, queue: str, state: JobState, older_than: float = 0.0) -> int:
        """Remove jobs of ``queue`` in ``state`` whose last change is older than ``older_than`` seconds."""

    # -- insight: defaults derived from list_jobs; a backend with its own counters overrides them --------

    #: how many finished jobs the default :meth:`throughput` reads at most, per state
    THROUGHPUT_SCAN_LIMIT: ClassVar[int] = 2000

    def throughput(self, queue: str, minutes: int = 15) -> Throughput:
        """Jobs of ``queue`` that completed and failed in each of the last ``minutes`` minutes (oldest first).

        The default counts the finished jobs still retained (up to :attr:`THROUGHPUT_SCAN_LIMIT` per state),
        so retention bounds it; a backend that keeps counters per minute overrides this.
        """
        minutes = max(1, int(minutes))
        now = self.app.clock.now()
        since = (now // 60 - (minutes - 1)) * 60
        counts: dict[JobState, list[int]] = {}
        for state in (JobState.COMPLETED, JobState.FAILED):
            buckets = [0] * minutes
            cursor: str | None = None
            seen = 0
            while seen < self.THROUGHPUT_SCAN_LIMIT:
                page = self.list_jobs(queue, state, limit=min(500, self.THROUGHPUT_SCAN_LIMIT - seen), cursor=cursor)
                for job in page.jobs:
                    if job.finished_at is not None and job.finished_at >= since:
                        index = int((job.finished_at - since) // 60)
                        if 0 <= index < minutes:
                            buckets[index] += 1
                seen += len(page.jobs)
                cursor = page.next_cursor
                if cursor is None or not page.jobs:
                    break
            counts[state] = buckets
        return Throughput(queue=queue, minutes=minutes, since=since, completed=counts[JobState.COMPLETED], failed=counts[JobState.FAILED])

    def oldest_waiting_since(self, queue: str) -> float | None:
        """Since when (epoch seconds) the longest-waiting job of ``queue`` has been ``waiting``; None if none waits.

        The default reads the first waiting job of :meth:`list_jobs` (oldest first).
        """
        page = self.list_jobs(queue, JobState.WAITING, limit=1)
        if not page.jobs:
            return None
        job = page.jobs[0]
        return max(job.created_at, job.not_before or job.created_at)

    def get_many(self, refs: Sequence[JobRef]) -> list[JobStatus | None]:
        """The statuses of ``refs`` in order (None where unknown). The default asks one at a time."""
        return [self.get(ref.id, ref.queue) for ref in refs]

    def workflow_store(self) -> WorkflowStore:
        """The atomic steps of dependencies and groups (see :mod:`jobqueue.workflows.store`)."""
        raise CapabilityMissing(self.name, Capability.DEPENDENCIES.value)

    def close(self) -> None:  # noqa: B027 (a default, not abstract: a backend without connections has nothing to do)
        """Release connections. The backend may be used again after (it reconnects)."""

    # -- asyncio twins ------------------------------------------------------------------------

    async def aenqueue(self, envelopes: Sequence[Envelope]) -> list[EnqueueReceipt]:
        return await asyncio.to_thread(self.enqueue, envelopes)

    async def aget(self, job_id: str, queue: str | None = None) -> JobStatus | None:
        return await asyncio.to_thread(self.get, job_id, queue)

    async def acancel(self, job_id: str, queue: str | None = None) -> bool:
        return await asyncio.to_thread(self.cancel, job_id, queue)

    async def astats(self, queue: str) -> QueueStats:
        return await asyncio.to_thread(self.stats, queue)

    async def ahealth(self) -> Health:
        return await asyncio.to_thread(self.health)

    # -- schedules ----------------------------------------------------------------------------

    def schedule_store(self) -> ScheduleStore:
        """Where dynamic schedules, the ticker's cursors and its leader lease live.

        The default keeps them in this process (right for sync and memory); a networked backend
        overrides it so every worker and every client shares them.
        """
        store = self._schedule_store
        if store is None:
            from jobqueue.schedules.store import InMemoryScheduleStore

            store = InMemoryScheduleStore(self.app.clock.now)
            self._schedule_store = store
        return store

    # -- workers ------------------------------------------------------------------------------

    def run_worker(self, queues: Sequence[str] | None = None, **options: Any) -> None:
        """Run a long-running worker until told to stop (``jobqueue worker``)."""
        raise CapabilityMissing(self.name, Capability.WORKER.value)
