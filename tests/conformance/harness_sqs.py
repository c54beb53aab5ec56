"""The SQS backend in the conformance suite: a moto server, a fresh table and queue prefix per app.

With ``JOBQUEUE_TEST_SQS_SIZE_CASES=1`` (``make test-group-size``) each test gets a moto server of its own whose
SQS costs per request what SQS does (``tests/sqs/moto_launch_sized.py``), and the size cases run; the requests the
test made, by operation, and the time and CPU it took are written to ``test-artifacts/sqs-size-case.json``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from jobqueue import JobQueue
from tests.conformance.harness import Harness, RealClockHarness
from tests.sqs.moto_server import DUMMY_ENV, SIZED_LAUNCHER, MotoServer
from tests.sqs.request_counter import RequestCounter

#: set to 1 to run the size cases on the SQS backend, against a moto server without its per-message scans
SIZE_CASES_VARIABLE = "JOBQUEUE_TEST_SQS_SIZE_CASES"
#: what a sized harness measured (relative to the directory pytest runs in)
SIZE_REPORT = Path("test-artifacts/sqs-size-case.json")


class SQSHarness(RealClockHarness):
    name = "sqs"

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint = endpoint
        # moto's SQS reads every queue attribute, counting all messages, for each message sent and received, so
        # 10,000 queued members cost hours on a moto server as it is (see backends/sqs/README.md for the figures):
        # the size cases run on SizedSQSHarness's server instead
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


class SizedSQSHarness(SQSHarness):
    """The SQS backend on a moto server of its own, started with the launcher that takes out moto's per-message scans."""

    def __init__(self, server: MotoServer) -> None:
        super().__init__(server.endpoint)
        self.server = server
        self.runs_size_cases = True
        self.requests = RequestCounter()
        self._started = (time.monotonic(), time.process_time())

    def make_app(self) -> JobQueue:
        app = super().make_app()
        backend: Any = app.backend
        self.requests.watch(backend.clients.sqs, backend.clients.dynamodb)
        return app

    def report(self) -> dict[str, Any]:
        """Wall and CPU seconds since the harness started (this process's, and the server's where /proc says), requests."""
        requests = self.requests.summary()
        return {"wall_seconds": round(time.monotonic() - self._started[0], 1),
                "client_cpu_seconds": round(time.process_time() - self._started[1], 1),
                "server_cpu_seconds": self.server.cpu_seconds(), "requests_total": sum(int(r["count"]) for r in requests.values()),
                "requests": requests}

    def close(self) -> None:
        try:
            SIZE_REPORT.parent.mkdir(parents=True, exist_ok=True)
            SIZE_REPORT.write_text(json.dumps(self.report(), indent=1) + "\n")
        finally:
            self.server.stop()


def _factory(request: pytest.FixtureRequest) -> Harness:
    pytest.importorskip("jobqueue_sqs")
    if os.environ.get(SIZE_CASES_VARIABLE) == "1":
        monkeypatch = request.getfixturevalue("monkeypatch")
        for name, value in DUMMY_ENV.items():
            monkeypatch.setenv(name, value)
        return SizedSQSHarness(MotoServer(SIZED_LAUNCHER))
    server = request.getfixturevalue("moto_server")
    return SQSHarness(server.endpoint)


HARNESSES = {"sqs": _factory}
