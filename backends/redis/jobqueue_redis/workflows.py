"""The workflow steps on Redis: each one Lua script (or one read) over the keys of one queue, so one hash slot.

Job steps (link, resolve, follow-ups) run in the queue of the job they name, group steps in the group's
``home`` queue. A workflow that crosses queues is composed by :class:`jobqueue.workflows.Workflows` out of
these steps; none of them touches two queues, so a Redis Cluster never sees a cross-slot script.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobqueue.envelope import Envelope
from jobqueue.refs import GroupRef, JobRef
from jobqueue.states import JobState
from jobqueue.status import ErrorInfo
from jobqueue.workflows.store import (
    GROUP_RETENTION,
    MISSING_PARENT,
    Followup,
    GroupRecord,
    GroupTally,
    JobEnd,
    WorkflowStore,
    dependency_error,
    end_of,
)
from jobqueue_redis.codec import encode_ref, envelope_of
from jobqueue_redis.scripts import Script

if TYPE_CHECKING:
    from jobqueue_redis.backend import RedisBackend

#: group.lua's expiry of a group's keys, set again on each write (as DynamoDB's TTL on SQS)
_GROUP_TTL_MS = str(int(GROUP_RETENTION * 1000))


def decode_ref(raw: str) -> JobRef:
    queue, job_id = json.loads(raw)
    return JobRef(queue=queue, id=job_id)


def end_from(state: str, error: str | None, result: str | None) -> JobEnd:
    """A :class:`JobEnd` from the fields of a job hash (error and result are JSON text, '' if none)."""
    info: ErrorInfo | str | None = None
    if error:
        try:
            info = ErrorInfo.model_validate_json(error)
        except ValueError:
            info = error
    return end_of(JobState(state), info, json.loads(result) if result else None)


class RedisWorkflowStore(WorkflowStore):
    """Dependencies, groups and follow-ups in the keys of the queues they concern (see the backend's README)."""

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend
        #: jobs that just ended without dependents (finish.lua said so): dependents() answers them without a call
        self._childless: dict[JobRef, None] = {}

    def _call(self, what: str, script: Script, queue: str, args: Sequence[Any]) -> Any:
        return self.backend._bounded(what, lambda: self.backend._run(script, queue, args))

    def _now(self) -> str:
        return repr(self.backend.app.clock.now())

    def _key(self, queue: str, name: str) -> str:
        return self.backend.keys(queue).base + name

    def _followup(self, queue: str, job_id: str, fields: Sequence[str]) -> Followup:
        env, state, error, result, attempt = fields
        return Followup(envelope=envelope_of(job_id, queue, env, attempt), end=end_from(state, error, result))

    # -- dependencies -------------------------------------------------------------------------

    def link(self, parent: JobRef, child: JobRef) -> JobEnd | None:
        args = [parent.id, encode_ref(child), self._now(), self.backend.retention(parent.queue)]
        reply = self._call("link", self.backend.scripts.link, parent.queue, args)
        if not reply:
            return None
        if reply[0] == "missing":
            return MISSING_PARENT
        return end_from(*reply)

    def resolve(self, child: JobRef, parent: JobRef, end: JobEnd) -> Envelope | Followup | None:
        error = "" if end.state is JobState.COMPLETED else dependency_error(parent, end).model_dump_json()
        args = [child.id, encode_ref(parent), end.state.value, error, self._now(), self.backend.retention(child.queue)]
        reply = self._call("resolve", self.backend.scripts.resolve, child.queue, args)
        if not reply:
            return None
        if reply[0] == "released":
            return envelope_of(child.id, child.queue, reply[1], reply[2])
        if reply[0] == "followup":
            return self._followup(child.queue, child.id, reply[1:])
        return None

    def note_childless(self, job: JobRef) -> None:
        """``job`` ended without dependents; the next :meth:`dependents` of it need not ask Redis."""
        self._childless[job] = None
        while len(self._childless) > 10_000:
            self._childless.pop(next(iter(self._childless)), None)

    def dependents(self, parent: JobRef) -> list[JobRef]:
        if self._childless.pop(parent, False) is None:
            return []
        key = self._key(parent.queue, f"dependents:{parent.id}")
        return [decode_ref(raw) for raw in sorted(self.backend._bounded("dependents", lambda: self.backend.client.smembers(key)))]

    def unresolved_parents(self, child: JobRef) -> list[JobRef]:
        reply = self._call("unresolved parents", self.backend.scripts.parents, child.queue, [child.id, self._now()])
        return [decode_ref(raw) for raw in sorted(reply)]

    def stale_children(self, queue: str, older_than: float, limit: int = 100) -> list[JobRef]:
        key = self._key(queue, "waiting-children")
        cutoff = repr(self.backend.app.clock.now() - older_than)
        ids = self.backend._bounded("stale children", lambda: self.backend.client.zrangebyscore(key, "-inf", cutoff, start=0, num=limit))
        return [JobRef(queue=queue, id=job_id) for job_id in ids]

    # -- groups -------------------------------------------------------------------------------

    def _group(self, op: str, group: GroupRef, *args: Any) -> Any:
        return self._call(f"group {op}", self.backend.scripts.group, group.home, [op, group.id, *args])

    def create_group(self, record: GroupRecord) -> GroupRecord:
        stored = self._group("create", record.group, record.model_dump_json(), record.size, _GROUP_TTL_MS)
        return GroupRecord.model_validate_json(stored)

    def group(self, group: GroupRef) -> GroupRecord | None:
        key = self._key(group.home, f"group:{group.id}")
        raw = self.backend._bounded("group", lambda: self.backend.client.hget(key, "record"))
        return None if raw is None else GroupRecord.model_validate_json(raw)

    def tally(self, group: GroupRef, index: int, end: JobEnd) -> GroupTally:
        return _tally(self._group("tally", group, index, end.model_dump_json(), end.state.value, _GROUP_TTL_MS))

    def group_tally(self, group: GroupRef) -> GroupTally | None:
        reply = self._group("count", group)
        return _tally(reply) if reply else None

    def group_ends(self, group: GroupRef, start: int = 0, limit: int = 1000) -> list[tuple[int, JobEnd]]:
        flat = self._group("ends", group, start, limit)
        return [(int(flat[i]), JobEnd.model_validate_json(flat[i + 1])) for i in range(0, len(flat), 2)]

    # -- recovery -----------------------------------------------------------------------------

    def followup(self, job: JobRef) -> Followup | None:
        """``job``'s pending follow-up, if it has one."""
        reply = self._call("follow-up", self.backend.scripts.followups, job.queue, ["one", job.id])
        return self._followup(job.queue, job.id, reply[1:]) if reply else None

    def pending_followups(self, queue: str, older_than: float, limit: int = 100) -> list[Followup]:
        now = self.backend.app.clock.now()
        args = ["pending", repr(now - older_than), limit, repr(now)]
        flat = self._call("follow-ups", self.backend.scripts.followups, queue, args)
        return [self._followup(queue, flat[i], flat[i + 1:i + 6]) for i in range(0, len(flat), 6)]

    def clear_followup(self, job: JobRef) -> None:
        self._call("clear follow-up", self.backend.scripts.followups, job.queue, ["clear", job.id])


def _tally(reply: Sequence[Any]) -> GroupTally:
    size, completed, failed, cancelled = (int(v) for v in reply)
    return GroupTally(size=size, completed=completed, failed=failed, cancelled=cancelled)
