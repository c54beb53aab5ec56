"""The default job timeout for ``def`` jobs: one watchdog thread that interrupts a job running past its deadline.

A ``def`` job with a timeout of its own (job, queue or ``_timeout``) runs in a thread of its own, abandoned at the
deadline (see :mod:`jobqueue.runner`). That costs a thread per attempt, too much for a bound every job gets, so
jobs without one run in the caller's thread under ``JOBQUEUE_DEFAULT_TIMEOUT``: arming costs a dict entry, and
one daemon thread per process (:func:`shared`, started on first use) sleeps until the earliest deadline. At a deadline it raises
:class:`DeadlineExceeded` in the job's thread (``PyThreadState_SetAsyncExc``), at the job's next Python
instruction: a call blocked in C (a read without a timeout) returns first. It is a ``BaseException`` so that a
handler's ``except Exception`` does not swallow it; the runner turns it into a ``JobTimeout`` outcome.

Calls nest when a job runs another inline (the ``sync`` backend). The exception names no deadline, so a call it
interrupts looks at the calls enclosing it in its thread: if one of theirs passed, the exception is theirs (the inner
call, started later, may pass its own in the same moment) and goes on up as :class:`OuterDeadlineExceeded` to the
call it belongs to; the inner job ends as interrupted, without being charged with a timeout.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

_forks = [0]  # bumped in a forked child: a watchdog made before the fork starts afresh there


def _forked() -> None:
    _forks[0] += 1


os.register_at_fork(after_in_child=_forked)


class DeadlineExceeded(BaseException):
    """Raised inside a job's thread when it runs past its deadline (caught by the runner, never by handlers)."""


class OuterDeadlineExceeded(BaseException):
    """What :meth:`Watchdog.call` raises when the deadline that interrupted it was an enclosing call's."""


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Schedule ``exc`` in the thread (None: clear the one scheduled and not raised yet)."""
    import ctypes  # only when a deadline passes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None)


class Watchdog:
    """Deadlines of calls running in their callers' threads; see the module's docstring."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._forks = _forks[0]
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, int]] = {}  # token -> (deadline, thread id)
        self._tokens = itertools.count()
        self._earliest = math.inf  # no later than the earliest armed deadline
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._local = threading.local()  # .inside: the tokens of the calls running in this thread, outermost first

    def call(self, func: Callable[..., Any], args: tuple[Any, ...], seconds: float) -> Any:
        """``func(*args)`` in this thread; past ``seconds`` it gets :class:`DeadlineExceeded` raised inside it."""
        if self._forks != _forks[0]:  # forked: the parent's thread (and maybe its held lock) stayed behind
            self._reset()
        deadline = time.monotonic() + seconds
        thread_id = threading.get_ident()
        inside: list[int] | None = getattr(self._local, "inside", None)
        if inside is None:
            inside = self._local.inside = []
        with self._lock:
            token = next(self._tokens)
            self._armed[token] = (deadline, thread_id)
            if deadline < self._earliest:
                self._earliest = deadline
                if self._thread is None:
                    self._thread = threading.Thread(target=self._watch, name="jobqueue-watchdog", daemon=True)
                    self._thread.start()
                else:
                    self._wake.set()
        inside.append(token)
        try:
            return func(*args)
        except (DeadlineExceeded, OuterDeadlineExceeded):
            with self._lock:  # an enclosing call's deadline passed (they nest: it may be this one's too): it is theirs
                theirs = self._fired(inside[:-1])
            if theirs:
                raise OuterDeadlineExceeded from None
            raise DeadlineExceeded from None
        finally:
            inside.pop()
            with self._lock:
                fired = self._armed.pop(token, None) is None
                # it passed its deadline as it returned: take back the exception if it is still pending, unless an
                # enclosing call's passed too (the pending one is then theirs as well, and must land)
                if fired and not self._fired(inside):
                    _raise_in(thread_id, None)

    def _fired(self, tokens: list[int]) -> bool:
        """Whether any of these running calls passed its deadline (called under the lock)."""
        return any(token not in self._armed for token in tokens)

    def _watch(self) -> None:
        while True:
            with self._lock:
                wait = self._earliest - time.monotonic()
            if wait > 0:
                self._wake.wait(None if wait == math.inf else wait)
                self._wake.clear()
            now = time.monotonic()
            with self._lock:  # firing and disarming exclude each other: an exception never lands in the next call
                for token, (deadline, thread_id) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[token]
                        _raise_in(thread_id, DeadlineExceeded)
                self._earliest = min((deadline for deadline, _ in self._armed.values()), default=math.inf)


_shared: list[Watchdog] = []


def shared() -> Watchdog:
    """The process's watchdog: one thread however many apps and runners the process makes."""
    if not _shared:
        _shared.append(Watchdog())  # two threads racing here may both append: both use the first
    return _shared[0]
