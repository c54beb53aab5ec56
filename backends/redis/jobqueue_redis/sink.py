"""What a worker's running attempts write to: progress, cancel checks and outcomes, under its leases."""

from __future__ import annotations

import logging
import queue as queue_module
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

from jobqueue.envelope import Envelope
from jobqueue.errors import BrokerUnavailable
from jobqueue.runner import Outcome
from jobqueue_redis.connection import TRANSIENT
from jobqueue_redis.scripts import FOLLOW_UPS

if TYPE_CHECKING:
    from jobqueue_redis.backend import RedisBackend

logger = logging.getLogger("jobqueue.redis.worker")

Key = tuple[str, str]  # (queue, job id)

_BATCH = 200


class AckBatcher:
    """Records outcomes in batches: what arrives while one pipeline is in flight goes in the next.

    While Redis is away it keeps retrying for ``retry_for`` seconds; after that the attempt's outcome is
    lost and the job is delivered again once its lease runs out (at least once).
    """

    def __init__(self, backend: RedisBackend, retry_for: float) -> None:
        self.backend = backend
        self.retry_for = retry_for
        self._queue: queue_module.SimpleQueue[tuple[Envelope, str, Outcome, Future[int]] | None] = queue_module.SimpleQueue()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobqueue-acks", daemon=True)
        self._thread.start()

    def finish(self, envelope: Envelope, token: str, outcome: Outcome) -> int:
        """Queue an outcome and wait until its batch is recorded; answers as :meth:`RedisBackend.finish_many`."""
        future: Future[int] = Future()
        self._queue.put((envelope, token, outcome, future))
        return future.result()

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def abandon(self) -> None:
        """Stop retrying at once (a forced exit)."""
        self._closing.set()
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch = [] if item is None else [item]
            stop = item is None
            while len(batch) < _BATCH and not stop:
                try:
                    nxt = self._queue.get_nowait()
                except queue_module.Empty:
                    break
                if nxt is None:
                    stop = True
                else:
                    batch.append(nxt)
            if batch:
                self._flush(batch)
            if stop:
                while True:  # anything that raced in after the sentinel
                    try:
                        late = self._queue.get_nowait()
                    except queue_module.Empty:
                        return
                    if late is not None:
                        self._flush([late])

    def _flush(self, batch: list[tuple[Envelope, str, Outcome, Future[int]]]) -> None:
        deadline = time.monotonic() + self.retry_for
        pause = 0.05
        while True:
            try:
                results = self.backend.finish_many([(env, token, outcome) for env, token, outcome, _ in batch])
            except TRANSIENT as exc:
                if time.monotonic() >= deadline or self._closing.is_set():
                    error = BrokerUnavailable(f"could not record {len(batch)} outcome(s): {exc}")
                    for *_, future in batch:
                        future.set_exception(error)
                    return
                logger.warning("Redis unreachable while recording outcomes (%s); retrying", exc)
                self._closing.wait(pause)
                pause = min(pause * 2, 2.0)
                continue
            except Exception as exc:  # noqa: BLE001 - any other error belongs to the waiting attempts
                for *_, future in batch:
                    future.set_exception(exc)
                return
            for (*_, future), kept in zip(batch, results):
                future.set_result(kept)
            return


class WorkerSink:
    """The sink :meth:`JobRunner.execute` writes to, holding the lease token of each running attempt."""

    def __init__(self, backend: RedisBackend, acks: AckBatcher | None = None) -> None:
        self.backend = backend
        self.acks = acks
        self._tokens: dict[Key, str] = {}
        self._lost: set[Key] = set()
        #: attempts whose recorded outcome ended the job with a follow-up, until after_finish runs it
        self._ended: dict[Key, tuple[Outcome, int]] = {}
        self._lock = threading.Lock()

    def hold(self, envelope: Envelope, token: str) -> None:
        with self._lock:
            self._tokens[(envelope.queue, envelope.id)] = token
            self._lost.discard((envelope.queue, envelope.id))

    def hold_many(self, jobs: Sequence[tuple[Envelope, str]]) -> None:
        """:meth:`hold` for many claimed jobs, in one lock round."""
        with self._lock:
            for envelope, token in jobs:
                key = (envelope.queue, envelope.id)
                self._tokens[key] = token
                self._lost.discard(key)

    def held(self) -> dict[Key, str]:
        with self._lock:
            return dict(self._tokens)

    def drop(self, key: Key) -> str | None:
        """Forget an attempt: a later finish by its (abandoned) thread writes nothing."""
        with self._lock:
            self._lost.discard(key)
            return self._tokens.pop(key, None)

    def owns(self, key: Key, token: str) -> bool:
        """Whether ``token`` still holds ``key`` here (not given back, not lost)."""
        with self._lock:
            return self._tokens.get(key) == token and key not in self._lost

    def drop_if(self, key: Key, token: str) -> None:
        """Forget an attempt once its outcome was recorded, if ``token`` is still the one held."""
        with self._lock:
            if self._tokens.get(key) == token:
                del self._tokens[key]
            self._lost.discard(key)

    def drop_many(self, pairs: Sequence[tuple[Key, str]]) -> None:
        """:meth:`drop_if` for many recorded outcomes, in one lock round."""
        with self._lock:
            for key, token in pairs:
                if self._tokens.get(key) == token:
                    del self._tokens[key]
                self._lost.discard(key)

    def mark_lost(self, key: Key) -> None:
        with self._lock:
            if key in self._tokens:
                self._lost.add(key)

    def _token(self, envelope: Envelope) -> str | None:
        with self._lock:
            return self._tokens.get((envelope.queue, envelope.id))

    # -- the AttemptSink protocol ---------------------------------------------------------------

    def set_progress(self, envelope: Envelope, value: float) -> None:
        token = self._token(envelope)
        if token is None:
            return
        try:
            if not self.backend.set_progress(envelope, token, value):
                self.mark_lost((envelope.queue, envelope.id))
        except TRANSIENT as exc:  # progress is best effort; the outcome is what counts
            logger.debug("progress of job %s not written: %s", envelope.id, exc)

    def is_cancel_requested(self, envelope: Envelope) -> bool:
        key = (envelope.queue, envelope.id)
        with self._lock:
            token = self._tokens.get(key)
            if token is None or key in self._lost:
                return True
        try:
            return self.backend.cancel_requested(envelope, token)
        except TRANSIENT:
            return False

    def finish(self, envelope: Envelope, outcome: Outcome) -> bool:
        key = (envelope.queue, envelope.id)
        token = self._token(envelope)
        if token is None:
            return False
        try:
            if self.acks is not None:
                answer = self.acks.finish(envelope, token, outcome)
            else:
                answer = self.backend.finish_many([(envelope, token, outcome)])[0]
        finally:
            with self._lock:
                if self._tokens.get(key) == token:
                    del self._tokens[key]
                self._lost.discard(key)
        if answer in FOLLOW_UPS:
            with self._lock:
                self._ended[key] = (outcome, answer)
        return bool(answer)

    def after_finish(self, envelope: Envelope) -> None:
        """Called by the runner once the outcome is kept and the job's hooks fired: the ack that ended the job
        is applied, so tell its dependents and group now (a crash before this leaves the follow-up to recovery)."""
        with self._lock:
            ended = self._ended.pop((envelope.queue, envelope.id), None)
        if ended is not None:
            self.backend.follow_up_attempt(envelope, *ended)
