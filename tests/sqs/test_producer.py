"""The producer side: batches, sizes, delays, settings; and what the table keeps."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jobqueue_sqs import MessageTooLarge, SQSSettings
from jobqueue_sqs.settings import MAX_DELAY_SECONDS
from jobqueue_sqs.store import TRUNCATED_RESULT

from jobqueue import JobQueue, JobState
from jobqueue.envelope import Envelope
from jobqueue.errors import ConfigurationError
from tests.sqs import jobs_app
from tests.sqs.events import Context, failures, receive_event

QUEUE = jobs_app.QUEUE


class FlakyBatchSQS:
    """Wraps a real SQS client; the first SendMessageBatch call reports some entries failed."""

    def __init__(self, real: Any, fail_ids: set[str]) -> None:
        self.real = real
        self.fail_ids = fail_ids
        self.batches: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append([e["Id"] for e in Entries])
        if len(self.batches) == 1:
            keep = [e for e in Entries if e["Id"] not in self.fail_ids]
            answer = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=keep)
            answer["Failed"] = [{"Id": i, "SenderFault": False, "Code": "InternalError", "Message": "try again"} for i in sorted(self.fail_ids)]
            return answer
        return self.real.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)


def test_bulk_goes_in_tens_and_retries_only_failed_entries(sqs_app: JobQueue) -> None:
    backend = sqs_app.backend
    wrapper = FlakyBatchSQS(backend.clients.sqs, {"2", "7"})
    backend.clients._made["sqs"] = wrapper
    handles = sqs_app.registry["ok"].enqueue_many([{"value": i} for i in range(23)])
    assert [len(b) for b in wrapper.batches] == [10, 2, 10, 3]
    assert wrapper.batches[1] == ["2", "7"]
    assert len({h.id for h in handles}) == 23
    backend.clients._made["sqs"] = wrapper.real
    backend.drain()
    assert sorted(h.status().result for h in handles) == list(range(23))


def test_too_large_envelope_names_the_job_and_sends_nothing(sqs_app: JobQueue) -> None:
    with pytest.raises(MessageTooLarge, match=r"job 'ok' \(id 'huge'\) encodes to \d+ bytes; its SQS queue takes at most 1048576 bytes"):
        # straight to the backend: the core may cap payloads below 1 MiB before they get here
        sqs_app.submit([Envelope(id="small", name="ok", queue=QUEUE, payload={"value": 1}),
                        Envelope(id="huge", name="ok", queue=QUEUE, payload={"value": "x" * 1_100_000})])
    assert sum(sqs_app.stats(QUEUE).counts.values()) == 0


def test_size_limit_is_the_queues_own(sqs_app: JobQueue) -> None:
    backend = sqs_app.backend
    backend.clients.sqs.set_queue_attributes(QueueUrl=backend.transport.url("other"), Attributes={"MaximumMessageSize": "262144"})
    with pytest.raises(MessageTooLarge, match="at most 262144 bytes"):
        sqs_app.registry["big"].enqueue(value="9" * 300_000)


def test_large_envelope_under_the_limit_keeps_its_payload_in_the_message(sqs_app: JobQueue) -> None:
    job = sqs_app.registry["ok"].enqueue(value="y" * 600_000)  # fits a message, not a table item
    assert job.status().payload == {}  # the table keeps the envelope without it
    sqs_app.backend.drain()
    status = job.status()  # the worker read the payload from the message
    assert status.state is JobState.COMPLETED and status.result == "y" * 600_000  # kept compressed


def test_large_result_is_kept_compressed(sqs_app: JobQueue) -> None:
    job = sqs_app.registry["big"].enqueue(value=500_000)
    sqs_app.backend.drain()
    status = job.status()
    assert status.state is JobState.COMPLETED and status.result == "x" * 500_000


def test_result_past_the_item_limit_is_truncated_and_says_so(sqs_app: JobQueue) -> None:
    job = sqs_app.registry["noise"].enqueue(value=600_000)  # does not compress below 400 KB
    sqs_app.backend.drain()
    status = job.status()
    assert status.state is JobState.COMPLETED
    assert status.result[TRUNCATED_RESULT] is True and status.result["bytes"] == 600_002


def test_long_delay_hops(sqs_app: JobQueue) -> None:
    """Past 15 minutes a message carries the longest delay and is sent again until its time."""
    backend = sqs_app.backend
    sent: list[int] = []
    real = backend.clients.sqs

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def send_message(self, **kwargs: Any) -> Any:
            sent.append(kwargs.get("DelaySeconds", 0))
            return real.send_message(**{**kwargs, "DelaySeconds": 0})  # let the test see it now

    backend.clients._made["sqs"] = Spy()
    job = sqs_app.registry["ok"].enqueue(value="later", _delay=3600)
    assert sent == [MAX_DELAY_SECONDS] and job.status().state is JobState.DELAYED
    event = receive_event(sqs_app, QUEUE, 1)
    assert failures(backend.worker.handle(event, Context())) == []  # not due: sent again, this one done
    assert sent[1] == MAX_DELAY_SECONDS and jobs_app.RUNS == []
    assert job.status().state is JobState.DELAYED


def test_get_by_id_alone_and_stats(sqs_app: JobQueue) -> None:
    other = sqs_app.registry["big"].enqueue(value=1)
    sqs_app.registry["ok"].enqueue(value=1, _delay=60)
    assert sqs_app.get(other.id).queue == "other"
    stats = sqs_app.stats(QUEUE)
    assert stats[JobState.DELAYED] == 1 and stats[JobState.WAITING] == 0
    depths = sqs_app.backend.depths(QUEUE)
    assert depths["delayed"] == 1 and depths["dead_letter"] == 0


def test_missing_queue_is_a_clear_error(make_sqs_app: Any) -> None:
    app = make_sqs_app()
    app.queue("undeclared-at-init")

    def orphan(payload: jobs_app.Value) -> None:
        return None

    job = app.job(queue="undeclared-at-init")(orphan)
    with pytest.raises(ConfigurationError, match="jobqueue sqs init"):
        job.enqueue(value=1)


def test_settings_from_the_environment() -> None:
    settings = SQSSettings.from_environ({
        "JOBQUEUE_SQS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/app-default",
        "JOBQUEUE_SQS_QUEUE_URLS": json.dumps({"email": "https://sqs.eu-west-1.amazonaws.com/1/mail"}),
        "JOBQUEUE_JOBS_TABLE": "jobs", "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "JOBQUEUE_SQS_FUNCTION_TIMEOUT": "120",
    })
    assert settings.configured_url("default").endswith("/app-default")
    assert settings.configured_url("email").endswith("/mail")
    assert settings.configured_url("reports") is None and settings.queue_name("reports") == "jobqueue-reports"
    assert (settings.jobs_table, settings.region, settings.endpoint_url, settings.visibility_timeout) == ("jobs", "eu-west-1", "http://127.0.0.1:5000", 720)
    with pytest.raises(ConfigurationError, match="JOBQUEUE_SQS_FUNCTION_TIMEOUT"):
        SQSSettings.from_environ({"JOBQUEUE_SQS_FUNCTION_TIMEOUT": "soon"})
    assert SQSSettings.from_environ({"JOBQUEUE_SQS_QUEUE_URLS": "a=http://x/a, b=http://x/b"}).queue_urls == {"a": "http://x/a", "b": "http://x/b"}


def test_backend_reads_settings_when_bound_not_at_import(moto_server: Any) -> None:
    app = JobQueue.from_env({"JOBQUEUE_BACKEND": "sqs", "JOBQUEUE_JOBS_TABLE": "bound-table", "AWS_REGION": "us-east-1",
                             "AWS_ENDPOINT_URL": moto_server.endpoint})
    assert app.backend.settings.jobs_table == "bound-table"
    assert app.health().status == "degraded"  # SQS answers; the table is not there


def test_a_due_delayed_job_lists_and_counts_as_waiting(sqs_app: JobQueue) -> None:
    import time

    soon = sqs_app.registry["ok"].enqueue(value="soon", _delay=1)
    later = sqs_app.registry["ok"].enqueue(value="later", _delay=600)
    now_waiting = sqs_app.registry["ok"].enqueue(value="now")
    time.sleep(1.2)
    stats = sqs_app.stats(QUEUE)
    assert (stats[JobState.WAITING], stats[JobState.DELAYED]) == (2, 1)
    seen, cursor = [], None
    for _ in range(5):
        page = sqs_app.list_jobs(QUEUE, "waiting", limit=1, cursor=cursor)
        seen += [job.id for job in page.jobs]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [now_waiting.id, soon.id]
    assert [job.id for job in sqs_app.list_jobs(QUEUE, "delayed").jobs] == [later.id]
