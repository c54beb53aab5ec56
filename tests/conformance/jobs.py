"""The jobs the conformance suite runs, registered on a fresh app per test."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from jobqueue import Backoff, JobContext, JobDefinition, JobQueue, Retention, Retry

QUEUE = "conf"
BACKOFF_SECONDS = 2.0


class Echo(BaseModel):
    value: Any = None


class Mark(BaseModel):
    tag: str


class Flaky(BaseModel):
    succeed_on: int


class Nap(BaseModel):
    seconds: float


class Answer(BaseModel):
    doubled: int


@dataclass
class Jobs:
    """The registered jobs of one test's app, and what they recorded."""

    app: JobQueue
    log: list[Any] = field(default_factory=list)
    switches: dict[str, bool] = field(default_factory=dict)
    echo: JobDefinition[Any] = None  # type: ignore[assignment]
    record: JobDefinition[Any] = None  # type: ignore[assignment]
    flaky: JobDefinition[Any] = None  # type: ignore[assignment]
    always_fails: JobDefinition[Any] = None  # type: ignore[assignment]
    not_retryable: JobDefinition[Any] = None  # type: ignore[assignment]
    ask_retry: JobDefinition[Any] = None  # type: ignore[assignment]
    until_allowed: JobDefinition[Any] = None  # type: ignore[assignment]
    watch_progress: JobDefinition[Any] = None  # type: ignore[assignment]
    cancel_self: JobDefinition[Any] = None  # type: ignore[assignment]
    bad_result: JobDefinition[Any] = None  # type: ignore[assignment]
    model_result: JobDefinition[Any] = None  # type: ignore[assignment]
    async_echo: JobDefinition[Any] = None  # type: ignore[assignment]
    slow_async: JobDefinition[Any] = None  # type: ignore[assignment]
    slow_sync: JobDefinition[Any] = None  # type: ignore[assignment]
    kept: JobDefinition[Any] = None  # type: ignore[assignment]
    limited: JobDefinition[Any] = None  # type: ignore[assignment]
    aged_echo: JobDefinition[Any] = None  # type: ignore[assignment]


def register(app: JobQueue) -> Jobs:
    """Declare the suite's queues and jobs on ``app``."""
    jobs = Jobs(app)
    app.queue(QUEUE, attempts=3, backoff=Backoff.fixed(BACKOFF_SECONDS))
    app.queue("kept", attempts=1, retention=Retention(completed=(2, None), failed=(2, "10s")))
    app.queue("aged", attempts=1, retention=Retention(completed=(None, "10s"), failed=(None, "10s")))
    app.queue("limited", attempts=1, rate_limit="2/3s")

    @app.job(queue=QUEUE)
    def echo(payload: Echo, ctx: JobContext) -> dict[str, Any]:
        jobs.log.append(("echo", payload.value, ctx.attempt))
        return {"echo": payload.value, "attempt": ctx.attempt}

    @app.job(queue=QUEUE)
    def record(payload: Mark) -> str:
        jobs.log.append(payload.tag)
        return payload.tag

    @app.job(queue=QUEUE)
    def flaky(payload: Flaky, ctx: JobContext) -> int:
        jobs.log.append(("flaky", ctx.attempt))
        if ctx.attempt < payload.succeed_on:
            raise ConnectionError(f"flaky failure on attempt {ctx.attempt}")
        return ctx.attempt

    @app.job(queue=QUEUE, attempts=2)
    def always_fails(payload: Echo) -> None:
        jobs.log.append("always_fails")
        raise ValueError(f"boom {payload.value}")

    @app.job(queue=QUEUE, retry_on=ConnectionError)
    def not_retryable(payload: Echo) -> None:
        jobs.log.append("not_retryable")
        raise KeyError("not a connection error")

    @app.job(queue=QUEUE)
    def ask_retry(payload: Nap, ctx: JobContext) -> int:
        if ctx.attempt == 1:
            raise Retry(delay=payload.seconds)
        return ctx.attempt

    @app.job(queue=QUEUE, attempts=1)
    def until_allowed(payload: Mark) -> str:
        if not jobs.switches.get(payload.tag):
            raise RuntimeError(f"{payload.tag} is not allowed yet")
        return payload.tag

    @app.job(queue=QUEUE)
    def watch_progress(payload: Echo, ctx: JobContext) -> float:
        ctx.progress(50)
        status = app.get(ctx.job_id)
        seen = status.progress if status else -1.0
        jobs.log.append(("progress", seen, status.state.value if status else None))
        return seen

    @app.job(queue=QUEUE)
    def cancel_self(payload: Echo, ctx: JobContext) -> str:
        app.cancel(ctx.job_id)
        jobs.log.append(("cancelled-flag", ctx.cancelled))
        ctx.progress(10)
        return "should not get here"

    @app.job(queue=QUEUE, attempts=1)
    def bad_result(payload: Echo) -> object:
        return {"when": object()}

    @app.job(queue=QUEUE)
    def model_result(payload: Echo) -> Answer:
        return Answer(doubled=int(payload.value) * 2)

    @app.job(queue=QUEUE)
    async def async_echo(payload: Echo, ctx: JobContext) -> dict[str, Any]:
        await asyncio.sleep(0)
        jobs.log.append(("async_echo", payload.value))
        return {"echo": payload.value}

    @app.job(queue=QUEUE, attempts=1, timeout=0.3)
    async def slow_async(payload: Nap) -> str:
        await asyncio.sleep(payload.seconds)
        return "finished"

    @app.job(queue=QUEUE, attempts=1, timeout=0.3)
    def slow_sync(payload: Nap) -> str:
        time.sleep(payload.seconds)
        return "finished"

    @app.job(queue="kept")
    def kept(payload: Echo) -> Any:
        if payload.value == "fail":
            raise ValueError("asked to fail")
        return payload.value

    @app.job(queue="limited")
    def limited(payload: Mark) -> str:
        jobs.log.append(payload.tag)
        return payload.tag

    @app.job(queue="aged")
    def aged_echo(ctx: JobContext) -> str:
        return ctx.job_id

    for name, definition in app.registry.items():
        setattr(jobs, name, definition)
    return jobs
