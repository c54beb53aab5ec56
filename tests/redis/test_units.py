"""The Redis backend on fakeredis and a fake clock: settings, keys, leases, fencing, fallback, asyncio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from jobqueue_redis import RedisBackend, RedisSettings
from jobqueue_redis.keys import QueueKeys
from pydantic import BaseModel

from jobqueue import BrokerUnavailable, ConfigurationError, FakeClock, JobContext, JobQueue, JobState, Settings
from jobqueue.runner import Outcome
from tests.redis_servers import free_port


class Tag(BaseModel):
    tag: str = ""


# -- settings ---------------------------------------------------------------------------------------


def test_url_precedence_and_host_variables() -> None:
    assert RedisSettings.from_environ({"JOBQUEUE_REDIS_URL": "redis://a:1/0", "REDIS_URL": "redis://b:2/0"}).url == "redis://a:1/0"
    assert RedisSettings.from_environ({"REDIS_URL": "rediss://b:2/3", "REDIS_HOST": "c"}).url == "rediss://b:2/3"
    env = {"REDIS_HOST": "cache", "REDIS_PORT": "6380", "REDIS_PASSWORD": "p@ss:word", "REDIS_DB": "2", "REDIS_TLS": "true"}
    settings = RedisSettings.from_environ(env)
    assert settings.url == "rediss://:p%40ss%3Aword@cache:6380/2"
    assert "p%40ss" not in settings.redacted_url and settings.redacted_url.endswith("@cache:6380/2")
    assert RedisSettings.from_environ({}).url == "redis://localhost:6379/0"


def test_prefix_options_and_bad_values() -> None:
    settings = RedisSettings.from_environ({"JOBQUEUE_PREFIX": "shop", "JOBQUEUE_REDIS_LEASE": "12", "JOBQUEUE_REDIS_CLUSTER": "yes"})
    assert (settings.prefix, settings.lease, settings.cluster) == ("shop", 12.0, True)
    assert RedisSettings.from_environ({"JOBQUEUE_REDIS_LEASE": "12"}, lease=5.0).lease == 5.0
    with pytest.raises(ConfigurationError, match=r"JOBQUEUE_REDIS_LEASE='soon': expected a number of seconds$"):
        RedisSettings.from_environ({"JOBQUEUE_REDIS_LEASE": "soon"})
    with pytest.raises(ConfigurationError, match=r"PREFETCH='lots': expected a number \(a multiple of the concurrency\)$"):
        RedisSettings.from_environ({"JOBQUEUE_REDIS_PREFETCH": "lots"})
    with pytest.raises(ConfigurationError, match="must start with"):
        RedisSettings.from_environ({"REDIS_URL": "http://x"})
    with pytest.raises(ConfigurationError, match="unknown Redis option"):
        RedisSettings.from_environ({}, leese=3)


def test_the_app_environment_configures_the_backend() -> None:
    app = JobQueue.from_env({"JOBQUEUE_BACKEND": "redis", "REDIS_URL": "redis://example:7000/1", "JOBQUEUE_PREFIX": "acme"})
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    assert backend.settings.url == "redis://example:7000/1" and backend.settings.prefix == "acme"
    assert backend.keys("email").base == "acme:{email}:"


def test_a_queue_keys_share_one_hash_slot() -> None:
    from redis.crc import key_slot

    keys = QueueKeys("jobqueue", "email")
    names = [keys.job("x"), keys.job("{odd}id"), keys.set("waiting"), keys.set("failed"), keys.signal]
    assert len({key_slot(k.encode()) for k in names}) == 1


# -- on fakeredis with a fake clock -------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[tuple[JobQueue, FakeClock, fakeredis.FakeServer]]:
    server = fakeredis.FakeServer()
    clock = FakeClock()
    backend = RedisBackend(
        client=fakeredis.FakeRedis(server=server, decode_responses=True),
        async_client_factory=lambda: fakeredis.FakeAsyncRedis(server=server, decode_responses=True),
        lease=10.0,
    )
    app = JobQueue(backend=backend, clock=clock)
    app.queue("q", attempts=2)
    yield app, clock, server
    app.close()


def _backend(app: JobQueue) -> RedisBackend:
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    return backend


def test_every_key_belongs_to_its_queue(fake: tuple[JobQueue, FakeClock, fakeredis.FakeServer]) -> None:
    app, _, server = fake

    @app.job(queue="q")
    def work(payload: Tag) -> str:
        return payload.tag

    app.queue("other")
    other = app.job(name="other_work", queue="other")(lambda payload: None)
    work.enqueue(tag="a")
    other.enqueue()
    work.enqueue(tag="later", _delay=60)
    _backend(app).drain()
    raw = fakeredis.FakeRedis(server=server, decode_responses=True)
    keys = raw.keys("*")
    assert keys and all(k.startswith(("jobqueue:{q}:", "jobqueue:{other}:")) for k in keys)


def test_a_job_whose_lease_ran_out_is_delivered_again_and_the_old_owner_writes_nothing(
    fake: tuple[JobQueue, FakeClock, fakeredis.FakeServer],
) -> None:
    app, clock, _ = fake

    @app.job(queue="q")
    def work(payload: Tag) -> str:
        return payload.tag

    backend = _backend(app)
    handle = work.enqueue(tag="x")
    [(first, old_token)], _ = backend.claim("q", 5, "dead-worker")
    assert handle.status().state is JobState.ACTIVE
    clock.advance(5)
    assert backend.heartbeat("q", [(first.id, old_token)]) == []  # still ours: extended to now + 10
    clock.advance(11)
    [(second, new_token)], _ = backend.claim("q", 5, "live-worker")
    assert second.id == first.id and second.attempt == 2 and new_token != old_token
    status = handle.status()
    assert status.state is JobState.ACTIVE and status.attempt == 2 and status.error.type == "LeaseExpired"

    # the old owner comes back: nothing it writes lands
    assert backend.set_progress(first, old_token, 99) is False
    assert backend.finish(first, old_token, Outcome(JobState.COMPLETED, result="stale")) is False
    assert backend.cancel_requested(first, old_token) is True
    assert backend.heartbeat("q", [(first.id, old_token)]) == [first.id]
    assert handle.status().progress == 0
    assert backend.finish(second, new_token, Outcome(JobState.COMPLETED, result="fresh")) is True
    assert handle.status().result == "fresh"


def test_a_lost_lease_on_the_last_attempt_ends_failed(fake: tuple[JobQueue, FakeClock, fakeredis.FakeServer]) -> None:
    app, clock, _ = fake
    job = app.job(name="once", queue="q", attempts=1)(lambda payload: None)
    handle = job.enqueue()
    backend = _backend(app)
    backend.claim("q", 1, "w")
    clock.advance(30)
    assert backend.claim("q", 1, "w2")[0] == []
    status = handle.status()
    assert status.state is JobState.FAILED and status.error.type == "LeaseExpired"


def test_release_gives_a_job_back_with_the_same_attempt(fake: tuple[JobQueue, FakeClock, fakeredis.FakeServer]) -> None:
    app, _, _ = fake
    job = app.job(name="give_back", queue="q")(lambda payload: None)
    handle = job.enqueue()
    backend = _backend(app)
    [(env, token)], _ = backend.claim("q", 1, "w")
    assert backend.release("q", [(env.id, token)]) == 1
    status = handle.status()
    assert status.state is JobState.WAITING and status.attempt == 1
    assert backend.finish(env, token, Outcome(JobState.COMPLETED)) is False


def test_claims_come_in_batches_in_priority_order(fake: tuple[JobQueue, FakeClock, fakeredis.FakeServer]) -> None:
    app, _, _ = fake
    job = app.job(name="batch", queue="q")(lambda payload: None)
    low = [job.enqueue(_priority=9).id for _ in range(3)]
    high = [job.enqueue(_priority=1).id for _ in range(3)]
    claimed, _ = _backend(app).claim("q", 4, "w")
    assert [env.id for env, _ in claimed] == high + low[:1]
    assert len({token for _, token in claimed}) == 4


def test_the_claim_hint_says_when_a_delayed_job_is_due(fake: tuple[JobQueue, FakeClock, fakeredis.FakeServer]) -> None:
    app, clock, _ = fake
    job = app.job(name="later", queue="q")(lambda payload: None)
    job.enqueue(_delay=30)
    claimed, hint = _backend(app).claim("q", 1, "w")
    assert claimed == [] and hint == pytest.approx(clock.now() + 30)


def test_a_resent_enqueue_is_one_job_and_still_reports_created(fake: tuple[JobQueue, FakeClock, fakeredis.FakeServer]) -> None:
    app, clock, _ = fake
    job = app.job(name="resent", queue="q")(lambda payload: None)
    envelope = job.build_envelope(None, {"_job_id": "r-1"})
    backend = _backend(app)
    args = backend._enqueue_args(envelope, "origin-1", clock.now())
    base = backend.keys("q").base
    assert backend.scripts.enqueue(backend.client, base, args) == 1
    assert backend.scripts.enqueue(backend.client, base, args) == 1  # the same call again: its reply was lost
    assert backend.scripts.enqueue(backend.client, base, backend._enqueue_args(envelope, "origin-2", clock.now())) == 0
    assert app.stats("q")[JobState.WAITING] == 1


def test_aenqueue_uses_the_asyncio_client(fake: tuple[JobQueue, FakeClock, fakeredis.FakeServer]) -> None:
    app, _, _ = fake
    job = app.job(name="from_async", queue="q")(lambda payload: None)

    async def produce() -> list[str]:
        one = await job.aenqueue()
        many = await job.aenqueue_many([{}, {}])
        return [one.id] + [h.id for h in many]

    ids = asyncio.run(produce())
    assert len(set(ids)) == 3
    assert app.stats("q")[JobState.WAITING] == 3


def test_get_without_a_queue_looks_through_the_app_queues(fake: tuple[JobQueue, FakeClock, fakeredis.FakeServer]) -> None:
    app, _, _ = fake
    app.queue("elsewhere")
    job = app.job(name="there", queue="elsewhere")(lambda payload: None)
    handle = job.enqueue(_job_id="find-me")
    assert app.get("find-me").queue == "elsewhere"
    assert app.cancel("find-me") is True and handle.status().state is JobState.CANCELLED
    assert app.get("nobody") is None


def test_worker_hooks_run_around_the_jobs(fake: tuple[JobQueue, FakeClock, fakeredis.FakeServer]) -> None:
    app, _, _ = fake
    seen: list[str] = []

    @app.on_worker_start
    async def open_pool() -> None:
        seen.append(f"start:{asyncio.get_running_loop() is not None}")

    @app.on_worker_stop
    def close_pool() -> None:
        seen.append("stop")

    @app.job(queue="q")
    async def uses_pool(payload: Tag, ctx: JobContext) -> str:
        seen.append(payload.tag)
        return payload.tag

    uses_pool.enqueue(tag="job")
    assert _backend(app).drain() == 1
    assert seen == ["start:True", "job", "stop"]


# -- Redis unreachable ----------------------------------------------------------------------------------


def _unreachable_app(fallback: str) -> JobQueue:
    port = free_port()
    settings = Settings.from_env({"REDIS_URL": f"redis://127.0.0.1:{port}/0", "JOBQUEUE_REDIS_RETRY_FOR": "0.3"}, backend="redis", fallback=fallback)
    return JobQueue(settings=settings)


def test_fallback_sync_runs_one_attempt_inline_and_reports_degraded() -> None:
    app = _unreachable_app("sync")
    ran: list[str] = []

    @app.job
    def greet(payload: Tag) -> str:
        ran.append(payload.tag)
        return f"hi {payload.tag}"

    started = time.monotonic()
    handle = greet.enqueue(tag="ann")
    assert time.monotonic() - started < 3
    assert ran == ["ann"]
    assert handle.result(timeout=1) == "hi ann"
    health = app.health()
    assert health.status == "degraded" and not health.broker_reachable


@pytest.mark.parametrize("options", [{"_delay": 5}, {"_job_id": "mine-1"}])
def test_fallback_sync_refuses_what_inline_cannot_honour(options: dict[str, object]) -> None:
    app = _unreachable_app("sync")
    ran: list[str] = []
    job = app.job(name="careful")(lambda payload: ran.append("ran"))
    with pytest.raises(BrokerUnavailable, match="cannot run inline"):
        job.enqueue(**options)
    assert ran == []


def test_fallback_raise_raises_within_the_bound() -> None:
    app = _unreachable_app("raise")
    job = app.job(name="strict")(lambda payload: None)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="did not answer"):
        job.enqueue()
    with pytest.raises(BrokerUnavailable):
        asyncio.run(job.aenqueue())
    assert time.monotonic() - started < 6
    assert app.health().status == "unhealthy"


def test_once_redis_is_found_unreachable_the_next_enqueues_try_once_until_one_gets_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """A circuit breaker: during an outage only the first enqueue waits out ``retry_for``; Redis back, the next one resets it."""
    import redis.connection

    from tests.redis_servers import RedisServer

    attempts: list[int] = []
    connect = redis.connection.Connection._connect  # the socket's connect, however the connection was asked to make one

    def counted(self: redis.connection.Connection) -> Any:
        attempts.append(1)
        return connect(self)

    monkeypatch.setattr(redis.connection.Connection, "_connect", counted)
    server = RedisServer()
    settings = Settings.from_env({"REDIS_URL": server.url, "JOBQUEUE_REDIS_RETRY_FOR": "0.5"}, backend="redis", fallback="sync")
    app = JobQueue(settings=settings)
    ran: list[str] = []
    job = app.job(name="note")(lambda payload: ran.append("ran"))

    job.enqueue()  # Redis not started yet: retried for the bound, then run inline
    first = len(attempts)
    assert first > 1 and ran == ["ran"]
    for count in range(2, 5):
        attempts.clear()
        job.enqueue()
        assert len(attempts) == 1, "an enqueue during a known outage tries once"
        assert ran == ["ran"] * count
    server.start()
    try:
        handle = job.enqueue()  # one try again, and it gets through: stored in Redis, not run here
        assert ran == ["ran"] * 4 and handle.status().state is JobState.WAITING
        server.stop()
        attempts.clear()
        job.enqueue()  # the success reset the breaker: the whole bound again, then inline
        assert len(attempts) > 1 and ran == ["ran"] * 5
    finally:
        server.cleanup()

    strict = _unreachable_app("raise")
    refused = strict.job(name="strict")(lambda payload: None)
    with pytest.raises(BrokerUnavailable, match="within 0.3s"):
        refused.enqueue()
    attempts.clear()
    with pytest.raises(BrokerUnavailable, match="tried once"):
        refused.enqueue()
    assert len(attempts) == 1
    with pytest.raises(BrokerUnavailable, match="tried once"):
        asyncio.run(refused.aenqueue())  # the asyncio client follows the same breaker


def test_async_fallback_runs_inline_on_the_callers_loop() -> None:
    app = _unreachable_app("sync")

    @app.job
    async def agreet(payload: Tag) -> str:
        return payload.tag.upper()

    async def produce() -> object:
        handle = await agreet.aenqueue(tag="bo")
        return await handle.aresult(timeout=1)

    assert asyncio.run(produce()) == "BO"


def test_an_enqueue_that_may_have_reached_redis_is_never_run_inline() -> None:
    """A server that accepts the connection but never answers: the command may have been applied."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        env = {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "JOBQUEUE_REDIS_RETRY_FOR": "0.5", "JOBQUEUE_REDIS_SOCKET_TIMEOUT": "0.2",
               "JOBQUEUE_REDIS_BLOCK": "0.1"}
        app = JobQueue(settings=Settings.from_env(env, backend="redis", fallback="sync"))
        ran: list[str] = []
        job = app.job(name="once_only")(lambda payload: ran.append("ran"))
        with pytest.raises(BrokerUnavailable, match="may have reached Redis"):
            job.enqueue()
        assert ran == []
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        listener.close()


def test_list_and_clean_pending_jobs(fake: tuple[JobQueue, FakeClock, fakeredis.FakeServer]) -> None:
    app, clock, _ = fake
    job = app.job(name="pending", queue="q")(lambda payload: None)
    app.pause("q")
    low = job.enqueue(_priority=9).id
    high = job.enqueue(_priority=1).id
    later = job.enqueue(_delay=60).id
    page = app.list_jobs("q", "waiting", limit=1)
    assert [j.id for j in page.jobs] == [high] and page.next_cursor is not None
    assert [j.id for j in app.list_jobs("q", "waiting", cursor=page.next_cursor).jobs] == [low]
    assert [j.id for j in app.list_jobs("q", "delayed").jobs] == [later]
    clock.advance(10)
    assert app.clean("q", "waiting", older_than=60) == 0
    assert app.clean("q", "waiting", older_than=5) == 2
    assert app.get(high) is None and app.stats("q")[JobState.DELAYED] == 1
    with pytest.raises(ValueError, match="active"):
        app.clean("q", "active")


def test_a_paused_queue_claims_nothing_and_resuming_wakes_workers(fake: tuple[JobQueue, FakeClock, fakeredis.FakeServer]) -> None:
    app, _, server = fake
    job = app.job(name="paused", queue="q")(lambda payload: None)
    app.pause("q")
    job.enqueue()
    backend = _backend(app)
    raw = fakeredis.FakeRedis(server=server, decode_responses=True)
    raw.delete(backend.keys("q").signal)
    assert backend.claim("q", 5, "w")[0] == []
    app.resume("q")
    assert raw.llen(backend.keys("q").signal) >= 1
    assert len(backend.claim("q", 5, "w")[0]) == 1
