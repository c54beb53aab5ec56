"""What callers read back: a job's status, a queue's counts, the backend's health."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from jobqueue.states import JobState

# The models after ErrorInfo are built (their validators and serializers) on first use (defer_build): a worker
# or a Lambda handler seldom needs them, and building them cost every process start about a millisecond each.


class ErrorInfo(BaseModel):
    """Why an attempt failed: the exception's type and message, and its traceback."""

    model_config = ConfigDict(frozen=True)

    type: str
    message: str
    traceback: str | None = None
    retryable: bool = True

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


class JobStatus(BaseModel):
    """A snapshot of one job."""

    model_config = ConfigDict(defer_build=True)

    id: str
    name: str
    queue: str
    state: JobState
    progress: float = 0.0
    attempt: int = 1
    max_attempts: int = 1
    priority: int = 5
    payload: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    error: ErrorInfo | None = None
    created_at: float
    not_before: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    cancel_requested: bool = False

    @property
    def is_finished(self) -> bool:
        """True once the job is completed, failed or cancelled."""
        return self.state.is_finished


class QueueStats(BaseModel):
    """Counts per state of one queue, and whether it is paused."""

    model_config = ConfigDict(defer_build=True)

    queue: str
    counts: dict[JobState, int]
    paused: bool = False

    def __getitem__(self, state: str | JobState) -> int:
        return self.counts.get(JobState(state), 0)


class Health(BaseModel):
    """Whether the backend can take and run jobs."""

    model_config = ConfigDict(defer_build=True)

    status: Literal["healthy", "degraded", "unhealthy"]
    backend: str
    broker_reachable: bool
    latency_ms: float | None = None
    detail: str | None = None


class Throughput(BaseModel):
    """Jobs of one queue that finished per minute, oldest minute first; the last minute is the current one."""

    model_config = ConfigDict(defer_build=True)

    queue: str
    minutes: int
    #: the start (epoch seconds) of the first minute in the lists
    since: float
    completed: list[int]
    failed: list[int]


class JobPage(BaseModel):
    """One page of a job listing; pass ``next_cursor`` back for the next page (None: last page)."""

    model_config = ConfigDict(defer_build=True)

    jobs: list[JobStatus]
    next_cursor: str | None = None


class EnqueueReceipt(NamedTuple):
    """What a backend answers for one enqueued envelope: the id, and whether it made a new job.

    A named tuple, not a model: made once per enqueued job from values the backend produced, it needs no
    validation, and a model's schema would be built on a process's first enqueue (~0.5 ms).
    """

    id: str
    created: bool = True
