"""Dynamic schedules and the ticker on a real redis-server: shared by every app of a prefix, fired once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from jobqueue import FakeClock, JobQueue, JobState
from tests.redis_servers import RedisServer
from tests.schedules.conftest import START


class SyncPayload(BaseModel):
    org: str


def make_app(url: str, prefix: str, clock: FakeClock) -> JobQueue:
    from jobqueue_redis import RedisBackend

    app = JobQueue(backend=RedisBackend(url, prefix=prefix), clock=clock)

    @app.job(queue="integrations")
    def sync_integrations(payload: SyncPayload) -> str:
        return payload.org

    return app


@pytest.fixture
def apps(redis_server: RedisServer) -> Iterator[tuple[JobQueue, JobQueue, FakeClock]]:
    prefix, clock = f"jqsched-{uuid.uuid4().hex[:10]}", FakeClock(START)
    one, two = make_app(redis_server.url, prefix, clock), make_app(redis_server.url, prefix, clock)
    try:
        yield one, two, clock
    finally:
        one.close()
        two.close()


def test_dynamic_schedules_are_kept_in_redis_for_every_app(apps: tuple[JobQueue, JobQueue, FakeClock]) -> None:
    one, two, _ = apps
    added = one.schedules.add("sync:org-123", cron="0 * * * *", job="sync_integrations", payload={"org": "org-123"}, tz="Europe/Berlin")
    assert added.source == "dynamic"
    assert two.schedules.get("sync:org-123") == added
    assert [s.name for s in two.schedules.list()] == ["sync:org-123"]
    assert "sync:org-123" in two.schedules
    assert two.schedules.remove("sync:org-123") is True
    assert one.schedules.list() == [] and one.schedules.remove("sync:org-123") is False


def test_two_tickers_on_one_redis_fire_a_dynamic_schedule_once(apps: tuple[JobQueue, JobQueue, FakeClock]) -> None:
    one, two, clock = apps
    one.schedules.add("sync:org-9", cron="* * * * *", job="sync_integrations", payload={"org": "org-9"})
    first, second = one.schedules.ticker(owner="one"), two.schedules.ticker(owner="two")
    assert first.tick() == [] and second.tick() == []  # cursors start; "one" holds the lease
    assert first.is_leader and not second.is_leader
    clock.advance(30)  # 10:00:00Z
    fired = first.tick() + second.tick()
    assert [(f.job_id, f.created) for f in fired] == [("sync:org-9:2026-01-05T10:00:00Z", True)]
    # a ticker that lost its lease (or never had it) and fires anyway creates nothing new: the id is deterministic
    envelope = one.schedules.get("sync:org-9").envelope(two, fired[0].fire_time)  # type: ignore[union-attr]
    assert second.enqueue(envelope) is False
    first.close()  # hands over at once
    clock.advance(60)
    assert [f.job_id for f in second.tick()] == ["sync:org-9:2026-01-05T10:01:00Z"]
    status = one.get("sync:org-9:2026-01-05T10:00:00Z")
    assert status is not None and status.state is JobState.WAITING and status.payload == {"org": "org-9"}
