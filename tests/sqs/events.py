"""SQS events for the handler tests, made from the sample `sam local generate-event sqs receive-message`
prints (infra/events/sqs-receive-message.json) with the bodies, ids and receipt handles of real messages."""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).resolve().parents[2] / "infra" / "events" / "sqs-receive-message.json"


def sample_record() -> dict[str, Any]:
    return dict(json.loads(SAMPLE.read_text())["Records"][0])


def record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    """The sample record carrying a message received from moto."""
    made = copy.deepcopy(sample_record())
    made.update({
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
        "md5OfBody": message["MD5OfBody"], "eventSourceARN": arn, "awsRegion": arn.split(":")[3],
        "messageAttributes": {name: {"stringValue": v.get("StringValue"), "stringListValues": [], "binaryListValues": [],
                                     "dataType": v["DataType"]} for name, v in message.get("MessageAttributes", {}).items()},
    })
    made["attributes"].update(message.get("Attributes", {}))
    return made


def receive_event(app: Any, queue: str, expect: int, *, timeout: float = 10.0) -> dict[str, Any]:
    """Receive ``expect`` messages of ``queue`` from moto and wrap them as one Lambda event."""
    backend = app.backend
    url = backend.transport.url(queue)
    arn = backend.transport.arn(url)
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(messages) < expect and time.monotonic() < deadline:
        answer = backend.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                                     AttributeNames=["All"], MessageAttributeNames=["All"])
        messages.extend(answer.get("Messages", []))
    assert len(messages) == expect, f"received {len(messages)} of {expect} messages"
    return {"Records": [record(m, arn) for m in messages]}


def poison_event(app: Any, queue: str, bodies: list[str]) -> dict[str, Any]:
    """Send raw ``bodies`` to ``queue`` (as a foreign producer would) and receive them as one event."""
    url = app.backend.transport.url(queue)
    for body in bodies:
        app.backend.clients.sqs.send_message(QueueUrl=url, MessageBody=body)
    return receive_event(app, queue, len(bodies))


class Context:
    """A Lambda context whose remaining time follows a script (then stays at the last value)."""

    def __init__(self, *remaining_ms: int) -> None:
        self._script = list(remaining_ms) or [60_000]
        self.function_name = "worker"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:worker"
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return self._script.pop(0) if len(self._script) > 1 else self._script[0]


def ids(event: dict[str, Any]) -> list[str]:
    return [r["messageId"] for r in event["Records"]]


def failures(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def dlq_bodies(app: Any, queue: str) -> list[dict[str, Any]]:
    url = app.backend.transport.dlq_url(queue)
    found: list[dict[str, Any]] = []
    for _ in range(5):
        answer = app.backend.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                                         VisibilityTimeout=0, MessageAttributeNames=["All"])
        found = answer.get("Messages", [])
        if found:
            break
    return found
