"""A schedule: which job to enqueue, with which payload, at which cron times, in which time zone."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobqueue.schedules.cron import CronExpr, fire_job_id, format_fire_time, normalize, to_utc

if TYPE_CHECKING:
    from jobqueue.app import JobQueue
    from jobqueue.envelope import Envelope

MissedPolicy = Literal["skip", "catch_up"]
ScheduleSource = Literal["code", "dynamic"]

#: letters, digits and ``_ . - : /`` (``sync:org-123``); EventBridge names are derived from it (see eventbridge.py)
_NAME = re.compile(r"[A-Za-z0-9_.\-:/]{1,200}")

#: the trace keys a fired job carries, the same locally and on EventBridge
TRACE_SCHEDULE = "jobqueue.schedule"
TRACE_FIRE_TIME = "jobqueue.fire_time"


class Schedule(BaseModel):
    """One recurring schedule. Build it with ``app.schedule(...)``, ``@app.job(cron=...)`` or ``app.schedules.add(...)``,
    which check the job exists and validate the payload against its model.

    ``missed`` says what happens to fires that passed while no ticker ran (all workers down):
    ``skip`` drops them; ``catch_up`` runs the latest one once. Fires late by less than the ticker's
    grace (a leader change, a slow tick) are never missed: they run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    cron: str
    tz: str | None = None
    job: str = Field(min_length=1)
    queue: str = Field(min_length=1)
    payload: dict[str, Any] = Field(default_factory=dict)
    missed: MissedPolicy = "skip"
    source: ScheduleSource = "code"

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise ValueError(f"schedule name {name!r} must be 1-200 letters, digits, '_', '.', '-', ':' or '/'")
        return name

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, cron: str) -> str:
        return normalize(cron)

    def model_post_init(self, context: Any, /) -> None:
        CronExpr(self.cron, self.tz)  # checks the fields and the time zone

    @property
    def expr(self) -> CronExpr:
        return CronExpr(self.cron, self.tz)

    def next_fire(self, after: float | datetime) -> datetime | None:
        """The first fire time strictly after ``after`` (aware, UTC)."""
        return self.expr.next_after(after)

    def job_id(self, fire_time: float | datetime) -> str:
        """The deterministic id of the job of one fire: ``"{name}:{fire time ISO-8601 UTC}"``."""
        return fire_job_id(self.name, fire_time)

    def envelope(self, app: JobQueue, fire_time: float | datetime) -> Envelope:
        """The job envelope of the fire at ``fire_time``, built and validated as ``enqueue`` builds it."""
        job = app.job_named(self.job)
        envelope = job.build_envelope(self.payload, {"_job_id": self.job_id(fire_time)})
        trace = {**envelope.trace, TRACE_SCHEDULE: self.name, TRACE_FIRE_TIME: format_fire_time(to_utc(fire_time))}
        return envelope.model_copy(update={"queue": self.queue, "trace": trace})

    def describe(self, now: float | datetime) -> dict[str, Any]:
        """A JSON-ready summary: the schedule and its next fire time (``jobqueue schedules list``)."""
        upcoming = self.next_fire(now)
        return {
            "name": self.name, "cron": self.cron, "tz": self.tz or "UTC", "job": self.job, "queue": self.queue,
            "payload": self.payload, "missed": self.missed, "source": self.source,
            "next_fire": format_fire_time(upcoming) if upcoming is not None else None,
        }
