"""The long-running worker: claims jobs in batches, runs ``def`` handlers in threads and ``async def``
handlers on an event loop, keeps its leases alive, and drains gracefully on SIGTERM / SIGINT.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import queue as queue_module
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
from jobqueue.runner import JobRunner
from jobqueue_redis.connection import TRANSIENT
from jobqueue_redis.sink import AckBatcher, Key, WorkerSink
from jobqueue_redis.ticking import start_ticker

if TYPE_CHECKING:
    from jobqueue_redis.backend import RedisBackend

logger = logging.getLogger("jobqueue.redis.worker")


class _Threads:
    """A pool of daemon threads (a job thread that never returns must not keep the process alive)."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._tasks: queue_module.SimpleQueue[Callable[[], None] | None] = queue_module.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, task: Callable[[], None]) -> None:
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._size:
                thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1
        self._tasks.put(task)

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            try:
                task()
            finally:
                with self._lock:
                    self._idle += 1

    def shutdown(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)


class _Loop:
    """An asyncio event loop in a daemon thread, for ``async def`` handlers and hooks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="jobqueue-loop", daemon=True)
        self._thread.start()

    def submit(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

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
        self._active: dict[Key, Future[Any] | None] = {}
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
        self._turn = 0
        self._threads = _Threads(concurrency, "jobqueue-job")
        self._loop: _Loop | None = None
        self._acks: AckBatcher | None = None
        self.sink = WorkerSink(backend)
        self._helpers: list[threading.Thread] = []

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
        self._start(listen=False)
        try:
            self._serve(burst=True)
        finally:
            self._shutdown()
        return self.ran

    def stop(self, *, force: bool = False) -> None:
        """Stop taking jobs; active ones get the grace period (none with ``force``)."""
        if force:
            self._forced.set()
        self._stopping.set()
        self._wake.set()
        self._room.set()

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
        self._acks = AckBatcher(self.backend, self.backend.settings.ack_retry_for)
        self.sink.acks = self._acks
        self._run_hooks("start")
        beat = threading.Thread(target=self._heartbeat, name="jobqueue-heartbeat", daemon=True)
        beat.start()
        self._helpers.append(beat)
        if listen:
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
        self._stopping.set()
        deadline = time.monotonic() + self.grace
        while self.active_count and not self._forced.is_set() and time.monotonic() < deadline:
            self._idle.wait(min(0.1, max(deadline - time.monotonic(), 0.0)))
        leftovers = self.sink.held()
        if leftovers:
            self._give_back(leftovers)
        self._beat_stop.set()
        if self._forced.is_set() and self._acks is not None:
            self._acks.abandon()
        try:
            self._run_hooks("stop")
        finally:
            if self._acks is not None:
                self._acks.close()
            self._threads.shutdown()
            if self._loop is not None:
                self._loop.stop()
            for helper in self._helpers:
                helper.join(timeout=self.backend.settings.block + 1.0)
            logger.info("worker %s stopped after %d attempt(s)", self.id, self.ran)

    def _give_back(self, held: dict[Key, str]) -> None:
        by_queue: dict[str, list[tuple[str, str]]] = {}
        for (name, job_id), token in held.items():
            self.sink.drop((name, job_id))
            by_queue.setdefault(name, []).append((job_id, token))
        for name, pairs in by_queue.items():
            try:
                count = self.backend.release(name, pairs)
                logger.warning("gave %d still-running job(s) of %s back to waiting", count, name)
            except TRANSIENT as exc:
                logger.warning("could not give %d job(s) of %s back (%s); they return when their lease runs out", len(pairs), name, exc)
        with self._lock:
            futures = [f for f in self._active.values() if f is not None]
        for future in futures:
            future.cancel()

    # -- the loop ---------------------------------------------------------------------------------

    def _serve(self, *, burst: bool) -> None:
        outage_since: float | None = None
        pause = 0.1
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                claimed, hint = self._claim_round()
            except (*TRANSIENT, RedisError) as exc:  # type: ignore[misc]
                if outage_since is None:
                    outage_since = time.monotonic()
                    transient = isinstance(exc, TRANSIENT)
                    logger.warning("Redis %s (%s); retrying until it is back", "unreachable" if transient else "refused a claim",
                                   exc, exc_info=not transient)
                if burst:
                    raise
                self._stopping.wait(pause)
                pause = min(pause * 2, 2.0)
                continue
            if outage_since is not None:
                logger.warning("Redis is back after %.1fs", time.monotonic() - outage_since)
                outage_since, pause = None, 0.1
            room = self.active_count < self.concurrency
            if claimed and room:
                continue  # there may be more
            if burst:
                if not claimed and not self.active_count and not self._follow_ups_left():
                    return
                self._wake.wait(1.0)
                continue
            timeout = self.backend.settings.idle_poll
            if hint is not None and room:
                timeout = min(timeout, max(hint - self.app.clock.now(), 0.005))
            self._wake.wait(timeout)

    def _claim_round(self) -> tuple[int, float | None]:
        """Claim up to the free slots from each queue in turn; returns how many, and when to look again."""
        claimed, hint = 0, None
        start = self._turn % len(self.queues)
        self._turn += 1
        for name in self.queues[start:] + self.queues[:start]:
            free = self.concurrency - self.active_count
            if free <= 0 or self._stopping.is_set():
                break
            jobs, when = self.backend.claim(name, free, f"{self.id}:{next(self._seq)}")
            for envelope, token in jobs:
                self._launch(envelope, token)
                claimed += 1
            if when is not None:
                hint = when if hint is None else min(hint, when)
        return claimed, hint

    def _launch(self, envelope: Envelope, token: str) -> None:
        key = (envelope.queue, envelope.id)
        self.sink.hold(envelope, token)
        with self._lock:
            self._active[key] = None
            self._idle.clear()
            if len(self._active) >= self.concurrency:
                self._room.clear()
        self.ran += 1
        job = self.app.registry.get(envelope.name)
        if job is not None and job.is_async:
            future = self._event_loop().submit(self.runner.aexecute(envelope, self.sink))
            with self._lock:
                if key in self._active:
                    self._active[key] = future
            future.add_done_callback(lambda f: self._done(key, f))
        else:
            self._threads.submit(lambda: self._run_sync(key, envelope))

    def _run_sync(self, key: Key, envelope: Envelope) -> None:
        try:
            self.runner.execute(envelope, self.sink)
        except Exception:
            logger.exception("job %s: the attempt's outcome was not recorded", envelope.id)
        finally:
            self._done(key, None)

    def _done(self, key: Key, future: Future[Any] | None) -> None:
        if future is not None and not future.cancelled() and future.exception() is not None:
            logger.error("job %s: the attempt's outcome was not recorded", key[1], exc_info=future.exception())
        with self._lock:
            self._active.pop(key, None)
            if len(self._active) < self.concurrency:
                self._room.set()
            if not self._active:
                self._idle.set()
        self._wake.set()

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
                    self._wake.set()
            except TRANSIENT:
                self._stopping.wait(1.0)
            except Exception:
                logger.exception("listener of %s failed; retrying", name)
                self._stopping.wait(1.0)
