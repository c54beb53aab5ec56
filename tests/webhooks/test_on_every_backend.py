"""A signed event reaches a local receiver on every backend with a conformance harness."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from jobqueue import Backoff, JobState
from jobqueue.webhooks import WEBHOOK_QUEUE, verify_request
from tests.conformance.harness import Harness
from tests.conformance.jobs import BACKOFF_SECONDS, QUEUE, Jobs
from tests.webhooks.test_webhooks import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def test_completed_and_failed_events_are_delivered_signed(harness: Harness, jobs: Jobs, receiver: Receiver) -> None:
    jobs.app.queue(QUEUE, attempts=3, backoff=Backoff.fixed(BACKOFF_SECONDS), webhook=receiver.url)
    jobs.app.webhooks.configure(secret="every-backend")
    done = jobs.echo.enqueue(value="hello")
    failed = jobs.not_retryable.enqueue(value=None)
    harness.settle(jobs.app, QUEUE, step=BACKOFF_SECONDS)
    assert done.status().state is JobState.COMPLETED and failed.status().state is JobState.FAILED
    if jobs.app.backend_name == "sync":
        assert jobs.app.webhooks.flush(10)
    harness.settle(jobs.app, WEBHOOK_QUEUE, step=1.0)
    assert receiver.arrived.wait(10)
    by_job = {json.loads(body)["job"]["id"]: (headers, body) for headers, body in receiver.received}
    assert set(by_job) == {done.id, failed.id}
    for headers, body in by_job.values():
        assert verify_request(headers, body, "every-backend")
    assert json.loads(by_job[done.id][1])["type"] == "job.completed"
    assert json.loads(by_job[failed.id][1])["job"]["error"]["type"] == "KeyError"
