"""An SQS-backend app on in-process moto (``mock_aws``): for fast unit and property tests of the Lambda handler.

End-to-end tests use the moto *server* (``moto_server`` fixture) instead, as a deployed function would talk
over HTTP; this one trades that for speed when a test feeds the handler hundreds of events.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jobqueue import JobQueue
from tests.sqs import jobs_app
from tests.sqs.events import record
from tests.sqs.moto_server import DUMMY_ENV

#: endpoint variables that would send the clients past the in-process mock to a moto server
_ENDPOINTS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB")


@contextmanager
def inprocess_sqs_app() -> Iterator[JobQueue]:
    """The SQS test app (``tests.sqs.jobs_app``) with its table and queues (each with a DLQ) made in moto."""
    from moto import mock_aws

    from jobqueue_sqs import SQSBackend, SQSSettings

    saved = {name: os.environ.get(name) for name in [*DUMMY_ENV, *_ENDPOINTS]}
    os.environ.update(DUMMY_ENV)
    for name in _ENDPOINTS:
        os.environ.pop(name, None)
    try:
        with mock_aws():
            prefix = f"p{uuid.uuid4().hex[:10]}"
            settings = SQSSettings(prefix=prefix, jobs_table=f"{prefix}-jobs", region="us-east-1", function_timeout=60)
            app = jobs_app.register(JobQueue(backend=SQSBackend(settings=settings)))
            app.backend.init()  # type: ignore[attr-defined]
            try:
                yield app
            finally:
                app.close()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def send_and_receive(app: JobQueue, queue: str, messages: list[tuple[str, dict[str, str]]], tag: str) -> dict[str, Any]:
    """Send ``(body, string attributes)`` messages tagged ``tag`` and receive them back as one Lambda event.

    Messages left over from earlier sends (released, backed off) are deleted when they turn up, so the
    event holds exactly these messages.
    """
    sqs = app.backend.clients.sqs  # type: ignore[attr-defined]
    url = app.backend.transport.url(queue)  # type: ignore[attr-defined]
    arn = app.backend.transport.arn(url)  # type: ignore[attr-defined]
    for body, attributes in messages:
        attrs = {name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()}
        attrs["fuzz-tag"] = {"DataType": "String", "StringValue": tag}
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attrs)
    mine: list[dict[str, Any]] = []
    for _ in range(50):
        if len(mine) == len(messages):
            break
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=60,
                                     AttributeNames=["All"], MessageAttributeNames=["All"])
        for message in answer.get("Messages", []):
            if message.get("MessageAttributes", {}).get("fuzz-tag", {}).get("StringValue") == tag:
                mine.append(message)
            else:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert len(mine) == len(messages), f"received {len(mine)} of {len(messages)} messages"
    return {"Records": [record(m, arn) for m in mine]}


def drain_dlq(app: JobQueue, queue: str) -> list[dict[str, Any]]:
    """Every message in ``queue``'s DLQ, deleted as it is read."""
    sqs = app.backend.clients.sqs  # type: ignore[attr-defined]
    url = app.backend.transport.dlq_url(queue)  # type: ignore[attr-defined]
    found: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"])
        batch = answer.get("Messages", [])
        if not batch:
            return found
        found.extend(batch)
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
