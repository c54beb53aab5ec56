"""A FastAPI app that enqueues jobs from its routes and mounts the jobqueue admin API and dashboard.

One command, any backend (from the repository root, after `make venv`):

    .venv/bin/python examples/fastapi/app.py                                   # sync: jobs run in the request
    JOBQUEUE_BACKEND=memory .venv/bin/python examples/fastapi/app.py           # memory: a thread here runs them
    JOBQUEUE_BACKEND=redis  .venv/bin/python examples/fastapi/app.py           # redis: plus `jobqueue worker`
                                                                               #   (JOBQUEUE_APP=examples.fastapi.app:jobs)
Then:

    curl -X POST localhost:8000/signup -H 'content-type: application/json' -d '{"email": "ada@example.org", "name": "Ada"}'
    curl -X POST localhost:8000/reports/42
    open the dashboard URL it prints (http://127.0.0.1:8000/admin/#token=...)

The admin token is JOBQUEUE_ADMIN_TOKEN, or a random one printed at start. With OpenTelemetry installed
(extra `otel`) and a tracer provider configured, each job's span is a child of the request that enqueued it.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request, Response
from pydantic import BaseModel

from jobqueue import Backoff, JobContext, JobQueue, Secret

jobs = JobQueue.from_env()
jobs.queue("email", attempts=3, backoff=Backoff.exponential(2.0))
jobs.queue("reports", attempts=2, backoff=Backoff.fixed(2.0))


class WelcomeEmail(BaseModel):
    email: str
    name: str


class MonthlyReport(BaseModel):
    account_id: int
    api_key: Annotated[str, Secret()] = "sk-demo-not-shown"  # stored intact, shown redacted


@jobs.job(queue="email")
def send_welcome_email(payload: WelcomeEmail, ctx: JobContext) -> dict[str, Any]:
    ctx.logger.info("welcoming %s", payload.email)
    return {"sent_to": payload.email}


@jobs.job(queue="reports")
def build_report(payload: MonthlyReport, ctx: JobContext) -> dict[str, Any]:
    for month in range(1, 5):
        ctx.progress(month * 25)
    if payload.account_id == 0:
        raise ValueError("account 0 has no data")
    return {"account_id": payload.account_id, "rows": 120}


ADMIN_TOKEN = os.environ.get("JOBQUEUE_ADMIN_TOKEN") or jobs.settings.admin_token or secrets.token_urlsafe(18)


def _run_memory_jobs(stop: threading.Event) -> None:
    """The memory backend has no worker process: run due jobs from a thread of this one."""
    backend: Any = jobs.backend
    while not stop.wait(0.2):
        backend.run_until_empty()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    stop = threading.Event()
    if jobs.backend_name == "memory":
        threading.Thread(target=_run_memory_jobs, args=(stop,), name="memory-jobs", daemon=True).start()
    yield
    stop.set()
    jobs.close()


web = FastAPI(title="jobqueue FastAPI example", lifespan=lifespan)


@web.middleware("http")
async def trace_requests(request: Request, call_next: Any) -> Response:
    """A span per request (opentelemetry-instrumentation-fastapi does the same, more fully), so the jobs a
    route enqueues run in the request's trace: jobqueue carries the context in the envelope."""
    try:
        from opentelemetry import trace
    except ImportError:
        return await call_next(request)
    tracer = trace.get_tracer("examples.fastapi", tracer_provider=jobs.tracer_provider)
    with tracer.start_as_current_span(f"{request.method} {request.url.path}", kind=trace.SpanKind.SERVER):
        return await call_next(request)


@web.post("/signup")
async def signup(body: WelcomeEmail) -> dict[str, str]:
    handle = await send_welcome_email.aenqueue(body)
    return {"job_id": handle.id}


@web.post("/reports/{account_id}")
async def report(account_id: int) -> dict[str, str]:
    handle = await build_report.aenqueue(account_id=account_id)
    return {"job_id": handle.id}


@web.get("/jobs/{job_id}")
async def job_status(job_id: str) -> dict[str, Any]:
    status = await jobs.aget(job_id)
    if status is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return {"state": status.state.value, "progress": status.progress, "result": status.result}


web.mount("/admin", jobs.admin_asgi(token=ADMIN_TOKEN))


if __name__ == "__main__":
    import uvicorn

    port = int(os.environ.get("PORT", "8000"))
    print(f"backend {jobs.backend_name}; dashboard: http://127.0.0.1:{port}/admin/#token={ADMIN_TOKEN}", flush=True)
    uvicorn.run(web, host="127.0.0.1", port=port)
