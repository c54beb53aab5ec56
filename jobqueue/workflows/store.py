"""The steps a backend performs atomically for workflows; :class:`~jobqueue.workflows.Workflows` composes them.

Every method is one atomic step in *one* place: the queue of the job (or group) it names. On Redis Cluster
that is one hash slot, on DynamoDB one item (or one transaction). A workflow that spans queues is a sequence
of such steps, each idempotent, and each leaving a trace that recovery can pick up if the process dies
between two of them:

- **Enqueue a child** (``depends_on``): the backend stores it in ``waiting-children`` (its ordinary
  ``enqueue``), then the coordinator calls :meth:`WorkflowStore.link` on each parent and, for a parent
  that has already ended, :meth:`WorkflowStore.resolve` on the child. A crash in between leaves the child in
  ``waiting-children`` with parents it never linked; :meth:`stale_children` + :meth:`unresolved_parents`
  find it and the same two steps run again.
- **A job ends** (completed, failed for good, cancelled) that has dependents or is a group member: the
  backend's own finish step records a *follow-up* for it, in the same atomic step that ends it. The
  coordinator then resolves each dependent, tallies the group (and enqueues the group's callback, whose id
  is fixed, when the tally is full) and clears the follow-up. A crash in between leaves the follow-up,
  which :meth:`pending_followups` returns to recovery.

Ends are reported as a :class:`JobEnd`; ``state`` is ``completed``, ``failed`` or ``cancelled``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobqueue.envelope import Envelope
from jobqueue.refs import GroupRef, JobRef
from jobqueue.states import JobState
from jobqueue.status import ErrorInfo

#: how long a group's record, tally and member ends are kept after they were last written (seconds): long past its
#: callback, which reads them, yet not forever (a backend expires them; a member ending later starts no callback)
GROUP_RETENTION = 30 * 86400.0


class JobEnd(BaseModel):
    """How a parent (or group member) ended: its state, its result if it completed, why if it did not."""

    model_config = ConfigDict(frozen=True)

    state: JobState
    error: str | None = None
    result: Any = None


#: what :meth:`WorkflowStore.link` answers for a parent that is not stored (never enqueued, or no longer retained)
MISSING_PARENT = JobEnd(state=JobState.FAILED, error="unknown: never enqueued, or no longer retained")


class Followup(BaseModel):
    """A job that ended and whose dependents or group have not all been told yet."""

    model_config = ConfigDict(frozen=True)

    envelope: Envelope
    end: JobEnd


class GroupRecord(BaseModel):
    """What a group keeps in its home queue: its size, where its members live and the callback to enqueue.

    Member ``i`` has id ``f"{group.id}.{i}"``; ``member_runs`` lists (job name, queue, how many) runs in
    member order, so a group of 10,000 members of one job is one short entry, not 10,000 ids.
    """

    model_config = ConfigDict(frozen=True)

    group: GroupRef
    size: int = Field(ge=0)
    member_runs: list[tuple[str, str, int]] = Field(default_factory=list)
    callback: Envelope | None = None
    created_at: float = 0.0

    def members(self) -> list[tuple[str, JobRef]]:
        """(job name, job) of every member, in order."""
        members = []
        index = 0
        for name, queue, count in self.member_runs:
            for _ in range(count):
                members.append((name, JobRef(queue=queue, id=member_id(self.group.id, index))))
                index += 1
        return members


class GroupTally(BaseModel):
    """How many members of a group have ended, by how they ended."""

    size: int
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def ended(self) -> int:
        return self.completed + self.failed + self.cancelled

    @property
    def done(self) -> bool:
        """True once every member has ended."""
        return self.ended >= self.size


def member_id(group_id: str, index: int) -> str:
    """The id of member ``index`` of group ``group_id``."""
    return f"{group_id}.{index}"


def callback_id(group_id: str) -> str:
    """The id of group ``group_id``'s callback job (fixed, so enqueueing it twice makes one job)."""
    return f"{group_id}.then"


class WorkflowStore(ABC):
    """The atomic steps of dependencies and groups, implemented by each backend for its store.

    Besides these methods, a backend that supports workflows keeps four promises in its own code paths:

    1. ``enqueue`` stores an envelope with ``depends_on`` in ``waiting-children`` (delivering nothing).
    2. Its finish step, when it ends a job (completed, failed with no attempt left, cancelled, including a
       cancel of a pending job) that has dependents (from :meth:`link`) or a ``group``, records a follow-up
       in the same atomic step, and then calls ``app.workflows.after_end(followup)`` (errors there are
       logged, never raised into the job: recovery runs the follow-up again).
    3. A long-running worker calls ``app.workflows.recover(queues)`` now and then (say every few seconds).
    4. ``_idempotency_key`` / ``_concurrency_key`` are honoured by ``enqueue`` and by claiming (or declared
       lacking in ``Backend.lacks``).
    """

    # -- dependencies -----------------------------------------------------------------------------

    @abstractmethod
    def link(self, parent: JobRef, child: JobRef) -> JobEnd | None:
        """In the parent's place: if the parent has not ended, remember ``child`` as its dependent and return
        None; if it ended, return how (remembering nothing). A parent that is not stored: :data:`MISSING_PARENT`.
        Idempotent.
        """

    @abstractmethod
    def resolve(self, child: JobRef, parent: JobRef, end: JobEnd) -> Envelope | Followup | None:
        """In the child's place: note that ``parent`` ended as ``end``. Idempotent; a no-op (None) unless
        the child is in ``waiting-children``.

        - ``end`` failed: the child ends ``failed``, its error :func:`dependency_error` (which names the
          parent); cancelled: the child ends ``cancelled`` the same way. That is an end like any other: if
          the child has dependents or a group, its follow-up is recorded in this step and returned.
        - every parent has now completed: the child moves to ``waiting`` (or ``delayed`` if its
          ``not_before`` is still ahead) and is delivered (Redis: pushed and workers woken; SQS: sent);
          its envelope is returned.
        - otherwise None.
        """

    @abstractmethod
    def dependents(self, parent: JobRef) -> list[JobRef]:
        """The children :meth:`link` remembered for ``parent``."""

    @abstractmethod
    def unresolved_parents(self, child: JobRef) -> list[JobRef]:
        """The parents of ``child`` whose end it has not noted yet (empty unless it is in waiting-children)."""

    @abstractmethod
    def stale_children(self, queue: str, older_than: float, limit: int = 100) -> list[JobRef]:
        """Jobs of ``queue`` in ``waiting-children`` stored more than ``older_than`` seconds ago."""

    # -- groups ---------------------------------------------------------------------------------------

    @abstractmethod
    def create_group(self, record: GroupRecord) -> GroupRecord:
        """In the group's home: store ``record`` unless the group exists; return the stored one."""

    @abstractmethod
    def group(self, group: GroupRef) -> GroupRecord | None:
        """The group's record, or None if unknown."""

    @abstractmethod
    def tally(self, group: GroupRef, index: int, end: JobEnd) -> GroupTally:
        """In the group's home: count member ``index`` as ended ``end`` unless it was counted before
        (idempotent per index); return the tally after."""

    @abstractmethod
    def group_tally(self, group: GroupRef) -> GroupTally | None:
        """The tally so far, or None if the group is unknown."""

    @abstractmethod
    def group_ends(self, group: GroupRef, start: int = 0, limit: int = 1000) -> list[tuple[int, JobEnd]]:
        """The ends :meth:`tally` counted, as (member index, end) by index, from the ``start``-th counted on.

        Kept with the group (not read from the members' records), so the members' retention cannot lose
        them before the callback reads them.
        """

    # -- recovery ------------------------------------------------------------------------------------

    @abstractmethod
    def pending_followups(self, queue: str, older_than: float, limit: int = 100) -> list[Followup]:
        """Follow-ups of ``queue``'s jobs recorded more than ``older_than`` seconds ago and not cleared.

        A backend may move an entry's time to now when it hands it out (Redis does, for follow-ups and stale
        children alike), so one entry that keeps failing cannot hide the rest behind ``limit``.
        """

    @abstractmethod
    def clear_followup(self, job: JobRef) -> None:
        """Forget ``job``'s follow-up: its dependents and group have all been told."""


def dependency_error(parent: JobRef, end: JobEnd) -> ErrorInfo:
    """The error of a child whose ``parent`` ended as ``end`` (failed or cancelled)."""
    verb = "was cancelled" if end.state is JobState.CANCELLED else "failed"
    kind = "DependencyCancelled" if end.state is JobState.CANCELLED else "DependencyFailed"
    detail = f": {end.error}" if end.error else ""
    return ErrorInfo(type=kind, message=f"parent job {parent.id!r} (queue {parent.queue!r}) {verb}{detail}"[:4000], retryable=False)


def end_of(state: JobState, error: Any = None, result: Any = None) -> JobEnd:
    """A :class:`JobEnd` for a job that ended in ``state`` with ``error`` (an ErrorInfo or text) or ``result``."""
    if state is JobState.COMPLETED:
        return JobEnd(state=state, result=result)
    return JobEnd(state=state, error=None if error is None else str(error)[:1000])
