"""Jobs the SQS tests run: registered on a fresh app per test, or as the module-level ``app`` (JOBQUEUE_APP)."""

from __future__ import annotations

import base64
import os
from typing import Any

from pydantic import BaseModel

from jobqueue import Backoff, JobContext, JobQueue

QUEUE = "work"
RUNS: list[tuple[str, Any, int]] = []


class Value(BaseModel):
    value: Any = None


class Flaky(BaseModel):
    succeed_on: int


def register(app: JobQueue) -> JobQueue:
    app.queue(QUEUE, attempts=3, backoff=Backoff.fixed(1))
    app.queue("other", attempts=2, backoff=Backoff.fixed(1))

    @app.job(queue=QUEUE)
    def ok(payload: Value, ctx: JobContext) -> Any:
        RUNS.append(("ok", payload.value, ctx.attempt))
        return payload.value

    @app.job(queue=QUEUE)
    def flaky(payload: Flaky, ctx: JobContext) -> int:
        RUNS.append(("flaky", payload.succeed_on, ctx.attempt))
        if ctx.attempt < payload.succeed_on:
            raise ConnectionError(f"flaky failure on attempt {ctx.attempt}")
        return ctx.attempt

    @app.job(queue=QUEUE, attempts=2)
    def boom(payload: Value, ctx: JobContext) -> None:
        RUNS.append(("boom", payload.value, ctx.attempt))
        raise ValueError(f"boom {payload.value}")

    @app.job(queue="other")
    def big(payload: Value) -> str:
        return "x" * int(payload.value)

    @app.job(queue="other")
    def noise(payload: Value) -> str:
        """A result that does not compress: random base64 of ``value`` characters."""
        return base64.b64encode(os.urandom(int(payload.value))).decode()[: int(payload.value)]

    return app


app = register(JobQueue.from_env())
