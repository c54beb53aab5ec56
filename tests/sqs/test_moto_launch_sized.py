"""The size case's moto server (``moto_launch_sized``) answers SQS exactly as moto's own does, and its changes work."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Message, Queue

from tests.sqs.moto_launch_sized import COUNTS, VisibleMessages, delete_message
from tests.sqs.moto_server import DUMMY_ENV, LAUNCHER, SIZED_LAUNCHER, MotoServer


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, MotoServer]]:
    started = {"plain": MotoServer(LAUNCHER), "sized": MotoServer(SIZED_LAUNCHER)}
    try:
        yield started
    finally:
        for server in started.values():
            server.stop()


def counts(sqs: Any, url: str) -> dict[str, str]:
    every = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    named = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(COUNTS))["Attributes"]
    assert {name: every[name] for name in COUNTS} == named
    one = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed", "VisibilityTimeout"])
    assert set(one["Attributes"]) == {"ApproximateNumberOfMessagesDelayed", "VisibilityTimeout"}
    return named


def scenario(endpoint: str) -> list[Any]:
    """Sends, delays, receives, deletes, visibility changes and a redrive to the DLQ; what SQS answered at each step."""
    env = {"aws_access_key_id": DUMMY_ENV["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": DUMMY_ENV["AWS_SECRET_ACCESS_KEY"]}
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", **env)
    dlq = sqs.create_queue(QueueName="q-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="q", Attributes={
        "VisibilityTimeout": "60", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})})["QueueUrl"]
    seen: list[Any] = [counts(sqs, url)]
    for start in (0, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"m{i}", **({"DelaySeconds": 600} if i in (3, 12) else {})} for i in range(start, start + 10)])
    seen.append(counts(sqs, url))

    def receive(visibility: int) -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=visibility, AttributeNames=["All"])
        return list(got.get("Messages", []))

    first = receive(60)
    seen.append([(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in first])
    seen.append(counts(sqs, url))
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(first[:5])])
    seen.append(sorted(entry["Id"] for entry in deleted["Successful"]))
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])  # deleted already: SQS accepts it again
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    for message in first[5:]:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    seen.append(counts(sqs, url))
    for _ in range(3):  # the five put back reach maxReceiveCount and move to the DLQ on the next receive
        batch = receive(0)
        seen.append([(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in batch])
    seen.append(counts(sqs, url))
    seen.append(counts(sqs, dlq))
    return seen


def test_the_sized_server_answers_sqs_as_moto_does(servers: dict[str, MotoServer]) -> None:
    plain, sized = scenario(servers["plain"].endpoint), scenario(servers["sized"].endpoint)
    assert sized == plain
    assert sized[1] == {"ApproximateNumberOfMessages": "18", "ApproximateNumberOfMessagesDelayed": "2",
                        "ApproximateNumberOfMessagesNotVisible": "0"}
    assert [body for body, _ in sized[2]] == ["m0", "m1", "m2", "m4", "m5", "m6", "m7", "m8", "m9", "m10"]
    assert sized[-1]["ApproximateNumberOfMessages"] != "0"  # the redrive happened


def _queue(n: int) -> Queue:
    queue = Queue("unit", region="us-east-1", account_id="123456789012")
    for i in range(n):
        message = Message(f"id{i}", f"m{i}")
        message.mark_sent()
        queue._messages.append(message)
    return queue


def test_visible_messages_are_found_lazily_in_order() -> None:
    queue = _queue(5)
    queue._messages[0].change_visibility(60)
    queue._messages[2].delay(60)
    visible = VisibleMessages(queue)
    assert [m.body for m in visible] == ["m1", "m3", "m4"] and len(visible) == 3 and visible
    queue._messages[1].change_visibility(60)
    iterator = iter(VisibleMessages(queue))
    assert next(iterator).body == "m3"
    assert not VisibleMessages(_queue(0))


def test_delete_removes_the_one_message_that_had_the_handle() -> None:
    queue = _queue(3)
    for message in queue._messages:
        message.mark_received(visibility_timeout=60)
    old = queue._messages[1].receipt_handle
    queue._messages[1].mark_received(visibility_timeout=60)  # received again: the old handle still deletes it
    before = queue._messages
    delete_message(queue, old)  # type: ignore[arg-type]
    assert [m.body for m in queue._messages] == ["m0", "m2"]
    assert [m.body for m in before] == ["m0", "m1", "m2"]  # a receive iterating the old list is not disturbed
    delete_message(queue, old)  # type: ignore[arg-type]
    with pytest.raises(ReceiptHandleIsInvalid):
        delete_message(queue, "unknown")
