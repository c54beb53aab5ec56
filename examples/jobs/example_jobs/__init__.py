"""An app's jobs, declared once: the web app enqueues them, the worker function runs them.

``JOBQUEUE_APP=example_jobs:app``. The backend comes from ``JOBQUEUE_BACKEND`` (``sqs`` on AWS and
Vercel, ``sync`` by default); the backend is built on first use, not at import.
"""

from __future__ import annotations

from pydantic import BaseModel

from jobqueue import Backoff, JobContext, JobQueue
from jobqueue.backends.base import Backend


def declare(app: JobQueue) -> JobQueue:
    """Declare the queues and register the jobs on ``app`` (another process may build its own app this way)."""
    app.queue("default", attempts=3, backoff=Backoff.exponential(2))
    app.queue("email", attempts=5, backoff=Backoff.exponential(5, max_delay="10m"), concurrency=5)
    app.job(queue="email")(send_welcome_email)
    app.job(queue="default", timeout="5m")(monthly_report)
    # on AWS an EventBridge Scheduler resource in template.yaml; locally the worker's ticker fires it
    app.schedule("monthly-report", cron="0 6 1 * *", tz="Europe/Berlin", job="monthly_report", payload={"account": "all", "month": "previous"})
    return app


def make_app(backend: Backend | None = None) -> JobQueue:
    """The app on ``backend`` (default: the one JOBQUEUE_BACKEND names)."""
    return declare(JobQueue.from_env() if backend is None else JobQueue(backend=backend))


class Welcome(BaseModel):
    user_id: int
    email: str


class Report(BaseModel):
    account: str
    month: str


def send_welcome_email(payload: Welcome, ctx: JobContext) -> dict[str, str]:
    """Send a welcome email (the example only logs it)."""
    ctx.logger.info("welcome email to %s", payload.email)
    return {"sent_to": payload.email}


def monthly_report(payload: Report, ctx: JobContext) -> dict[str, str]:
    """Build a report in steps, reporting progress."""
    for step in range(1, 5):
        ctx.progress(step * 25)
    return {"account": payload.account, "month": payload.month, "url": f"s3://reports/{payload.account}/{payload.month}.pdf"}


app = make_app()

__all__ = ["app", "declare", "make_app"]
