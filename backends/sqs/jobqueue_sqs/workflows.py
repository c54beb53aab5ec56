"""Workflow steps on DynamoDB: dependencies, groups and follow-ups in the job table (see jobqueue.workflows.store).

Every step is one conditional write on one item; no step needs a transaction:

- **link** (parent): ``SET fq, ADD deps`` while the parent has not ended. ``fq`` (the job's queue) marks a
  job with duties: only then does the ``followup_at`` that every end writes put it in the sparse
  ``by_followup`` index.
- **resolve** (child): read, then one write conditional on what was read (state, ``waiting_on``, the
  parent not yet in ``resolved``). The write that releases the last parent also marks the child
  ``unsent`` (indexed by ``followup_at``); then the message is sent and the mark removed. A crash between
  leaves the mark, and :meth:`DynamoWorkflowStore.pending_followups` sends the child again (a second
  delivery is skipped by the handler's attempt accounting).
- **groups**: one item for the record, one marker a member (``#gend#...``: how it ended; first end wins)
  and one tally chunk per 100 members (``#gtally#...``: the set of counted indexes and counters). A member
  is counted by one conditional update of its chunk (``NOT contains(seen, i)``), so counting is idempotent
  per index; a chunk that fills adds its number to the group item's ``full`` set and its counters to the
  group's (idempotent the same way). The group is done when every chunk is full. No item holds more
  than 100 members' worth, so a group of any size never makes one large item or message, and members
  never contend on one hot item (a TransactWriteItems per member on the group item would).
- **follow-ups**: the ``by_followup`` index (``fq`` = queue, ``followup_at``), read with a consistent
  BatchGetItem of the items it names, since an index lags.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from jobqueue.envelope import Envelope
from jobqueue.refs import GroupRef, JobRef
from jobqueue.states import FINISHED_STATES, JobState
from jobqueue.workflows.store import (
    GROUP_RETENTION,
    MISSING_PARENT,
    Followup,
    GroupRecord,
    GroupTally,
    JobEnd,
    WorkflowStore,
    dependency_error,
)
from jobqueue_sqs.errors import SendFailed
from jobqueue_sqs.resources import FOLLOWUP_INDEX, STATE_INDEX, TTL_ATTRIBUTE
from jobqueue_sqs.settings import MAX_ITEM_BYTES
from jobqueue_sqs.store import ITEM_RESERVE, TRUNCATED_RESULT, Item, JobRow, is_conditional_failure, job_key, pack_text, ref_of, ref_token, unpack_text

if TYPE_CHECKING:
    from jobqueue_sqs.backend import SQSBackend

logger = logging.getLogger("jobqueue.sqs.workflows")

#: members per tally chunk
CHUNK = 100
#: the group record (its callback's envelope) must fit one item
RECORD_BUDGET = MAX_ITEM_BYTES - 8 * 1024
#: finished jobs whose dependents are remembered (a finished job gains no dependent: link refuses it)
DEPENDENTS_CACHE = 4096
#: group sizes remembered (a group's size never changes)
SIZES_CACHE = 1024
#: index pages stale_children reads at most per call (children that merely wait are read and filtered out)
STALE_PAGES = 10
_FINISHED = {":completed": {"S": "completed"}, ":failed": {"S": "failed"}, ":cancelled": {"S": "cancelled"}}
_NOT_FINISHED = "NOT (#state IN (:completed, :failed, :cancelled))"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": repr(float(value)) if isinstance(value, float) else str(value)}


def _int(item: Item | None, name: str) -> int:
    value = (item or {}).get(name)
    return int(float(value["N"])) if value is not None else 0


def group_key(group: GroupRef) -> dict[str, Any]:
    return {"pk": _s(f"#group#{group.home}#{group.id}")}


def chunk_key(group: GroupRef, chunk: int) -> dict[str, Any]:
    return {"pk": _s(f"#gtally#{group.home}#{group.id}#{chunk}")}


def end_key(group: GroupRef, index: int) -> dict[str, Any]:
    return {"pk": _s(f"#gend#{group.home}#{group.id}#{index}")}


def chunks_of(size: int) -> int:
    return math.ceil(size / CHUNK)


def chunk_size(size: int, chunk: int) -> int:
    return min(CHUNK, size - chunk * CHUNK)


class _Lru(OrderedDict[Any, Any]):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.lock = threading.Lock()

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self[key] = value
            self.move_to_end(key)
            while len(self) > self.limit:
                self.popitem(last=False)

    def find(self, key: Any) -> Any:
        with self.lock:
            return self.get(key)


class DynamoWorkflowStore(WorkflowStore):
    """The workflow steps of an :class:`~jobqueue_sqs.backend.SQSBackend`, in its job table."""

    def __init__(self, backend: SQSBackend) -> None:
        self.backend = backend
        self.store = backend.store
        self.table = backend.store.table
        self._dependents = _Lru(DEPENDENTS_CACHE)
        self._sizes = _Lru(SIZES_CACHE)

    @property
    def _db(self) -> Any:
        return self.backend.clients.dynamodb

    def _now(self) -> float:
        return self.backend.app.clock.now()

    def _get(self, key: dict[str, Any], projection: str | None = None, names: dict[str, str] | None = None) -> Item | None:
        extra: dict[str, Any] = {}
        if projection:
            extra["ProjectionExpression"] = projection
        if names:
            extra["ExpressionAttributeNames"] = names
        item = self._db.get_item(TableName=self.table, Key=key, ConsistentRead=True, **extra).get("Item")
        return None if item is None else dict(item)

    def _row(self, ref: JobRef) -> JobRow | None:
        item = self._get(job_key(ref.queue, ref.id))
        return None if item is None else JobRow(item)

    def _batch_get(self, keys: Sequence[dict[str, Any]], projection: str | None = None) -> list[Item]:
        """Consistent BatchGetItem of ``keys``, 100 a request, unprocessed keys asked again."""
        found: list[Item] = []
        for start in range(0, len(keys), 100):
            request_keys: dict[str, Any] = {"Keys": list(keys[start:start + 100]), "ConsistentRead": True}
            if projection:
                request_keys["ProjectionExpression"] = projection
            request: dict[str, Any] = {self.table: request_keys}
            while request:
                answer = self._db.batch_get_item(RequestItems=request)
                found.extend(answer.get("Responses", {}).get(self.table, []))
                request = answer.get("UnprocessedKeys") or {}
        return found

    # -- ends ---------------------------------------------------------------------------------------

    def followup_of(self, row: JobRow | None) -> Followup | None:
        """The follow-up a finished row carries (None if it has no duties, or they were done)."""
        if row is None or row.state not in FINISHED_STATES:
            return None
        self._dependents.put((row.queue, row.id), row.dependents)  # final: no dependent is linked to a finished job
        if not row.followup_pending:
            return None
        return Followup(envelope=row.envelope(), end=row.end())

    # -- dependencies ------------------------------------------------------------------------------

    def link(self, parent: JobRef, child: JobRef) -> JobEnd | None:
        for _ in range(20):
            now = self._now()
            try:
                self._db.update_item(
                    TableName=self.table, Key=job_key(parent.queue, parent.id), UpdateExpression="SET fq = :q ADD deps :child",
                    ConditionExpression=f"attribute_exists(pk) AND (attribute_not_exists(#exp) OR #exp > :now) AND {_NOT_FINISHED}",
                    ExpressionAttributeNames={"#exp": TTL_ATTRIBUTE, "#state": "state"},
                    ExpressionAttributeValues={":q": _s(parent.queue), ":child": {"SS": [ref_token(child)]}, ":now": _n(now), **_FINISHED},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if not is_conditional_failure(exc):
                    raise
                item = exc.response.get("Item") or self._get(job_key(parent.queue, parent.id))
                if item is None or float(item.get(TTL_ATTRIBUTE, {"N": "inf"})["N"]) <= now:
                    return MISSING_PARENT
                row = JobRow(dict(item))
                if row.state in FINISHED_STATES:
                    return row.end()
                continue  # it changed between the write and the read: try again
            # the parent will tell the child: recovery need not link it again (a crash before this mark: it does, harmlessly)
            self.store.update_if(job_key(child.queue, child.id), "ADD noted :parent", "attribute_exists(pk)", None,
                                 {":parent": {"SS": [ref_token(parent)]}})
            return None
        raise RuntimeError(f"job {parent}: its item kept changing while {child} was linked to it")

    def resolve(self, child: JobRef, parent: JobRef, end: JobEnd) -> Envelope | Followup | None:
        token = ref_token(parent)
        for _ in range(20):
            row = self._row(child)
            if row is None or row.state is not JobState.WAITING_CHILDREN or token in row.resolved:
                return None
            now = self._now()
            if end.state is not JobState.COMPLETED:
                ended = self._end_child(row, parent, end, now)
                if ended is None:
                    continue
                return self.followup_of(ended)
            if row.waiting_on > 1:
                if self._note(row, token, now) is None:
                    continue
                return None
            released = self._release(row, token, now)
            if released is None:
                continue
            envelope = released.envelope()
            self.send_released(envelope)
            return envelope
        raise RuntimeError(f"job {child}: its item kept changing while parent {parent} was resolved")

    def _seen(self, row: JobRow, token: str) -> tuple[str, dict[str, Any]]:
        """The condition that ``row`` is still as read: in waiting-children, waiting on as many, ``token`` not resolved."""
        return ("#state = :wc AND waiting_on = :seen AND NOT contains(resolved, :token)",
                {":wc": _s(JobState.WAITING_CHILDREN.value), ":seen": _n(row.waiting_on), ":token": _s(token),
                 ":tokens": {"SS": [token]}})

    def _note(self, row: JobRow, token: str, now: float) -> Item | None:
        condition, values = self._seen(row, token)
        return self.store.update_if(job_key(row.queue, row.id), "SET waiting_on = :left, updated_at = :now ADD resolved :tokens, noted :tokens",
                                    condition, {"#state": "state"}, {**values, ":left": _n(row.waiting_on - 1), ":now": _n(now)})

    def _release(self, row: JobRow, token: str, now: float) -> JobRow | None:
        condition, values = self._seen(row, token)
        not_before = row.not_before
        state = JobState.DELAYED if not_before is not None and not_before > now else JobState.WAITING
        item = self.store.update_if(
            job_key(row.queue, row.id),
            "SET #state = :state, qstate = :qs, waiting_on = :zero, unsent = :true, fq = :q, followup_at = :now, updated_at = :now "
            "ADD resolved :tokens, noted :tokens",
            condition, {"#state": "state"},
            {**values, ":state": _s(state.value), ":qs": _s(f"{row.queue}#{state.value}"), ":zero": _n(0), ":true": {"BOOL": True},
             ":q": _s(row.queue), ":now": _n(now)},
        )
        return None if item is None else JobRow(item)

    def _end_child(self, row: JobRow, parent: JobRef, end: JobEnd, now: float) -> JobRow | None:
        state = JobState.CANCELLED if end.state is JobState.CANCELLED else JobState.FAILED
        names = {"#state": "state", "#error": "error"}
        values: dict[str, Any] = {":wc": _s(JobState.WAITING_CHILDREN.value), ":end": _s(state.value), ":qs": _s(f"{row.queue}#{state.value}"),
                                  ":error": _s(dependency_error(parent, end).model_dump_json()), ":now": _n(now),
                                  ":tokens": {"SS": [ref_token(parent)]}}
        sets = "SET #state = :end, qstate = :qs, #error = :error, finished_at = :now, updated_at = :now, followup_at = :now"
        expires = self.store.expires_at(row.queue, state, now)
        if expires is not None:
            sets += ", #exp = :exp"
            names["#exp"] = TTL_ATTRIBUTE
            values[":exp"] = _n(expires)
        item = self.store.update_if(job_key(row.queue, row.id), sets + " ADD resolved :tokens, noted :tokens", "#state = :wc", names, values)
        return None if item is None else JobRow(item)

    def send_released(self, envelope: Envelope) -> None:
        """Send a released child's message, then take its ``unsent`` mark off (recovery sends it if this never ends)."""
        transport = self.backend.transport
        refused = transport.send(envelope.queue, [transport.prepare(envelope, self._now())])
        if refused:
            raise SendFailed(f"SQS did not take released job {envelope.id!r} of queue {envelope.queue!r}; recovery sends it again")
        key = job_key(envelope.queue, envelope.id)
        if envelope.group is None:  # no duties unless it gained dependents: then it stays in the index's reach (fq)
            if self.store.update_if(key, "REMOVE unsent, followup_at, fq", "unsent = :true AND attribute_not_exists(deps)",
                                    None, {":true": {"BOOL": True}}) is not None:
                return
        self.store.update_if(key, "REMOVE unsent, followup_at", "unsent = :true", None, {":true": {"BOOL": True}})

    def dependents(self, parent: JobRef) -> list[JobRef]:
        known = self._dependents.find((parent.queue, parent.id))
        if known is not None:
            return list(known)
        item = self._get(job_key(parent.queue, parent.id), "deps")
        return [ref_of(token) for token in sorted((item or {}).get("deps", {}).get("SS", []))]

    def unresolved_parents(self, child: JobRef) -> list[JobRef]:
        """The parents whose end ``child`` has not noted *and* that were not linked to it (a linked parent tells the
        child itself, through its own follow-up): so recovery links again only what a crash left unlinked."""
        row = self._row(child)
        if row is None or row.state is not JobState.WAITING_CHILDREN:
            return []
        noted = row.noted | row.resolved
        return [p for p in row.envelope().depends_on if ref_token(p) not in noted]

    def stale_children(self, queue: str, older_than: float, limit: int = 100) -> list[JobRef]:
        """Children in waiting-children for longer than ``older_than`` with a parent neither linked nor resolved:
        children that merely wait for their parents are filtered out, so they never hide the ones to recover."""
        found: list[JobRef] = []
        request: dict[str, Any] = {
            "TableName": self.table, "IndexName": STATE_INDEX, "KeyConditionExpression": "qstate = :qs AND #sort <= :before",
            "FilterExpression": "attribute_not_exists(noted) OR size(noted) < nparents",
            "ExpressionAttributeNames": {"#sort": "sort", "#id": "id"}, "ProjectionExpression": "#id", "Limit": max(limit, 100),
            "ExpressionAttributeValues": {":qs": _s(f"{queue}#{JobState.WAITING_CHILDREN.value}"), ":before": _n(self._now() - older_than)},
        }
        for _ in range(STALE_PAGES):
            answer = self._db.query(**request)
            found.extend(JobRef(queue=queue, id=item["id"]["S"]) for item in answer.get("Items", []))
            if len(found) >= limit or not answer.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return found[:limit]

    # -- groups ---------------------------------------------------------------------------------------

    def create_group(self, record: GroupRecord) -> GroupRecord:
        text = record.model_dump_json()
        if len(text.encode("utf-8")) > RECORD_BUDGET:
            raise ValueError(f"group {record.group.id!r}: its record (the callback's envelope) is {len(text)} bytes; "
                             f"a DynamoDB item holds 400 KB: pass a reference in the callback's payload")
        now = self._now()
        item = {**group_key(record.group), "record": _s(text), "size": _n(record.size), "created_at": _n(now),
                TTL_ATTRIBUTE: _n(now + GROUP_RETENTION)}
        try:
            self._db.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            stored = self.group(record.group)
            if stored is not None:
                return stored
        self._sizes.put(record.group, record.size)
        return record

    def group(self, group: GroupRef) -> GroupRecord | None:
        item = self._get(group_key(group), "#r", {"#r": "record"})
        return None if item is None else GroupRecord.model_validate_json(item["record"]["S"])

    def _size(self, group: GroupRef) -> int | None:
        size = self._sizes.find(group)
        if size is None:
            item = self._get(group_key(group), "#size", {"#size": "size"})
            if item is None:
                return None
            size = _int(item, "size")
            self._sizes.put(group, size)
        return int(size)

    def tally(self, group: GroupRef, index: int, end: JobEnd) -> GroupTally:
        """Count member ``index``; the answer's ``done`` is exact, its counts are exact once done (before that
        they count the full chunks and this member's chunk: :meth:`group_tally` reads them all)."""
        size = self._size(group)
        if size is None:
            raise LookupError(f"group {group} is not known (never created, or past its retention)")
        now = self._now()
        self._put_end(group, index, end, now)
        chunk = index // CHUNK
        item = self.store.update_if(
            chunk_key(group, chunk), "ADD seen :index, #st :one SET #exp = :exp", "NOT contains(seen, :i)",
            {"#st": end.state.value, "#exp": TTL_ATTRIBUTE},
            {":index": {"NS": [str(index)]}, ":i": _n(index), ":one": _n(1), ":exp": _n(now + GROUP_RETENTION)},
        )
        if item is None:  # counted before (a follow-up run again): see whether its chunk was reported full
            item = self._get(chunk_key(group, chunk)) or {}
        counts = {state: _int(item, state) for state in ("completed", "failed", "cancelled")}
        if len(item.get("seen", {}).get("NS", [])) < chunk_size(size, chunk):
            return GroupTally(size=size, **counts)
        totals = self._chunk_full(group, chunk, counts, now)
        return GroupTally(size=size, **{state: _int(totals, state) for state in counts})

    def _put_end(self, group: GroupRef, index: int, end: JobEnd, now: float) -> None:
        """The member's end, kept with the group (the first end counted wins)."""
        text = end.model_dump_json()
        packed = pack_text(text, MAX_ITEM_BYTES - ITEM_RESERVE)
        if packed is None:
            truncated = end.model_copy(update={"result": {TRUNCATED_RESULT: True, "bytes": len(text)}})
            packed = ("S", truncated.model_dump_json())
        attribute = {"end": {"S": packed[1]}} if packed[0] == "S" else {"end_z": {"B": packed[1]}}
        try:
            self._db.put_item(TableName=self.table, Item={**end_key(group, index), **attribute, TTL_ATTRIBUTE: _n(now + GROUP_RETENTION)},
                              ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise

    def _chunk_full(self, group: GroupRef, chunk: int, counts: dict[str, int], now: float) -> Item:
        """Add a full chunk to the group's ``full`` set and its counts to the group's (once); the group's counters after."""
        values = {":chunk": {"NS": [str(chunk)]}, ":c": _n(chunk), ":exp": _n(now + GROUP_RETENTION),
                  **{f":{state}": _n(count) for state, count in counts.items()}}
        try:
            answer = self._db.update_item(
                TableName=self.table, Key=group_key(group),
                UpdateExpression="ADD #full :chunk, completed :completed, failed :failed, cancelled :cancelled SET #exp = :exp",
                ConditionExpression="attribute_exists(pk) AND NOT contains(#full, :c)",
                ExpressionAttributeNames={"#full": "full", "#exp": TTL_ATTRIBUTE}, ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
            )
            return dict(answer["Attributes"])
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
        return self._get(group_key(group), "#full, completed, failed, cancelled", {"#full": "full"}) or {}

    def _group_counts(self, group: GroupRef) -> tuple[int, set[int], dict[str, int]] | None:
        item = self._get(group_key(group), "#size, #full, completed, failed, cancelled", {"#size": "size", "#full": "full"})
        if item is None:
            return None
        full = {int(float(c)) for c in item.get("full", {}).get("NS", [])}
        return _int(item, "size"), full, {state: _int(item, state) for state in ("completed", "failed", "cancelled")}

    def group_tally(self, group: GroupRef) -> GroupTally | None:
        known = self._group_counts(group)
        if known is None:
            return None
        size, full, counts = known
        partial = [chunk_key(group, c) for c in range(chunks_of(size)) if c not in full]
        for item in self._batch_get(partial, "completed, failed, cancelled"):
            for state in counts:
                counts[state] += _int(item, state)
        return GroupTally(size=size, **counts)

    def group_ends(self, group: GroupRef, start: int = 0, limit: int = 1000) -> list[tuple[int, JobEnd]]:
        known = self._group_counts(group)
        if known is None:
            return []
        size, full, _ = known
        counted: list[int] = []
        partial = [c for c in range(chunks_of(size)) if c not in full]
        for c in full:
            counted.extend(range(c * CHUNK, c * CHUNK + chunk_size(size, c)))
        for item in self._batch_get([chunk_key(group, c) for c in partial], "seen"):
            counted.extend(int(float(i)) for i in item.get("seen", {}).get("NS", []))
        wanted = sorted(counted)[start:start + limit]
        ends: list[tuple[int, JobEnd]] = []
        prefix = end_key(group, 0)["pk"]["S"][:-1]
        for item in self._batch_get([end_key(group, i) for i in wanted]):
            text = unpack_text(item, "end")
            if text is not None:
                ends.append((int(item["pk"]["S"][len(prefix):]), JobEnd.model_validate_json(text)))
        return sorted(ends, key=lambda pair: pair[0])

    # -- recovery ------------------------------------------------------------------------------------

    def pending_followups(self, queue: str, older_than: float, limit: int = 100) -> list[Followup]:
        """Follow-ups older than ``older_than`` seconds, each moved to the back of the index as it is handed out;
        released children found unsent on the way are sent again."""
        answer = self._db.query(
            TableName=self.table, IndexName=FOLLOWUP_INDEX, KeyConditionExpression="fq = :q AND followup_at <= :before",
            ExpressionAttributeValues={":q": _s(queue), ":before": _n(self._now() - older_than)}, Limit=limit,
        )
        keys = [{"pk": item["pk"]} for item in answer.get("Items", [])]
        followups: list[Followup] = []
        for item in self._batch_get(keys):
            row = JobRow(dict(item))
            if "followup_at" not in row.item:
                continue  # done meanwhile (the index lags)
            found = self.followup_of(row)
            if found is not None:
                # to the back of the index: one follow-up that keeps failing cannot hide the others behind ``limit``
                if self.store.update_if(job_key(row.queue, row.id), "SET followup_at = :now", "followup_at = :seen", None,
                                        {":now": _n(self._now()), ":seen": row.item["followup_at"]}) is not None:
                    followups.append(found)
            elif row.unsent and row.state in (JobState.WAITING, JobState.DELAYED):
                logger.warning("job %s was released but its message may not have been sent: sending it", row.id)
                self.send_released(row.envelope())
            elif row.state not in FINISHED_STATES:  # released, then delivered before its mark came off: nothing to do
                self.store.update_if(job_key(row.queue, row.id), "REMOVE followup_at",
                                     f"attribute_not_exists(unsent) AND {_NOT_FINISHED}", {"#state": "state"}, dict(_FINISHED))
        return followups

    def clear_followup(self, job: JobRef) -> None:
        self.store.update_if(job_key(job.queue, job.id), "REMOVE followup_at", "attribute_exists(pk)", None, None)


__all__ = ["CHUNK", "DynamoWorkflowStore", "GROUP_RETENTION", "chunk_key", "end_key", "group_key"]
