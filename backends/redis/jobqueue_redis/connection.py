"""Building Redis clients, and the bounded retry policy of producer calls."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
import redis.asyncio
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobqueue.errors import BrokerUnavailable
from jobqueue_redis.settings import RedisSettings

logger = logging.getLogger("jobqueue.redis")

T = TypeVar("T")

#: errors that mean "Redis did not answer" (as opposed to a bug or a refused command)
TRANSIENT: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)
try:  # cluster-specific ones, when the cluster client is available
    from redis.exceptions import ClusterDownError, TryAgainError

    TRANSIENT = TRANSIENT + (ClusterDownError, TryAgainError)
except ImportError:  # pragma: no cover
    pass


#: bytes that are not UTF-8 (written to Redis by something other than jobqueue) decode to lone surrogates
#: instead of failing the whole reply: a claim that returned one such job would otherwise raise for every
#: job in it and stop the worker. ``decode_envelope`` refuses such text, so the job fails with a clear error.
DECODE_ERRORS = "surrogateescape"


def build_client(settings: RedisSettings) -> Any:
    """A synchronous client for ``settings`` (``RedisCluster``, else a ``Redis`` whose single commands go over a
    connection per thread: :mod:`jobqueue_redis.pinned`); it connects lazily."""
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout,
        "socket_timeout": settings.socket_timeout,
        "decode_responses": True,
        "encoding_errors": DECODE_ERRORS,
        "health_check_interval": 30,
    }
    if settings.cluster:
        from redis.cluster import RedisCluster

        options.pop("health_check_interval")
        return RedisCluster.from_url(settings.url, **options)
    from jobqueue_redis.pinned import ThreadPinnedRedis

    return ThreadPinnedRedis.from_url(settings.url, **options)


def build_async_client(settings: RedisSettings) -> Any:
    """An asyncio client for ``settings`` (one per event loop)."""
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout,
        "socket_timeout": settings.socket_timeout,
        "decode_responses": True,
        "encoding_errors": DECODE_ERRORS,
    }
    if settings.cluster:
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(settings.url, **options)
    return redis.asyncio.Redis.from_url(settings.url, **options)


def never_sent(exc: BaseException) -> bool:
    """True when ``exc`` shows the command never left this process (no connection could be made).

    Only then may a producer run the job inline instead: any other failure may have reached Redis.
    """
    text = str(exc).lower()
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)) and "connecting to" in text


class Outage:
    """What a bounded call learnt while failing: the last error and whether anything may have been sent."""

    def __init__(self) -> None:
        self.maybe_sent = False
        self.last: BaseException | None = None

    def note(self, exc: BaseException) -> None:
        self.last = exc
        if not never_sent(exc):
            self.maybe_sent = True


def _retrying(settings: RedisSettings, spent: float = 0.0) -> dict[str, Any]:
    from tenacity import retry_if_exception_type, stop_after_delay, wait_exponential  # only once a call failed

    return {
        "stop": stop_after_delay(max(settings.retry_for - spent, 0.0)),
        "wait": wait_exponential(multiplier=0.05, max=0.5),
        "retry": retry_if_exception_type(TRANSIENT),
        "reraise": True,
    }


def unavailable(settings: RedisSettings, what: str, exc: BaseException) -> BrokerUnavailable:
    return BrokerUnavailable(f"Redis at {settings.redacted_url} did not answer ({what}) within {settings.retry_for:g}s: {_why(exc)}")


def unavailable_again(settings: RedisSettings, what: str, exc: BaseException) -> BrokerUnavailable:
    return BrokerUnavailable(
        f"Redis at {settings.redacted_url} did not answer ({what}); it was unreachable at the call before too, so this "
        f"call was tried once, without {settings.retry_for:g}s of retries: {_why(exc)}"
    )


def _why(exc: BaseException) -> str:
    # redis-py words a refused login by the step that met it (HELLO, AUTH, a command): name the cause plainly
    if isinstance(exc, AuthenticationError):
        return f"authentication failed or is required (the password or user in the URL): {exc}"
    return str(exc)


def bounded(settings: RedisSettings, what: str, call: Callable[[], T], outage: Outage | None = None, *, patient: bool = True) -> T:
    """Run ``call``, retrying transient failures for at most ``settings.retry_for`` seconds.

    Only for calls that are safe to repeat. Raises :class:`BrokerUnavailable` when the bound is spent, or after
    the first failure when not ``patient`` (Redis was already found unreachable: waiting the whole bound on
    every call of an outage would stall each web request that enqueues).
    """
    seen = outage or Outage()
    started = time.monotonic()
    try:  # the first try without the retry machinery (most calls succeed at once)
        return call()
    except TRANSIENT as exc:
        seen.note(exc)
        if not patient:
            raise unavailable_again(settings, what, exc) from exc
    from tenacity import Retrying

    try:
        for attempt in Retrying(**_retrying(settings, time.monotonic() - started)):
            with attempt:
                try:
                    return call()
                except TRANSIENT as exc:
                    seen.note(exc)
                    raise
    except TRANSIENT as exc:
        raise unavailable(settings, what, exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover


async def abounded(
    settings: RedisSettings, what: str, call: Callable[[], Awaitable[T]], outage: Outage | None = None, *, patient: bool = True,
) -> T:
    """:func:`bounded` for coroutines."""
    from tenacity import AsyncRetrying

    seen = outage or Outage()
    if not patient:
        try:
            return await call()
        except TRANSIENT as exc:
            seen.note(exc)
            raise unavailable_again(settings, what, exc) from exc
    try:
        async for attempt in AsyncRetrying(**_retrying(settings)):
            with attempt:
                try:
                    return await call()
                except TRANSIENT as exc:
                    seen.note(exc)
                    raise
    except TRANSIENT as exc:
        raise unavailable(settings, what, exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover
