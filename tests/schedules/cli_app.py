"""An app for the ``jobqueue schedules`` CLI tests: memory backend, a fake clock, schedules in code."""

from __future__ import annotations

from jobqueue import FakeClock, JobQueue
from tests.schedules.conftest import START, ReportPayload, SyncPayload

clock = FakeClock(START)
app = JobQueue(backend="memory", clock=clock)


@app.job(queue="integrations")
def sync_integrations(payload: SyncPayload) -> str:
    return payload.org


@app.job(queue="reports", cron="0 2 * * *", tz="Europe/Berlin")
def nightly_report(payload: ReportPayload) -> str:
    return payload.kind


app.schedule("hourly-sync", cron="@hourly", job=sync_integrations, payload={"org": "all"})
