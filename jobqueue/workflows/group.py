"""Groups: members that run in parallel and one callback that runs once, after the last member ended."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from jobqueue.envelope import Envelope
from jobqueue.errors import ConfigurationError
from jobqueue.handle import JobHandle
from jobqueue.refs import GroupRef
from jobqueue.states import JobState
from jobqueue.workflows.coordinator import GROUP_CHUNK, Workflows
from jobqueue.workflows.store import GroupRecord, GroupTally, JobEnd, callback_id, member_id

if TYPE_CHECKING:
    from jobqueue.app import JobQueue
    from jobqueue.job import JobDefinition


class Signature:
    """A job with its payload and options, not enqueued yet: ``send_email.s(to="a@b.c")``.

    The payload is validated when the signature is made, so a bad member fails before any is sent.
    """

    def __init__(self, job: JobDefinition[Any], payload: BaseModel | Mapping[str, Any] | None, options: Mapping[str, Any]) -> None:
        if "_job_id" in options:
            raise ConfigurationError(f"job {job.name!r}: members and callbacks of a group get their ids from the group; drop _job_id")
        self.job = job
        self.payload = job.validate_payload(payload)
        self.options = dict(options)

    def __repr__(self) -> str:
        return f"<Signature {self.job.name!r}>"

    def envelope(self, job_id: str, **fields: Any) -> Envelope:
        """The envelope to enqueue, with ``job_id`` and extra envelope ``fields`` (group membership)."""
        envelope = self.job.build_envelope(self.payload, {**self.options, "_job_id": job_id})
        return envelope.model_copy(update=fields) if fields else envelope


class Group:
    """What ``app.group([...])`` returns; ``.then(callback.s(...))`` adds the callback, ``.enqueue()`` starts it."""

    def __init__(self, app: JobQueue, members: Iterable[Signature], callback: Signature | None = None) -> None:
        self.app = app
        self.members = list(members)
        for member in self.members:
            if not isinstance(member, Signature):
                raise TypeError(f"a group's members are signatures (job.s(...)), not {member!r}")
        self.callback = callback

    def then(self, callback: Signature) -> Group:
        """The same group with ``callback``, run once after every member ended (completed, failed or cancelled)."""
        if not isinstance(callback, Signature):
            raise TypeError(f"a group's callback is a signature (job.s(...)), not {callback!r}")
        return Group(self.app, self.members, callback)

    def enqueue(self, *, group_id: str | None = None) -> GroupHandle:
        """Store the group, then enqueue its members in chunks; returns a :class:`GroupHandle`.

        Give ``group_id`` to make starting the group idempotent: member and callback ids derive from it,
        so calling again after a crash half way sends only what is missing.
        """
        from jobqueue.job import new_job_id

        workflows = self.app.workflows
        gid = group_id or new_job_id()
        home = self.callback.job.queue if self.callback else (self.members[0].job.queue if self.members else self.app.settings.default_queue)
        ref = GroupRef(id=gid, home=home)
        callback = None
        if self.callback is not None:
            callback = self.callback.envelope(callback_id(gid), callback_of=ref)
        record = GroupRecord(
            group=ref, size=len(self.members), member_runs=_runs((m.job.name, m.job.queue) for m in self.members),
            callback=callback, created_at=self.app.clock.now(),
        )
        envelopes = [m.envelope(member_id(gid, i), group=ref, group_index=i) for i, m in enumerate(self.members)]
        workflows.check([*envelopes, *([callback] if callback else [])])
        workflows.store.create_group(record)
        for start in range(0, len(envelopes), GROUP_CHUNK):
            self.app.submit(envelopes[start:start + GROUP_CHUNK])
        if not envelopes and callback is not None:
            self.app.submit([callback])
        return GroupHandle(self.app, record)


def _runs(members: Iterable[tuple[str, str]]) -> list[tuple[str, str, int]]:
    runs: list[tuple[str, str, int]] = []
    for name, queue in members:
        if runs and runs[-1][:2] == (name, queue):
            runs[-1] = (name, queue, runs[-1][2] + 1)
        else:
            runs.append((name, queue, 1))
    return runs


class GroupResults:
    """The members of a group as they ended: what a callback reads through ``ctx.group_results()``.

    Read from the group's own tally, so it holds every member however short the members' retention.
    """

    def __init__(self, record: GroupRecord, ends: Sequence[tuple[int, JobEnd]]) -> None:
        self.record = record
        self.ends = list(ends)

    @property
    def results(self) -> dict[str, Any]:
        """Member id -> result, for the members that completed."""
        return {member_id(self.record.group.id, i): end.result for i, end in self.ends if end.state is JobState.COMPLETED}

    @property
    def failures(self) -> dict[str, str | None]:
        """Member id -> error text, for the members that failed or were cancelled."""
        return {member_id(self.record.group.id, i): end.error for i, end in self.ends if end.state is not JobState.COMPLETED}

    def __len__(self) -> int:
        return len(self.ends)


def read_group_results(workflows: Workflows, group: GroupRef, page: int = 1000) -> GroupResults:
    """Every counted end of ``group``, read a page at a time."""
    record = workflows.group_record(group)
    ends: list[tuple[int, JobEnd]] = []
    while True:
        batch = workflows.store.group_ends(group, len(ends), page)
        ends.extend(batch)
        if len(batch) < page:
            return GroupResults(record, ends)


class GroupHandle:
    """A started group: its id, members, callback, and how far it has got."""

    def __init__(self, app: JobQueue, record: GroupRecord) -> None:
        self.app = app
        self.record = record
        self.ref = record.group
        self.id = record.group.id
        self.size = record.size

    def __repr__(self) -> str:
        return f"<GroupHandle id={self.id!r} size={self.size}>"

    @property
    def callback(self) -> JobHandle | None:
        """The callback's handle (None for a group without one)."""
        callback = self.record.callback
        if callback is None:
            return None
        return JobHandle(self.app, callback.id, queue=callback.queue, name=callback.name, created=False)

    def members(self) -> list[JobHandle]:
        """A handle on each member, in order."""
        return [JobHandle(self.app, ref.id, queue=ref.queue, name=name, created=False) for name, ref in self.record.members()]

    def tally(self) -> GroupTally:
        """How many members have ended, by how."""
        return self.app.workflows.tally(self.ref)

    def results(self) -> GroupResults:
        """The members that have ended so far, and how."""
        return read_group_results(self.app.workflows, self.ref)

    def wait(self, timeout: float | None = None, poll: float = 0.05) -> GroupTally:
        """Block until every member ended and the callback (if any) finished; :class:`TimeoutError` after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            tally = self.tally()
            if tally.done:
                callback = self.callback
                if callback is None:
                    return tally
                status = callback.status()
                if status is not None and status.is_finished:
                    return tally
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"group {self.id!r}: {tally.ended} of {tally.size} members ended after {timeout:g}s")
            time.sleep(poll)
