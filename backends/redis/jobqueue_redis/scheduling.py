"""The Linux scheduling policy of a worker's job threads: ``SCHED_BATCH`` while they run jobs back to back.

A process's threads take turns holding Python's GIL. When the reply a job thread waits for (its Redis round trip)
arrives, the kernel wakes that thread and, under the default policy, often lets it preempt the thread running on that
core, which holds the GIL: the woken thread finds the GIL taken and goes back to sleep, and the one holding it waits to
be scheduled again. Two context switches for nothing, on many replies. A ``SCHED_BATCH`` thread (sched(7): for
non-interactive work; the same share of the CPU, the nice value kept) does not preempt the running one when it wakes
("batch and idle tasks do not preempt non-idle tasks", ``kernel/sched/fair.c``), so the thread holding the GIL runs on
until it lets go of it. One process at concurrency 10 on 2 cores, jobs of one Redis call each: 0.16-0.33 involuntary
context switches per job against 0.61-0.68, and more jobs per second in six interleaved pairs of seven (see
bench/ANALYSIS.md).

A thread waiting for work wants the opposite: the job handed to it should start at once, ahead of whatever runs. So
a job thread takes ``SCHED_BATCH`` when it runs jobs from the line with more waiting behind (the worker is busy), and
the default policy again when it waits on Redis for work. Each switch is a system call, made only on a change. Only
the worker's job threads switch, never the thread that runs the worker (an app or a test running one in process keeps
its own); a platform without the policy, or a sandbox that refuses the call, runs the worker as before.
``JOBQUEUE_REDIS_SCHED_BATCH=0`` turns it off.
"""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger("jobqueue.redis.worker")


class ThreadPolicy:
    """Switches the calling thread between the default policy and ``SCHED_BATCH``; a system call only on a change."""

    def __init__(self, enabled: bool = True) -> None:
        self._batch_policy: int | None = getattr(os, "SCHED_BATCH", None) if enabled else None
        self._local = threading.local()

    @property
    def enabled(self) -> bool:
        """False when turned off, on a platform without ``SCHED_BATCH``, or once the system refused it."""
        return self._batch_policy is not None

    def batch(self) -> None:
        """The calling thread runs jobs back to back: ``SCHED_BATCH``."""
        if self._batch_policy is not None and not getattr(self._local, "batch", False):
            self._local.batch = self._set(self._batch_policy)

    def default(self) -> None:
        """The calling thread waits for work: the default policy, so that a job handed to it starts at once."""
        if getattr(self._local, "batch", False):
            self._local.batch = not self._set(os.SCHED_OTHER)

    def _set(self, policy: int) -> bool:
        try:
            os.sched_setscheduler(0, policy, os.sched_param(0))  # 0: the calling thread, not the whole process
        except OSError as exc:  # a sandbox's seccomp filter, say: the worker runs as it would without
            logger.debug("scheduling policy %d refused (%s); job threads keep the default one", policy, exc)
            self._batch_policy = None
            return False
        return True
