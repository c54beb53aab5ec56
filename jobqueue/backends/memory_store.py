"""The in-process job store behind the ``memory`` and ``sync`` backends: the state machine, under one lock."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jobqueue.envelope import Envelope
from jobqueue.options import QueueConfig
from jobqueue.refs import JobRef
from jobqueue.runner import Outcome
from jobqueue.states import FINISHED_STATES, JobState
from jobqueue.status import EnqueueReceipt, ErrorInfo, JobPage, JobStatus, QueueStats

Key = tuple[str, str]  # (queue, job id)


@dataclass
class Record:
    envelope: Envelope
    state: JobState
    seq: int
    created_at: float
    progress: float = 0.0
    result: Any = None
    error: ErrorInfo | None = None
    started_at: float | None = None
    finished_at: float | None = None
    cancel_requested: bool = False
    #: parents whose end this job (in waiting-children) has noted, by parent
    ended_parents: dict[JobRef, Any] = field(default_factory=dict)

    def status(self) -> JobStatus:
        env = self.envelope
        return JobStatus(
            id=env.id, name=env.name, queue=env.queue, state=self.state, progress=self.progress,
            attempt=env.attempt, max_attempts=env.max_attempts, priority=env.priority, payload=env.payload,
            result=self.result, error=self.error, created_at=self.created_at, not_before=env.not_before,
            started_at=self.started_at, finished_at=self.finished_at, cancel_requested=self.cancel_requested,
        )


@dataclass
class _Queue:
    waiting: list[tuple[int, int, str]] = field(default_factory=list)    # (priority, seq, id)
    delayed: list[tuple[float, int, str]] = field(default_factory=list)  # (not_before, seq, id)
    active: set[str] = field(default_factory=set)
    finished: dict[JobState, OrderedDict[str, float]] = field(default_factory=lambda: {s: OrderedDict() for s in FINISHED_STATES})
    paused: bool = False
    window_start: float = 0.0
    window_count: int = 0
    #: minute (epoch seconds // 60) -> [completed, failed] finished in it; the last THROUGHPUT_MINUTES kept
    finished_per_minute: dict[int, list[int]] = field(default_factory=dict)
    #: concurrency key -> how many of its jobs are active
    active_keys: dict[str, int] = field(default_factory=dict)
    #: idempotency key -> (the first job's id, until when the key answers with it)
    idempotency: dict[str, tuple[str, float]] = field(default_factory=dict)


THROUGHPUT_MINUTES = 120


class MemoryStore:
    """Jobs of every queue, kept in this process. Thread-safe."""

    def __init__(self, queue_config: Callable[[str], QueueConfig], now: Callable[[], float]) -> None:
        self._config = queue_config
        self._now = now
        self._lock = threading.RLock()
        self._records: dict[Key, Record] = {}
        self._queues: dict[str, _Queue] = {}
        self._seq = itertools.count()
        #: workflow state (see jobqueue.backends.memory_workflows): parent -> children, ended jobs not yet followed up
        self.dependents: dict[Key, list[JobRef]] = {}
        self.followups: dict[Key, float] = {}

    @property
    def lock(self) -> threading.RLock:
        """The lock every change of this store holds."""
        return self._lock

    def record(self, key: Key) -> Record | None:
        """The record of (queue, id), if stored (call with :attr:`lock` held)."""
        return self._records.get(key)

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue()
        return queue

    # -- producing ------------------------------------------------------------------------

    def add(self, envelopes: Iterable[Envelope]) -> list[EnqueueReceipt]:
        receipts = []
        with self._lock:
            now = self._now()
            for env in envelopes:
                key = (env.queue, env.id)
                first = self._idempotent_match(env, now)
                if first is not None:
                    receipts.append(EnqueueReceipt(id=first, created=False))
                    continue
                if key in self._records:
                    # a finished job past its retention age no longer holds its id (every finish applies
                    # retention, so this is the only place an add needs it)
                    self._expire(env.queue, now)
                    if key in self._records:
                        receipts.append(EnqueueReceipt(id=env.id, created=False))
                        continue
                record = Record(env, JobState.WAITING, next(self._seq), created_at=env.enqueued_at or now)
                self._records[key] = record
                if env.depends_on:
                    record.state = JobState.WAITING_CHILDREN
                else:
                    self._schedule(record, now)
                receipts.append(EnqueueReceipt(id=env.id, created=True))
        return receipts

    def _idempotent_match(self, env: Envelope, now: float) -> str | None:
        """The id of the job that holds ``env``'s idempotency key, or None after claiming the key for ``env``."""
        if env.idempotency_key is None:
            return None
        keys = self._queue(env.queue).idempotency
        held = keys.get(env.idempotency_key)
        if held is not None and held[1] > now:
            return held[0]
        window = env.idempotency_window or self._config(env.queue).idempotency_window
        keys[env.idempotency_key] = (env.id, now + window)
        if len(keys) > 1024:  # drop expired keys now and then
            for stale in [k for k, (_, until) in keys.items() if until <= now]:
                del keys[stale]
        return None

    def _schedule(self, record: Record, now: float) -> None:
        queue = self._queue(record.envelope.queue)
        env = record.envelope
        if env.not_before is not None and env.not_before > now:
            record.state = JobState.DELAYED
            heapq.heappush(queue.delayed, (env.not_before, record.seq, env.id))
        else:
            record.state = JobState.WAITING
            heapq.heappush(queue.waiting, (env.priority, record.seq, env.id))

    # -- workflow steps (called by MemoryWorkflowStore with the lock held) ------------------------

    def release(self, record: Record) -> None:
        """Move a job out of waiting-children: to waiting, or delayed if its time is ahead."""
        self._schedule(record, self._now())

    def end_pending(self, record: Record, state: JobState) -> None:
        """End a job that is not active (a child whose parent failed or was cancelled)."""
        self._end(self._queue(record.envelope.queue), record, state, self._now())

    def records_in(self, name: str, state: JobState) -> list[Record]:
        """The records of queue ``name`` in ``state``, oldest first."""
        return sorted((r for (q, _), r in self._records.items() if q == name and r.state is state), key=lambda r: r.seq)

    # -- claiming -----------------------------------------------------------------------------

    def _promote(self, name: str, queue: _Queue, now: float) -> None:
        while queue.delayed and queue.delayed[0][0] <= now:
            _, _, job_id = heapq.heappop(queue.delayed)
            record = self._records.get((name, job_id))
            if record is not None and record.state is JobState.DELAYED:
                record.state = JobState.WAITING
                heapq.heappush(queue.waiting, (record.envelope.priority, record.seq, job_id))

    def next_due(self, name: str) -> float | None:
        """When the next delayed job of queue ``name`` becomes due (None: none delayed)."""
        with self._lock:
            queue = self._queue(name)
            while queue.delayed:
                record = self._records.get((name, queue.delayed[0][2]))
                if record is not None and record.state is JobState.DELAYED:
                    return queue.delayed[0][0]
                heapq.heappop(queue.delayed)
            return None

    def claim(self, name: str, *, honour_limits: bool = True) -> Envelope | None:
        """Mark the most urgent due job of queue ``name`` active and return it, if one may start now."""
        with self._lock:
            now = self._now()
            queue = self._queue(name)
            self._promote(name, queue, now)
            if queue.paused:
                return None
            config = self._config(name)
            if honour_limits and config.concurrency is not None and len(queue.active) >= config.concurrency:
                return None
            if honour_limits and config.rate_limit is not None:
                if now - queue.window_start >= config.rate_limit.period:
                    queue.window_start, queue.window_count = now, 0
                if queue.window_count >= config.rate_limit.limit:
                    return None
            held_back: list[tuple[int, int, str]] = []
            try:
                while queue.waiting:
                    entry = heapq.heappop(queue.waiting)
                    record = self._records.get((name, entry[2]))
                    if record is None or record.state is not JobState.WAITING:
                        continue
                    key = record.envelope.concurrency_key
                    if honour_limits and key is not None and queue.active_keys.get(key, 0) >= config.concurrency_per_key:
                        held_back.append(entry)
                        continue
                    if honour_limits and config.rate_limit is not None:
                        queue.window_count += 1
                    return self._activate(queue, record, now)
                return None
            finally:
                for entry in held_back:
                    heapq.heappush(queue.waiting, entry)

    def claim_id(self, name: str, job_id: str, *, ignore_delay: bool = False) -> Envelope | None:
        """Mark one given job active, whatever its place in line (the sync backend runs jobs inline).

        A delayed job is claimed only with ``ignore_delay`` (a retry run back to back).
        """
        with self._lock:
            record = self._records.get((name, job_id))
            queue = self._queue(name)
            allowed = (JobState.WAITING, JobState.DELAYED) if ignore_delay else (JobState.WAITING,)
            if record is None or queue.paused or record.state not in allowed:
                return None
            return self._activate(queue, record, self._now())

    def _activate(self, queue: _Queue, record: Record, now: float) -> Envelope:
        record.state = JobState.ACTIVE
        record.started_at = now
        record.progress = 0.0
        queue.active.add(record.envelope.id)
        key = record.envelope.concurrency_key
        if key is not None:
            queue.active_keys[key] = queue.active_keys.get(key, 0) + 1
        return record.envelope

    def _deactivate(self, queue: _Queue, record: Record) -> None:
        queue.active.discard(record.envelope.id)
        key = record.envelope.concurrency_key
        if key is not None:
            left = queue.active_keys.get(key, 0) - 1
            if left > 0:
                queue.active_keys[key] = left
            else:
                queue.active_keys.pop(key, None)

    # -- running ----------------------------------------------------------------------------

    def set_progress(self, envelope: Envelope, value: float) -> None:
        with self._lock:
            record = self._records.get((envelope.queue, envelope.id))
            if record is not None and record.state is JobState.ACTIVE:
                record.progress = value

    def is_cancel_requested(self, envelope: Envelope) -> bool:
        record = self._records.get((envelope.queue, envelope.id))
        return record is None or record.cancel_requested

    def finish(self, envelope: Envelope, outcome: Outcome) -> bool:
        with self._lock:
            now = self._now()
            record = self._records.get((envelope.queue, envelope.id))
            if record is None or record.state is not JobState.ACTIVE or record.envelope.attempt != envelope.attempt:
                return False
            queue = self._queue(envelope.queue)
            self._deactivate(queue, record)
            record.error = outcome.error if outcome.error is not None else record.error
            if outcome.state is JobState.DELAYED:
                record.envelope = envelope.next_attempt(outcome.retry_at)
                if record.cancel_requested:
                    self._end(queue, record, JobState.CANCELLED, now)
                else:
                    self._schedule(record, now)
                return True
            if outcome.state is JobState.COMPLETED:
                record.result = outcome.result
                record.progress = 100.0
                record.error = None
            self._end(queue, record, outcome.state, now)
            return True

    def _end(self, queue: _Queue, record: Record, state: JobState, now: float) -> None:
        record.state = state
        record.finished_at = now
        key = (record.envelope.queue, record.envelope.id)
        if record.envelope.group is not None or self.dependents.get(key):
            self.followups[key] = now
        if state in (JobState.COMPLETED, JobState.FAILED):
            minute = int(now // 60)
            counts = queue.finished_per_minute.setdefault(minute, [0, 0])
            counts[0 if state is JobState.COMPLETED else 1] += 1
            if len(queue.finished_per_minute) > THROUGHPUT_MINUTES:
                for old in sorted(queue.finished_per_minute)[:-THROUGHPUT_MINUTES]:
                    del queue.finished_per_minute[old]
        queue.finished[state][record.envelope.id] = now
        self._apply_retention(record.envelope.queue, queue, state, now)

    # -- retention ---------------------------------------------------------------------------

    def _apply_retention(self, name: str, queue: _Queue, state: JobState, now: float) -> None:
        finished = queue.finished[state]
        if not finished:
            return
        rule = self._config(name).retention_for(state.value)
        if rule.max_count is not None:
            while len(finished) > rule.max_count:
                job_id, _ = finished.popitem(last=False)
                self._forget((name, job_id))
        if rule.max_age is not None:
            while finished:
                job_id, finished_at = next(iter(finished.items()))
                if now - finished_at <= rule.max_age:
                    break
                finished.popitem(last=False)
                self._forget((name, job_id))

    def _forget(self, key: Key) -> None:
        self._records.pop(key, None)
        if key not in self.followups:
            self.dependents.pop(key, None)

    def _expire(self, name: str, now: float) -> None:
        queue = self._queue(name)
        for state in FINISHED_STATES:
            self._apply_retention(name, queue, state, now)

    # -- reading ----------------------------------------------------------------------------

    def get(self, job_id: str, queue: str | None = None) -> JobStatus | None:
        with self._lock:
            names = [queue] if queue is not None else list(self._queues)
            now = self._now()
            for name in names:
                self._expire(name, now)
                record = self._records.get((name, job_id))
                if record is not None:
                    return record.status()
            return None

    def stats(self, name: str) -> QueueStats:
        with self._lock:
            now = self._now()
            queue = self._queue(name)
            self._promote(name, queue, now)
            self._expire(name, now)
            counts = {state: 0 for state in JobState}
            for (queue_name, _), record in self._records.items():
                if queue_name == name:
                    counts[record.state] += 1
            return QueueStats(queue=name, counts=counts, paused=queue.paused)

    def list_jobs(self, name: str, state: JobState, limit: int, cursor: str | None) -> JobPage:
        with self._lock:
            now = self._now()
            self._promote(name, self._queue(name), now)
            self._expire(name, now)
            after = int(cursor) if cursor else -1
            matching = sorted(
                (r for (q, _), r in self._records.items() if q == name and r.state is state and r.seq > after),
                key=lambda r: r.seq,
            )
            page = matching[:limit]
            more = len(matching) > limit
            return JobPage(jobs=[r.status() for r in page], next_cursor=str(page[-1].seq) if more and page else None)

    def throughput(self, name: str, minutes: int) -> tuple[float, list[int], list[int]]:
        """(start of the first minute, completed per minute, failed per minute) over the last ``minutes`` minutes."""
        with self._lock:
            last = int(self._now() // 60)
            first = last - (minutes - 1)
            per_minute = self._queue(name).finished_per_minute
            rows = [per_minute.get(minute, [0, 0]) for minute in range(first, last + 1)]
            return float(first * 60), [row[0] for row in rows], [row[1] for row in rows]

    def oldest_waiting_since(self, name: str) -> float | None:
        with self._lock:
            self._promote(name, self._queue(name), self._now())
            times = [
                max(r.created_at, r.envelope.not_before or r.created_at)
                for (q, _), r in self._records.items() if q == name and r.state is JobState.WAITING
            ]
            return min(times, default=None)

    def queue_names(self) -> list[str]:
        with self._lock:
            return list(self._queues)

    # -- steering ---------------------------------------------------------------------------

    def _find(self, job_id: str, queue: str | None) -> Record | None:
        if queue is not None:
            return self._records.get((queue, job_id))
        for name in self._queues:
            record = self._records.get((name, job_id))
            if record is not None:
                return record
        return None

    def cancel(self, job_id: str, queue: str | None = None) -> bool:
        with self._lock:
            record = self._find(job_id, queue)
            if record is None or record.state in FINISHED_STATES:
                return False
            if record.state is JobState.ACTIVE:
                record.cancel_requested = True
                return True
            self._end(self._queue(record.envelope.queue), record, JobState.CANCELLED, self._now())
            return True

    def retry(self, job_id: str, queue: str | None = None) -> bool:
        with self._lock:
            record = self._find(job_id, queue)
            if record is None or record.state not in (JobState.FAILED, JobState.CANCELLED):
                return False
            self._queue(record.envelope.queue).finished[record.state].pop(job_id, None)
            record.envelope = record.envelope.model_copy(update={"attempt": 1, "not_before": None})
            record.cancel_requested = False
            record.finished_at = None
            record.progress = 0.0
            self._schedule(record, self._now())
            return True

    def retry_failed(self, name: str) -> int:
        with self._lock:
            ids = list(self._queue(name).finished[JobState.FAILED])
            return sum(self.retry(job_id, name) for job_id in ids)

    def set_paused(self, name: str, paused: bool) -> None:
        with self._lock:
            self._queue(name).paused = paused

    def clean(self, name: str, state: JobState, older_than: float) -> int:
        if state is JobState.ACTIVE:
            raise ValueError("active jobs cannot be cleaned; cancel them instead")
        with self._lock:
            now = self._now()
            queue = self._queue(name)
            doomed = [
                key for key, r in self._records.items()
                if key[0] == name and r.state is state and now - (r.finished_at or r.created_at) >= older_than
            ]
            for key in doomed:
                self._forget(key)
                if state in FINISHED_STATES:
                    queue.finished[state].pop(key[1], None)
            return len(doomed)
