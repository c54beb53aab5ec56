"""Running a job inline, in the caller, when Redis cannot be reached at enqueue (``JOBQUEUE_FALLBACK=sync``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jobqueue.backends.memory import _StoreSink
from jobqueue.backends.memory_store import MemoryStore
from jobqueue.envelope import Envelope
from jobqueue.runner import JobRunner
from jobqueue.status import EnqueueReceipt, JobStatus

if TYPE_CHECKING:
    from jobqueue.app import JobQueue

logger = logging.getLogger("jobqueue.redis.fallback")

# ids jobqueue generates itself (uuid4().hex); any other id was given with _job_id
_GENERATED_ID = re.compile(r"^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$")


def why_not_inline(envelope: Envelope) -> str | None:
    """Why ``envelope`` must not run inline (it could run early or twice), or None if it may."""
    if envelope.not_before is not None:
        return "it has a _delay (running it now would run it early)"
    if envelope.idempotency_key:
        return "it has an idempotency key (Redis could not check it)"
    if envelope.depends_on:
        return "it depends on other jobs"
    if envelope.group is not None or envelope.callback_of is not None:
        return "it belongs to a group (its end must be counted in Redis)"
    if envelope.concurrency_key:
        return "it has a concurrency key (Redis could not check the key's limit)"
    if not _GENERATED_ID.match(envelope.id):
        return "it has a _job_id (Redis could not check it is new, so it might run twice)"
    return None


class InlineFallback:
    """One attempt of each job, through the core runner, recorded in a throw-away in-process store.

    The store keeps the statuses readable by id (within the queues' retention) while Redis is away.
    """

    def __init__(self, app: JobQueue) -> None:
        self.store = MemoryStore(app.queue_config, app.clock.now)
        self.runner = JobRunner(app)
        self.sink = _StoreSink(self.store)
        self.used = False

    def run(self, envelopes: Sequence[Envelope], reason: BaseException) -> list[EnqueueReceipt]:
        receipts = self._add(envelopes, reason)
        for envelope, receipt in zip(envelopes, receipts):
            claimed = self.store.claim_id(envelope.queue, envelope.id) if receipt.created else None
            if claimed is not None:
                self.runner.execute(claimed, self.sink)
        return receipts

    async def arun(self, envelopes: Sequence[Envelope], reason: BaseException) -> list[EnqueueReceipt]:
        receipts = self._add(envelopes, reason)
        for envelope, receipt in zip(envelopes, receipts):
            claimed = self.store.claim_id(envelope.queue, envelope.id) if receipt.created else None
            if claimed is not None:
                await self.runner.aexecute(claimed, self.sink)
        return receipts

    def _add(self, envelopes: Sequence[Envelope], reason: BaseException) -> list[EnqueueReceipt]:
        self.used = True
        for envelope in envelopes:
            logger.warning(
                "Redis is unreachable (%s); running job %s (%s) inline, one attempt, in this process",
                reason, envelope.id, envelope.name,
            )
        return self.store.add(envelopes)

    def get(self, job_id: str, queue: str | None = None) -> JobStatus | None:
        if not self.used:
            return None
        return self.store.get(job_id, queue)
