"""Fixtures of the SQS backend's own tests: an app on a moto server with a fresh prefix each."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobqueue import JobQueue
from tests.sqs import jobs_app
from tests.sqs.moto_server import MotoServer


@pytest.fixture
def make_sqs_app(moto_server: MotoServer) -> Iterator[Callable[..., JobQueue]]:
    """Build an app on the SQS backend against the moto server, its table and queues created."""
    from jobqueue_sqs import SQSBackend, SQSSettings

    apps: list[JobQueue] = []

    def make(**settings: Any) -> JobQueue:
        prefix = f"t{uuid.uuid4().hex[:12]}"
        values = {"prefix": prefix, "jobs_table": f"{prefix}-jobs", "endpoint_url": moto_server.endpoint, "region": "us-east-1",
                  "function_timeout": 60, **settings}
        app = jobs_app.register(JobQueue(backend=SQSBackend(settings=SQSSettings(**values))))
        app.backend.init()  # type: ignore[attr-defined]
        apps.append(app)
        return app

    jobs_app.RUNS.clear()
    yield make
    for app in apps:
        app.close()


@pytest.fixture
def sqs_app(make_sqs_app: Callable[..., JobQueue]) -> JobQueue:
    return make_sqs_app()
