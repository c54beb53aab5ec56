"""The admin API's JSON shapes. The OpenAPI description is derived from these models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobqueue.states import JobState
from jobqueue.status import JobStatus, Throughput

HealthStatus = Literal["healthy", "degraded", "unhealthy"]


class QueueView(BaseModel):
    """One queue at a glance."""

    queue: str
    counts: dict[JobState, int]
    paused: bool
    throughput: Throughput
    oldest_waiting_age: float | None = Field(None, description="seconds the longest-waiting job has waited; null if none waits")


class StatsResponse(BaseModel):
    backend: str
    generated_at: float
    queues: dict[str, QueueView]


class QueueHealth(BaseModel):
    status: HealthStatus
    paused: bool
    waiting: int
    active: int
    failed: int
    oldest_waiting_age: float | None = None
    reasons: list[str] = Field(default_factory=list)


class HealthResponse(BaseModel):
    status: HealthStatus
    backend: str
    broker_reachable: bool
    latency_ms: float | None = None
    detail: str | None = None
    queues: dict[str, QueueHealth] = Field(default_factory=dict)


class TimelineEntry(BaseModel):
    at: float
    event: str


class JobView(JobStatus):
    """A job as the dashboard shows it: secret payload fields redacted, and its timeline."""

    redacted_fields: list[str] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)


class JobList(BaseModel):
    jobs: list[JobView]
    next_cursor: str | None = None


class JobActionResult(BaseModel):
    id: str
    queue: str
    action: Literal["retry", "cancel"]
    ok: bool
    state: JobState | None = None


class QueueActionResult(BaseModel):
    queue: str
    action: Literal["pause", "resume", "retry-failed", "clean"]
    paused: bool | None = None
    count: int | None = None


class CleanRequest(BaseModel):
    """Remove the queue's jobs in ``state`` whose last change is older than ``older_than``."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["completed", "failed", "cancelled", "waiting", "delayed", "waiting-children"] = "completed"
    older_than: float | str = Field(0, description="seconds, or a duration like '1h', '7d'")


class Problem(BaseModel):
    """An error answer."""

    detail: str | list[dict[str, Any]]
