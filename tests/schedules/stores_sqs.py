"""The SQS backend's schedule store: EventBridge Scheduler on the moto server (it stores schedules, never fires them)."""

from __future__ import annotations

import uuid

import pytest
from pydantic import BaseModel

from jobqueue import JobQueue
from jobqueue.settings import Settings
from tests.schedules.stores import StoreFactory, StoreUnderTest

ROLE_ARN = "arn:aws:iam::123456789012:role/jobqueue-scheduler"


class SyncPayload(BaseModel):
    """No defaults: a schedule's payload goes into the envelope as the model dumps it, and must read back the same."""

    org: str


def eventbridge_app(endpoint: str, **environ: str) -> JobQueue:
    """An SQS app on the moto server with the ``integrations`` queue and its ``sync_integrations`` job, queues created."""
    from jobqueue_sqs import SQSBackend, SQSSettings

    prefix = f"t{uuid.uuid4().hex[:12]}"
    settings = SQSSettings(prefix=prefix, jobs_table=f"{prefix}-jobs", endpoint_url=endpoint, region="us-east-1")
    environ = {"JOBQUEUE_SQS_SCHEDULER_ROLE_ARN": ROLE_ARN, **environ}
    app = JobQueue(backend=SQSBackend(settings=settings), settings=Settings(environ={k: v for k, v in environ.items() if v}))
    app.queue("integrations")

    @app.job(queue="integrations")
    def sync_integrations(payload: SyncPayload) -> str:
        return payload.org

    app.backend.init()  # type: ignore[attr-defined]
    return app


def _eventbridge(request: pytest.FixtureRequest) -> StoreUnderTest:
    app = eventbridge_app(request.getfixturevalue("moto_server").endpoint)
    return StoreUnderTest(app.backend.schedule_store(), close=app.close, ticker_state=False)


STORES: dict[str, StoreFactory] = {"eventbridge": _eventbridge}
