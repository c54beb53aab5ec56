"""The schedule stores the store contract runs against.

A backend joins by adding an entry to :data:`STORES` (or a module ``tests/schedules/stores_<name>.py`` with
its own ``STORES`` dict, found by name like the conformance harnesses). A factory gets the pytest request
and returns a :class:`StoreUnderTest`: the store, and how to let time pass for its lease (a fake clock
here; a real sleep for a store whose lease is timed by a server, such as a Redis key's TTL).
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from jobqueue import FakeClock
from jobqueue.schedules import InMemoryScheduleStore, ScheduleStore


@dataclass
class StoreUnderTest:
    store: ScheduleStore
    advance: Callable[[float], None] = time.sleep
    close: Callable[[], None] = lambda: None
    #: False for a store that keeps no cursors and no lease (EventBridge fires the schedules; no ticker runs)
    ticker_state: bool = True


def _memory(request: pytest.FixtureRequest) -> StoreUnderTest:
    clock = FakeClock()
    return StoreUnderTest(InMemoryScheduleStore(clock.now), clock.advance)


StoreFactory = Callable[[pytest.FixtureRequest], StoreUnderTest]

STORES: dict[str, StoreFactory] = {"memory": _memory}


def all_stores() -> dict[str, StoreFactory]:
    found = dict(STORES)
    package = importlib.import_module("tests.schedules")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("stores_"):
            found.update(getattr(importlib.import_module(f"tests.schedules.{info.name}"), "STORES", {}))
    return found
