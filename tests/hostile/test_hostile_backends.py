"""The hostile-input cases of test_hostile_input.py (memory backend) again on Redis (a real redis-server) and on
SQS (the Lambda handler, on in-process moto): a clear error each, and the queue left intact."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel

from jobqueue import ConfigurationError, InvalidPayload, JobContext, JobQueue, JobState, PayloadTooLarge
from jobqueue.envelope import Envelope
from tests.hostile.conftest import HOSTILE_NAMES, Probe
from tests.redis_servers import RedisServer
from tests.sqs.events import Context
from tests.sqs.inprocess import drain_dlq, inprocess_sqs_app, send_and_receive


class Anything(BaseModel):
    data: Any = None


@dataclass
class Lab:
    app: JobQueue
    queue: str
    run: Callable[[int], None]  # run the next n jobs of the queue

    def counts(self) -> int:
        return sum(self.app.stats(self.queue).counts.values())


def register(app: JobQueue, queue: str) -> None:
    @app.job(queue=queue)
    def take(payload: Anything) -> str:
        return "ok"

    @app.job(queue=queue, attempts=1)
    def report(payload: Anything, ctx: JobContext) -> None:
        ctx.progress(payload.data)


@pytest.fixture(params=["redis", "sqs"])
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        app = JobQueue.from_env({"JOBQUEUE_BACKEND": "redis", "REDIS_URL": server.url, "JOBQUEUE_PREFIX": f"hb-{uuid.uuid4().hex[:8]}",
                                 "JOBQUEUE_FALLBACK": "raise"})
        app.queue("q")
        register(app, "q")
        yield Lab(app, "q", lambda n: app.backend.run_worker(queues=["q"], burst=True))
        app.close()
        return
    with inprocess_sqs_app() as app:
        register(app, "work")

        def run(n: int) -> None:
            url = app.backend.transport.url("work")  # type: ignore[attr-defined]
            sqs = app.backend.clients.sqs  # type: ignore[attr-defined]
            messages: list[dict[str, Any]] = []
            for _ in range(20):
                if len(messages) >= n:
                    break
                messages += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                                MessageAttributeNames=["All"], AttributeNames=["All"]).get("Messages", [])
            from tests.sqs.events import record

            event = {"Records": [record(m, app.backend.transport.arn(url)) for m in messages]}  # type: ignore[attr-defined]
            assert app.backend.worker.handle(event, Context(60_000)) == {"batchItemFailures": []}  # type: ignore[attr-defined]

        yield Lab(app, "work", run)


def test_oversized_payload_is_refused_and_nothing_is_sent(lab: Lab) -> None:
    take = lab.app.registry["take"]
    with pytest.raises(PayloadTooLarge, match=r"invalid payload for job 'take': payload is 1,\d{3},\d{3} bytes of JSON; the limit is 1,048,576"):
        take.enqueue(data="x" * 1_100_000)
    assert lab.counts() == 0
    handle = take.enqueue(data="fine")
    lab.run(1)
    assert handle.status().state is JobState.COMPLETED


def test_deeply_nested_payload_is_refused(lab: Lab) -> None:
    nested: Any = "leaf"
    for _ in range(500):
        nested = {"n": nested}
    with pytest.raises(PayloadTooLarge, match="nests deeper"):
        lab.app.registry["take"].enqueue(data=nested)
    assert lab.counts() == 0


def test_a_value_json_cannot_hold_is_an_invalid_payload(lab: Lab) -> None:
    with pytest.raises(InvalidPayload, match="not JSON-serialisable"):
        lab.app.registry["take"].enqueue(data=object())
    assert lab.counts() == 0


@pytest.mark.parametrize("delay", [-1, float("nan"), float("inf"), "yesterday", -10**12])
def test_negative_and_nonsense_delays_are_refused(lab: Lab, delay: Any) -> None:
    with pytest.raises(ConfigurationError, match="_delay"):
        lab.app.registry["take"].enqueue(data=1, _delay=delay)
    assert lab.counts() == 0


def test_huge_and_odd_progress_values_fail_the_attempt_clearly(lab: Lab) -> None:
    values = [10**300, float("inf"), -1, 101, "50", True, None]
    handles = [lab.app.registry["report"].enqueue(data=value) for value in values]
    lab.run(len(values))
    for value, handle in zip(values, handles):
        status = handle.status()
        assert status.state is JobState.FAILED and "progress must be" in status.error.message, (value, status.error)


@pytest.mark.parametrize(
    ("backend", "variable", "value", "named"),
    [("redis", "JOBQUEUE_REDIS_LEASE", "soon", "JOBQUEUE_REDIS_LEASE"), ("redis", "JOBQUEUE_REDIS_LEASE", "nan", "JOBQUEUE_REDIS_LEASE"),
     ("redis", "JOBQUEUE_REDIS_BLOCK", "inf", "JOBQUEUE_REDIS_BLOCK"), ("redis", "JOBQUEUE_REDIS_ACK_RETRY_FOR", "-1", "ack_retry_for"),
     ("redis", "JOBQUEUE_REDIS_CLUSTER", "maybe", "JOBQUEUE_REDIS_CLUSTER"), ("redis", "REDIS_PORT", "six", "REDIS_PORT"),
     ("redis", "JOBQUEUE_REDIS_URL", "http://example.invalid", "Redis URL must start with"),
     ("sqs", "JOBQUEUE_SQS_FUNCTION_TIMEOUT", "a minute", "JOBQUEUE_SQS_FUNCTION_TIMEOUT"),
     ("sqs", "JOBQUEUE_SQS_FUNCTION_TIMEOUT", "0", "JOBQUEUE_SQS_FUNCTION_TIMEOUT"), ("sqs", "JOBQUEUE_SQS_BATCH_SIZE", "1e3", "JOBQUEUE_SQS_BATCH_SIZE"),
     ("sqs", "JOBQUEUE_SQS_QUEUE_URLS", "{not json", "JOBQUEUE_SQS_QUEUE_URLS"), ("sqs", "JOBQUEUE_SQS_PREFIX", "../x", "SQS queue prefix"),
     ("sqs", "JOBQUEUE_SQS_RESERVE_MS", "-5", "JOBQUEUE_SQS_RESERVE_MS"), ("sqs", "JOBQUEUE_SQS_RESERVE_MS", "60000", "JOBQUEUE_SQS_RESERVE_MS"),
     ("sqs", "JOBQUEUE_SQS_BATCHING_WINDOW", "-1", "JOBQUEUE_SQS_BATCHING_WINDOW"), ("sqs", "JOBQUEUE_SQS_BATCHING_WINDOW", "301", "JOBQUEUE_SQS_BATCHING_WINDOW")],
)
def test_wrong_types_in_backend_variables(backend: str, variable: str, value: str, named: str) -> None:
    app = JobQueue.from_env({"JOBQUEUE_BACKEND": backend, "REDIS_HOST": "127.0.0.1", "AWS_REGION": "us-east-1", variable: value})
    with pytest.raises(ConfigurationError) as caught:
        app.backend  # noqa: B018 - a backend reads its settings when it is built, before any job is sent
    assert named in str(caught.value)


def test_message_chosen_names_are_never_imported_by_the_lambda_handler(probe: Probe) -> None:
    with inprocess_sqs_app() as app:
        tag = uuid.uuid4().hex[:8]
        bodies = [(Envelope(id=f"h{i}-{tag}", name=name, queue="work", max_attempts=3).encode(), {}) for i, name in enumerate(HOSTILE_NAMES)]
        event = send_and_receive(app, "work", bodies, tag)
        assert app.backend.worker.handle(event, Context(60_000)) == {"batchItemFailures": []}  # type: ignore[attr-defined]
        dead = drain_dlq(app, "work")
        assert len(dead) == len(HOSTILE_NAMES)
        assert all("no handler is registered" in m["MessageAttributes"]["jobqueue-error"]["StringValue"] for m in dead)
        for i in range(len(HOSTILE_NAMES)):
            status = app.get(f"h{i}-{tag}", "work")
            assert status.state is JobState.FAILED and status.attempt == 1
    assert not probe.imported
