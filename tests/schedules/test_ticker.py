"""The ticker on the sync and memory backends, driven by a fake clock."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from jobqueue import JobState
from jobqueue.errors import BrokerUnavailable, ConfigurationError
from jobqueue.schedules import InMemoryScheduleStore, Ticker
from tests.schedules.conftest import App


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def ids(fired: list) -> list[str]:  # type: ignore[type-arg]
    return [f.job_id for f in fired]


def test_each_fire_runs_once_with_its_deterministic_id(env: App) -> None:
    env.app.schedule("minutely", cron="* * * * *", job=env.sync_integrations, payload={"org": "acme"})
    assert env.app.schedules.tick() == []  # the first tick starts the cursors
    env.advance(30)  # 10:00:00
    assert ids(env.app.schedules.tick()) == ["minutely:2026-01-05T10:00:00Z"]
    assert env.app.schedules.tick() == []  # same instant again: nothing new
    env.advance(59)
    assert env.app.schedules.tick() == []
    env.advance(1)  # 10:01:00
    fired = env.app.schedules.tick()
    assert ids(fired) == ["minutely:2026-01-05T10:01:00Z"] and fired[0].created and fired[0].queue == "integrations"
    env.run()
    assert env.ran == [("minutely:2026-01-05T10:00:00Z", "acme"), ("minutely:2026-01-05T10:01:00Z", "acme")]
    status = env.app.get("minutely:2026-01-05T10:01:00Z")
    assert status is not None and status.state is JobState.COMPLETED and status.result == "acme"


def test_job_decorator_schedule_in_its_time_zone(env: App) -> None:
    env.app.schedules.tick()
    env.clock.set(at("2026-01-06T00:59:00"))  # 01:59 in Berlin
    assert env.app.schedules.tick() == []
    env.advance(60)  # 02:00 CET = 01:00Z
    assert ids(env.app.schedules.tick()) == ["nightly_report:2026-01-06T01:00:00Z"]
    env.run()
    assert env.ran == [("nightly_report:2026-01-06T01:00:00Z", "daily")]


def test_a_late_tick_still_fires_within_grace(env: App) -> None:
    env.app.schedule("minutely", cron="* * * * *", job=env.sync_integrations, payload={"org": "a"})
    env.app.schedules.tick()
    env.advance(30 + 45)  # 10:00:45: the 10:00 fire is 45 s late (a leader change, say)
    assert ids(env.app.schedules.tick()) == ["minutely:2026-01-05T10:00:00Z"]


@pytest.mark.parametrize(
    ("missed", "expected"),
    [
        ("skip", ["hourly:2026-01-05T15:00:00Z"]),
        ("catch_up", ["hourly:2026-01-05T14:00:00Z", "hourly:2026-01-05T15:00:00Z"]),
    ],
)
def test_missed_fires_policy(env: App, missed: str, expected: list[str]) -> None:
    env.app.schedule("hourly", cron="@hourly", job=env.sync_integrations, payload={"org": "a"}, missed=missed)  # type: ignore[arg-type]
    env.app.schedules.tick()  # 09:59:30
    env.clock.set(at("2026-01-05T15:00:20"))  # no ticker ran from 10:00 to 14:00 (missed); 15:00 is on time
    fired = env.app.schedules.tick()
    assert ids(fired) == expected
    assert [f.catch_up for f in fired] == ([True, False] if missed == "catch_up" else [False])
    env.clock.set(at("2026-01-05T15:30:00"))
    assert env.app.schedules.tick() == []


def test_catch_up_with_no_on_time_fire(env: App) -> None:
    env.app.schedule("hourly", cron="@hourly", job=env.sync_integrations, payload={"org": "a"}, missed="catch_up")
    env.app.schedules.tick()
    env.clock.set(at("2026-01-05T13:30:00"))  # 10:00, 11:00, 12:00, 13:00 missed: run once, as 13:00
    fired = env.app.schedules.tick()
    assert ids(fired) == ["hourly:2026-01-05T13:00:00Z"] and fired[0].catch_up


def test_two_tickers_fire_each_time_once(env: App) -> None:
    env.app.schedule("minutely", cron="* * * * *", job=env.sync_integrations, payload={"org": "a"})
    a = env.app.schedules.ticker(owner="worker-a")
    b = env.app.schedules.ticker(owner="worker-b")
    fired = []
    for _ in range(5 * 6):  # five minutes, both ticking every 10 s
        fired += a.tick() + b.tick()
        env.advance(10)
    assert a.is_leader and not b.is_leader
    assert ids(fired) == [f"minutely:2026-01-05T10:0{m}:00Z" for m in range(5)]
    env.run()
    assert len(env.ran) == 5


def test_the_other_ticker_takes_over_when_the_leader_stops(env: App) -> None:
    env.app.schedule("minutely", cron="* * * * *", job=env.sync_integrations, payload={"org": "a"})
    a = env.app.schedules.ticker(owner="worker-a", lease_ttl=10)
    b = env.app.schedules.ticker(owner="worker-b", lease_ttl=10)
    fired = a.tick() + b.tick()
    env.advance(30)  # 10:00:00
    fired += a.tick() + b.tick()
    env.advance(20)  # a dies silently; its lease runs out at 10:00:10
    env.advance(40)  # 10:01:00
    fired += b.tick()
    assert b.is_leader
    env.advance(60)
    fired += b.tick()
    assert ids(fired) == [f"minutely:2026-01-05T10:0{m}:00Z" for m in range(3)]
    b.close()
    assert a.tick() == [] and a.is_leader  # a clean release hands over at once


def test_a_lost_lease_never_runs_a_fire_twice(env: App) -> None:
    class NoLease(InMemoryScheduleStore):
        def acquire_leader(self, owner: str, ttl: float) -> bool:
            return True  # both tickers believe they lead

    env.app.schedule("minutely", cron="* * * * *", job=env.sync_integrations, payload={"org": "a"})
    store = env.app.backend.schedule_store()
    shared = NoLease(env.clock.now)
    a = Ticker(env.app, store=shared, owner="a")
    b = Ticker(env.app, store=InMemoryScheduleStore(env.clock.now), owner="b")  # its own cursors too
    a.tick(), b.tick()
    env.advance(30)
    fa, fb = a.tick(), b.tick()
    assert ids(fa) == ids(fb) == ["minutely:2026-01-05T10:00:00Z"]
    assert fa[0].created and not fb[0].created
    env.run()
    assert env.ran == [("minutely:2026-01-05T10:00:00Z", "a")]
    assert store is env.app.backend.schedule_store()


def test_broker_unavailable_keeps_the_fire_for_the_next_tick(env: App) -> None:
    env.app.schedule("minutely", cron="* * * * *", job=env.sync_integrations, payload={"org": "a"})
    calls: list[str] = []
    down = True

    def enqueue(envelope):  # type: ignore[no-untyped-def]
        calls.append(envelope.id)
        if down:
            raise BrokerUnavailable("redis is down")
        return env.app.backend.enqueue([envelope])[0].created

    ticker = Ticker(env.app, enqueue=enqueue, owner="a")
    ticker.tick()
    env.advance(30)
    assert ticker.tick() == []
    down = False
    env.advance(5)
    assert ids(ticker.tick()) == ["minutely:2026-01-05T10:00:00Z"]
    assert calls == ["minutely:2026-01-05T10:00:00Z"] * 2


def test_a_schedule_whose_job_is_gone_is_skipped_not_retried_forever(env: App, caplog: pytest.LogCaptureFixture) -> None:
    env.app.schedules.add("orphan", cron="* * * * *", job=env.sync_integrations, payload={"org": "a"})
    env.app.schedules.tick()
    del env.app.registry["sync_integrations"]
    env.advance(30)
    assert env.app.schedules.tick() == []
    assert "cannot enqueue its job" in caplog.text
    env.app.registry["sync_integrations"] = env.sync_integrations
    env.advance(1)
    assert env.app.schedules.tick() == []  # the 10:00 fire was given up, not retried


def test_dynamic_schedules_fire_too(env: App) -> None:
    env.app.schedules.add("sync:org-1", cron="* * * * *", job="sync_integrations", payload={"org": "org-1"})
    env.app.schedules.add("sync:org-2", cron="*/2 * * * *", job=env.sync_integrations, payload={"org": "org-2"})
    env.app.schedules.tick()
    env.advance(30)
    assert ids(env.app.schedules.tick()) == ["sync:org-1:2026-01-05T10:00:00Z", "sync:org-2:2026-01-05T10:00:00Z"]
    assert env.app.schedules.remove("sync:org-2") is True
    env.advance(120)
    assert ids(env.app.schedules.tick()) == ["sync:org-1:2026-01-05T10:02:00Z"]


def test_ticker_settings_are_checked(env: App) -> None:
    with pytest.raises(ConfigurationError, match="grace"):
        Ticker(env.app, lease_ttl=30, grace=10)
    with pytest.raises(ConfigurationError, match="interval"):
        Ticker(env.app, lease_ttl=5).run(threading.Event(), interval=10)


def test_run_loop_ticks_until_stopped_and_releases_the_lease() -> None:
    env = App("memory")
    env.app.schedule("minutely", cron="* * * * *", job=env.sync_integrations, payload={"org": "a"})
    ticker = env.app.schedules.ticker(owner="loop")
    stop = threading.Event()
    thread = ticker.start(stop, interval=0.01)
    try:
        for _ in range(200):
            if env.app.backend.schedule_store().get_cursor("minutely") is not None:
                break
            threading.Event().wait(0.01)
        env.advance(30)
        for _ in range(200):
            if env.app.get("minutely:2026-01-05T10:00:00Z") is not None:
                break
            threading.Event().wait(0.01)
    finally:
        stop.set()
        thread.join(5)
    assert env.app.get("minutely:2026-01-05T10:00:00Z") is not None
    store = env.app.backend.schedule_store()
    assert isinstance(store, InMemoryScheduleStore) and store.leader() is None


def test_async_run_loop() -> None:
    env = App("memory")
    env.app.schedule("minutely", cron="* * * * *", job=env.sync_integrations, payload={"org": "a"})
    ticker = env.app.schedules.ticker(owner="aloop")

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(ticker.arun(stop, interval=0.01))
        await asyncio.sleep(0.1)
        env.advance(30)
        await asyncio.sleep(0.1)
        stop.set()
        await task

    asyncio.run(main())
    assert env.app.get("minutely:2026-01-05T10:00:00Z") is not None


def test_ticking_across_daylight_saving_changes_fires_each_local_time_once(env: App) -> None:
    env.app.schedule("berlin", cron="*/30 * * * *", tz="Europe/Berlin", job=env.sync_integrations, payload={"org": "a"})
    fired = []
    for start, end in (("2026-03-28T23:45:00", "2026-03-29T01:45:00"), ("2026-10-24T23:45:00", "2026-10-25T02:45:00")):
        env.clock.set(at(start))
        env.app.schedules.tick()
        while env.clock.now() < at(end):
            env.advance(60)
            fired += env.app.schedules.tick()
    # the nightly 02:00 Berlin report: no 02:00 on 29 March, one 02:00 (the first) on 25 October
    assert ids([f for f in fired if f.schedule == "nightly_report"]) == ["nightly_report:2026-10-25T00:00:00Z"]
    assert ids([f for f in fired if f.schedule == "berlin"]) == [
        # spring forward: 01:00, 01:30 CET, (02:00, 02:30 do not exist), 03:00, 03:30 CEST
        "berlin:2026-03-29T00:00:00Z", "berlin:2026-03-29T00:30:00Z", "berlin:2026-03-29T01:00:00Z", "berlin:2026-03-29T01:30:00Z",
        # fall back: 02:00, 02:30 CEST fire; their repeat in CET does not; then 03:00, 03:30 CET
        "berlin:2026-10-25T00:00:00Z", "berlin:2026-10-25T00:30:00Z", "berlin:2026-10-25T02:00:00Z", "berlin:2026-10-25T02:30:00Z",
    ]


def test_idle_ticks_neither_compute_nor_write(env: App) -> None:
    class Counting(InMemoryScheduleStore):
        writes = 0

        def set_cursor(self, name: str, fired_until: float) -> None:
            Counting.writes += 1
            super().set_cursor(name, fired_until)

    env.app.schedule("hourly", cron="@hourly", job=env.sync_integrations, payload={"org": "a"})
    ticker = Ticker(env.app, store=Counting(env.clock.now), owner="a")
    ticker.tick()
    env.advance(30)
    assert ids(ticker.tick()) == ["hourly:2026-01-05T10:00:00Z"]
    writes = Counting.writes
    for _ in range(100):
        env.advance(1)
        assert ticker.tick() == []
    assert Counting.writes == writes
