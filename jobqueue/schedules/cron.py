"""Cron expressions and their fire times, with EventBridge Scheduler's daylight-saving rules.

Parsing and matching are cronsim's (imported on first use, so ``import jobqueue`` stays light).
cronsim walks *naive wall-clock* times here; this module maps each wall-clock match to UTC with the
rules EventBridge Scheduler documents, so the local ticker and AWS fire at the same instants:

- a wall-clock time that does not exist (the hour skipped when clocks spring forward) is skipped;
- a wall-clock time that happens twice (the hour repeated when clocks fall back) fires once, at its
  first occurrence.

Mapping each existing wall-clock time to its first occurrence (``fold=0``) is strictly increasing,
which is what lets :func:`CronExpr.next_after` and :func:`CronExpr.last_at_or_before` be simple walks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobqueue.errors import ConfigurationError

if TYPE_CHECKING:
    from cronsim import CronSim

#: the ``@`` macros of Vixie cron, as 5-field expressions (``@reboot`` has no fire time, so it is refused)
MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

#: how far a daylight-saving change moves wall clocks, at most (2 h covers every zone in the tz database)
_DST_REACH = timedelta(hours=3)
#: a walk gives up after this many wall-clock matches without an answer (only a pathological cron gets here)
_MAX_STEPS = 100_000

FIRE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class CronError(ConfigurationError):
    """A cron expression or time zone that jobqueue cannot use; the message says why."""


def _cronsim() -> Any:
    try:
        import cronsim
    except ModuleNotFoundError:  # pragma: no cover - cronsim is a core dependency
        raise CronError("schedules need the 'cronsim' package: pip install cronsim") from None
    return cronsim


@lru_cache(maxsize=256)
def load_timezone(name: str | None) -> tzinfo:
    """The IANA time zone ``name`` (None, ``"UTC"``: UTC), or :class:`CronError` naming it."""
    if name is None or name in ("UTC", "Etc/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin' (pip install tzdata)") from None


def to_utc(timestamp: float | datetime) -> datetime:
    """An aware UTC datetime from epoch seconds or a datetime (a naive one is taken as UTC)."""
    if isinstance(timestamp, datetime):
        return timestamp.replace(tzinfo=UTC) if timestamp.tzinfo is None else timestamp.astimezone(UTC)
    return datetime.fromtimestamp(timestamp, UTC)


def format_fire_time(fire_time: float | datetime) -> str:
    """``2026-03-29T01:00:00Z``: the form EventBridge gives ``<aws.scheduler.scheduled-time>``."""
    return to_utc(fire_time).strftime(FIRE_TIME_FORMAT)


def fire_job_id(schedule: str, fire_time: float | datetime) -> str:
    """The deterministic job id of one fire: ``"{schedule}:{fire time, ISO-8601 UTC}"``."""
    return f"{schedule}:{format_fire_time(fire_time)}"


def normalize(expr: str) -> str:
    """``expr`` with a macro expanded and whitespace collapsed; :class:`CronError` unless it is 5 fields."""
    if not isinstance(expr, str):
        raise CronError(f"a cron expression is a string, not {expr!r}")
    text = " ".join(expr.split())
    if text.startswith("@"):
        expanded = MACROS.get(text.lower())
        if expanded is None:
            raise CronError(f"cron macro {text!r} is not supported; use one of {', '.join(MACROS)}")
        return expanded
    if len(text.split(" ")) != 5:
        raise CronError(
            f"cron {expr!r} must have 5 fields (minute hour day-of-month month day-of-week) or be a macro such as '@hourly'"
        )
    return text


@dataclass(frozen=True)
class CronExpr:
    """A validated 5-field Unix cron expression in a time zone."""

    expr: str
    tz: str | None = None
    _zone: tzinfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "expr", normalize(self.expr))
        object.__setattr__(self, "_zone", load_timezone(self.tz))
        self.sim(datetime(2000, 1, 1))  # validates

    @property
    def zone(self) -> tzinfo:
        return self._zone

    def sim(self, start: datetime, *, reverse: bool = False) -> CronSim:
        """A cronsim iterator over naive wall-clock matches after (or before) naive ``start``."""
        cronsim = _cronsim()
        try:
            sim: CronSim = cronsim.CronSim(self.expr, start, reverse=reverse)
        except cronsim.CronSimError as exc:
            raise CronError(f"cron {self.expr!r}: {exc}") from None
        return sim

    # -- wall clock <-> UTC ---------------------------------------------------------------

    def _instant(self, wall: datetime) -> datetime | None:
        """The UTC instant of naive wall-clock ``wall`` (its first occurrence), or None if it does not exist."""
        if self._zone is UTC:
            return wall.replace(tzinfo=UTC)
        aware = wall.replace(tzinfo=self._zone, fold=0)
        instant = aware.astimezone(UTC)
        if instant.astimezone(self._zone).replace(tzinfo=None) != wall:
            return None  # skipped by a spring-forward change
        return instant

    def _walk_start(self, moment: datetime) -> datetime:
        """The naive wall-clock time to start a forward walk from: 3 h early near a DST change, which is safe."""
        local = moment.astimezone(self._zone).replace(tzinfo=None)
        if self._zone is UTC:
            return local
        offsets = {(moment + d).astimezone(self._zone).utcoffset() for d in (-_DST_REACH, timedelta(0), _DST_REACH)}
        return local if len(offsets) == 1 else local - _DST_REACH

    # -- fire times ---------------------------------------------------------------------------

    def _instants_after(self, moment: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``moment``, oldest first (the wall-clock walk, mapped to UTC)."""
        it = self.sim(self._walk_start(moment))
        skipped = 0
        for wall in it:
            instant = self._instant(wall)
            if instant is not None and instant > moment:
                skipped = 0
                yield instant
            else:
                skipped += 1
                if skipped > _MAX_STEPS:
                    raise CronError(f"cron {self.expr!r}: no fire time found after {moment.isoformat()}")

    def next_after(self, after: float | datetime) -> datetime | None:
        """The first fire time strictly after ``after``, as an aware UTC datetime (None: none in 50 years)."""
        return next(self._instants_after(to_utc(after)), None)

    def last_at_or_before(self, before: float | datetime) -> datetime | None:
        """The last fire time at or before ``before`` (None: none in the 50 years before it)."""
        moment = to_utc(before)
        start = self._walk_start(moment)
        if start != moment.astimezone(self._zone).replace(tzinfo=None):
            start += 2 * _DST_REACH  # near a DST change: start 3 h late instead of 3 h early
        it = self.sim(start + timedelta(seconds=1), reverse=True)
        for _ in range(_MAX_STEPS):
            try:
                wall = next(it)
            except StopIteration:
                return None
            instant = self._instant(wall)
            if instant is not None and instant <= moment:
                return instant
        raise CronError(f"cron {self.expr!r}: no fire time found before {moment.isoformat()}")

    def fires(self, after: float | datetime, until: float | datetime, *, limit: int = 10_000) -> Iterator[datetime]:
        """Fire times in ``(after, until]``, oldest first, at most ``limit`` of them."""
        end = to_utc(until)
        for count, instant in enumerate(self._instants_after(to_utc(after))):
            if instant > end or count >= limit:
                return
            yield instant
