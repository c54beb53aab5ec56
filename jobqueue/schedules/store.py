"""Where dynamic schedules, the ticker's cursors and its leader lease live.

A backend returns one from :meth:`jobqueue.backends.base.Backend.schedule_store`. The in-memory
one below serves the sync and memory backends (and is what a test uses); the Redis backend keeps
the same three things in Redis, and the SQS backend creates dynamic schedules through the
EventBridge Scheduler API (it runs no ticker, so it needs no lease and no cursors).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from jobqueue.schedules.model import Schedule


@runtime_checkable
class ScheduleStore(Protocol):
    """Dynamic schedules, per-schedule fire cursors, and the ticker's leader lease.

    Every method may be called from several processes at once; each is atomic on its own.
    Nothing here needs to be atomic *across* methods: a fire enqueued twice is one job,
    because its id is deterministic.
    """

    # -- dynamic schedules ---------------------------------------------------------------

    def add(self, schedule: Schedule) -> None:
        """Create or replace the dynamic schedule ``schedule.name``."""

    def remove(self, name: str) -> bool:
        """Delete a dynamic schedule and its cursor (re-added, it starts afresh); False if there was none."""

    def get(self, name: str) -> Schedule | None:
        """The dynamic schedule ``name``, or None."""

    def list(self) -> list[Schedule]:
        """Every dynamic schedule, sorted by name."""

    # -- the ticker's state ----------------------------------------------------------------

    def get_cursor(self, name: str) -> float | None:
        """The time up to which schedule ``name`` has been fired (epoch seconds), or None if never."""

    def set_cursor(self, name: str, fired_until: float) -> None:
        """Record that schedule ``name`` has been fired up to ``fired_until``; never moves a cursor back."""

    def acquire_leader(self, owner: str, ttl: float) -> bool:
        """Take the ticker's lease for ``ttl`` seconds, or renew it if ``owner`` holds it; False if another holds it."""

    def release_leader(self, owner: str) -> None:
        """Give the lease up if ``owner`` holds it (a clean shutdown hands over at once)."""


class InMemoryScheduleStore:
    """A :class:`ScheduleStore` in this process; its lease follows ``now`` (the app's clock)."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._schedules: dict[str, Schedule] = {}
        self._cursors: dict[str, float] = {}
        self._leader: tuple[str, float] | None = None  # (owner, expires at)

    def add(self, schedule: Schedule) -> None:
        with self._lock:
            self._schedules[schedule.name] = schedule

    def remove(self, name: str) -> bool:
        with self._lock:
            self._cursors.pop(name, None)
            return self._schedules.pop(name, None) is not None

    def get(self, name: str) -> Schedule | None:
        with self._lock:
            return self._schedules.get(name)

    def list(self) -> list[Schedule]:
        with self._lock:
            return [self._schedules[name] for name in sorted(self._schedules)]

    def get_cursor(self, name: str) -> float | None:
        with self._lock:
            return self._cursors.get(name)

    def set_cursor(self, name: str, fired_until: float) -> None:
        with self._lock:
            self._cursors[name] = max(fired_until, self._cursors.get(name, fired_until))

    def acquire_leader(self, owner: str, ttl: float) -> bool:
        with self._lock:
            now = self._now()
            if self._leader is not None and self._leader[0] != owner and self._leader[1] > now:
                return False
            self._leader = (owner, now + ttl)
            return True

    def release_leader(self, owner: str) -> None:
        with self._lock:
            if self._leader is not None and self._leader[0] == owner:
                self._leader = None

    def leader(self) -> str | None:
        """Who holds the lease now (for tests and ``jobqueue schedules list``)."""
        with self._lock:
            if self._leader is None or self._leader[1] <= self._now():
                return None
            return self._leader[0]
