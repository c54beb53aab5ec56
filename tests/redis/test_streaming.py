"""Bulk enqueues streamed on a real redis-server: each script call leaves as soon as it is built (the server runs one
chunk while the next is built), with the same answers as one pipeline, and a connection left clean for the next user."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from jobqueue_redis import RedisBackend
from jobqueue_redis.backend import BULK_CHUNK
from jobqueue_redis.scripts import Script, Scripts
from jobqueue_redis.streaming import Call, LazyCalls, run_streamed
from pydantic import BaseModel

from jobqueue import JobQueue, JobState
from tests.redis_servers import RedisServer

PUSH = Script("test_push", "redis.call('RPUSH', KEYS[1], ARGV[1]) return redis.call('LLEN', KEYS[1])")
INCR = Script("test_incr", "return redis.call('INCR', KEYS[1])")


class Item(BaseModel):
    n: int = 0


def handle_item(payload: Item) -> None: ...


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[Any]:
    made = redis.Redis.from_url(redis_server.url, decode_responses=True)
    made.script_load(PUSH.text)
    made.script_load(INCR.text)
    yield made
    made.close()


def _scripts(client: Any) -> Scripts:
    scripts = Scripts()
    scripts.loaded.add(id(client))  # only the test's own scripts are used here
    return scripts


def test_each_call_is_sent_before_the_next_is_built(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    key = f"stream-{uuid.uuid4().hex[:8]}"
    events: list[str] = []

    def build(i: int) -> Call:
        events.append(f"build {i}")
        return PUSH, key, [str(i)]

    pool = client.connection_pool
    taken = pool.get_connection

    def get_connection(*args: Any) -> Any:
        connection = taken(*args)
        send = connection.send_command

        def recording_send(*command: Any, **options: Any) -> None:
            events.append(f"send {command[-1]}")
            send(*command, **options)

        monkeypatch.setattr(connection, "send_command", recording_send)
        return connection

    monkeypatch.setattr(pool, "get_connection", get_connection)
    assert run_streamed(client, _scripts(client), LazyCalls(3, build)) == [1, 2, 3]
    assert events == ["build 0", "send 0", "build 1", "send 1", "build 2", "send 2"]
    assert client.lrange(key, 0, -1) == ["0", "1", "2"]


def test_an_error_reply_is_its_calls_answer_and_the_others_run(client: Any) -> None:
    key, wrong = f"stream-{uuid.uuid4().hex[:8]}", f"stream-hash-{uuid.uuid4().hex[:8]}"
    client.hset(wrong, "field", "value")
    calls: list[Call] = [(INCR, key, []), (INCR, wrong, []), (INCR, key, [])]
    first, refused, last = run_streamed(client, _scripts(client), calls)
    assert (first, last) == (1, 2)
    assert isinstance(refused, redis.ResponseError) and "WRONGTYPE" in str(refused)
    assert client.ping()  # the connection went back to the pool clean: the next command reads its own answer


def test_a_failure_while_building_stops_the_stream_and_the_client_works_on(client: Any) -> None:
    key = f"stream-{uuid.uuid4().hex[:8]}"

    def build(i: int) -> Call:
        if i == 2:
            raise RuntimeError("could not build the third call")
        return PUSH, key, [str(i)]

    with pytest.raises(RuntimeError, match="third call"):
        run_streamed(client, _scripts(client), LazyCalls(3, build))
    assert [client.incr(f"{key}-counter") for _ in range(3)] == [1, 2, 3]  # each command reads its own answer
    assert client.lrange(key, 0, -1) == ["0", "1"]  # the calls sent ran; the one not built was not sent


def test_lazy_calls_are_built_once_in_order() -> None:
    built: list[int] = []

    def build(i: int) -> Call:
        built.append(i)
        return PUSH, "k", [str(i)]

    calls = LazyCalls(3, build)
    assert calls[-1][2] == ["2"] and built == [0, 1, 2]
    assert [c[2] for c in calls] == [["0"], ["1"], ["2"]] and calls[1:] == [calls[1], calls[2]]
    assert built == [0, 1, 2]
    with pytest.raises(IndexError):
        calls[3]


@pytest.fixture
def app(redis_server: RedisServer) -> Iterator[JobQueue]:
    made = JobQueue(backend=RedisBackend(redis_server.url, prefix=f"jqs-{uuid.uuid4().hex[:8]}"))
    made.queue("e")
    yield made
    made.close()


def test_a_streamed_bulk_enqueue_reloads_scripts_a_restarted_server_lost(app: JobQueue, redis_server: RedisServer) -> None:
    job = app.job(name="item", queue="e")(handle_item)
    job.enqueue_many([{"n": -1}, {"n": -2}])  # the client has loaded every script once
    redis.Redis.from_url(redis_server.url).script_flush()  # as a restart does
    count = 2 * BULK_CHUNK + 3  # three calls, every one refused with NOSCRIPT at first
    handles = job.enqueue_many([{"n": i} for i in range(count)])
    assert [h.created for h in handles] == [True] * count
    assert app.stats("e")[JobState.WAITING] == count + 2
    again = job.enqueue_many([{"n": 0, "_job_id": handles[0].id}, *({"n": i} for i in range(BULK_CHUNK))])
    assert [h.created for h in again] == [False] + [True] * BULK_CHUNK
