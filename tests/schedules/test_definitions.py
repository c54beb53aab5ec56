"""Defining schedules in code and at run time: validation at definition, the dynamic API, the in-memory store."""

from __future__ import annotations

import pytest

from jobqueue import ConfigurationError, InvalidPayload, JobContext, JobQueue, UnknownJob
from jobqueue.schedules import CronError, InMemoryScheduleStore, Schedule, ScheduleStore
from tests.schedules.conftest import App, ReportPayload, SyncPayload


def test_code_defined_schedule_is_validated_and_listed(env: App) -> None:
    schedule = env.app.schedule("hourly-sync", cron="0 * * * *", job=env.sync_integrations, payload={"org": "acme"})
    assert schedule == Schedule(
        name="hourly-sync", cron="0 * * * *", tz=None, job="sync_integrations", queue="integrations",
        payload={"org": "acme", "full": False}, missed="skip", source="code",
    )
    assert [s.name for s in env.app.schedules.code_defined()] == ["hourly-sync", "nightly_report"]
    nightly = env.app.schedules.get("nightly_report")
    assert nightly is not None and (nightly.cron, nightly.tz, nightly.queue, nightly.payload) == (
        "0 2 * * *", "Europe/Berlin", "reports", {"kind": "daily"})


def test_payload_is_validated_against_the_jobs_model_at_definition(env: App) -> None:
    with pytest.raises(InvalidPayload, match=r"invalid payload for job 'sync_integrations': org: Field required \(in schedule 'bad'\)"):
        env.app.schedule("bad", cron="@hourly", job=env.sync_integrations, payload={"full": True})
    with pytest.raises(InvalidPayload, match="full"):
        env.app.schedules.add("bad2", cron="@hourly", job="sync_integrations", payload={"org": "a", "full": "maybe"})
    assert "bad" not in env.app.schedules and "bad2" not in env.app.schedules


def test_a_model_instance_is_a_payload_too(env: App) -> None:
    schedule = env.app.schedule("m", cron="@daily", job=env.sync_integrations, payload=SyncPayload(org="x", full=True))
    assert schedule.payload == {"org": "x", "full": True}


def test_job_decorator_with_cron_needs_a_payload_its_model_accepts_empty() -> None:
    app = JobQueue(backend="memory")

    with pytest.raises(InvalidPayload, match="org: Field required"):
        @app.job(cron="@hourly")
        def needs_org(payload: SyncPayload) -> None: ...

    assert "needs_org" not in app.registry  # nothing half-registered

    @app.job(cron="@hourly")
    def tick(ctx: JobContext) -> None: ...

    assert app.schedules.get("tick") is not None and app.schedules.get("tick").payload == {}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"cron": "0 * * *"}, CronError, "must have 5 fields"),
        ({"cron": "@reboot"}, CronError, "not supported"),
        ({"cron": "0 * * * *", "tz": "Nowhere/City"}, CronError, "unknown time zone"),
        ({"cron": "0 * * * *", "missed": "sometimes"}, ConfigurationError, "missed"),
        ({"cron": "0 * * * *", "job": "nope"}, UnknownJob, "no job named 'nope'"),
    ],
)
def test_bad_definitions_are_clear_errors(env: App, options: dict, error: type[Exception], match: str) -> None:  # type: ignore[type-arg]
    options = {"job": env.sync_integrations, "payload": {"org": "a"}, **options}
    with pytest.raises(error, match=match):
        env.app.schedule("s", **options)


def test_names_are_checked_and_unique(env: App) -> None:
    with pytest.raises(ConfigurationError, match="schedule name 'has space'"):
        env.app.schedule("has space", cron="@hourly", job=env.nightly_report)
    with pytest.raises(ConfigurationError, match="already defined"):
        env.app.schedule("nightly_report", cron="@hourly", job=env.nightly_report)
    with pytest.raises(ConfigurationError, match="defined in code"):
        env.app.schedules.add("nightly_report", cron="@hourly", job=env.nightly_report)
    with pytest.raises(ConfigurationError, match="defined in code"):
        env.app.schedules.remove("nightly_report")


def test_tz_without_cron_is_an_error() -> None:
    app = JobQueue(backend="memory")
    with pytest.raises(ConfigurationError, match="give cron= too"):
        @app.job(tz="Europe/Berlin")
        def job(payload: ReportPayload) -> None: ...


def test_a_job_of_another_app_is_refused(env: App) -> None:
    other = JobQueue(backend="memory")

    @other.job(name="sync_integrations")
    def sync_integrations(payload: SyncPayload) -> None: ...

    with pytest.raises(ConfigurationError, match="registered on another app"):
        env.app.schedule("x", cron="@hourly", job=sync_integrations, payload={"org": "a"})


def test_dynamic_schedules_add_replace_remove_list(env: App) -> None:
    s1 = env.app.schedules.add("sync:org-1", cron="0 * * * *", job=env.sync_integrations, payload={"org": "org-1"})
    env.app.schedules.add("sync:org-2", cron="30 * * * *", job="sync_integrations", payload={"org": "org-2"}, tz="Asia/Tokyo")
    assert s1.source == "dynamic"
    assert [s.name for s in env.app.schedules.dynamic()] == ["sync:org-1", "sync:org-2"]
    assert [s.name for s in env.app.schedules.list()] == ["nightly_report", "sync:org-1", "sync:org-2"]
    env.app.schedules.add("sync:org-1", cron="15 * * * *", job=env.sync_integrations, payload={"org": "org-1"})  # replaces
    assert env.app.schedules.get("sync:org-1").cron == "15 * * * *"  # type: ignore[union-attr]
    assert env.app.schedules.remove("sync:org-1") is True
    assert env.app.schedules.remove("sync:org-1") is False
    assert [s.name for s in env.app.schedules.list()] == ["nightly_report", "sync:org-2"]
    assert len(env.app.schedules) == 2 and "sync:org-2" in env.app.schedules


def test_describe_gives_the_next_fire_time(env: App) -> None:
    env.app.schedules.add("sync:org-1", cron="*/20 * * * *", job=env.sync_integrations, payload={"org": "org-1"})
    described = {d["name"]: d for d in env.app.schedules.describe()}  # the clock is at 2026-01-05T09:59:30Z
    assert described["sync:org-1"]["next_fire"] == "2026-01-05T10:00:00Z"
    assert described["nightly_report"]["next_fire"] == "2026-01-06T01:00:00Z"  # 02:00 in Berlin
    assert described["nightly_report"]["tz"] == "Europe/Berlin" and described["sync:org-1"]["tz"] == "UTC"


def test_the_backend_default_store_is_in_memory_and_per_backend(env: App) -> None:
    store = env.app.backend.schedule_store()
    assert isinstance(store, InMemoryScheduleStore) and isinstance(store, ScheduleStore)
    assert store is env.app.backend.schedule_store()
    assert JobQueue(backend="memory").backend.schedule_store() is not store


def test_in_memory_store_lease_and_cursors() -> None:
    now = [100.0]
    store = InMemoryScheduleStore(lambda: now[0])
    assert store.acquire_leader("a", 10) and store.leader() == "a"
    assert not store.acquire_leader("b", 10)
    assert store.acquire_leader("a", 10)  # renew
    now[0] = 109.0
    assert not store.acquire_leader("b", 10)  # renewed at 100 -> expires at 110
    now[0] = 110.0
    assert store.acquire_leader("b", 10) and store.leader() == "b"
    store.release_leader("a")  # not the holder: no effect
    assert store.leader() == "b"
    store.release_leader("b")
    assert store.leader() is None
    assert store.get_cursor("x") is None
    store.set_cursor("x", 50.0)
    store.set_cursor("x", 40.0)  # never moves back
    assert store.get_cursor("x") == 50.0


def test_fired_envelope_carries_the_schedule_in_its_trace(env: App) -> None:
    schedule = env.app.schedules.get("nightly_report")
    assert schedule is not None
    envelope = schedule.envelope(env.app, 1_767_661_200.0)
    assert envelope.id == "nightly_report:2026-01-06T01:00:00Z"
    assert envelope.queue == "reports" and envelope.payload == {"kind": "daily"}
    assert envelope.trace == {"jobqueue.schedule": "nightly_report", "jobqueue.fire_time": "2026-01-06T01:00:00Z"}
