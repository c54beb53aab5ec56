"""Many script calls sent one after another on one connection, each as soon as it is built.

A bulk enqueue is several script calls (one per chunk of jobs). Sent as one pipeline, every call's arguments are
built (each envelope encoded) before the first leaves, and the server is idle meanwhile. Streamed, the server runs
the first chunk while the next one is built: the two overlap, and a bulk enqueue takes about the longer of the two
instead of their sum. The calls and their answers are the same as :func:`run_pipeline`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from redis.exceptions import ResponseError

from jobqueue_redis.pinned import take_connection
from jobqueue_redis.scripts import Script, Scripts, is_noscript, load_once, run_pipeline

#: one script call: the script, its queue's key base, its ARGV
Call = tuple[Script, str, Sequence[Any]]


class LazyCalls(Sequence[Call]):
    """``count`` calls, each built by ``build(i)`` when it is first read and kept (a resend reads it again)."""

    def __init__(self, count: int, build: Callable[[int], Call]) -> None:
        self._count = count
        self._build = build
        self._built: list[Call] = []

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Call: ...

    @overload
    def __getitem__(self, index: slice) -> list[Call]: ...

    def __getitem__(self, index: int | slice) -> Call | list[Call]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        while len(self._built) <= index:
            self._built.append(self._build(len(self._built)))
        return self._built[index]

    def __iter__(self) -> Iterator[Call]:
        return (self[i] for i in range(self._count))


def run_streamed(client: Any, scripts: Scripts, calls: Sequence[Call]) -> list[Any]:
    """:func:`run_pipeline`'s calls and answers (an error reply is its call's answer), each call sent as soon as it
    is read from ``calls``. Clients without a plain connection pool (a cluster, fakeredis) get :func:`run_pipeline`."""
    pool = getattr(client, "connection_pool", None)
    if len(calls) < 2 or pool is None or type(client).__module__.startswith("fakeredis"):
        return run_pipeline(client, scripts, calls)
    load_once(client, scripts)  # a fresh server would refuse every call
    results = _stream(pool, calls)
    missing = [i for i, result in enumerate(results) if is_noscript(result)]
    if missing:  # the server restarted since: load the scripts, run those calls again
        for i, value in zip(missing, run_pipeline(client, scripts, [calls[i] for i in missing])):
            results[i] = value
    return results


def _stream(pool: Any, calls: Sequence[Call]) -> list[Any]:
    connection = take_connection(pool)
    try:
        for i in range(len(calls)):
            script, base, args = calls[i]
            # only the first send may check the connection's health: a PING later would read a call's answer
            connection.send_command("EVALSHA", script.sha, 1, base, *args, check_health=i == 0)
        results: list[Any] = []
        for _ in range(len(calls)):
            try:
                results.append(connection.read_response())
            except ResponseError as exc:  # an error reply: the connection reads on
                results.append(exc)
        return results
    except BaseException:
        connection.disconnect()  # answers may still be on their way: the connection cannot be used again
        raise
    finally:
        pool.release(connection)
