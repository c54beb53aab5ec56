"""A redis-py client whose commands each go over a connection kept by the calling thread.

redis-py takes a connection from its pool for every command and gives it back afterwards, and the taking checks
the connection with a zero-timeout read (two ``ioctl`` calls and a ``recv`` that finds nothing) and the process id
(twice). On loopback that costs about as much as the round trip itself: in process, one ``INCR`` took 37 µs of
wall time and 24 µs of CPU through the pool against 27 and 15 over a kept connection (redis-py 6.4, this
project's machine, eight interleaved rounds). Every hot call jobqueue makes is one command (an ``EVALSHA`` or a
``BLPOP``), from a thread that makes many: a producer's web thread, a worker's job and watcher threads.

A thread takes its connection from the pool (with the pool's check) on its first command and keeps it until the
thread ends, when it goes back to the pool for the next thread (a server that starts a thread per request, or a
greenlet per request under gevent, reuses connections as with the pool alone), or until the client is closed or an
error drops it (the next command connects again). Before each command a ``poll`` with no wait (one system call,
under a microsecond) asks whether the kept connection has anything to read; only then does it get the pool's
check. So a connection the server closed (a restart, its ``timeout``) is found before a command is sent on it, as
the pool finds it: the command connects again, and if that fails, the error says nothing was sent (a producer may
then run the job inline). Pipelines and pub/sub use the pool as before.
"""

from __future__ import annotations

import os
import select
import threading
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


class ThreadPinnedRedis(redis.Redis):
    """``redis.Redis`` with one connection per thread for single commands (see the module's docstring).

    Same replies, errors and retry policy as the pooled client: a command that fails drops its connection
    (answers may still be on their way on it) and is retried by the connection's ``retry`` as redis-py would.
    A process forked from this one takes its own connections (the inherited sockets are the parent's).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pins = threading.local()

    def execute_command(self, *args: Any, **options: Any) -> Any:
        pins = self._pins
        conn = getattr(pins, "conn", None)
        if conn is None or conn.pid != os.getpid():
            conn = self._pin()
        elif _has_input(pins, conn._sock):
            _drop_if_stale(conn)
        return conn.retry.call_with_retry(lambda: self._send_and_parse(conn, args, options), lambda _error: conn.disconnect())

    def _send_and_parse(self, conn: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        try:
            conn.send_command(*args, **options)
            parse: Any = self.parse_response  # untyped in redis-py
            return parse(conn, args[0], **options)
        except ResponseError:
            raise  # an error reply is a whole answer, read: the connection goes on, as the pool's would
        except BaseException:
            conn.disconnect()  # an interrupted read would hand this command's answer to the next one
            raise

    def _pin(self) -> Any:
        pool = self.connection_pool
        conn = take_connection(pool)
        pins = self._pins
        pins.conn = conn
        pins.lease = _PoolLease(pool, conn)  # dropped with the thread's locals: the connection goes back
        return conn

    def close(self) -> None:
        """Let go of the threads' connections and close the pool's, in-use ones too (as ``redis.Redis.close`` does)."""
        if hasattr(self, "_pins"):  # absent when __init__ failed
            self._pins = threading.local()
        super().close()


def take_connection(pool: Any) -> Any:
    """A connection from a redis-py pool, checked by it (redis-py 5 wants a command name; later versions warn about one)."""
    try:
        return pool.get_connection()
    except TypeError:
        return pool.get_connection("PING")


class _PoolLease:
    """Gives a thread's connection back to its pool when the thread's locals go (the thread ended, or the client
    was closed); a pool reset by a fork since ignores a connection it does not own."""

    __slots__ = ("conn", "pool")

    def __init__(self, pool: Any, conn: Any) -> None:
        self.pool = pool
        self.conn = conn

    def __del__(self) -> None:
        try:
            self.pool.release(self.conn)
        except Exception:  # noqa: BLE001 - at interpreter exit the pool may be half gone; nothing is lost
            pass


def _has_input(pins: Any, sock: Any) -> bool:
    """Whether ``sock`` (None: not connected) has something to read, without waiting. A ``poll`` object per thread,
    made again when the connection's socket changes (``select`` would refuse descriptors past 1023)."""
    if sock is None:
        return False
    if getattr(pins, "sock", None) is not sock:
        if not hasattr(select, "poll"):  # Windows
            return bool(select.select((sock,), (), (), 0)[0])
        pins.poller = select.poll()
        pins.poller.register(sock, select.POLLIN)
        pins.sock = sock
    return bool(pins.poller.poll(0))


def _drop_if_stale(conn: Any) -> None:
    """What the pool does to a connection it hands out: one with something to read (the server closed it, or an
    answer nobody read) is dropped, and the command connects again."""
    try:
        if conn.can_read():
            conn.disconnect()
    except (RedisConnectionError, RedisTimeoutError, OSError):
        conn.disconnect()
