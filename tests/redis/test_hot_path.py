"""The worker's hot path on a redis-server of its own: how many Redis commands a batch of outcomes and claims costs,
and the envelope decoder the claim uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from jobqueue_redis import RedisBackend
from jobqueue_redis.codec import envelope_of
from jobqueue_redis.scripts import load_once
from pydantic import BaseModel

from jobqueue import JobQueue, JobState
from jobqueue.envelope import Envelope, decode_envelope
from jobqueue.errors import UnsupportedEnvelope
from jobqueue.job import JobDefinition
from jobqueue.options import Retention, RetentionRule
from jobqueue.runner import Outcome
from tests.redis_servers import RedisServer


class Tick(BaseModel):
    n: int = 0


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server nothing else talks to, so ``INFO commandstats`` counts this test's commands only."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()
        server.cleanup()


def _commands(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config|resetstat"))


@contextmanager
def _ticking(server: RedisServer, prefix: str, **queue_options: Any) -> Iterator[tuple[JobQueue, RedisBackend, JobDefinition[None]]]:
    """An app on ``server`` with queue ``q`` and its job ``tick``: the app, its backend and the job; closed after."""
    app = JobQueue(backend=RedisBackend(server.url, prefix=prefix))
    app.queue("q", **queue_options)

    @app.job(name="tick", queue="q")
    def tick(payload: Tick) -> None:
        pass

    try:
        backend = app.backend
        assert isinstance(backend, RedisBackend)
        yield app, backend, tick
    finally:
        app.close()


def test_a_cycle_costs_two_commands_per_outcome_and_per_claimed_job(own_server: RedisServer) -> None:
    with _ticking(own_server, "hot", retention=Retention(completed=RetentionRule(max_count=5))) as (app, backend, tick):
        tick.enqueue_many([{"n": i} for i in range(40)])
        _, claimed, _ = backend.cycle("q", [], 10, "w:0")
        assert len(claimed) == 10
        done = Outcome(JobState.COMPLETED)
        _, claimed, _ = backend.cycle("q", [(env, token, done) for env, token in claimed], 10, "w:1")  # retention starts
        client = backend.client
        client.config_resetstat()
        kept, again, _ = backend.cycle("q", [(env, token, done) for env, token in claimed], 10, "w:2")
        used = _commands(client)
        assert kept == [1] * 10 and len(again) == 10
        # an HMGET and an HSET per outcome and per claimed job (40), and a fixed number per call: the call itself,
        # the finished jobs out of active and into their set, retention (ten dropped in one DEL), the claim's checks
        assert used <= 40 + 20, client.info("commandstats")  # 57 here; 160 before finish.lua read and wrote once
        assert [status.state for status in (app.get(env.id) for env, _ in again) if status] == [JobState.ACTIVE] * 10
        assert sum(1 for env, _ in claimed if app.get(env.id) is not None) == 5  # retention kept the last 5


def test_a_stored_job_leaves_out_the_fields_at_their_default(own_server: RedisServer) -> None:
    with _ticking(own_server, "hot") as (app, backend, tick):
        one = tick.enqueue(n=1)
        many = tick.enqueue_many([{"n": 2}, {"n": 3}])
        later = tick.enqueue(n=4, _delay=60)
        for handle in (one, *many):
            fields = set(backend.client.hgetall(backend.keys("q").job(handle.id)))
            assert not fields & {"progress", "cancel", "token", "not_before"}, fields  # a smaller HSET at enqueue
            status = handle.status()
            assert status.state is JobState.WAITING and status.progress == 0.0 and status.not_before is None
            assert not status.cancel_requested
        assert backend.client.hget(backend.keys("q").job(later.id), "not_before") is not None
        assert later.status().state is JobState.DELAYED
        assert app.cancel(one.id) and one.status().state is JobState.CANCELLED


def test_the_claim_writes_no_progress_and_an_attempt_that_will_be_retried_resets_it(own_server: RedisServer) -> None:
    with _ticking(own_server, "hot") as (app, backend, tick):
        handle = tick.enqueue(n=1)
        _, claimed, _ = backend.cycle("q", [], 1, "w:0")
        (envelope, token), = claimed
        assert backend.client.hget(backend.keys("q").job(handle.id), "progress") is None  # one field less per claim
        assert handle.status().progress == 0.0
        assert backend.set_progress(envelope, token, 40.0) and handle.status().progress == 40.0
        retry = Outcome(JobState.DELAYED, retry_at=app.clock.now() + 60)
        kept, _, _ = backend.cycle("q", [(envelope, token, retry)], 0, "w:1")
        assert kept == [1]
        status = handle.status()
        assert status.state is JobState.DELAYED and status.progress == 0.0 and status.attempt == 2


def test_the_claim_decodes_an_envelope_as_decode_envelope_does() -> None:
    raw = Envelope(id="j1", name="tick", queue="q", payload={"n": 3}, max_attempts=4).encode()
    assert envelope_of("j1", "q", raw, "2") == decode_envelope(raw, attempt=2)
    assert envelope_of("j1", "q", raw, None) == decode_envelope(raw)
    assert envelope_of("j2", "r", raw, "1").ref.id == "j2"
    for bad in ('{"id": "\udcff"}', "nope", "[1]", '{"id": "j1"}'):
        with pytest.raises(UnsupportedEnvelope) as fast:
            envelope_of("j1", "q", bad, "1")
        with pytest.raises(UnsupportedEnvelope) as slow:
            decode_envelope(bad, attempt=1)
        assert str(fast.value) == str(slow.value)
    with pytest.raises(UnsupportedEnvelope):
        envelope_of("j1", "q", raw, "0")  # Redis's count of attempts is validated too


def test_the_wake_up_claim_reads_the_earliest_lease_and_delayed_job_once(own_server: RedisServer) -> None:
    with _ticking(own_server, "wake") as (app, backend, tick):
        client = backend.client
        later = tick.enqueue(n=0, _delay=60)
        first = tick.enqueue(n=1)
        load_once(client, backend.scripts)  # as the first wake-up on a fresh server does
        client.config_resetstat()
        got = backend.wait_and_claim("q", 1.0, 10, "w:0")
        assert got is not None
        claimed, hint = got
        assert [env.id for env, _ in claimed] == [first.id]
        # the idle registration (the script call, the pause flag, TIME, ZADD), BLPOP, then the claim: the script call, the
        # registration out (ZREM) and the inbox looked at (LPOP), TIME, the earliest lease and delayed job (one ZRANGE each,
        # reused for the hint), the pause flag, the first waiting ids (ZRANGE), HMGET and HSET of the job, the ids out of
        # waiting (ZREMRANGEBYRANK), its lease (ZADD), the stale wake-ups (DEL): the read that came back short says the
        # waiting set is empty, so no ZCARD
        assert _commands(client) == 18, client.info("commandstats")
        score = client.zscore(backend.keys("q").set("active"), first.id)
        assert score is not None and score == int(score), "leases are scored in whole milliseconds"
        lease = score / 1000
        assert hint == pytest.approx(lease), "the hint: this claim's lease, before the delayed job"
        assert (later.status().not_before or 0) > lease

        client.zadd(backend.keys("q").set("active"), {first.id: 1.0})  # its lease ran out
        tick.enqueue(n=2)
        got = backend.wait_and_claim("q", 1.0, 10, "w:1")
        assert got is not None
        again = [env for env, _ in got[0]]
        assert {env.id for env in again} >= {first.id}, "the wake-up claim reaps a lease that ran out and delivers it again"
        assert next(env for env in again if env.id == first.id).attempt == 2
