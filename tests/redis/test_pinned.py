"""The backend's client keeps one connection per thread (jobqueue_redis.pinned), on a real redis-server: threads do
not share one, one the server dropped is found before a command is sent on it, a forked child takes its own, a
thread's end gives it back to the pool, and closing lets all go."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from jobqueue_redis.connection import build_client, never_sent
from jobqueue_redis.pinned import ThreadPinnedRedis
from jobqueue_redis.settings import RedisSettings
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.redis_servers import RedisServer


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[Any]:
    made = ThreadPinnedRedis.from_url(redis_server.url, decode_responses=True)
    yield made
    made.close()


@pytest.fixture
def admin(redis_server: RedisServer) -> Iterator[Any]:
    made = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield made
    made.close()


def _ids_of(admin: Any) -> set[int]:
    return {int(entry["id"]) for entry in admin.client_list()}


def _in_thread(call: Any) -> Any:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(call()))
    thread.start()
    thread.join()
    return box[0]


def test_the_backend_client_is_pinned_per_thread(redis_server: RedisServer) -> None:
    made = build_client(RedisSettings(url=redis_server.url))
    try:
        assert isinstance(made, ThreadPinnedRedis)
        assert made.client_id() == made.client_id()
    finally:
        made.close()


def test_a_thread_keeps_its_connection_and_threads_do_not_share_one(client: Any) -> None:
    mine = client.client_id()
    assert [client.client_id() for _ in range(5)] == [mine] * 5
    theirs = _in_thread(client.client_id)
    assert theirs != mine
    assert client.client_id() == mine


def test_replies_and_errors_are_the_pooled_clients(client: Any, redis_server: RedisServer) -> None:
    pooled = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        for each in (client, pooled):
            each.delete("pinned:h")
            assert each.hset("pinned:h", mapping={"a": "1", "b": "2"}) == 2
            assert each.hgetall("pinned:h") == {"a": "1", "b": "2"}
            before = each.client_id()
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                each.lpush("pinned:h", "x")
            assert each.ping() is True  # the error reply was read: the connection goes on
            if each is client:
                assert each.client_id() == before, "an error reply does not cost the kept connection"
    finally:
        pooled.close()


def test_a_connection_the_server_dropped_is_found_before_the_next_command(redis_server: RedisServer, admin: Any) -> None:
    # no retry to lean on: the look before the command must find the dead connection by itself
    client = ThreadPinnedRedis.from_url(redis_server.url, retry=Retry(NoBackoff(), 0))
    try:
        first = client.client_id()
        assert admin.client_kill_filter(_id=first) == 1
        assert client.ping() is True
        assert client.client_id() != first
    finally:
        client.close()


def test_a_server_gone_fails_the_next_command_as_one_never_sent() -> None:
    """What lets a producer run the job inline (connection.never_sent): the dead connection is not written to."""
    server = RedisServer().start()
    client = ThreadPinnedRedis.from_url(server.url, retry=Retry(NoBackoff(), 0))
    try:
        assert client.ping() is True
        server.stop()
        with pytest.raises(redis.ConnectionError) as failed:
            client.ping()
        assert never_sent(failed.value), failed.value
    finally:
        client.close()
        server.cleanup()


def test_a_command_interrupted_mid_answer_drops_its_connection(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    first = client.client_id()
    calls = {"n": 0}
    real = ThreadPinnedRedis.parse_response

    def interrupted(self: Any, connection: Any, command_name: Any, **options: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt  # the answer is left unread on the socket
        return real(self, connection, command_name, **options)

    monkeypatch.setattr(ThreadPinnedRedis, "parse_response", interrupted)
    with pytest.raises(KeyboardInterrupt):
        client.set("pinned:k", "v")
    assert client.get("pinned:k") == "v"  # not the SET's "OK" left on the old connection
    assert client.client_id() != first


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_takes_its_own_connection(client: Any) -> None:
    parent = client.client_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its connection's id, never touch the parent's socket
        try:
            os.write(write, str(client.client_id()).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = int(os.read(read, 64).decode())
    os.close(read)
    os.waitpid(pid, 0)
    assert child != parent
    assert client.client_id() == parent  # the parent's connection still works


def test_close_lets_every_threads_connection_go(client: Any, admin: Any) -> None:
    mine = client.client_id()
    theirs: list[int] = []
    closed = threading.Event()
    thread = threading.Thread(target=lambda: (theirs.append(client.client_id()), closed.wait(10)))
    thread.start()  # alive, its connection held, while the client is closed
    try:
        while not theirs:
            time.sleep(0.01)
        assert {mine, theirs[0]} <= _ids_of(admin)
        client.close()
        assert not {mine, theirs[0]} & _ids_of(admin)
    finally:
        closed.set()
        thread.join()
    assert client.ping() is True  # usable again: a new connection


def test_a_threads_connection_goes_back_to_the_pool_when_the_thread_ends(client: Any) -> None:
    """A server that starts a thread (or a greenlet) per request reuses connections, as with the pool alone."""
    first = _in_thread(client.client_id)
    gc.collect()
    assert [_in_thread(client.client_id) for _ in range(3)] == [first] * 3
