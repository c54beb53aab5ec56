"""``jobqueue worker --processes N``: N worker processes under one supervising process.

The supervisor imports the app once, then forks each worker (no connection or thread exists before the
fork: clients are built on first use). A worker that dies (a crash, the OOM killer, ``kill -9``) is started
again; one that keeps dying within a second of its start is started again after a growing pause (up to
30 s), so a broken deployment does not spin. SIGTERM or SIGINT to the supervisor is passed to every worker:
the first one drains (active jobs get the grace period), a second one makes them exit at once, giving their
jobs back. The supervisor exits when all of them have.

Each worker is a whole :class:`~jobqueue_redis.worker.Worker` (its own connections, leases, heartbeats and
ticker), so processes share nothing but Redis, exactly like workers on separate machines.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger("jobqueue.redis.supervisor")

#: a worker that exits sooner than this after its start counts as failing to start
QUICK_DEATH = 1.0
MAX_PAUSE = 30.0


class Supervisor:
    """Runs ``serve()`` in ``processes`` forked children and keeps that many alive until stopped."""

    def __init__(self, serve: Callable[[], None], processes: int, *, poll: float = 0.1) -> None:
        if processes < 1:
            raise ValueError(f"processes must be >= 1, not {processes}")
        if not hasattr(os, "fork"):  # pragma: no cover - Windows
            raise RuntimeError("several worker processes need os.fork (run one `jobqueue worker` per process instead)")
        self.serve = serve
        self.processes = processes
        self.poll = poll
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (slot, started at)
        self._signals: list[int] = []
        self._pause: dict[int, float] = {}  # slot -> pause before its next start
        self._due: dict[int, float] = {}  # slot -> when to start it again

    def run(self) -> int:
        """Start the workers, restart the ones that die, and return 0 once a stop signal has drained them all."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in range(self.processes):
                self._start(slot)
            logger.info("supervising %d worker process(es): %s", self.processes, ", ".join(str(p) for p in self.children))
            forwarded = 0
            while self.children or (not self._signals and self._due):
                while forwarded < len(self._signals):  # pass each signal on: first drains, second exits at once
                    sig = signal.SIGTERM if forwarded == 0 else signal.SIGINT
                    forwarded += 1
                    logger.info("%s: passing it to %d worker process(es)", signal.Signals(self._signals[forwarded - 1]).name, len(self.children))
                    for pid in list(self.children):
                        self._kill(pid, sig)
                    self._due.clear()
                self._reap()
                now = time.monotonic()
                for slot, when in list(self._due.items()):
                    if when <= now and not self._signals:
                        del self._due[slot]
                        self._start(slot)
                time.sleep(self.poll)
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)

    def _start(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the child: a plain worker with default signal handling (it installs its own)
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                self.serve()
                code = 0
            except BaseException:  # noqa: BLE001 - whatever ends the child is logged, then it exits
                logger.exception("worker process %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = (slot, time.monotonic())

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            entry = self.children.pop(pid, None)
            if entry is None:
                continue
            slot, started = entry
            if self._signals:
                continue
            ran = time.monotonic() - started
            pause = 0.0
            if ran < QUICK_DEATH:
                pause = min(max(self._pause.get(slot, 0.5) * 2, 1.0), MAX_PAUSE)
            self._pause[slot] = pause
            how = f"signal {-os.waitstatus_to_exitcode(status)}" if os.WIFSIGNALED(status) else f"exit code {os.waitstatus_to_exitcode(status)}"
            logger.warning("worker process %d ended (%s) after %.1fs; starting another%s", pid, how, ran,
                           f" in {pause:g}s" if pause else "")
            self._due[slot] = time.monotonic() + pause

    @staticmethod
    def _kill(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
