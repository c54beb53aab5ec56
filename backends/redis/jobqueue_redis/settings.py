"""Settings of the Redis backend, read from the app's snapshot of the environment in ``bind``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import quote

from jobqueue.errors import ConfigurationError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class RedisSettings:
    """Where Redis is and how the backend talks to it.

    ``url`` comes from ``JOBQUEUE_REDIS_URL``, else ``REDIS_URL``, else ``REDIS_HOST`` / ``REDIS_PORT`` /
    ``REDIS_PASSWORD`` / ``REDIS_DB`` (``REDIS_USERNAME``, ``REDIS_TLS``/``REDIS_SSL`` for rediss://).
    Other fields read ``JOBQUEUE_REDIS_<FIELD>`` (``JOBQUEUE_REDIS_CLUSTER=1``, ``JOBQUEUE_REDIS_LEASE=30``...).
    """

    url: str = "redis://localhost:6379/0"
    #: talk to a Redis Cluster (``RedisCluster``); a queue's keys share one hash slot
    cluster: bool = False
    #: key prefix (the core's ``JOBQUEUE_PREFIX``)
    prefix: str = "jobqueue"
    #: seconds a worker holds a job without a heartbeat before it is delivered again
    lease: float = 30.0
    #: seconds to wait for a TCP connection to Redis
    connect_timeout: float = 1.0
    #: seconds to wait for a reply (longer than ``block``)
    socket_timeout: float = 5.0
    #: total seconds a producer call keeps retrying before :class:`BrokerUnavailable`
    retry_for: float = 2.0
    #: jobs a worker claims ahead of its free slots while its jobs are quick (under a millisecond each), as a
    #: multiple of its concurrency: one call then records and claims four batches' worth (0: only free slots)
    prefetch: float = field(default=3.0, metadata={"unit": "(a multiple of the concurrency)"})
    #: a worker's job threads run under Linux's ``SCHED_BATCH`` while jobs wait in line (see :mod:`jobqueue_redis.scheduling`)
    sched_batch: bool = True
    #: seconds a worker blocks on a queue's wake-up list per call
    block: float = 1.0
    #: seconds an idle worker waits at most between two looks at its queues (a safety net)
    idle_poll: float = 2.0
    #: seconds a finished attempt keeps retrying to record its outcome while Redis is away
    ack_retry_for: float = 60.0
    #: seconds health stays ``degraded`` after a job ran inline because Redis was away
    degraded_for: float = 60.0
    #: seconds between a worker's looks for workflow steps a crash left half done (``app.workflows.recover``)
    recover_every: float = 5.0
    #: seconds a follow-up or an unlinked child must have waited before recovery takes it for a crash's leftover
    recover_after: float = 30.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], **overrides: Any) -> RedisSettings:
        """Settings from ``environ`` (the app's snapshot), then ``overrides`` (explicit wins)."""
        values: dict[str, Any] = {}
        url = _url_from(environ)
        if url is not None:
            values["url"] = url
        prefix = environ.get("JOBQUEUE_PREFIX", "").strip()
        if prefix:
            values["prefix"] = prefix
        for spec in fields(cls):
            if spec.name in ("url", "prefix"):
                continue
            variable = f"JOBQUEUE_REDIS_{spec.name.upper()}"
            raw = environ.get(variable)
            if raw is None or raw.strip() == "":
                continue
            values[spec.name] = _convert(variable, raw.strip(), spec.type, spec.metadata.get("unit", "of seconds"))
        settings = cls(**values)
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigurationError(f"unknown Redis option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        settings.check()
        return settings

    def check(self) -> None:
        """Raise :class:`ConfigurationError` for values the backend cannot use."""
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(f"Redis URL must start with redis://, rediss:// or unix://, not {_redact(self.url)!r}")
        if not self.prefix or any(c in self.prefix for c in "{} "):
            raise ConfigurationError(f"JOBQUEUE_PREFIX {self.prefix!r} must be non-empty, without braces or spaces")
        for name in ("lease", "connect_timeout", "socket_timeout", "block", "idle_poll", "recover_every"):
            if not getattr(self, name) > 0 or not math.isfinite(getattr(self, name)):  # NaN fails the first test
                raise ConfigurationError(f"Redis option {name} must be a finite number > 0, not {getattr(self, name)!r}")
        if not 0 <= self.prefetch <= 100:  # NaN fails too
            raise ConfigurationError(f"Redis option prefetch must be a number from 0 to 100, not {self.prefetch!r}")
        for name in ("retry_for", "ack_retry_for", "degraded_for", "recover_after"):
            if not getattr(self, name) >= 0 or not math.isfinite(getattr(self, name)):
                raise ConfigurationError(f"Redis option {name} must be a finite number >= 0, not {getattr(self, name)!r}")
        if self.block >= self.socket_timeout:
            raise ConfigurationError("Redis option block must be shorter than socket_timeout")

    @property
    def redacted_url(self) -> str:
        return _redact(self.url)


def _url_from(environ: Mapping[str, str]) -> str | None:
    for variable in ("JOBQUEUE_REDIS_URL", "REDIS_URL"):
        value = environ.get(variable, "").strip()
        if value:
            return value
    host = environ.get("REDIS_HOST", "").strip()
    if not host:
        return None
    port = environ.get("REDIS_PORT", "").strip() or "6379"
    db = environ.get("REDIS_DB", "").strip() or "0"
    if not port.isdigit() or not db.isdigit():
        raise ConfigurationError(f"REDIS_PORT and REDIS_DB must be integers, not {port!r} and {db!r}")
    tls = any(environ.get(v, "").strip().lower() in _TRUE for v in ("REDIS_TLS", "REDIS_SSL"))
    password = environ.get("REDIS_PASSWORD", "")
    username = environ.get("REDIS_USERNAME", "")
    auth = ""
    if password or username:
        auth = f"{quote(username, safe='')}:{quote(password, safe='')}@"
    return f"{'rediss' if tls else 'redis'}://{auth}{host}:{port}/{db}"


def _convert(variable: str, raw: str, kind: Any, unit: str) -> Any:
    """``raw`` as the field's type: a bool, else a finite number (``unit``: what the number counts, for the error)."""
    kind = str(kind)
    if "bool" in kind:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ConfigurationError(f"{variable}={raw!r}: expected true or false")
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{variable}={raw!r}: expected a number {unit}") from None
    if not math.isfinite(value):
        raise ConfigurationError(f"{variable}={raw!r}: expected a finite number {unit}")
    return value


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest
