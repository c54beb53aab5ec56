"""The Lambda batch handler, fed events made from `sam local generate-event sqs receive-message`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from jobqueue import JobQueue, JobState
from jobqueue.envelope import Envelope
from tests.sqs import jobs_app
from tests.sqs.events import SAMPLE, Context, dlq_bodies, failures, ids, poison_event, receive_event

QUEUE = jobs_app.QUEUE
SAM = Path(__file__).resolve().parents[2] / ".sam-venv" / "bin" / "sam"


def handle(app: JobQueue, event: dict, context: Context | None = None) -> dict:
    return app.backend.worker.handle(event, context or Context(60_000))  # type: ignore[attr-defined]


def runs(name: str) -> list[int]:
    return [attempt for job, _, attempt in jobs_app.RUNS if job == name]


@pytest.mark.skipif(not SAM.exists(), reason="the SAM CLI is not installed (infra/ensure-sam-cli.sh)")
def test_sample_event_is_what_sam_generates() -> None:
    fresh = subprocess.run([str(SAM), "local", "generate-event", "sqs", "receive-message"], check=True, capture_output=True, text=True,
                           env={**os.environ, "SAM_CLI_TELEMETRY": "0"}).stdout
    assert json.loads(fresh) == json.loads(SAMPLE.read_text())


def test_all_succeed(sqs_app: JobQueue) -> None:
    handles = sqs_app.registry["ok"].enqueue_many([{"value": i} for i in range(3)])
    event = receive_event(sqs_app, QUEUE, 3)
    assert failures(handle(sqs_app, event)) == []
    assert [h.status().state for h in handles] == [JobState.COMPLETED] * 3
    assert sorted(h.status().result for h in handles) == [0, 1, 2]


def test_some_fail_exactly_those_are_reported(sqs_app: JobQueue) -> None:
    good = sqs_app.registry["ok"].enqueue(value="fine")
    flaky = sqs_app.registry["flaky"].enqueue(succeed_on=2)
    event = receive_event(sqs_app, QUEUE, 2)
    flaky_message = next(r["messageId"] for r in event["Records"] if json.loads(r["body"])["id"] == flaky.id)
    assert failures(handle(sqs_app, event)) == [flaky_message]
    assert good.status().state is JobState.COMPLETED
    status = flaky.status()
    assert status.state is JobState.DELAYED and status.attempt == 2 and "attempt 1" in status.error.message
    # its backoff is the message's visibility: invisible now, back after about a second
    assert sqs_app.backend.clients.sqs.receive_message(QueueUrl=sqs_app.backend.transport.url(QUEUE), WaitTimeSeconds=0).get("Messages") is None
    again = receive_event(sqs_app, QUEUE, 1, timeout=5)
    assert again["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert failures(handle(sqs_app, again)) == []
    assert flaky.status().state is JobState.COMPLETED and flaky.status().result == 2
    assert runs("flaky") == [1, 2]


def test_all_fail_is_a_partial_response_not_an_exception(sqs_app: JobQueue) -> None:
    sqs_app.registry["flaky"].enqueue_many([{"succeed_on": 3}, {"succeed_on": 3}])
    event = receive_event(sqs_app, QUEUE, 2)
    assert sorted(failures(handle(sqs_app, event))) == sorted(ids(event))


def test_poison_bodies_go_to_the_dlq_at_once(sqs_app: JobQueue) -> None:
    ghost = Envelope(id="ghost", name="no_such_job", queue=QUEUE, max_attempts=3).encode()
    event = poison_event(sqs_app, QUEUE, ["not json at all", json.dumps({"id": "x"}), "[1, 2]", ghost])
    assert failures(handle(sqs_app, event)) == []
    dead = dlq_bodies(sqs_app, QUEUE)
    assert sorted(m["Body"] for m in dead) == sorted(["not json at all", json.dumps({"id": "x"}), "[1, 2]", ghost])
    reasons = {m["Body"]: m["MessageAttributes"]["jobqueue-error"]["StringValue"] for m in dead}
    assert "not JSON" in reasons["not json at all"] and "no_such_job" in reasons[ghost]
    status = sqs_app.get("ghost", QUEUE)  # an envelope that never went through the producer got its row on first sight
    assert status.state is JobState.FAILED and status.attempt == 1 and not status.error.retryable


def test_envelope_naming_another_queue_is_refused_and_its_job_left_alone(sqs_app: JobQueue) -> None:
    """The queue a record came from (its eventSourceARN) is authoritative, not the queue its envelope names."""
    job = sqs_app.registry["big"].enqueue(value=3)  # a job of queue "other"
    genuine = receive_event(sqs_app, "other", 1)
    body = genuine["Records"][0]["body"]
    event = poison_event(sqs_app, QUEUE, [body])  # the same envelope, written into queue "work" by someone who can
    assert failures(handle(sqs_app, event)) == []  # refused once, reported done: never retried
    dead = dlq_bodies(sqs_app, QUEUE)
    assert [m["Body"] for m in dead] == [body]
    reason = dead[0]["MessageAttributes"]["jobqueue-error"]["StringValue"]
    assert "names queue 'other'" in reason and "arrived on SQS queue" in reason and reason.endswith("own queue")
    untouched = job.status()
    assert untouched.state is JobState.WAITING and untouched.started_at is None  # neither run nor claimed
    assert failures(handle(sqs_app, genuine)) == []  # the correctly addressed message runs as ever
    assert job.status().state is JobState.COMPLETED and job.status().result == "xxx"


def test_queues_sharing_one_sqs_queue_run_each_others_jobs(make_sqs_app: Callable[..., JobQueue]) -> None:
    """Logical queues mapped to one SQS queue (``queue_urls``) arrive on it: that is their own queue, not a misaddress."""
    first = make_sqs_app()
    shared = first.backend.transport.url(QUEUE)
    app = make_sqs_app(prefix=first.backend.settings.prefix, jobs_table=first.backend.settings.jobs_table,
                       queue_urls={"other": shared})
    job = app.registry["big"].enqueue(value=2)  # queue "other", sent to work's SQS queue
    assert failures(handle(app, receive_event(app, QUEUE, 1))) == []
    assert job.status().state is JobState.COMPLETED and job.status().result == "xx"


def test_duplicate_deliveries_run_once(sqs_app: JobQueue) -> None:
    job = sqs_app.registry["ok"].enqueue(value="once")
    first = receive_event(sqs_app, QUEUE, 1)
    body = first["Records"][0]["body"]
    backend = sqs_app.backend
    backend.transport.resend(QUEUE, body, 0, job.id)  # a second copy of the same job (another message id)
    second = receive_event(sqs_app, QUEUE, 1)
    both = {"Records": first["Records"] + second["Records"]}
    assert failures(handle(sqs_app, both)) == []
    assert runs("ok") == [1] and job.status().state is JobState.COMPLETED
    backend.transport.resend(QUEUE, body, 0, job.id)  # and a late redelivery
    assert failures(handle(sqs_app, receive_event(sqs_app, QUEUE, 1))) == []
    assert runs("ok") == [1]


def test_cancelled_job_is_skipped(sqs_app: JobQueue) -> None:
    job = sqs_app.registry["ok"].enqueue(value="never")
    assert job.cancel()
    assert failures(handle(sqs_app, receive_event(sqs_app, QUEUE, 1))) == []
    assert runs("ok") == [] and job.status().state is JobState.CANCELLED


def test_low_remaining_time_starts_no_more_records(sqs_app: JobQueue) -> None:
    sqs_app.registry["ok"].enqueue_many([{"value": i} for i in range(3)])
    event = receive_event(sqs_app, QUEUE, 3)
    # time for the first record only: the others are reported failed and never started
    response = handle(sqs_app, event, Context(60_000, 1_000))
    assert failures(response) == ids(event)[1:]
    assert len(runs("ok")) == 1
    # released at once: they are receivable again and complete on the next invocation
    again = receive_event(sqs_app, QUEUE, 2, timeout=5)
    assert failures(handle(sqs_app, again)) == []
    assert sqs_app.stats(QUEUE)[JobState.COMPLETED] == 3


def test_spent_attempts_end_failed_in_the_dlq(sqs_app: JobQueue) -> None:
    job = sqs_app.registry["boom"].enqueue(value=1)
    first = receive_event(sqs_app, QUEUE, 1)
    assert failures(handle(sqs_app, first)) == ids(first)
    second = receive_event(sqs_app, QUEUE, 1, timeout=5)
    assert failures(handle(sqs_app, second)) == []  # copied to the DLQ, so reported done
    status = job.status()
    assert status.state is JobState.FAILED and status.attempt == 2 and status.error.message == "boom 1"
    assert [json.loads(m["Body"])["id"] for m in dlq_bodies(sqs_app, QUEUE)] == [job.id]
    assert runs("boom") == [1, 2]


def test_attempt_that_never_reported_back_counts(sqs_app: JobQueue) -> None:
    """A worker died in the last attempt (the row says active, its lease ran out): failed and dead-lettered, not rerun."""
    job = sqs_app.registry["boom"].enqueue(value=2, _attempts=1)
    store = sqs_app.backend.store
    now = sqs_app.clock.now()
    row = store.load(QUEUE, job.id, now)
    assert store.claim(row, now, lease_until=now - 1) is not None
    assert failures(handle(sqs_app, receive_event(sqs_app, QUEUE, 1))) == []
    status = job.status()
    assert status.state is JobState.FAILED and status.error.type == "AttemptsSpent"
    assert runs("boom") == []
    assert len(dlq_bodies(sqs_app, QUEUE)) == 1


def test_job_active_elsewhere_is_reported_failed(sqs_app: JobQueue) -> None:
    job = sqs_app.registry["ok"].enqueue(value="busy")
    store = sqs_app.backend.store
    now = sqs_app.clock.now()
    store.claim(store.load(QUEUE, job.id, now), now, lease_until=now + 300)
    event = receive_event(sqs_app, QUEUE, 1)
    assert failures(handle(sqs_app, event)) == ids(event)
    assert runs("ok") == []


def test_envelope_from_outside_the_producer_gets_a_row(sqs_app: JobQueue) -> None:
    envelope = Envelope(id="schedule:2026-01-01T00:00", name="ok", queue=QUEUE, payload={"value": "tick"}, max_attempts=3)
    event = poison_event(sqs_app, QUEUE, [envelope.encode()])
    assert failures(handle(sqs_app, event)) == []
    status = sqs_app.get(envelope.id)
    assert status.state is JobState.COMPLETED and status.result == "tick"


def test_cleaned_job_is_dropped_not_resurrected(sqs_app: JobQueue) -> None:
    sqs_app.pause(QUEUE)
    sqs_app.registry["ok"].enqueue(value="gone")
    assert sqs_app.clean(QUEUE, JobState.WAITING) == 1
    sqs_app.resume(QUEUE)
    assert failures(handle(sqs_app, receive_event(sqs_app, QUEUE, 1))) == []
    assert runs("ok") == []


def test_a_job_whose_timeout_does_not_fit_the_time_left_is_not_started(sqs_app: JobQueue) -> None:
    sqs_app.registry["ok"].enqueue(value="slow", _timeout=30)
    event = receive_event(sqs_app, QUEUE, 1)
    assert failures(handle(sqs_app, event, Context(20_000))) == ids(event)
    assert runs("ok") == []
    assert failures(handle(sqs_app, receive_event(sqs_app, QUEUE, 1, timeout=5), Context(40_000))) == []
    assert runs("ok") == [1]
