"""``app.workflows``: dependencies and groups as sequences of idempotent steps over a :class:`WorkflowStore`."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from jobqueue.backends.base import Capability
from jobqueue.envelope import Envelope
from jobqueue.errors import JobNotFound
from jobqueue.refs import GroupRef, JobRef
from jobqueue.states import JobState
from jobqueue.status import EnqueueReceipt, JobStatus
from jobqueue.workflows.store import Followup, GroupRecord, GroupTally, JobEnd, WorkflowStore

if TYPE_CHECKING:
    from jobqueue.app import JobQueue

logger = logging.getLogger("jobqueue.workflows")

#: how long a follow-up or an unlinked child may sit before recovery takes it for a crashed step's leftover
RECOVER_AFTER = 30.0
#: members enqueued per backend call when a group starts
GROUP_CHUNK = 500


class Workflows:
    """The coordinator of one app's dependencies and groups; backends provide the atomic steps."""

    def __init__(self, app: JobQueue) -> None:
        self.app = app

    @property
    def store(self) -> WorkflowStore:
        """The backend's workflow steps (:class:`CapabilityMissing` on a backend without them)."""
        return self.app.backend.workflow_store()

    # -- enqueue --------------------------------------------------------------------------------

    def check(self, envelopes: Sequence[Envelope]) -> None:
        """Refuse options the backend declares it lacks, before anything is sent."""
        backend = self.app.backend
        for envelope in envelopes:
            if envelope.depends_on:
                backend.require(Capability.DEPENDENCIES)
            if envelope.group is not None or envelope.callback_of is not None:
                backend.require(Capability.GROUPS)
            if envelope.idempotency_key is not None:
                backend.require(Capability.IDEMPOTENCY_KEY)
            if envelope.concurrency_key is not None:
                backend.require(Capability.CONCURRENCY_KEY)

    def enqueue(self, envelopes: Sequence[Envelope]) -> list[EnqueueReceipt]:
        """Store ``envelopes``; a child (``depends_on``) is linked to its parents once stored.

        Every parent must be known to the backend, else :class:`JobNotFound` names it and nothing is sent.
        """
        parents = {p for envelope in envelopes for p in envelope.depends_on}
        missing = [p for p in parents if self.app.backend.get(p.id, p.queue) is None]
        if missing:
            raise JobNotFound(f"cannot depend on unknown job(s) {', '.join(sorted(map(str, missing)))} (never enqueued, or no longer retained)")
        receipts = self.app.backend.enqueue(envelopes)
        for envelope, receipt in zip(envelopes, receipts):
            if receipt.created and envelope.depends_on:
                self._link(envelope.ref, envelope.depends_on)
        return receipts

    def _link(self, child: JobRef, parents: Iterable[JobRef]) -> None:
        store = self.store
        for parent in parents:
            end = store.link(parent, child)
            if end is not None and self._resolve(store, child, parent, end):
                return

    def _resolve(self, store: WorkflowStore, child: JobRef, parent: JobRef, end: JobEnd) -> bool:
        """Tell ``child`` how ``parent`` ended; True if that ended the child (a failed/cancelled parent)."""
        outcome = store.resolve(child, parent, end)
        if isinstance(outcome, Followup):
            self.after_end(outcome)
        return end.state is not JobState.COMPLETED

    # -- ends ---------------------------------------------------------------------------------------

    def after_end(self, followup: Followup) -> None:
        """Tell the dependents and the group of a job that ended, then clear its follow-up.

        Backends call this right after the step that ended the job; recovery calls it again for a
        follow-up left by a crash. Every step is idempotent, so running it twice is harmless.
        """
        store = self.store
        pending = [followup]
        while pending:
            current = pending.pop()
            envelope, end = current.envelope, current.end
            for child in store.dependents(envelope.ref):
                outcome = store.resolve(child, envelope.ref, end)
                if isinstance(outcome, Followup):
                    pending.append(outcome)
            if envelope.group is not None and envelope.group_index is not None:
                tally = store.tally(envelope.group, envelope.group_index, end)
                if tally.done:
                    self._enqueue_callback(store, envelope.group)
            store.clear_followup(envelope.ref)

    def _enqueue_callback(self, store: WorkflowStore, group: GroupRef) -> None:
        record = store.group(group)
        if record is None:
            logger.error("group %s ended but its record is gone; its callback cannot be enqueued", group)
            return
        if record.callback is not None:
            self.app.submit([record.callback])  # its id is fixed: a second enqueue is the same job

    def recover(self, queues: Sequence[str] | None = None, *, older_than: float = RECOVER_AFTER) -> int:
        """Finish workflow steps a crash left half done in ``queues`` (default: the app's); returns how many.

        Follow-ups older than ``older_than`` seconds are run again, and children still in waiting-children
        after that long are linked to their parents again. Long-running workers call this every few seconds.
        """
        store = self.store
        done = 0
        for queue in queues if queues is not None else list(self.app.queues):
            for followup in store.pending_followups(queue, older_than):
                self.after_end(followup)
                done += 1
            for child in store.stale_children(queue, older_than):
                parents = store.unresolved_parents(child)
                if parents:
                    self._link(child, parents)
                    done += 1
        return done

    # -- reading ------------------------------------------------------------------------------------

    def statuses(self, refs: Sequence[JobRef]) -> list[JobStatus | None]:
        """The statuses of ``refs``, in order (None for a job no longer retained)."""
        return self.app.backend.get_many(refs)

    def group_record(self, group: GroupRef) -> GroupRecord:
        record = self.store.group(group)
        if record is None:
            raise JobNotFound(f"group {group.id!r} is not known on queue {group.home!r}")
        return record

    def tally(self, group: GroupRef) -> GroupTally:
        """How many of ``group``'s members have ended, by how."""
        tally = self.store.group_tally(group)
        if tally is None:
            raise JobNotFound(f"group {group.id!r} is not known on queue {group.home!r}")
        return tally
