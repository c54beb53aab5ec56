"""Per-queue and per-job options: durations, backoff, retention, rate limits."""

from __future__ import annotations

import math
import random
import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jobqueue.errors import ConfigurationError

_UNITS = {
    "ms": 0.001,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)?\s*([a-z]+)?\s*$")

Duration = float | int | str | timedelta

MIN_PRIORITY = 1  # most urgent
MAX_PRIORITY = 10
DEFAULT_PRIORITY = 5


def parse_duration(value: Duration, *, what: str = "duration") -> float:
    """Seconds from ``30``, ``1.5``, ``"90s"``, ``"24h"``, ``"7d"`` or a ``timedelta``."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ConfigurationError(f"{what} must be a number of seconds or a string like '24h', not {value!r}")
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value.lower())
        if not match or (match.group(2) and match.group(2) not in _UNITS) or not (match.group(1) or match.group(2)):
            raise ConfigurationError(f"{what} {value!r} is not a duration (examples: 30, '90s', '15m', '24h', '7d')")
        seconds = float(match.group(1) or 1) * _UNITS[match.group(2) or "s"]
    else:
        raise ConfigurationError(f"{what} must be a number of seconds or a string like '24h', not {value!r}")
    if seconds < 0 or not math.isfinite(seconds):
        raise ConfigurationError(f"{what} must be a finite number of seconds >= 0, not {value!r}")
    return seconds


class Backoff(BaseModel):
    """How long to wait before the next attempt after attempt ``n`` failed."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["fixed", "exponential"] = "exponential"
    delay: float = Field(default=1.0, ge=0)
    max_delay: float = Field(default=3600.0, ge=0)
    jitter: bool = False

    @classmethod
    def fixed(cls, delay: Duration, *, jitter: bool = False) -> Backoff:
        """The same delay before every retry."""
        return cls(kind="fixed", delay=parse_duration(delay, what="backoff delay"), jitter=jitter)

    @classmethod
    def exponential(cls, delay: Duration = 1.0, *, max_delay: Duration = 3600.0, jitter: bool = False) -> Backoff:
        """``delay``, then twice that, four times, ... capped at ``max_delay``."""
        return cls(
            kind="exponential",
            delay=parse_duration(delay, what="backoff delay"),
            max_delay=parse_duration(max_delay, what="backoff max_delay"),
            jitter=jitter,
        )

    @classmethod
    def none(cls) -> Backoff:
        """Retry at once."""
        return cls(kind="fixed", delay=0.0)

    def delay_for(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt number ``failed_attempt`` (1-based) failed.

        With ``jitter`` the delay is drawn uniformly between half of it and all of it.
        """
        if self.kind == "fixed":
            base = self.delay
        else:
            base = min(self.delay * (2 ** max(failed_attempt - 1, 0)), self.max_delay)
        if self.jitter:
            base = random.uniform(base / 2, base)
        return base


class RetentionRule(BaseModel):
    """Keep at most ``max_count`` finished jobs, none older than ``max_age`` seconds (None: no bound)."""

    model_config = ConfigDict(frozen=True)

    max_count: int | None = Field(default=None, ge=0)
    max_age: float | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: object) -> object:
        if isinstance(value, tuple):
            if len(value) != 2:
                raise ValueError("a retention rule is (max_count, max_age), e.g. (1000, '24h')")
            count, age = value
            return {"max_count": count, "max_age": None if age is None else parse_duration(age, what="retention age")}
        if isinstance(value, int) and not isinstance(value, bool):
            return {"max_count": value}
        return value


class Retention(BaseModel):
    """How long finished jobs stay readable: separately for completed and failed (and cancelled) jobs."""

    model_config = ConfigDict(frozen=True)

    completed: RetentionRule = RetentionRule(max_count=1000, max_age=86400.0)
    failed: RetentionRule = RetentionRule(max_count=10000, max_age=7 * 86400.0)

    def __init__(self, completed: object = None, failed: object = None) -> None:
        values: dict[str, object] = {}
        if completed is not None:
            values["completed"] = completed
        if failed is not None:
            values["failed"] = failed
        super().__init__(**values)


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(.+?)\s*$")


class RateLimit(BaseModel):
    """At most ``limit`` job starts per ``period`` seconds, counted across all workers of a queue."""

    model_config = ConfigDict(frozen=True)

    limit: int = Field(gt=0)
    period: float = Field(gt=0)

    @classmethod
    def parse(cls, value: str | RateLimit) -> RateLimit:
        """``"100/minute"``, ``"10/s"``, ``"5/10s"``."""
        if isinstance(value, RateLimit):
            return value
        match = _RATE.match(value) if isinstance(value, str) else None
        if not match:
            raise ConfigurationError(f"rate limit {value!r} is not of the form 'N/period' (e.g. '100/minute', '10/s')")
        period = parse_duration(match.group(2), what="rate limit period")
        if period <= 0 or int(match.group(1)) <= 0:
            raise ConfigurationError(f"rate limit {value!r} must allow at least one job per non-zero period")
        return cls(limit=int(match.group(1)), period=period)

    def __str__(self) -> str:
        return f"{self.limit}/{self.period:g}s"


class QueueConfig(BaseModel):
    """A queue's defaults; a job's own options override them."""

    model_config = ConfigDict(frozen=True)

    name: str
    attempts: int = Field(default=3, ge=1)
    backoff: Backoff = Backoff()
    concurrency: int | None = Field(default=None, ge=1)
    rate_limit: RateLimit | None = None
    retention: Retention = Retention()
    timeout: float | None = Field(default=None, gt=0)
    priority: int = Field(default=DEFAULT_PRIORITY, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    #: where to POST the completed/failed events of this queue's jobs (see jobqueue.webhooks)
    webhook: str | None = Field(default=None, pattern=r"^https?://")
    #: at most this many active jobs per ``_concurrency_key`` (e.g. one sync per tenant at a time)
    concurrency_per_key: int = Field(default=1, ge=1)
    #: seconds an ``_idempotency_key`` keeps answering with its first job (a job may override it)
    idempotency_window: float = Field(default=86400.0, gt=0)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,80}", name):
            raise ValueError(f"queue name {name!r} must be 1-80 letters, digits, '_', '.' or '-'")
        return name

    def retention_for(self, finished_state: str) -> RetentionRule:
        """The rule for jobs that ended in ``finished_state``."""
        return self.retention.completed if finished_state == "completed" else self.retention.failed


def check_priority(priority: int) -> int:
    """``priority`` if it is 1..10, else a ConfigurationError."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ConfigurationError(f"priority must be an integer from {MIN_PRIORITY} (most urgent) to {MAX_PRIORITY}, not {priority!r}")
    return priority
