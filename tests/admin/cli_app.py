"""An app for the CLI tests of issue 6: the memory backend, a slow job that reports progress, a failing one."""

from __future__ import annotations

import threading
import time

from pydantic import BaseModel

from jobqueue import JobContext, JobQueue

app = JobQueue(backend="memory")
app.queue("work", attempts=1)
app.queue("other", attempts=1)
gate = threading.Event()


class Steps(BaseModel):
    steps: int = 4
    token: str = ""


@app.job(queue="work", secret_fields=["token"])
def slow(payload: Steps, ctx: JobContext) -> int:
    for step in range(payload.steps):
        gate.wait(5)
        time.sleep(0.05)
        ctx.progress(100 * (step + 1) / payload.steps)
    return payload.steps


@app.job(queue="other")
def broken(payload: Steps) -> None:
    raise RuntimeError("broken on purpose")


def reset() -> None:
    app._backend = None
    gate.clear()
