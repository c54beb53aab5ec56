"""Job state in DynamoDB: one item per job, keyed ``{queue}#{id}``, listed by state through the
``by_state`` index (``{queue}#{state}``, sorted by creation time), expired by a TTL attribute.

TTL deletion is lazy (up to days late), so every read filters expired items out itself. Every
transition is a conditional write on the state the caller saw, so two deliveries of one message
never both run an attempt: the condition, not the message id, decides.

Workflows (see workflows.py) add a few attributes to a job's item: ``fq`` (the job's queue, set while it
has workflow duties: dependents or a group), ``followup_at`` (set by every write that ends a job; with
``fq`` it puts the item in the sparse ``by_followup`` index, so only jobs with duties are indexed),
``deps`` (its dependents), ``waiting_on``/``nparents``/``resolved``/``noted`` (a child's parents) and ``unsent`` (a released
child whose message may not have gone out yet).
"""

from __future__ import annotations

import base64
import json
import random
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from jobqueue.envelope import Envelope
from jobqueue.errors import PayloadTooLarge
from jobqueue.options import QueueConfig
from jobqueue.refs import JobRef
from jobqueue.runner import Outcome
from jobqueue.states import FINISHED_STATES, JobState
from jobqueue.status import ErrorInfo, JobStatus
from jobqueue.workflows.store import JobEnd, end_of
from jobqueue_sqs.clients import Clients
from jobqueue_sqs.resources import STATE_INDEX, TTL_ATTRIBUTE
from jobqueue_sqs.settings import MAX_ITEM_BYTES

Item = dict[str, Any]

#: room kept in an item for everything but the result and the envelope
ITEM_RESERVE = 48 * 1024
#: an envelope larger than this is stored without its payload (the message and its DLQ copy keep it)
ENVELOPE_BUDGET = 200 * 1024
TRUNCATED_RESULT = "jobqueue:result-truncated"
PENDING = (JobState.WAITING, JobState.DELAYED, JobState.WAITING_CHILDREN)
#: a result larger than this is stored zlib-compressed (a group callback's 10,000 results compress ~10x)
COMPRESS_OVER = 32 * 1024
#: threads that put the items of a batch enqueue
PUT_THREADS = 8
#: tries of a transaction that DynamoDB cancelled for a conflict with another one on the same item
TRANSACT_TRIES = 8
#: why DynamoDB may cancel a transaction that is worth sending again (a failed condition is answered, not retried)
RETRIABLE_REASONS = frozenset({None, "None", "ConditionalCheckFailed", "TransactionConflict", "ThrottlingError",
                               "ProvisionedThroughputExceeded", "RequestLimitExceeded"})


def ref_token(ref: JobRef) -> str:
    """A job reference as one string-set element (``deps``, ``resolved``)."""
    return json.dumps([ref.queue, ref.id], separators=(",", ":"))


def ref_of(token: str) -> JobRef:
    queue, job_id = json.loads(token)
    return JobRef(queue=queue, id=job_id)


def idempotency_key(queue: str, key: str) -> dict[str, Any]:
    return {"pk": {"S": f"#idem#{queue}#{key}"}}


def pack_text(text: str, budget: int) -> tuple[str, Any] | None:
    """``text`` as an attribute that fits ``budget`` bytes: ("S", text), or ("B", zlib) when large; None if neither fits."""
    raw = text.encode("utf-8")
    if len(raw) <= COMPRESS_OVER:
        return ("S", text) if len(raw) <= budget else None
    packed = zlib.compress(raw, 6)
    return ("B", packed) if len(packed) <= budget else None


def unpack_text(item: Item, name: str) -> str | None:
    """The text of attribute ``name`` (or its compressed twin ``{name}_z``)."""
    packed = item.get(f"{name}_z")
    if packed is not None:
        data = packed["B"]
        return zlib.decompress(data if isinstance(data, bytes) else base64.b64decode(data)).decode("utf-8")
    return _str(item, name)


def job_key(queue: str, job_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"{queue}#{job_id}"}}


def _meta_key(queue: str) -> dict[str, Any]:
    return {"pk": {"S": f"#queue#{queue}"}}  # no job key starts with '#': queue names cannot


def _n(value: float) -> dict[str, str]:
    return {"N": repr(float(value)) if isinstance(value, float) else str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _num(item: Item, name: str) -> float | None:
    value = item.get(name)
    return None if value is None else float(value["N"])


def _str(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


def _bool(item: Item, name: str) -> bool:
    value = item.get(name)
    return bool(value and value.get("BOOL"))


def is_conditional_failure(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class JobRow:
    """A job's item, read."""

    def __init__(self, item: Item) -> None:
        self.item = item

    def __repr__(self) -> str:
        return f"<JobRow {self.queue}#{self.id} {self.state.value} starts={self.starts}>"

    @property
    def id(self) -> str:
        return str(_str(self.item, "id"))

    @property
    def queue(self) -> str:
        return str(_str(self.item, "queue"))

    @property
    def state(self) -> JobState:
        return JobState(_str(self.item, "state"))

    @property
    def starts(self) -> int:
        return int(_num(self.item, "starts") or 0)

    @property
    def max_attempts(self) -> int:
        return int(_num(self.item, "max_attempts") or 1)

    @property
    def not_before(self) -> float | None:
        return _num(self.item, "not_before")

    @property
    def lease_until(self) -> float:
        return _num(self.item, "lease_until") or 0.0

    @property
    def cancel_requested(self) -> bool:
        return _bool(self.item, "cancel_requested")

    @property
    def in_dlq(self) -> bool:
        return _bool(self.item, "dlq")

    @property
    def payload_omitted(self) -> bool:
        return _bool(self.item, "payload_omitted")

    def envelope(self) -> Envelope:
        """The stored envelope (the one the producer sent)."""
        return Envelope.model_validate_json(str(_str(self.item, "envelope")))

    # -- workflows ------------------------------------------------------------------------------

    @property
    def has_duties(self) -> bool:
        """True while the job has dependents or a group to tell when it ends."""
        return "fq" in self.item

    @property
    def followup_pending(self) -> bool:
        """True if it ended with duties and they have not all been done (its follow-up is not cleared)."""
        return self.has_duties and "followup_at" in self.item and self.state in FINISHED_STATES

    @property
    def unsent(self) -> bool:
        """True for a released child whose message may not have gone out."""
        return _bool(self.item, "unsent")

    @property
    def dependents(self) -> list[JobRef]:
        return [ref_of(token) for token in sorted(self.item.get("deps", {}).get("SS", []))]

    @property
    def resolved(self) -> set[str]:
        return set(self.item.get("resolved", {}).get("SS", []))

    @property
    def noted(self) -> set[str]:
        """Parents linked to this child or resolved for it (a parent in neither is what recovery links again)."""
        return set(self.item.get("noted", {}).get("SS", []))

    @property
    def waiting_on(self) -> int:
        return int(_num(self.item, "waiting_on") or 0)

    def error_info(self) -> ErrorInfo | None:
        text = _str(self.item, "error")
        return ErrorInfo.model_validate_json(text) if text else None

    def result(self) -> Any:
        if _bool(self.item, "result_truncated"):
            return {TRUNCATED_RESULT: True, "bytes": int(_num(self.item, "result_bytes") or 0),
                    "detail": "the result was larger than a DynamoDB item holds (400 KB) and was not kept"}
        text = unpack_text(self.item, "result")
        return json.loads(text) if text is not None else None

    def end(self) -> JobEnd:
        """How the job ended (call on a finished row)."""
        return end_of(self.state, self.error_info(), self.result())

    def status(self, now: float) -> JobStatus:
        env = self.envelope()
        state = self.state
        not_before = self.not_before
        if state is JobState.DELAYED and (not_before is None or not_before <= now):
            state = JobState.WAITING  # its time has come: it waits for a worker
        return JobStatus(
            id=self.id, name=env.name, queue=self.queue, state=state, progress=_num(self.item, "progress") or 0.0,
            attempt=int(_num(self.item, "attempt") or 1), max_attempts=self.max_attempts, priority=env.priority,
            payload=env.payload, result=self.result(), error=self.error_info(),
            created_at=_num(self.item, "created_at") or 0.0, not_before=not_before, started_at=_num(self.item, "started_at"),
            finished_at=_num(self.item, "finished_at"), cancel_requested=self.cancel_requested,
        )


class JobStore:
    """The job table of one app."""

    def __init__(self, clients: Clients, table: str, queue_config: Callable[[str], QueueConfig]) -> None:
        self.clients = clients
        self.table = table
        self._config = queue_config

    @property
    def _db(self) -> Any:
        return self.clients.dynamodb

    # -- helpers ----------------------------------------------------------------------------

    def _update(self, key: dict[str, Any], update: str, condition: str, names: dict[str, str], values: dict[str, Any]) -> Item | None:
        """A conditional UpdateItem; the new item, or None if the condition did not hold."""
        return self.update_if(key, update, condition, names, values)

    def update_if(self, key: dict[str, Any], update: str, condition: str, names: dict[str, str] | None,
                  values: dict[str, Any] | None) -> Item | None:
        """A conditional UpdateItem (ALL_NEW); None if the condition did not hold. For the workflow steps."""
        try:
            extra: dict[str, Any] = {}
            if names:
                extra["ExpressionAttributeNames"] = names
            if values:
                extra["ExpressionAttributeValues"] = values
            answer = self._db.update_item(TableName=self.table, Key=key, UpdateExpression=update, ConditionExpression=condition,
                                          ReturnValues="ALL_NEW", **extra)
        except ClientError as exc:
            if is_conditional_failure(exc):
                return None
            raise
        return dict(answer["Attributes"])

    def expires_at(self, queue: str, state: JobState, now: float) -> float | None:
        """When a job of ``queue`` that ends ``state`` now expires (its retention by age), or None."""
        return self._expires_at(queue, state, now)

    def _expires_at(self, queue: str, state: JobState, now: float) -> float | None:
        rule = self._config(queue).retention_for(state.value)
        return None if rule.max_age is None else now + rule.max_age

    @staticmethod
    def _alive(item: Item | None, now: float) -> Item | None:
        if item is None:
            return None
        expires = _num(item, TTL_ATTRIBUTE)
        return None if expires is not None and expires <= now else item

    # -- producing ----------------------------------------------------------------------------

    def new_item(self, envelope: Envelope, now: float, *, state: JobState | None = None) -> Item:
        if state is None and envelope.depends_on:
            state = JobState.WAITING_CHILDREN  # stored, not sent: the release of its last parent sends it
        if state is None:
            state = JobState.DELAYED if envelope.not_before is not None and envelope.not_before > now else JobState.WAITING
        stored = envelope
        omitted = False
        if len(envelope.encode().encode("utf-8")) > ENVELOPE_BUDGET:
            if state is JobState.WAITING_CHILDREN:  # its message is sent later, from this item: nothing else keeps the payload
                raise PayloadTooLarge(envelope.name, f"a job with _depends_on is kept in the job table until its parents end, so its "
                                                     f"envelope must stay under {ENVELOPE_BUDGET} bytes (a DynamoDB item holds 400 KB)")
            stored, omitted = envelope.model_copy(update={"payload": {}}), True
        item: Item = {
            **job_key(envelope.queue, envelope.id),
            "qstate": _s(f"{envelope.queue}#{state.value}"), "sort": _n(envelope.enqueued_at or now),
            "id": _s(envelope.id), "queue": _s(envelope.queue), "name": _s(envelope.name), "state": _s(state.value),
            "attempt": _n(envelope.attempt), "starts": _n(envelope.attempt - 1), "max_attempts": _n(envelope.max_attempts),
            "envelope": _s(stored.encode()), "progress": _n(0), "created_at": _n(envelope.enqueued_at or now), "updated_at": _n(now),
        }
        if omitted:
            item["payload_omitted"] = {"BOOL": True}
        if envelope.not_before is not None:
            item["not_before"] = _n(envelope.not_before)
        if state is JobState.WAITING_CHILDREN:
            item["waiting_on"] = item["nparents"] = _n(len(envelope.depends_on))
        if envelope.group is not None:
            item["fq"] = _s(envelope.queue)  # a group member: its end is told to the group (see workflows.py)
        return item

    def add(self, envelope: Envelope, now: float) -> bool:
        """Write a new job's item unless a retained one has its id; True if it was written."""
        return self.add_many([envelope], now, lambda queue: 0.0)[0][1]

    def add_many(self, envelopes: Sequence[Envelope], now: float, window: Callable[[Envelope], float]) -> list[tuple[str, bool]]:
        """Write new jobs' items; per envelope (the job's id, True if written).

        A retained id is not a new job: (its id, False). Each job is one conditional PutItem (several go out
        on up to ``PUT_THREADS`` threads). An envelope with an ``idempotency_key`` claims the key's item
        (``#idem#{queue}#{key}``, expiring after ``window(envelope)`` seconds) in one TransactWriteItems
        with its job's item, so a key never names a job that was not stored; a key still held answers
        (the first job's id, False).

        Not TransactWriteItems of 100 puts: they cost twice the write units of plain puts, one refused
        condition cancels the other 99, and moto copies the whole table for every item of a transaction.
        """
        db = self._db  # made once, before any thread uses it

        def add(envelope: Envelope) -> tuple[str, bool]:
            if envelope.idempotency_key is not None:
                return self._add_with_key(envelope, now, window(envelope))
            try:
                db.put_item(TableName=self.table, Item=self.new_item(envelope, now), **self._new_condition(now))
            except ClientError as exc:
                if is_conditional_failure(exc):
                    return envelope.id, False
                raise
            return envelope.id, True

        keyed = {env.idempotency_key for env in envelopes if env.idempotency_key is not None}
        if len(envelopes) == 1 or keyed:  # keys in order: two envelopes with one key must meet one after the other
            return [add(envelope) for envelope in envelopes]
        with ThreadPoolExecutor(max_workers=min(PUT_THREADS, len(envelopes)), thread_name_prefix="jobqueue-sqs-put") as pool:
            return list(pool.map(add, envelopes))

    @staticmethod
    def _new_condition(now: float) -> dict[str, Any]:
        return {"ConditionExpression": "attribute_not_exists(pk) OR #exp <= :now",
                "ExpressionAttributeNames": {"#exp": TTL_ATTRIBUTE}, "ExpressionAttributeValues": {":now": _n(now)}}

    def _add_with_key(self, envelope: Envelope, now: float, window: float) -> tuple[str, bool]:
        """The key's item and the job's item in one transaction; (the key holder's id, False) if the key is held."""
        key = str(envelope.idempotency_key)
        condition = self._new_condition(now)
        actions = [
            {"Put": {"TableName": self.table, **condition, "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                     "Item": {**idempotency_key(envelope.queue, key), "job_id": _s(envelope.id), "created_at": _n(now),
                              TTL_ATTRIBUTE: _n(now + window)}}},
            {"Put": {"TableName": self.table, "Item": self.new_item(envelope, now), **condition}},
        ]
        for attempt in range(TRANSACT_TRIES):
            try:
                self._db.transact_write_items(TransactItems=actions)
                return envelope.id, True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or [{}, {}]
                codes = [r.get("Code") for r in reasons]
                if any(code not in RETRIABLE_REASONS for code in codes):
                    raise
                if codes[0] == "ConditionalCheckFailed":  # the key is held: answer with its job
                    holder = reasons[0].get("Item") or self._db.get_item(
                        TableName=self.table, Key=idempotency_key(envelope.queue, key), ConsistentRead=True).get("Item")
                    if holder is None:
                        continue  # it expired and went meanwhile: claim it again
                    return _str(holder, "job_id") or envelope.id, False
                if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                    return envelope.id, False  # the job id is retained: not a new job (and the key was not claimed)
            # cancelled for a conflict with another transaction on the same key: again, after a pause
            time.sleep(min(1.0, 0.02 * 2 ** attempt) * random.uniform(0.5, 1.0))
        raise RuntimeError(f"idempotency key {key!r}: the transaction kept conflicting with others")

    def release_key(self, envelope: Envelope) -> None:
        """Drop the idempotency key ``envelope`` claimed (its job was not sent after all)."""
        if envelope.idempotency_key is None:
            return
        try:
            self._db.delete_item(TableName=self.table, Key=idempotency_key(envelope.queue, envelope.idempotency_key),
                                 ConditionExpression="job_id = :id", ExpressionAttributeValues={":id": _s(envelope.id)})
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise

    def remove(self, queue: str, job_id: str) -> None:
        self._db.delete_item(TableName=self.table, Key=job_key(queue, job_id))

    # -- reading --------------------------------------------------------------------------------

    def load(self, queue: str, job_id: str, now: float) -> JobRow | None:
        """The job's row, read consistently, unless it expired."""
        answer = self._db.get_item(TableName=self.table, Key=job_key(queue, job_id), ConsistentRead=True)
        item = self._alive(answer.get("Item"), now)
        return None if item is None else JobRow(item)

    def find(self, job_id: str, queues: Sequence[str], now: float) -> JobRow | None:
        """The row of ``job_id`` in the first of ``queues`` that has it (one BatchGetItem per 100 queues)."""
        found: dict[str, Item] = {}
        for start in range(0, len(queues), 100):
            keys = [job_key(q, job_id) for q in queues[start:start + 100]]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = self._db.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    found[item["queue"]["S"]] = item
                request = answer.get("UnprocessedKeys") or {}
        for queue in queues:
            item = self._alive(found.get(queue), now)
            if item is not None:
                return JobRow(item)
        return None

    def _query(self, queue: str, stored: str, due: bool | None, now: float, **extra: Any) -> dict[str, Any]:
        """Query the index for rows stored in state ``stored``; ``due`` keeps only delayed rows whose time has (not) come."""
        condition = "(attribute_not_exists(#exp) OR #exp > :now)"
        names = {"#exp": TTL_ATTRIBUTE}
        if due is not None:
            names["#nb"] = "not_before"
            condition += " AND (attribute_not_exists(#nb) OR #nb <= :now)" if due else " AND #nb > :now"
        return dict(self._db.query(
            TableName=self.table, IndexName=STATE_INDEX, KeyConditionExpression="qstate = :qs", FilterExpression=condition,
            ExpressionAttributeNames=names, ExpressionAttributeValues={":qs": _s(f"{queue}#{stored}"), ":now": _n(now)}, **extra,
        ))

    @staticmethod
    def _partitions(state: JobState) -> list[tuple[str, bool | None]]:
        """Where the rows a reader calls ``state`` are stored: a delayed row whose time has come reads as waiting."""
        if state is JobState.WAITING:
            return [("waiting", None), ("delayed", True)]
        if state is JobState.DELAYED:
            return [("delayed", False)]
        return [(state.value, None)]

    def page(self, queue: str, state: JobState, now: float, limit: int, cursor: str | None) -> tuple[list[JobRow], str | None]:
        """Up to ``limit`` rows of ``queue`` in ``state``, oldest first within each stored state, and the next page's cursor."""
        position: dict[str, Any] = json.loads(base64.urlsafe_b64decode(cursor.encode())) if cursor else {"p": 0, "k": None}
        partitions = self._partitions(state)
        rows: list[JobRow] = []
        index, key = int(position["p"]), position.get("k")
        while index < len(partitions) and len(rows) < limit:
            extra: dict[str, Any] = {"Limit": limit - len(rows)}
            if key:
                extra["ExclusiveStartKey"] = key
            answer = self._query(queue, *partitions[index], now, **extra)
            rows.extend(JobRow(item) for item in answer.get("Items", []))
            key = answer.get("LastEvaluatedKey")
            if not key:
                index += 1
        if index >= len(partitions):
            return rows, None
        return rows, base64.urlsafe_b64encode(json.dumps({"p": index, "k": key}).encode()).decode()

    def rows(self, queue: str, state: JobState, now: float) -> Iterator[JobRow]:
        """Every row of ``queue`` in ``state``."""
        cursor = None
        while True:
            rows, cursor = self.page(queue, state, now, 100, cursor)
            yield from rows
            if cursor is None:
                return

    def count(self, queue: str, state: JobState, now: float) -> int:
        total = 0
        for stored, due in self._partitions(state):
            extra: dict[str, Any] = {"Select": "COUNT"}
            while True:
                answer = self._query(queue, stored, due, now, **extra)
                total += int(answer.get("Count", 0))
                if not answer.get("LastEvaluatedKey"):
                    break
                extra["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return total

    # -- running --------------------------------------------------------------------------------

    def create_on_first_sight(self, envelope: Envelope, now: float) -> JobRow | None:
        """The row of an envelope that never went through the producer (a schedule's); None if one appeared meanwhile."""
        item = self.new_item(envelope.model_copy(update={"attempt": 1}), now)
        try:
            self._db.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if is_conditional_failure(exc):
                return None
            raise
        return JobRow(item)

    def claim(self, row: JobRow, now: float, lease_until: float) -> JobRow | None:
        """Start the next attempt: count it (``starts``) by a write conditional on the state seen. None if someone else moved first."""
        attempt = row.starts + 1
        item = self._update(
            job_key(row.queue, row.id),
            "SET #state = :active, qstate = :qs, starts = :n, attempt = :n, started_at = :now, progress = :zero, "
            "lease_until = :lease, updated_at = :now REMOVE unsent",  # delivered, so it was sent
            "#state = :seen AND starts = :seen_starts",
            {"#state": "state"},
            {":active": _s(JobState.ACTIVE.value), ":qs": _s(f"{row.queue}#active"), ":n": _n(attempt), ":now": _n(now),
             ":zero": _n(0), ":lease": _n(lease_until), ":seen": _s(row.state.value), ":seen_starts": _n(row.starts)},
        )
        return None if item is None else JobRow(item)

    def set_progress(self, envelope: Envelope, value: float, now: float) -> None:
        self._update(
            job_key(envelope.queue, envelope.id), "SET progress = :p, updated_at = :now", "#state = :active AND starts = :n",
            {"#state": "state"}, {":p": _n(value), ":now": _n(now), ":active": _s("active"), ":n": _n(envelope.attempt)},
        )

    def is_cancel_requested(self, envelope: Envelope, now: float) -> bool:
        row = self.load(envelope.queue, envelope.id, now)
        return row is None or row.cancel_requested or row.state is JobState.CANCELLED

    def finish(self, envelope: Envelope, outcome: Outcome, now: float) -> JobRow | None:
        """Write how attempt ``envelope.attempt`` ended, if it is still the active one. None if it was not."""
        key = job_key(envelope.queue, envelope.id)
        names = {"#state": "state"}
        values: dict[str, Any] = {":active": _s("active"), ":n": _n(envelope.attempt), ":now": _n(now)}
        condition = "#state = :active AND starts = :n"
        sets = ["updated_at = :now", "lease_until = :zero"]
        removes: list[str] = []
        values[":zero"] = _n(0)
        error_text = outcome.error.model_dump_json() if outcome.error is not None else None
        if error_text is not None:
            sets.append("#error = :error")
            names["#error"] = "error"
            values[":error"] = _s(error_text)
        if outcome.state is JobState.DELAYED:
            sets += ["#state = :delayed", "qstate = :qs", "attempt = :next"]
            values.update({":delayed": _s("delayed"), ":qs": _s(f"{envelope.queue}#delayed"), ":next": _n(envelope.attempt + 1)})
            if outcome.retry_at is not None:
                sets.append("not_before = :nb")
                values[":nb"] = _n(outcome.retry_at)
            item = self._update(key, "SET " + ", ".join(sets), condition + " AND (attribute_not_exists(cancel_requested) OR cancel_requested = :false)",
                                names, {**values, ":false": {"BOOL": False}})
            if item is not None:
                return JobRow(item)
            # asked to cancel while it ran: a retry would be pointless
            return self.finish(envelope, Outcome(JobState.CANCELLED, error=outcome.error, duration=outcome.duration), now)
        state = outcome.state
        # followup_at on every end: only an item with ``fq`` (a job with dependents or a group) is indexed by it
        sets += ["#state = :end", "qstate = :qs", "finished_at = :now", "followup_at = :now"]
        values.update({":end": _s(state.value), ":qs": _s(f"{envelope.queue}#{state.value}")})
        if state is JobState.COMPLETED:
            sets.append("progress = :hundred")
            values[":hundred"] = _n(100)
            if error_text is None:
                removes.append("#error")
                names["#error"] = "error"
            result_text = json.dumps(outcome.result, separators=(",", ":"))
            budget = MAX_ITEM_BYTES - ITEM_RESERVE - min(len(envelope.encode().encode("utf-8")), ENVELOPE_BUDGET)
            packed = pack_text(result_text, budget)
            names["#result"] = "result"
            if packed is None:
                sets += ["result_truncated = :true", "result_bytes = :rb"]
                values.update({":true": {"BOOL": True}, ":rb": _n(len(result_text.encode("utf-8")))})
                removes += ["#result", "result_z"]
            elif packed[0] == "B":
                sets.append("result_z = :result")
                values[":result"] = {"B": packed[1]}
                removes.append("#result")
            else:
                sets.append("#result = :result")
                values[":result"] = _s(result_text)
                removes.append("result_z")
        expires = self._expires_at(envelope.queue, state, now)
        if expires is not None:
            sets.append("#exp = :exp")
            names["#exp"] = TTL_ATTRIBUTE
            values[":exp"] = _n(expires)
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        item = self._update(key, update, condition, names, values)
        return None if item is None else JobRow(item)

    def fail_spent(self, row: JobRow, now: float, error: ErrorInfo) -> JobRow | None:
        """End a job whose last attempt never reported back (its worker timed out or died)."""
        envelope = row.envelope().model_copy(update={"attempt": row.starts})
        item = self._update(
            job_key(row.queue, row.id), "SET lease_until = :now", "#state = :active AND starts = :n",
            {"#state": "state"}, {":now": _n(now), ":active": _s("active"), ":n": _n(row.starts)},
        )
        if item is None:
            return None
        return self.finish(envelope, Outcome(JobState.FAILED, error=error), now)

    def mark_in_dlq(self, row: JobRow) -> None:
        self._db.update_item(TableName=self.table, Key=job_key(row.queue, row.id), UpdateExpression="SET dlq = :true",
                             ExpressionAttributeValues={":true": {"BOOL": True}})

    # -- steering ---------------------------------------------------------------------------------

    def cancel(self, row: JobRow, now: float) -> JobRow | None:
        """Cancel a pending job, or flag an active one; the row after (None if it is finished, or changed meanwhile)."""
        state = row.state
        if state in FINISHED_STATES:
            return None
        key = job_key(row.queue, row.id)
        if state is JobState.ACTIVE:
            item = self._update(key, "SET cancel_requested = :true, updated_at = :now", "#state = :active",
                                {"#state": "state"}, {":true": {"BOOL": True}, ":now": _n(now), ":active": _s("active")})
            return None if item is None else JobRow(item)
        names = {"#state": "state"}
        values = {":end": _s("cancelled"), ":qs": _s(f"{row.queue}#cancelled"), ":now": _n(now), ":seen": _s(state.value)}
        sets = "SET #state = :end, qstate = :qs, finished_at = :now, updated_at = :now, followup_at = :now"
        expires = self._expires_at(row.queue, JobState.CANCELLED, now)
        if expires is not None:
            sets += ", #exp = :exp"
            names["#exp"] = TTL_ATTRIBUTE
            values[":exp"] = _n(expires)
        item = self._update(key, sets, "#state = :seen", names, values)
        return None if item is None else JobRow(item)

    def reset_for_retry(self, row: JobRow, now: float, envelope: Envelope) -> bool:
        """Back to waiting with fresh attempts (from failed or cancelled)."""
        fresh = self.new_item(envelope.model_copy(update={"attempt": 1, "not_before": None}), now, state=JobState.WAITING)
        item = self._update(
            job_key(row.queue, row.id),
            "SET #state = :waiting, qstate = :qs, attempt = :one, starts = :zero, progress = :zero, cancel_requested = :false, "
            "updated_at = :now, envelope = :env, payload_omitted = :omitted REMOVE finished_at, #exp, not_before, dlq, result_truncated",
            "#state = :seen", {"#state": "state", "#exp": TTL_ATTRIBUTE},
            {":waiting": _s("waiting"), ":qs": _s(f"{row.queue}#waiting"), ":one": _n(1), ":zero": _n(0), ":false": {"BOOL": False},
             ":now": _n(now), ":seen": _s(row.state.value), ":env": fresh["envelope"],
             ":omitted": fresh.get("payload_omitted", {"BOOL": False})},
        )
        return item is not None

    def delete(self, row: JobRow) -> None:
        self._db.delete_item(TableName=self.table, Key=job_key(row.queue, row.id))

    # -- pause ----------------------------------------------------------------------------------

    def set_paused(self, queue: str, paused: bool) -> None:
        self._db.put_item(TableName=self.table, Item={**_meta_key(queue), "paused": {"BOOL": paused}})

    def is_paused(self, queue: str) -> bool:
        item = self._db.get_item(TableName=self.table, Key=_meta_key(queue), ConsistentRead=True).get("Item")
        return bool(item and _bool(item, "paused"))
