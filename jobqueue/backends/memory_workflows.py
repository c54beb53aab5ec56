"""The workflow steps of the in-process store (``memory`` and ``sync``): each one under the store's lock."""

from __future__ import annotations

from collections.abc import Callable

from jobqueue.backends.memory_store import MemoryStore
from jobqueue.envelope import Envelope
from jobqueue.refs import GroupRef, JobRef
from jobqueue.states import FINISHED_STATES, JobState
from jobqueue.workflows.store import (
    MISSING_PARENT,
    Followup,
    GroupRecord,
    GroupTally,
    JobEnd,
    WorkflowStore,
    dependency_error,
    end_of,
)


class MemoryWorkflowStore(WorkflowStore):
    """Dependencies, groups and follow-ups kept beside the jobs of a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore, now: Callable[[], float]) -> None:
        self.store = store
        self._now = now
        self._groups: dict[GroupRef, GroupRecord] = {}
        self._tallies: dict[GroupRef, dict[int, JobEnd]] = {}
        self._counts: dict[GroupRef, dict[JobState, int]] = {}

    # -- dependencies -------------------------------------------------------------------------

    def link(self, parent: JobRef, child: JobRef) -> JobEnd | None:
        with self.store.lock:
            record = self.store.record((parent.queue, parent.id))
            if record is None:
                return MISSING_PARENT
            if record.state in FINISHED_STATES:
                return end_of(record.state, record.error, record.result)
            children = self.store.dependents.setdefault((parent.queue, parent.id), [])
            if child not in children:
                children.append(child)
            return None

    def resolve(self, child: JobRef, parent: JobRef, end: JobEnd) -> Envelope | Followup | None:
        with self.store.lock:
            record = self.store.record((child.queue, child.id))
            if record is None or record.state is not JobState.WAITING_CHILDREN:
                return None
            record.ended_parents[parent] = end
            if end.state is not JobState.COMPLETED:
                state = JobState.CANCELLED if end.state is JobState.CANCELLED else JobState.FAILED
                record.error = dependency_error(parent, end)
                self.store.end_pending(record, state)
                return self.followup(child)
            if all(p in record.ended_parents for p in record.envelope.depends_on):
                self.store.release(record)
                return record.envelope
            return None

    def dependents(self, parent: JobRef) -> list[JobRef]:
        with self.store.lock:
            return list(self.store.dependents.get((parent.queue, parent.id), []))

    def unresolved_parents(self, child: JobRef) -> list[JobRef]:
        with self.store.lock:
            record = self.store.record((child.queue, child.id))
            if record is None or record.state is not JobState.WAITING_CHILDREN:
                return []
            return [p for p in record.envelope.depends_on if p not in record.ended_parents]

    def stale_children(self, queue: str, older_than: float, limit: int = 100) -> list[JobRef]:
        with self.store.lock:
            before = self._now() - older_than
            return [
                r.envelope.ref for r in self.store.records_in(queue, JobState.WAITING_CHILDREN)
                if r.created_at <= before
            ][:limit]

    # -- groups -------------------------------------------------------------------------------

    def create_group(self, record: GroupRecord) -> GroupRecord:
        with self.store.lock:
            stored = self._groups.setdefault(record.group, record)
            self._tallies.setdefault(record.group, {})
            return stored

    def group(self, group: GroupRef) -> GroupRecord | None:
        with self.store.lock:
            return self._groups.get(group)

    def tally(self, group: GroupRef, index: int, end: JobEnd) -> GroupTally:
        with self.store.lock:
            ends = self._tallies.setdefault(group, {})
            if index not in ends:
                ends[index] = end
                counts = self._counts.setdefault(group, {})
                counts[end.state] = counts.get(end.state, 0) + 1
            return self._count(group)

    def group_tally(self, group: GroupRef) -> GroupTally | None:
        with self.store.lock:
            if group not in self._groups:
                return None
            return self._count(group)

    def group_ends(self, group: GroupRef, start: int = 0, limit: int = 1000) -> list[tuple[int, JobEnd]]:
        with self.store.lock:
            return sorted(self._tallies.get(group, {}).items())[start:start + limit]

    def _count(self, group: GroupRef) -> GroupTally:
        record = self._groups.get(group)
        counts = self._counts.get(group, {})
        return GroupTally(
            size=record.size if record is not None else len(self._tallies.get(group, {})),
            completed=counts.get(JobState.COMPLETED, 0),
            failed=counts.get(JobState.FAILED, 0),
            cancelled=counts.get(JobState.CANCELLED, 0),
        )

    # -- recovery -----------------------------------------------------------------------------

    def followup(self, job: JobRef) -> Followup | None:
        """``job``'s pending follow-up, if it has one."""
        with self.store.lock:
            key = (job.queue, job.id)
            record = self.store.record(key)
            if key not in self.store.followups or record is None:
                return None
            return Followup(envelope=record.envelope, end=end_of(record.state, record.error, record.result))

    def pending_followups(self, queue: str, older_than: float, limit: int = 100) -> list[Followup]:
        with self.store.lock:
            before = self._now() - older_than
            keys = [k for k, at in self.store.followups.items() if k[0] == queue and at <= before][:limit]
            found = [self.followup(JobRef(queue=q, id=i)) for q, i in keys]
            return [f for f in found if f is not None]

    def clear_followup(self, job: JobRef) -> None:
        with self.store.lock:
            self.store.followups.pop((job.queue, job.id), None)
