"""An app with schedulable jobs on a fake clock, for the sync and memory backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from jobqueue import FakeClock, JobContext, JobQueue

START = datetime(2026, 1, 5, 9, 59, 30, tzinfo=UTC).timestamp()  # a Monday, 30 s before 10:00Z


class SyncPayload(BaseModel):
    org: str
    full: bool = False


class ReportPayload(BaseModel):
    kind: str = "daily"


class App:
    """The app, its clock, and what its jobs saw."""

    def __init__(self, backend: str) -> None:
        self.clock = FakeClock(START)
        self.app = JobQueue(backend=backend, clock=self.clock)
        self.ran: list[tuple[str, str]] = []

        @self.app.job(queue="integrations")
        def sync_integrations(payload: SyncPayload, ctx: JobContext) -> str:
            self.ran.append((ctx.job_id, payload.org))
            return payload.org

        @self.app.job(queue="reports", cron="0 2 * * *", tz="Europe/Berlin")
        def nightly_report(payload: ReportPayload, ctx: JobContext) -> str:
            self.ran.append((ctx.job_id, payload.kind))
            return payload.kind

        self.sync_integrations = sync_integrations
        self.nightly_report = nightly_report

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def run(self) -> None:
        """Run what the fires enqueued (the sync backend already ran it)."""
        backend: Any = self.app.backend
        if self.app.backend_name == "memory":
            backend.run_until_empty()


@pytest.fixture(params=["sync", "memory"])
def env(request: pytest.FixtureRequest) -> Iterator[App]:
    made = App(request.param)
    try:
        yield made
    finally:
        made.app.close()
