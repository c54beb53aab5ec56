"""The long-running worker: claims jobs in batches, runs ``def`` handlers in threads and ``async def``
handlers on an event loop, records their outcomes in batches, keeps its leases alive, and drains gracefully
on SIGTERM / SIGINT.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import itertools
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from jobqueue.envelope import Envelope
from jobqueue.runner import JobRunner, Outcome
from jobqueue_redis.connection import TRANSIENT
from jobqueue_redis.scheduling import ThreadPolicy
from jobqueue_redis.scripts import FOLLOW_UPS
from jobqueue_redis.sink import Key, WorkerSink
from jobqueue_redis.ticking import start_ticker

if TYPE_CHECKING:
    from jobqueue_redis.backend import RedisBackend

logger = logging.getLogger("jobqueue.redis.worker")

#: how often the watching idle thread checks that jobs still start or finish (seconds)
WATCH = 0.002
#: ... while jobs are quick and claimed ahead: each check takes the GIL from the thread running them (a 2 ms watch cost
#: ~7% of the jobs/s of one process at concurrency 10), and a job that turns slow holds the ones in line behind it this
#: long at most, once (the next claim sees it was slow and claims only for free slots)
WATCH_AHEAD = 0.02
#: at most this long the heartbeat and other helpers wait for the worker's first claim before starting (seconds)
FIRST_CLAIM_WAIT = 1.0
#: jobs count as quick (see ``prefetch`` in :class:`Worker`) while a batch runs in under this long per job (seconds)
QUICK = 0.001
#: while quick jobs are claimed ahead, up to this many job threads run them from the line at once: one thread's Python
#: runs while the other waits on Redis (a job's own round trips, the worker's claims). Measured on 2 cores, one process
#: at concurrency 10: two threads ran ~25% more jobs/s than one; three no more than two (more GIL hand-offs)
QUICK_THREADS = 2
#: ... and the thread that finds this many jobs or fewer left in line records and claims while the other one runs them,
#: instead of both waiting for the claim once the line is empty (one process at concurrency 10, 2 cores: 5-12% more
#: jobs/s in interleaved runs; 2, 4 and 8 measured alike)
EARLY_LINE = 4
#: a job that runs while that claim's script holds Redis waits for it (its own round trip queues behind the script):
#: among at least QUICK_BATCH quick outcomes, up to QUICK_THREADS - 1 may take up to QUICK_BEHIND_CLAIM and the batch
#: still counts as quick
QUICK_BATCH = 8
QUICK_BEHIND_CLAIM = 0.005
#: while jobs held in line keep every slot busy, the event loop records its async jobs' outcomes in batches of up to the
#: concurrency; an outcome waits at most this long for its batch (seconds)
RECORD_WITHIN = 0.005


def _quick_outcomes(durations: list[float]) -> bool:
    """Whether a batch's outcomes ran quick: each in under QUICK, but for up to QUICK_THREADS - 1 among at least
    QUICK_BATCH quick ones, which may have waited behind a claim (in under QUICK_BEHIND_CLAIM)."""
    slow = [d for d in durations if d >= QUICK]
    if not slow:
        return True
    return (len(slow) < QUICK_THREADS and len(durations) - len(slow) >= QUICK_BATCH
            and all(d < QUICK_BEHIND_CLAIM for d in slow))


#: a cycle opened: the outcomes it records, how many jobs it claims, since when the oldest outcome waits
_Opened = tuple[list[tuple[Envelope, str, Outcome]], int, float]


class _Loop:
    """An asyncio event loop in a daemon thread, for ``async def`` handlers and hooks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="jobqueue-loop", daemon=True)
        self._thread.start()

    def submit(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop's thread."""
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        def cancel_all() -> None:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.stop()

        self.loop.call_soon_threadsafe(cancel_all)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class Worker:
    """Serves ``queues`` (default: every queue the app declares) with up to ``concurrency`` jobs at once.

    ``grace`` is how long a stopping worker lets active jobs finish (default ``JOBQUEUE_SHUTDOWN_GRACE``);
    what still runs after it goes back to waiting. A ``def`` job past its timeout has its attempt failed and
    its thread abandoned (Python cannot kill a thread); an ``async def`` job past its timeout is cancelled.
    While jobs are quick, each claim also takes ``JOBQUEUE_REDIS_PREFETCH`` x ``concurrency`` jobs ahead of the
    free slots (held under their leases, started as threads or, for async jobs, slots free up: never more than
    ``concurrency`` at once), and two job threads run quick ``def`` jobs from the line at once, one of them claiming the
    next batch while the other runs the last few jobs in line.
    """

    def __init__(
        self,
        backend: RedisBackend,
        queues: Sequence[str] | None = None,
        *,
        concurrency: int = 10,
        grace: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, not {concurrency}")
        self.backend = backend
        self.app = backend.app
        self.queues = list(queues) if queues else (list(self.app.queues) or [self.app.settings.default_queue])
        self.concurrency = concurrency
        self.grace = self.app.settings.shutdown_grace if grace is None else float(grace)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.runner = JobRunner(self.app)
        self.ran = 0
        self._active: dict[Key, asyncio.Task[Outcome] | None] = {}  # the task of an async job once it started
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._room = threading.Event()
        self._room.set()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = threading.Event()
        self._forced = threading.Event()
        self._beat_stop = threading.Event()
        self._seq = itertools.count()
        self._line: collections.deque[tuple[Envelope, str]] = collections.deque()  # claimed, not started
        self._outbox: list[tuple[Envelope, str, Outcome]] = []  # ran, outcome not recorded yet
        self._outbox_since = 0.0
        self._fetching = False  # a thread is recording / claiming
        self._wait_claim = False  # ... and it is the wait for work, claiming as it returns (see _record_aside)
        self._recording = False  # a thread records outcomes aside while the wait for work holds the claim
        self._again = False  # another thread wanted to claim meanwhile
        self._running = 0  # def jobs running in job threads
        self._async = 0  # async def jobs running on the event loop
        self._async_ended = False  # an async job's outcome is in the outbox: a thread with nothing to run records it
        self._record_due = False  # the event loop records its jobs' outcomes at the end of this turn...
        self._record_timer = False  # ... or within RECORD_WITHIN...
        self._loop_fetching = False  # ... and is at it (the cycle in flight is the loop's)
        self._starting: list[tuple[Envelope, str]] = []  # async jobs this thread took from the line, to start together
        self._moved = 0  # bumped whenever a job starts or ends: the watcher's sign of life
        self._turn = 0
        self._hint: float | None = None
        self._cond = threading.Condition()  # idle job threads wait here
        self._watcher = False
        self._handover = False  # the watcher just left: the idle thread it wakes watches without claiming first
        self._poke = threading.Event()  # wakes the watcher before its next check: a thread went idle
        self._single = len(self.queues) == 1  # one queue: the watcher blocks on its wake-up list itself
        self._outage_since: float | None = None
        self._pause = 0.1
        self._burst = False
        self._burst_error: BaseException | None = None
        self._job_threads: list[threading.Thread] = []
        self._loop: _Loop | None = None
        self.sink = WorkerSink(backend)
        self._policy = ThreadPolicy(backend.settings.sched_batch)  # SCHED_BATCH while busy (see jobqueue_redis.scheduling)
        self._helpers: list[threading.Thread] = []
        self._listens = False
        self._first_claim = threading.Event()  # the first claim came back (or failed, or the worker stops)
        # jobs claimed ahead of the free slots while jobs are quick
        self._ahead = round(backend.settings.prefetch * concurrency)
        self._claimed_at = 0.0  # when the last claim came back...
        self._claimed = 0  # ... and how many jobs it brought
        self._ahead_now = False  # the last claim took jobs ahead of the free slots (the watcher checks less often)

    # -- public -----------------------------------------------------------------------------------

    def run(self, *, install_signals: bool = True) -> None:
        """Serve until :meth:`stop` (or SIGTERM/SIGINT: a first one drains, a second exits at once)."""
        restore = self._install_signals() if install_signals else None
        self._start(listen=True)
        logger.info(
            "worker %s serving %s (concurrency %d) on %s", self.id, ", ".join(self.queues), self.concurrency,
            self.backend.settings.redacted_url,
        )
        try:
            self._serve(burst=False)
        finally:
            try:
                self._shutdown()
            finally:
                if restore:
                    restore()

    def run_burst(self) -> int:
        """Run every job that is due now, until none is; returns how many attempts ran."""
        self._burst = True
        self._start(listen=False)
        try:
            self._serve(burst=True)
        finally:
            self._shutdown()
        if self._burst_error is not None:
            raise self._burst_error
        return self.ran

    def stop(self, *, force: bool = False) -> None:
        """Stop taking jobs; active ones get the grace period (none with ``force``)."""
        if force:
            self._forced.set()
        self._stopping.set()
        self._first_claim.set()
        self._poke.set()
        self._wake.set()
        self._room.set()
        with self._cond:
            self._cond.notify_all()

    @property
    def active_count(self) -> int:
        with self._lock:
            return len(self._active)

    # -- life cycle -------------------------------------------------------------------------------

    def _install_signals(self) -> Callable[[], None] | None:
        if threading.current_thread() is not threading.main_thread():
            return None

        def handle(signum: int, frame: Any) -> None:
            if self._stopping.is_set():
                logger.warning("second %s: exiting now; active jobs go back to waiting", signal.Signals(signum).name)
                self.stop(force=True)
            else:
                logger.info(
                    "%s: taking no more jobs; %d active get up to %gs to finish (send again to exit at once)",
                    signal.Signals(signum).name, self.active_count, self.grace,
                )
                self.stop()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _start(self, *, listen: bool) -> None:
        self._run_hooks("start")
        self._listens = listen

    def _start_helpers(self) -> None:
        """The heartbeat, listeners, ticker and recovery: started once the first claim is back (see :meth:`_serve`)."""
        beat = threading.Thread(target=self._heartbeat, name="jobqueue-heartbeat", daemon=True)
        beat.start()
        self._helpers.append(beat)
        if self._listens:
            if not self._single:  # one queue: idle job threads block on its wake-up list themselves
                for name in self.queues:
                    listener = threading.Thread(target=self._listen, args=(name,), name=f"jobqueue-listen-{name}", daemon=True)
                    listener.start()
                    self._helpers.append(listener)
            ticker = start_ticker(self.app, self._stopping)  # fires schedules while this process leads; stops on stop
            if ticker is not None:
                self._helpers.append(ticker)
            recovery = threading.Thread(target=self._recover, name="jobqueue-recover", daemon=True)
            recovery.start()
            self._helpers.append(recovery)

    def _event_loop(self) -> _Loop:
        if self._loop is None:
            self._loop = _Loop()
        return self._loop

    def _run_hooks(self, which: str) -> None:
        hooks = getattr(self.app, "worker_hooks", {}).get(which, [])
        for hook in hooks:
            try:
                result = hook()
                if inspect.isawaitable(result):
                    self._event_loop().submit(result).result()
            except Exception:
                if which == "start":
                    raise
                logger.exception("worker stop hook %s raised; ignored", getattr(hook, "__name__", hook))

    def _shutdown(self) -> None:
        self.stop(force=self._forced.is_set())
        self._give_back_line()
        deadline = time.monotonic() + self.grace
        while self.active_count and not self._forced.is_set() and time.monotonic() < deadline:
            self._idle.wait(min(0.1, max(deadline - time.monotonic(), 0.0)))
        leftovers = self.sink.held()
        if leftovers:
            self._give_back(leftovers)
        # a wait for work that claims as it returns gives back what it brought, woken perhaps by the jobs given back
        # just now: let it, or they would stay claimed by this worker until their leases ran out
        settled = time.monotonic() + self.backend.settings.block + 1.0
        while self._wait_claim and not self._forced.is_set() and time.monotonic() < settled:
            time.sleep(0.005)
        abandon = bool(leftovers) or self._forced.is_set()
        self._beat_stop.set()
        try:
            self._run_hooks("stop")
        finally:
            for thread in self._job_threads:
                thread.join(timeout=0 if abandon else self.backend.settings.block + 1.0)
            if self._loop is not None:
                self._loop.stop()
            for helper in self._helpers:
                helper.join(timeout=self.backend.settings.block + 1.0)
            logger.info("worker %s stopped after %d attempt(s)", self.id, self.ran)

    def _give_back_line(self) -> None:
        """Jobs claimed but not started go back to waiting at once."""
        with self._lock:
            line = list(self._line)
            self._line.clear()
        if line:
            held = {(env.queue, env.id): token for env, token in line}
            self._release(held, "claimed, not started,")  # the running ones keep the grace period
            self._done_many(list(held))

    def _give_back(self, held: dict[Key, str]) -> None:
        """Past the grace period: what still runs goes back to waiting; async jobs are cancelled."""
        self._release(held, "still-running")
        with self._lock:
            tasks = [t for t in self._active.values() if t is not None]
        if tasks and self._loop is not None:
            for task in tasks:
                self._loop.call(task.cancel)

    def _release(self, held: dict[Key, str], which: str) -> None:
        """Give ``held`` jobs back to waiting, no longer held here (their outcomes, should they come, are not written)."""
        by_queue: dict[str, list[tuple[str, str]]] = {}
        for (name, job_id), token in held.items():
            self.sink.drop((name, job_id))
            by_queue.setdefault(name, []).append((job_id, token))
        for name, pairs in by_queue.items():
            try:
                count = self.backend.release(name, pairs)
                logger.warning("gave %d %s job(s) of %s back to waiting", count, which, name)
            except TRANSIENT as exc:
                logger.warning("could not give %d job(s) of %s back (%s); they return when their lease runs out", len(pairs), name, exc)

    # -- the loop ---------------------------------------------------------------------------------
    #
    # Claimed jobs wait in a local line (``_line``); job threads take them one after another and keep
    # their outcomes in ``_outbox``. One script call (``cycle.lua``) records the outbox and claims up to
    # the free slots, in one round trip, when the line runs dry (or, see below, when a job runs long).
    # While jobs are quick they are claimed ahead of the free slots, and QUICK_THREADS threads run them back
    # to back (one thread's Python runs while the other's job waits on Redis), with one round trip per batch;
    # the thread that finds EARLY_LINE jobs or fewer left in line makes that call while the other runs them.
    # No more threads take from the line then (threads fighting over the GIL cost more than the jobs).
    #
    # The other threads are idle, and one of them watches: every WATCH seconds (WATCH_AHEAD while jobs are
    # claimed ahead) it checks that jobs are still starting or finishing. If none did (the running jobs are
    # slow), the jobs no longer count as quick: it records the outbox, takes the next job in line (claiming
    # more if the line is empty and slots are free) and runs it, and another idle thread becomes the watcher.
    # So up to ``concurrency`` jobs run at once as soon as they need to.
    # When nothing runs, the watcher blocks on the queue's wake-up list and claims the moment it returns.
    # ``async def`` jobs go to the event loop, up to ``concurrency`` at once; each one's outcome joins the outbox
    # as it ends, and the loop records the outcomes of a turn with the same script call on its asyncio client,
    # claiming for the freed slots and starting what it claimed: no hand-off to a thread. With several queues, or
    # while Redis is unreachable, an idle thread records them instead (there is always one while async jobs run:
    # they hold no thread), as it does beside a wait for work that holds the claim.

    def _serve(self, *, burst: bool) -> None:
        threads = [
            threading.Thread(target=self._job_thread, args=(burst,), name=f"jobqueue-job-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        self._job_threads = threads
        for thread in threads:
            thread.start()
        # the helpers wait for the first claim (the ticker's first look at Redis, thread starts): jobs queued
        # before the worker started run that much sooner. Its leases outlast the wait (the first beat is a
        # third of a lease after the start anyway).
        self._first_claim.wait(FIRST_CLAIM_WAIT)
        self._start_helpers()
        if burst:
            for thread in threads:
                thread.join()
            return
        self._stopping.wait()

    def _job_thread(self, burst: bool) -> None:
        while not self._stopping.is_set():
            item = self._take()
            if item is not None:
                self._run_line(item)
                continue
            if self._starting:
                self._start_async()
            if not self._held_back() and self._cycle():
                continue
            if burst and self._quiet() and not self._follow_ups_left():
                self._stopping_burst()
                return
            self._rest(burst)
        if self._starting:  # taken from the line as the stop came: they get the grace period too
            self._start_async()
        # record what ran, and what still runs on the event loop as it ends (nothing is claimed once stopping), until
        # the shutdown is over (past the grace period, what still runs was given back)
        while (self._outbox or self._async) and not self._forced.is_set() and not self._beat_stop.is_set():
            if not self._cycle():
                time.sleep(0.01)

    def _run_line(self, item: tuple[Envelope, str]) -> None:
        """Run ``item``, then the jobs in line after it, back to back (each end and the next start share one lock
        round). Quick jobs claimed ahead get a second thread running them from the line too (see QUICK_THREADS)."""
        if not self._is_async(item[0]):
            self._second_runner()
        if self._line:  # more wait behind this one
            self._policy.batch()
        nxt: tuple[Envelope, str] | None = item
        while nxt is not None:
            nxt = self._run_item(*nxt)

    def _held_back(self) -> bool:
        """Quick jobs claimed ahead run on QUICK_THREADS threads: another one neither takes from the line nor claims."""
        with self._lock:
            return self._held_back_locked() and bool(self._line)

    def _held_back_locked(self) -> bool:
        return self._ahead_now and self._running >= QUICK_THREADS

    def _second_runner(self) -> None:
        """Wake an idle thread to run quick jobs claimed ahead from the line too, if fewer than QUICK_THREADS do."""
        with self._lock:  # this thread's job counts as running already
            more = self._ahead_now and not self._held_back_locked() and len(self._line) > 1
        if more:  # an idle thread wakes and takes from the line (the watcher's hand-over flag is left as it is)
            with self._cond:
                self._cond.notify(1)

    def _take(self) -> tuple[Envelope, str] | None:
        """The next job in line, counted as running (the caller runs it with :meth:`_run_item`); none while quick jobs
        claimed ahead already run on QUICK_THREADS threads."""
        with self._lock:
            return None if self._held_back_locked() else self._next_locked()

    def _next_locked(self) -> tuple[Envelope, str] | None:
        if not self._line or self._stopping.is_set():
            return None
        if self._is_async(self._line[0][0]) and self._running + self._async >= self.concurrency:
            return None  # held in line until an async job ends (it starts the next one itself)
        self._moved += 1
        self._running += 1
        return self._line.popleft()

    def _next_async_locked(self) -> tuple[Envelope, str] | None:
        """The next job in line if it is an async one with a free slot, counted as running on the loop."""
        if not self._line or self._stopping.is_set():
            return None
        if not self._is_async(self._line[0][0]) or self._running + self._async >= self.concurrency:
            return None
        self._moved += 1
        self._async += 1
        self.ran += 1
        return self._line.popleft()

    def _is_async(self, envelope: Envelope) -> bool:
        job = self.app.registry.get(envelope.name)
        return job is not None and job.is_async

    def _run_item(self, envelope: Envelope, token: str) -> tuple[Envelope, str] | None:
        """Run a job :meth:`_take` gave: a ``def`` job in this thread, returning the next one in line (taken in the
        same lock round); an ``async def`` one goes to the event loop (see :meth:`_start_async`), returning None."""
        key = (envelope.queue, envelope.id)
        self.ran += 1
        if self._is_async(envelope):
            with self._lock:
                self._running -= 1
                self._moved += 1
                self._async += 1
            self._starting.append((envelope, token))  # started with the others taken now: one hand-off to the loop
            return None
        outcome: Outcome | None = None
        nxt: tuple[Envelope, str] | None = None
        early: _Opened | None = None
        try:
            outcome = self._run_here(envelope, token)
        finally:
            with self._lock:
                self._running -= 1
                self._moved += 1
                if outcome is not None:
                    if not self._outbox:
                        self._outbox_since = time.monotonic()
                    self._outbox.append((envelope, token, outcome))
                    early = self._open_early_locked()
                    if early is None:
                        nxt = self._next_locked()
        if outcome is None:
            self._done_many([key])  # failed outside its handler: delivered again once its lease runs out
        if early is not None:  # the other thread runs what is left in line meanwhile
            self._run_cycle(*early)
            nxt = self._take()
            if nxt is not None:
                self._second_runner()
        return nxt

    def _open_early_locked(self) -> _Opened | None:
        """While quick jobs claimed ahead run on two threads, the cycle that records and claims opens before the line
        runs dry (EARLY_LINE jobs or fewer left), so that the other thread runs them meanwhile (called under the lock)."""
        if not (self._ahead_now and not self._fetching and 0 < len(self._line) <= EARLY_LINE and self._running > 0):
            return None
        opened = self._open_cycle_locked(True)
        return opened if isinstance(opened, tuple) else None

    def _run_here(self, envelope: Envelope, token: str) -> Outcome | None:
        """Run a claimed ``def`` job in this thread; its outcome, for the outbox (None if it failed outside its handler)."""
        try:
            return self.runner.attempt(envelope, self.sink)
        except Exception:
            logger.exception("job %s: the attempt failed outside its handler; it is delivered again once its lease runs out", envelope.id)
            self.sink.drop((envelope.queue, envelope.id))
            return None

    def _start_async(self) -> None:
        """Start the async jobs this thread took from the line on the event loop, in one hand-off."""
        jobs, self._starting = self._starting, []
        self._event_loop().call(self._start_on_loop, jobs)

    def _start_on_loop(self, jobs: list[tuple[Envelope, str]]) -> None:
        loop = asyncio.get_running_loop()
        for envelope, token in jobs:
            key = (envelope.queue, envelope.id)
            task = loop.create_task(self.runner.aattempt(envelope, self.sink))
            with self._lock:
                if key in self._active:
                    self._active[key] = task
            task.add_done_callback(functools.partial(self._async_done, envelope, token))

    def _async_done(self, envelope: Envelope, token: str, task: asyncio.Task[Outcome]) -> None:
        """An ``async def`` attempt ended (on the event loop's thread): its outcome joins the outbox, and the loop records
        it (see :meth:`_plan_record_locked`), or an idle thread does (see :meth:`_loop_records`); a cycle in flight
        looks again instead."""
        outcome = None if task.cancelled() or task.exception() is not None else task.result()
        key = (envelope.queue, envelope.id)
        wake = False
        plan: str | None = None
        with self._lock:
            self._async -= 1
            self._moved += 1
            nxt = self._next_async_locked()  # claimed ahead: it starts now, without a hand-off
            if outcome is not None:
                first = not self._outbox
                if first:
                    self._outbox_since = time.monotonic()
                self._outbox.append((envelope, token, outcome))
                if self._fetching:
                    self._again = True  # the cycle in flight looks again (the loop's at once, a thread's before it rests)
                if self._loop_fetching or (self._loop_records() and not self._fetching):
                    plan = self._plan_record_locked()  # else a thread's cycle is in flight: it looks again, as before
                else:
                    self._async_ended = True
                    wake = first and (not self._fetching or self._wait_claim)  # that wait does not come back to record
        if outcome is None:  # cancelled at a stop, or failed outside its handler: delivered again once its lease runs out
            if not task.cancelled():
                logger.error("job %s: the attempt failed outside its handler; it is delivered again once its lease runs out",
                             envelope.id, exc_info=task.exception())
            self.sink.drop_if(key, token)
            self._done_many([key])
            wake = True  # a slot freed
        if nxt is not None:
            self._start_on_loop([nxt])
        if plan is not None:
            self._plan_record(plan)
        if wake:
            self._poke.set()  # the watcher looks again (if it waits for a slot, it records this itself)...
            self._nudge()  # ... and an idle thread records it

    def _loop_records(self) -> bool:
        """Whether the event loop records its async jobs' outcomes itself (with the asyncio client, claiming for the
        slots they free): one queue, Redis reachable. Else an idle thread records them (called under the lock)."""
        return self._single and self._outage_since is None

    def _plan_record_locked(self) -> str | None:
        """When the event loop records the outbox (called under the lock): "soon", at the end of this turn, in one call
        for every job that ended in it, when a slot waits for the claim (nothing held in line), the batch is full, or
        the worker stops; else "later", within RECORD_WITHIN; None when planned already, or a cycle of the loop's is in
        flight (it looks again as it ends)."""
        if self._loop_fetching or not self._outbox:
            return None
        if not self._line or len(self._outbox) >= self.concurrency or self._stopping.is_set():
            if self._record_due:
                return None
            self._record_due = True
            return "soon"
        if self._record_timer:
            return None
        self._record_timer = True
        return "later"

    def _plan_record(self, plan: str) -> None:
        loop = asyncio.get_running_loop()
        if plan == "soon":
            loop.call_soon(self._record_on_loop)
        else:
            loop.call_later(RECORD_WITHIN, self._record_later)

    def _record_later(self) -> None:
        with self._lock:
            self._record_timer = False
            waiting = bool(self._outbox)
        if waiting:
            self._record_on_loop()

    def _record_on_loop(self, claim: bool = True) -> None:
        """On the event loop: record the outbox and claim for the free slots (see :meth:`_arecord`), unless a cycle
        is in flight (it looks again) or the wait for work holds the claim (a thread records aside)."""
        with self._lock:
            self._record_due = False
            opened = self._open_cycle_locked(claim, on_loop=True)
            if isinstance(opened, tuple):
                self._loop_fetching = True
        if opened is True:
            self._poke.set()
            self._nudge()
        elif opened is not False:
            asyncio.get_running_loop().create_task(self._arecord(*opened))

    async def _arecord(self, finished: list[tuple[Envelope, str, Outcome]], want: int, since: float) -> None:
        """One cycle on the event loop: no thread hand-off between an async job's end, its recording and the start of
        the jobs claimed for its slot. On an error, the outcomes go back to the outbox for a thread to record (it waits
        out an outage)."""
        name = self.queues[0]
        got: list[tuple[Envelope, str]] = []
        try:
            finished = self._owned(name, finished)
            kept: list[int] = []
            if finished or want:
                kept, got, self._hint = await self.backend.acycle(name, finished, want, f"{self.id}:{next(self._seq)}")
        except BaseException as exc:  # a Redis error, or cancelled as the loop stops
            with self._lock:
                self._outbox[:0] = finished
                if finished:
                    self._outbox_since = since
                self._async_ended = True
                self._loop_fetching = False
            self._fetching_done()
            self._poke.set()
            self._nudge()
            if not isinstance(exc, (*TRANSIENT, RedisError)):
                raise
            logger.debug("recording on the event loop failed (%s); a worker thread records instead", exc)
            return
        if got and self._stopping.is_set():  # the stop came during the call: the line was given back already
            claimed = {(env.queue, env.id): token for env, token in got}
            await asyncio.to_thread(self._release, claimed, "claimed after the stop")
        else:
            self._admit(got)
        if any(answer in FOLLOW_UPS for answer in kept):  # blocking calls: kept off the loop
            await asyncio.to_thread(self._settle_many, finished, kept)
        else:
            self._settle_many(finished, kept)
        with self._lock:
            self._loop_fetching = False
        again = self._fetching_done()
        self._start_claimed()
        short = len(got) < want
        if short:  # the queue ran dry: the watcher blocks for work
            self._poke.set()
        if again:
            with self._lock:
                plan = self._plan_record_locked()
            if plan == "soon":
                self._record_on_loop(claim=not short)
            elif plan is not None:
                self._plan_record(plan)

    def _start_claimed(self) -> None:
        """On the event loop, after a claim: start the async jobs at the head of the line, up to the free slots; a
        ``def`` job at the head is a thread's to take."""
        with self._lock:
            jobs = []
            while (nxt := self._next_async_locked()) is not None:
                jobs.append(nxt)
            thread = bool(self._line) and not self._is_async(self._line[0][0])
        if jobs:
            self._start_on_loop(jobs)
        if thread:
            self._nudge()

    def _cycle(self, claim: bool = True) -> bool:
        """Record the outbox and claim up to the free slots into the line; True if it claimed jobs, or recorded
        outcomes with nothing left to ask for; False if another thread is at it, or the queue had nothing more."""
        with self._lock:
            opened = self._open_cycle_locked(claim)
        if opened is True:
            return self._record_aside()
        if opened is False:
            return False
        return self._run_cycle(*opened)

    def _run_cycle(self, finished: list[tuple[Envelope, str, Outcome]], want: int, since: float) -> bool:
        """The script call of a cycle :meth:`_open_cycle_locked` opened; as :meth:`_cycle` answers."""
        got: list[tuple[Envelope, str]] = []
        try:
            got, self._hint = self._cycle_round(finished, max(want, 0))
            self._back()
        except (*TRANSIENT, RedisError) as exc:  # type: ignore[misc]
            if finished and time.monotonic() - since > self.backend.settings.ack_retry_for:
                logger.error("could not record %d outcome(s) for %gs (%s); they are delivered again once their leases run out",
                             len(finished), self.backend.settings.ack_retry_for, exc)
                for envelope, token, _ in finished:
                    self.sink.drop_if((envelope.queue, envelope.id), token)
                    self._done_many([(envelope.queue, envelope.id)])
                finished = []
            with self._lock:
                self._outbox[:0] = finished
                if finished:
                    self._outbox_since = since
            self._fetching_done()
            self._outage(exc)
            return bool(finished)
        again = self._fetching_done()
        if again and len(got) < want:
            return self._cycle() or bool(got)
        # a claim that came back short found the queue drained: claiming again at once would find nothing, and
        # would keep the worker from blocking on the wake-up list (a job arriving meanwhile would wait for it)
        return bool(got) or (bool(finished) and len(got) >= want)

    def _open_cycle_locked(self, claim: bool, on_loop: bool = False) -> _Opened | bool:
        """Start a cycle (called under the lock): the outcomes it records, how many jobs it claims, and since when the
        oldest outcome waits, with ``_fetching`` set; True if the wait for work holds the claim and outcomes wait (to
        be recorded aside); False if there is nothing to do, or another cycle is at it (it looks once more)."""
        if self._fetching:
            if not (self._wait_claim and self._outbox and not self._recording):
                self._again = True  # work may have arrived after that call claimed: it looks once more
                return False
            return True  # the wait for work holds the claim: record what ended meanwhile, claiming nothing
        self._again = False
        self._async_ended = False
        finished, self._outbox = self._outbox, []
        want = 0 if (self._stopping.is_set() or not claim) else self.concurrency - len(self._active) + len(finished)
        if want > 0:
            quick = self._quick_on_loop(finished) if on_loop else self._quick(finished)
            self._ahead_now = bool(self._ahead) and quick
            if self._ahead_now:
                want += self._ahead
        if not finished and want <= 0:
            return False
        self._fetching = True
        return finished, max(want, 0), self._outbox_since

    def _record_aside(self) -> bool:
        """While the wait for work holds the claim (it claims the moment work arrives), record what ended meanwhile
        without claiming: so an outcome does not wait for that wait to return. True if it recorded outcomes."""
        with self._lock:
            if self._recording or not self._outbox:
                return False
            self._recording = True
            self._async_ended = False
            finished, self._outbox = self._outbox, []
            since = self._outbox_since
        try:
            self._cycle_round(finished, 0)
            self._back()
        except (*TRANSIENT, RedisError) as exc:  # type: ignore[misc]
            with self._lock:  # the next cycle tries again (and gives up on them past ack_retry_for)
                self._outbox[:0] = finished
                self._outbox_since = since
            self._outage(exc)
        finally:
            with self._lock:
                self._recording = False
        return True

    def _quick(self, finished: list[tuple[Envelope, str, Outcome]]) -> bool:
        """Whether the line ran (nearly) dry quickly: every job of the last claim started, in under QUICK each, but for
        up to EARLY_LINE left in line (a claim sent early), and ended in under QUICK (see :func:`_quick_outcomes`) but for
        the last one of the other thread running the line (called under the lock). Then claiming ahead costs a held job
        at most a batch's few milliseconds."""
        line = len(self._line)
        return (bool(finished) and line <= EARLY_LINE and self._running < QUICK_THREADS
                and len(finished) + self._running + line >= self._claimed > 0
                and time.monotonic() - self._claimed_at < QUICK * self._claimed
                and _quick_outcomes([outcome.duration for _, _, outcome in finished]))

    def _quick_on_loop(self, finished: list[tuple[Envelope, str, Outcome]]) -> bool:
        """Whether the async jobs the event loop records ran quick: each in under QUICK x the concurrency, so that the
        jobs claimed ahead wait for a slot about as long as quick ``def`` ones held in line do."""
        return bool(finished) and all(outcome.duration < QUICK * self.concurrency for _, _, outcome in finished)

    def _fetching_done(self) -> bool:
        """The cycle is over; True if another thread asked for one meanwhile."""
        self._first_claim.set()
        with self._lock:
            self._fetching = False
            again, self._again = self._again, False
            return again

    def _cycle_round(self, pending: list[tuple[Envelope, str, Outcome]], want: int) -> tuple[list[tuple[Envelope, str]], float | None]:
        """Record ``pending`` and claim up to ``want`` jobs (from each queue in turn), one script call per queue."""
        names = self.queues
        if len(names) > 1:
            start = self._turn % len(names)
            self._turn += 1
            names = names[start:] + names[:start]
            first = {p[0].queue for p in pending}  # queues with outcomes to record first, so they share the call
            names = [n for n in names if n in first] + [n for n in names if n not in first]
        hint: float | None = None
        claimed: list[tuple[Envelope, str]] = []
        left = len(pending)
        for name in names:
            mine = [p for p in pending if p[0].queue == name]
            left -= len(mine)
            finished = self._owned(name, mine)
            count = max(want - len(claimed), 0)
            if not finished and not count:
                if left:
                    continue
                break
            kept, jobs, when = self.backend.cycle(name, finished, count, f"{self.id}:{next(self._seq)}")
            self._admit(jobs)
            self._settle_many(finished, kept)
            if when is not None:
                hint = when if hint is None else min(hint, when)
            claimed += jobs
            if len(claimed) >= want and not left:
                break
        return claimed, hint

    def _owned(self, name: str, items: list[tuple[Envelope, str, Outcome]]) -> list[tuple[Envelope, str, Outcome]]:
        """The outcomes of ``items`` this worker may still write; the others (given back at a stop past its grace, or
        lost) are settled as not written."""
        owned = []
        for item in items:
            if self.sink.owns((name, item[0].id), item[1]):
                owned.append(item)
            else:
                self._settle_many([item], [0])
        return owned

    def _admit(self, jobs: list[tuple[Envelope, str]]) -> None:
        """Claimed jobs: held under their leases, active, in line."""
        if not jobs:
            return
        self.sink.hold_many(jobs)
        with self._lock:
            self._claimed_at = time.monotonic()
            self._claimed = len(jobs)
            for envelope, _ in jobs:
                self._active[(envelope.queue, envelope.id)] = None
            self._line.extend(jobs)
            if self._idle.is_set():
                self._idle.clear()
            if len(self._active) >= self.concurrency and self._room.is_set():
                self._room.clear()

    def _settle_many(self, finished: Sequence[tuple[Envelope, str, Outcome]], kept: Sequence[int]) -> None:
        """Outcomes were recorded (``kept``: finish.lua's answers, 0 if the lease was lost): hooks, then follow-ups."""
        if not finished:
            return
        self.sink.drop_many([((envelope.queue, envelope.id), token) for envelope, token, _ in finished])
        self._done_many([(envelope.queue, envelope.id) for envelope, _, _ in finished])
        for (envelope, _, outcome), answer in zip(finished, kept):
            try:
                self.runner.settle(envelope, outcome, bool(answer))
                self.backend.follow_up_attempt(envelope, outcome, int(answer))  # the ack is applied and the hooks fired
            except Exception:  # noqa: BLE001 - hooks catch their own errors; this is a last guard for the thread
                logger.exception("job %s: after recording its outcome", envelope.id)

    def _quiet(self) -> bool:
        """Burst: nothing in line, running, waiting to be recorded or being claimed."""
        with self._lock:
            return not (self._active or self._line or self._outbox or self._fetching)

    def _stopping_burst(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _rest(self, burst: bool) -> None:
        """Nothing in line: watch (see above) if no thread does, else sleep until woken."""
        timeout = self.backend.settings.idle_poll
        if self._hint is not None:
            timeout = min(timeout, max(self._hint - self.app.clock.now(), 0.005))
        with self._cond:
            if self._watcher or self._stopping.is_set():
                self._poke.set()  # the watcher looks again now (it blocks for work at once if nothing runs)
                self._cond.wait(0.05 if burst else timeout)
                if not self._handover or self._watcher or self._stopping.is_set():
                    return
                if self._line:
                    # woken to take the watch, this thread runs from the line instead: the watch goes on to the next
                    # idle thread (which does the same while jobs wait in line); else no thread would watch, and idle
                    # ones would sleep through jobs waiting in line for a slot
                    self._cond.notify(1)
                    return
                # the watcher left to run what it found (or to claim): take over at once; claiming first would find
                # nothing, and would keep this thread busy while the one that left starts its job
            self._handover = False
            self._watcher = True
        try:
            self._watch(burst, timeout)
        finally:
            with self._cond:
                self._watcher = False
                self._handover = self._single  # several queues: a listener's nudge is what gets a claim
                self._cond.notify(1)  # the next idle thread watches

    def _watch(self, burst: bool, timeout: float) -> None:
        while not self._stopping.is_set():
            self._poke.clear()
            with self._lock:
                running, local, moved = self._running, bool(self._line or self._outbox or self._fetching), self._moved
                record = self._async_ended and not self._running and not self._fetching
            if record:  # an async job's outcome, and no thread running jobs here to record it: this one does
                return
            if not running and not local:  # nothing runs here: claim as soon as work arrives
                if burst:
                    self._stopping.wait(0.01)
                else:
                    self._wait_for_work(timeout)
                return
            if self._heard(WATCH_AHEAD if self._ahead_now else WATCH):
                continue
            with self._lock:
                stalled = self._moved == moved
                if stalled:  # not quick: every free thread may take from the line (see _take)
                    self._ahead_now = False
            if stalled:  # jobs run long: record what finished, claim for the free slots, run the next one here
                if not self._cycle() and not self._line and not burst:
                    self._wait_for_work(timeout)  # nothing more to do now; look again when work arrives
                return

    def _heard(self, every: float) -> bool:
        """Wait ``every`` seconds, listening for pokes (a thread went idle, an async job ended); True as soon as one
        finds nothing running in threads here and nothing left to record or claim (block for work at once), or an
        async job's outcome to record."""
        deadline = time.monotonic() + every
        left = every
        while left > 0 and self._poke.wait(left):
            self._poke.clear()
            with self._lock:
                idle = not self._running and not (self._line or self._outbox or self._fetching)
                if idle or (self._async_ended and not self._running and not self._fetching):
                    return True
            left = deadline - time.monotonic()
        return False

    def _wait_for_work(self, timeout: float) -> None:
        self._policy.default()  # a job handed to this thread starts ahead of whatever runs
        if not self._single:  # listeners wake a thread up
            with self._cond:
                self._cond.wait(timeout)
            return
        block = min(self.backend.settings.block, max(timeout, 0.01))
        with self._lock:
            busy, full = self._async > 0, len(self._active) >= self.concurrency
            claim = not self._fetching and not self._stopping.is_set() and not full
            if claim:
                self._fetching = self._wait_claim = True
                want = self.concurrency - len(self._active)
                self._ahead_now = False  # the wake-up claim takes only the free slots
        if busy and full:  # async jobs fill every slot: nothing to claim; wait for one to end (it pokes)
            self._poke.wait(timeout)
            return
        try:
            got = None
            if claim:  # the claim runs on the server the moment the wait returns: one round trip to pick up
                got = self.backend.wait_and_claim(self.queues[0], block, want, f"{self.id}:{next(self._seq)}")
            if got is None:
                self.backend.wait_for_work(self.queues[0], block)
            else:
                jobs, self._hint = got
                if self._stopping.is_set():  # the stop came during the wait (it may have been woken by a job given back)
                    self._release({(env.queue, env.id): token for env, token in jobs}, "claimed after the stop")
                else:
                    self._admit(jobs)
                self._back()
        except TRANSIENT as exc:
            logger.debug("waiting for work failed: %s", exc)
            self._stopping.wait(min(timeout, 1.0))
        except RedisError:
            logger.exception("claiming after a wake-up failed; claiming the usual way")
            self._stopping.wait(min(timeout, 1.0))
        finally:
            if claim:
                self._wait_claim = False
                self._fetching_done()

    def _outage(self, exc: BaseException) -> None:
        with self._lock:
            first = self._outage_since is None
            if first:
                self._outage_since = time.monotonic()
            pause = self._pause
            self._pause = min(pause * 2, 2.0)
        if first:
            transient = isinstance(exc, TRANSIENT)
            logger.warning("Redis %s (%s); retrying until it is back", "unreachable" if transient else "refused a claim",
                           exc, exc_info=not transient)
        if self._burst and self._burst_error is None:
            self._burst_error = exc
            self.stop()
        self._stopping.wait(pause)

    def _back(self) -> None:
        if self._outage_since is None:
            return
        with self._lock:
            since, self._outage_since, self._pause = self._outage_since, None, 0.1
        if since is not None:
            logger.warning("Redis is back after %.1fs", time.monotonic() - since)

    def _nudge(self) -> None:
        """Wake an idle thread to claim (a slot freed, or a listener saw work)."""
        with self._cond:
            self._handover = False
            self._cond.notify(1)

    def _done_many(self, keys: Sequence[Key]) -> None:
        """Jobs that are no longer active here."""
        with self._lock:
            for key in keys:
                self._active.pop(key, None)
            self._moved += 1
            if len(self._active) < self.concurrency and not self._room.is_set():
                self._room.set()
            if not self._active and not self._idle.is_set():
                self._idle.set()

    # -- helpers ----------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        """Every third of a lease, extend the leases of running attempts; note the ones lost."""
        interval = max(self.backend.settings.lease / 3, 0.05)
        while not self._beat_stop.wait(interval):
            by_queue: dict[str, list[tuple[str, str]]] = {}
            for (name, job_id), token in self.sink.held().items():
                by_queue.setdefault(name, []).append((job_id, token))
            for name, pairs in by_queue.items():
                try:
                    for job_id in self.backend.heartbeat(name, pairs):
                        logger.warning("job %s: lease lost (taken back or cancelled); its outcome will not be written", job_id)
                        self.sink.mark_lost((name, job_id))
                except TRANSIENT as exc:
                    logger.debug("heartbeat failed: %s", exc)

    def _recover(self) -> None:
        """Every few seconds, finish the workflow steps a crash left half done (follow-ups, unlinked children)."""
        settings = self.backend.settings
        while not self._stopping.wait(settings.recover_every):
            try:
                done = self.app.workflows.recover(self.queues, older_than=settings.recover_after)
                if done:
                    logger.warning("recovered %d workflow step(s) a crash or an error left half done", done)
            except Exception:
                logger.exception("workflow recovery failed; trying again in %gs", settings.recover_every)

    def _follow_ups_left(self) -> bool:
        """Before a burst ends: run follow-ups an error left behind (say, a dependent's queue was unreachable);
        True if one ran, since it may have released work."""
        try:
            return self.backend.run_followups(self.queues) > 0
        except (*TRANSIENT, RedisError):  # type: ignore[misc]
            logger.warning("could not look for follow-ups left behind; recovery will run them", exc_info=True)
            return False

    def _listen(self, name: str) -> None:
        """Block on the queue's wake-up list while there is room; wake the loop when work arrives."""
        block = self.backend.settings.block
        while not self._stopping.is_set():
            if not self._room.wait(block):
                continue
            try:
                if self.backend.wait_for_work(name, block) and not self._stopping.is_set():
                    self._nudge()
            except TRANSIENT:
                self._stopping.wait(1.0)
            except Exception:
                logger.exception("listener of %s failed; retrying", name)
                self._stopping.wait(1.0)
