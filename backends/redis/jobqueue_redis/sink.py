"""What a worker's running attempts write to (progress, cancel checks), and the lease tokens it holds.

The worker records outcomes itself, in batches (see :mod:`jobqueue_redis.worker`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jobqueue.envelope import Envelope
from jobqueue_redis.connection import TRANSIENT

if TYPE_CHECKING:
    from jobqueue_redis.backend import RedisBackend

logger = logging.getLogger("jobqueue.redis.worker")

Key = tuple[str, str]  # (queue, job id)


class WorkerSink:
    """The sink :meth:`JobRunner.attempt` writes to, holding the lease token of each running attempt."""

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend
        self._tokens: dict[Key, str] = {}
        self._lost: set[Key] = set()
        self._lock = threading.Lock()

    def hold_many(self, jobs: Sequence[tuple[Envelope, str]]) -> None:
        """Hold the lease tokens of claimed jobs (in one lock round)."""
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
