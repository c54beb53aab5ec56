"""What every ScheduleStore does (the in-memory one here; Redis and EventBridge add theirs in stores.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobqueue.schedules import Schedule
from tests.schedules.stores import StoreUnderTest, all_stores

TTL = 0.5  # short, so a store timed by a real server waits little


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sut" in metafunc.fixturenames:
        metafunc.parametrize("sut", sorted(all_stores()), indirect=True)


@pytest.fixture
def sut(request: pytest.FixtureRequest) -> Iterator[StoreUnderTest]:
    made = all_stores()[request.param](request)
    try:
        yield made
    finally:
        made.close()


def schedule(name: str, cron: str = "0 * * * *", **extra: object) -> Schedule:
    return Schedule(name=name, cron=cron, job="sync_integrations", queue="integrations", payload={"org": name}, source="dynamic", **extra)  # type: ignore[arg-type]


def test_add_get_list_replace_remove(sut: StoreUnderTest) -> None:
    store = sut.store
    assert store.list() == [] and store.get("sync:b") is None
    store.add(schedule("sync:b"))
    store.add(schedule("sync:a", tz="Europe/Berlin", missed="catch_up"))
    assert [s.name for s in store.list()] == ["sync:a", "sync:b"]
    assert store.get("sync:a") == schedule("sync:a", tz="Europe/Berlin", missed="catch_up")  # round-trips every field
    store.add(schedule("sync:b", cron="*/5 * * * *"))
    assert store.get("sync:b") == schedule("sync:b", cron="*/5 * * * *")
    assert store.remove("sync:b") is True
    assert store.remove("sync:b") is False
    assert [s.name for s in store.list()] == ["sync:a"]


def test_cursors_only_move_forward(sut: StoreUnderTest) -> None:
    if not sut.ticker_state:
        pytest.skip("this store keeps no ticker state")
    store = sut.store
    assert store.get_cursor("s") is None
    store.set_cursor("s", 1_700_000_060.5)
    store.set_cursor("s", 1_700_000_000.0)
    assert store.get_cursor("s") == 1_700_000_060.5
    store.set_cursor("s", 1_700_000_120.0)
    assert store.get_cursor("s") == 1_700_000_120.0
    assert store.get_cursor("other") is None
    store.add(schedule("sync:c"))
    store.set_cursor("sync:c", 1_700_000_000.0)
    store.remove("sync:c")
    assert store.get_cursor("sync:c") is None  # re-added, it starts from then, not from before


def test_leader_lease(sut: StoreUnderTest) -> None:
    if not sut.ticker_state:
        pytest.skip("this store keeps no ticker state")
    store = sut.store
    assert store.acquire_leader("a", TTL)
    assert not store.acquire_leader("b", TTL)
    assert store.acquire_leader("a", TTL)  # renews
    sut.advance(TTL * 0.6)
    assert store.acquire_leader("a", TTL)  # renewed: lasts TTL from now
    sut.advance(TTL * 0.6)
    assert not store.acquire_leader("b", TTL)
    sut.advance(TTL * 0.6)  # a stopped renewing: its lease ran out
    assert store.acquire_leader("b", TTL)
    assert not store.acquire_leader("a", TTL)
    store.release_leader("a")  # not the holder: nothing happens
    assert not store.acquire_leader("a", TTL)
    store.release_leader("b")
    assert store.acquire_leader("a", TTL)  # released: taken at once
