"""How the conformance suite drives a backend: make an app, run what is due, move time.

A backend joins the suite by adding a module ``tests/conformance/harness_<name>.py`` that defines
``HARNESSES: dict[str, Callable[[pytest.FixtureRequest], Harness]]``; it is found by name, so a
backend package that is not there yet simply adds no harness.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import pytest

from jobqueue import FakeClock, JobQueue
from jobqueue.backends.base import Capability
from jobqueue.clock import Clock, SystemClock
from jobqueue.states import PENDING_STATES, JobState


class Harness(ABC):
    """One backend under test."""

    #: the name pytest shows (``sync``, ``memory``, ``redis``, ``redis-cluster``, ``sqs``...)
    name: str = "?"

    def __init__(self) -> None:
        self.clock: Clock = FakeClock()

    @abstractmethod
    def make_app(self) -> JobQueue:
        """A fresh app on this backend, with an empty store, using :attr:`clock`."""

    @abstractmethod
    def drain(self, app: JobQueue) -> None:
        """Run every job that is due now, until none is due (delayed jobs keep waiting)."""

    #: what the backend declares it lacks (set by :meth:`make_app` from the backend)
    lacks: frozenset[Capability] = frozenset()
    #: False for a stand-in whose speed says nothing about the backend's (fakeredis): it skips the size cases
    runs_size_cases: bool = True

    @property
    def time_resolution(self) -> float:
        """The shortest delay worth testing on this backend (SQS resolves whole seconds)."""
        return 0.0

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass: instantly on a fake clock, by sleeping on a real one."""
        if isinstance(self.clock, FakeClock):
            self.clock.advance(seconds)
        else:
            time.sleep(seconds)

    def settle(self, app: JobQueue, queue: str, *, rounds: int = 20, step: float = 1.0) -> None:
        """Drain, then let time pass and drain again, until ``queue`` holds no pending job."""
        for _ in range(rounds):
            self.drain(app)
            stats = app.stats(queue)
            if not any(stats[state] for state in PENDING_STATES | {JobState.ACTIVE}):
                return
            self.advance(step)
        raise AssertionError(f"queue {queue!r} still has pending jobs after {rounds} rounds: {app.stats(queue).counts}")

    def close(self) -> None:  # noqa: B027 (a default: most harnesses start nothing)
        """Stop whatever the harness started."""


class InProcessHarness(Harness):
    def __init__(self, backend: str) -> None:
        super().__init__()
        self.name = backend
        self.backend = backend

    def make_app(self) -> JobQueue:
        app = JobQueue(backend=self.backend, clock=self.clock)
        self.lacks = app.backend.lacks
        return app

    def drain(self, app: JobQueue) -> None:
        backend: Any = app.backend
        if self.backend == "memory":
            backend.run_until_empty()
        else:
            backend.run_due()


class RealClockHarness(Harness):
    """Base for harnesses of networked backends, which run on the wall clock."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = SystemClock()


HarnessFactory = Callable[[pytest.FixtureRequest], Harness]

HARNESSES: dict[str, HarnessFactory] = {
    "sync": lambda request: InProcessHarness("sync"),
    "memory": lambda request: InProcessHarness("memory"),
}


def all_harnesses() -> dict[str, HarnessFactory]:
    """The built-in harnesses plus every ``harness_*`` module's."""
    found = dict(HARNESSES)
    package = importlib.import_module("tests.conformance")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("harness_"):
            found.update(importlib.import_module(f"tests.conformance.{module.name}").HARNESSES)
    return found
