"""The SQS backend in the conformance suite: a moto server, a fresh table and queue prefix per app."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from jobqueue import JobQueue
from tests.conformance.harness import Harness, RealClockHarness


class SQSHarness(RealClockHarness):
    name = "sqs"

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint = endpoint
        # moto's SQS reads every queue attribute, counting all messages, for each message sent and received, so
        # 10,000 queued members cost hours on a moto server (see backends/sqs/README.md for the figures); the
        # group's size is borne by the design (no item or message grows with it), checked by the other cases
        self.runs_size_cases = False

    @property
    def time_resolution(self) -> float:
        return 1.0

    def make_app(self) -> JobQueue:
        from jobqueue_sqs import SQSBackend, SQSSettings

        prefix = f"c{uuid.uuid4().hex[:12]}"
        settings = SQSSettings(prefix=prefix, jobs_table=f"{prefix}-jobs", endpoint_url=self.endpoint, region="us-east-1",
                               auto_create=True, function_timeout=60)
        app = JobQueue(backend=SQSBackend(settings=settings), clock=self.clock)
        backend: Any = app.backend
        backend.init()  # the table; queues are made on first use, as the app declares them after this
        self.lacks = backend.lacks
        return app

    def drain(self, app: JobQueue) -> None:
        backend: Any = app.backend
        backend.drain()


def _factory(request: pytest.FixtureRequest) -> Harness:
    pytest.importorskip("jobqueue_sqs")
    server = request.getfixturevalue("moto_server")
    return SQSHarness(server.endpoint)


HARNESSES = {"sqs": _factory}
