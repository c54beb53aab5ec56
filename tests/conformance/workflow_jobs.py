"""Jobs for the workflow cases of the conformance suite: two queues, so steps cross queues (and cluster slots)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from jobqueue import JobContext, JobDefinition, JobQueue

WF = "wf"
WF2 = "wf2"
IDEMPOTENCY_WINDOW = 3.0


class Value(BaseModel):
    value: Any = None


class Tagged(BaseModel):
    tag: str


@dataclass
class WorkflowJobs:
    app: JobQueue
    log: list[Any] = field(default_factory=list)
    #: set by a test: a callable a ``hold`` job calls while it is active (say, to drain other jobs meanwhile)
    during_hold: Any = None
    value: JobDefinition[Any] = None  # type: ignore[assignment]
    value2: JobDefinition[Any] = None  # type: ignore[assignment]
    boom: JobDefinition[Any] = None  # type: ignore[assignment]
    collect: JobDefinition[Any] = None  # type: ignore[assignment]
    summary: JobDefinition[Any] = None  # type: ignore[assignment]
    count: JobDefinition[Any] = None  # type: ignore[assignment]
    hold: JobDefinition[Any] = None  # type: ignore[assignment]


def register_workflow_jobs(app: JobQueue) -> WorkflowJobs:
    """Declare the workflow queues and jobs on ``app``."""
    jobs = WorkflowJobs(app)
    app.queue(WF, attempts=1, idempotency_window=IDEMPOTENCY_WINDOW)
    app.queue(WF2, attempts=1)

    @app.job(queue=WF)
    def value(payload: Value) -> Any:
        jobs.log.append(("value", payload.value))
        return payload.value

    @app.job(queue=WF2)
    def value2(payload: Value) -> Any:
        jobs.log.append(("value2", payload.value))
        return payload.value

    @app.job(queue=WF2)
    def boom(payload: Value) -> None:
        jobs.log.append(("boom", payload.value))
        raise ValueError(f"boom {payload.value}")

    @app.job(queue=WF2)
    def collect(payload: Tagged, ctx: JobContext) -> dict[str, Any]:
        jobs.log.append(("collect", payload.tag))
        return {"tag": payload.tag, "parents": ctx.parent_results}

    @app.job(queue=WF)
    def summary(payload: Tagged, ctx: JobContext) -> dict[str, Any]:
        results = ctx.group_results()
        jobs.log.append(("summary", payload.tag))
        return {"tag": payload.tag, "results": results.results, "failed": sorted(results.failures), "members": len(results)}

    @app.job(queue=WF)
    def count(payload: Value) -> int:
        return 1

    @app.job(queue=WF2)
    def hold(payload: Tagged) -> str:
        jobs.log.append(("start", payload.tag))
        if jobs.during_hold is not None:
            jobs.during_hold(payload.tag)
        jobs.log.append(("end", payload.tag))
        return payload.tag

    for name, definition in app.registry.items():
        if hasattr(jobs, name):
            setattr(jobs, name, definition)
    return jobs
