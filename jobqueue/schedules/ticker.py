"""The ticker: fires due schedules by enqueueing one job per fire, with a deterministic id.

Pure logic over a clock, a :class:`~jobqueue.schedules.store.ScheduleStore` (dynamic schedules,
cursors, leader lease) and an ``enqueue(envelope) -> created`` callable. Any number of tickers may
run: only the lease holder fires, and if two ever fire the same time (a lost lease, a clock that
jumps) the job id ``"{schedule}:{fire_time}"`` makes the second enqueue a no-op.

Per schedule the store keeps a cursor, "fired up to". On each tick the leader enqueues every fire in
``(cursor, now]`` that is at most ``grace`` seconds old (late fires from a slow tick or a leader change
run), and for older ones (no ticker ran: all workers were down) applies the schedule's ``missed``
policy: ``skip`` drops them, ``catch_up`` runs the latest of them once. A schedule seen for the first
time starts from now: it never fires times from before it existed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from jobqueue.clock import Clock
from jobqueue.errors import BrokerUnavailable, ConfigurationError, JobQueueError
from jobqueue.schedules.model import Schedule

if TYPE_CHECKING:
    from jobqueue.app import JobQueue
    from jobqueue.envelope import Envelope
    from jobqueue.schedules.store import ScheduleStore

logger = logging.getLogger("jobqueue.schedules")

#: ``enqueue(envelope) -> created``: False when a job of that id already exists (a duplicate fire)
Enqueue = Callable[["Envelope"], bool]

DEFAULT_LEASE_TTL = 10.0
DEFAULT_GRACE = 60.0
DEFAULT_INTERVAL = 1.0
#: at most this many on-time fires of one schedule in one tick (bounded by ``grace`` anyway)
MAX_FIRES_PER_TICK = 1000


@dataclass(frozen=True)
class Fired:
    """One fire the ticker enqueued."""

    schedule: str
    fire_time: datetime
    job_id: str
    queue: str
    #: False: a job of this id already existed (another ticker fired it first); nothing new was enqueued
    created: bool
    #: True: a catch-up run of a fire that was missed while no ticker ran
    catch_up: bool = False


def default_owner() -> str:
    """A lease owner id unique to this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Ticker:
    """Fires the app's schedules (code-defined and dynamic) while it holds the leader lease."""

    def __init__(
        self,
        app: JobQueue,
        *,
        store: ScheduleStore | None = None,
        enqueue: Enqueue | None = None,
        clock: Clock | None = None,
        owner: str | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        grace: float = DEFAULT_GRACE,
    ) -> None:
        if lease_ttl <= 0 or grace < lease_ttl:
            raise ConfigurationError(
                f"ticker grace ({grace}s) must be at least the lease ttl ({lease_ttl}s) > 0, "
                "or a leader change could skip fires"
            )
        self.app = app
        self.store: ScheduleStore = store if store is not None else app.backend.schedule_store()
        self.enqueue: Enqueue = enqueue if enqueue is not None else self._enqueue_on_backend
        self.clock: Clock = clock if clock is not None else app.clock
        self.owner = owner or default_owner()
        self.lease_ttl = lease_ttl
        self.grace = grace
        self.is_leader = False
        # name -> (cron, tz, computed from, next fire): nothing fires before that next fire
        self._next: dict[str, tuple[str, str | None, float, float | None]] = {}

    def _enqueue_on_backend(self, envelope: Envelope) -> bool:
        return self.app.backend.enqueue([envelope])[0].created

    # -- one tick ------------------------------------------------------------------------------

    def tick(self) -> list[Fired]:
        """Take or renew the lease; as leader, enqueue every due fire. Returns what was enqueued."""
        now = self.clock.now()
        self.is_leader = self.store.acquire_leader(self.owner, self.lease_ttl)
        if not self.is_leader:
            return []
        fired: list[Fired] = []
        schedules = self.app.schedules.list()
        for schedule in schedules:
            fired.extend(self._fire_due(schedule, now))
        if len(self._next) > len(schedules):  # forget removed schedules
            names = {s.name for s in schedules}
            self._next = {name: entry for name, entry in self._next.items() if name in names}
        return fired

    def _fire_due(self, schedule: Schedule, now: float) -> list[Fired]:
        cursor = self.store.get_cursor(schedule.name)
        if cursor is None:
            self.store.set_cursor(schedule.name, now)
            return []
        if now <= cursor or not self._may_be_due(schedule, cursor, now):
            return []
        fired: list[Fired] = []
        try:
            for fire_time, catch_up in self._due(schedule, cursor, now):
                envelope = schedule.envelope(self.app, fire_time)
                created = self.enqueue(envelope)
                fired.append(Fired(schedule.name, fire_time, envelope.id, envelope.queue, created, catch_up))
        except BrokerUnavailable:
            # Keep the cursor behind the failed fire: the next tick tries it again (within grace).
            logger.warning("schedule %r: broker unavailable, will retry the fire", schedule.name, exc_info=True)
            if fired:
                self.store.set_cursor(schedule.name, fired[-1].fire_time.timestamp())
            return fired
        except JobQueueError:
            # A job that no longer exists or a payload its model now refuses: retrying cannot help.
            logger.exception("schedule %r: cannot enqueue its job; skipping this fire", schedule.name)
        self.store.set_cursor(schedule.name, now)
        return fired

    def _may_be_due(self, schedule: Schedule, cursor: float, now: float) -> bool:
        """Whether a fire may lie in ``(cursor, now]``; cached, so an idle tick computes nothing."""
        cached = self._next.get(schedule.name)
        if (
            cached is not None
            and cached[:2] == (schedule.cron, schedule.tz)
            and cached[2] <= cursor
            and (cached[3] is None or cursor < cached[3])
        ):
            upcoming = cached[3]
        else:
            found = schedule.next_fire(cursor)
            upcoming = found.timestamp() if found is not None else None
            self._next[schedule.name] = (schedule.cron, schedule.tz, cursor, upcoming)
        return upcoming is not None and upcoming <= now

    def _due(self, schedule: Schedule, cursor: float, now: float) -> list[tuple[datetime, bool]]:
        expr = schedule.expr
        on_time_from = max(cursor, now - self.grace)
        due: list[tuple[datetime, bool]] = []
        if on_time_from > cursor and schedule.missed == "catch_up":
            latest_missed = expr.last_at_or_before(on_time_from)
            if latest_missed is not None and latest_missed.timestamp() > cursor:
                due.append((latest_missed, True))
        due.extend((t, False) for t in expr.fires(on_time_from, now, limit=MAX_FIRES_PER_TICK))
        return due

    # -- running in a worker ----------------------------------------------------------------------

    def run(self, stop: threading.Event, *, interval: float = DEFAULT_INTERVAL) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set, then release the lease (a worker thread)."""
        self._check_interval(interval)
        try:
            while not stop.is_set():
                self._safe_tick()
                stop.wait(interval)
        finally:
            self.close()

    async def arun(self, stop: asyncio.Event, *, interval: float = DEFAULT_INTERVAL) -> None:
        """:meth:`run` on an event loop (each tick runs in a thread: the store may block)."""
        self._check_interval(interval)
        try:
            while not stop.is_set():
                await asyncio.to_thread(self._safe_tick)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=interval)
                except TimeoutError:
                    pass
        finally:
            await asyncio.to_thread(self.close)

    def start(self, stop: threading.Event, *, interval: float = DEFAULT_INTERVAL) -> threading.Thread:
        """:meth:`run` in a daemon thread named ``jobqueue-ticker`` (what a worker starts beside its job loop)."""
        self._check_interval(interval)
        thread = threading.Thread(target=self.run, args=(stop,), kwargs={"interval": interval}, name="jobqueue-ticker", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Release the lease if this ticker holds it, so another worker takes over at once."""
        if self.is_leader:
            self.is_leader = False
            try:
                self.store.release_leader(self.owner)
            except Exception:  # the lease expires by itself
                logger.warning("could not release the schedule lease of %s", self.owner, exc_info=True)

    def _safe_tick(self) -> None:
        try:
            for fire in self.tick():
                logger.info("schedule %r fired %s (%s)", fire.schedule, fire.job_id, "new" if fire.created else "duplicate")
        except Exception:
            logger.exception("schedule ticker failed; trying again next tick")

    def _check_interval(self, interval: float) -> None:
        if not 0 < interval < self.lease_ttl:
            raise ConfigurationError(f"ticker interval ({interval}s) must be > 0 and shorter than the lease ttl ({self.lease_ttl}s)")
