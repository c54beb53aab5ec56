"""The SQS side: find each logical queue's URL, send envelopes (one, or in tens), change visibility,
copy to and take back from the DLQ. No job state here: that is the table's (store.py).

Delays: up to 15 minutes are ``DelaySeconds``. A longer one is sent with the longest delay and
*hops*: the handler sees that the job is not due yet and sends it again with the time left (at most
15 minutes a hop), reporting the old message done. Chosen over an EventBridge Scheduler ``at()``
schedule because it needs no scheduler role or schedule quota, cancel and clean stay one table write,
and it runs end to end on a moto server (whose Scheduler stores schedules but never fires them).
The price is one extra message and invocation per 15 minutes of delay (96 a day per delayed job).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from jobqueue.envelope import Envelope
from jobqueue_sqs.clients import Clients
from jobqueue_sqs.errors import MessageTooLarge, QueueNotFound, SendFailed
from jobqueue_sqs.settings import MAX_DELAY_SECONDS, MAX_MESSAGE_BYTES, SQSSettings

ATTR_JOB_ID = "jobqueue-job-id"
#: set on messages the producer sent after writing the job's row: a record carrying it whose row is
#: gone was cleaned or expired, and is dropped; one without it (a schedule's) gets a row on first sight
ATTR_STORED = "jobqueue-stored"
ATTR_ERROR = "jobqueue-error"
BATCH_ENTRIES = 10


@dataclass(frozen=True)
class Outgoing:
    """One message to send: an envelope, its body, and its delay in whole seconds."""

    envelope: Envelope
    body: str
    delay: int


def delay_seconds(not_before: float | None, now: float) -> int:
    """The ``DelaySeconds`` for a job due at ``not_before``: whole seconds, rounded up, at most 15 minutes."""
    if not_before is None or not_before <= now:
        return 0
    return min(math.ceil(not_before - now), MAX_DELAY_SECONDS)


def _attr(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def _attributes_size(attributes: dict[str, dict[str, str]]) -> int:
    return sum(len(k.encode()) + len(v["DataType"].encode()) + len(v["StringValue"].encode()) for k, v in attributes.items())


class Transport:
    """SQS calls for one app's queues."""

    def __init__(self, clients: Clients, settings: SQSSettings, *, send_tries: int = 5) -> None:
        self.clients = clients
        self.settings = settings
        self.send_tries = send_tries
        self._urls: dict[str, str] = {}
        self._dlq_urls: dict[str, str] = {}
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()
        #: called to create a missing queue when auto-create is on (set by the backend: it knows the app)
        self.create_queue: Any = None

    # -- where the queues are --------------------------------------------------------------

    def url(self, queue: str) -> str:
        """The URL of logical queue ``queue``: configured, else looked up by name (and made, with auto-create)."""
        url = self._urls.get(queue)
        if url is None:
            url = self.settings.configured_url(queue) or self._lookup(self.settings.queue_name(queue), queue)
            with self._lock:
                self._urls[queue] = url
        return url

    def dlq_url(self, queue: str) -> str:
        url = self._dlq_urls.get(queue)
        if url is None:
            url = self.redrive_target(self.url(queue)) or self._lookup(self.settings.dlq_name(queue), queue)
            with self._lock:
                self._dlq_urls[queue] = url
        return url

    def redrive_target(self, url: str) -> str | None:
        """The URL of the DLQ named by the RedrivePolicy of the queue at ``url`` (so a configured URL needs no DLQ setting)."""
        attrs = self.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
        policy = attrs.get("RedrivePolicy")
        if not policy:
            return None
        arn = json.loads(policy)["deadLetterTargetArn"]
        account, name = arn.split(":")[4], arn.split(":")[5]
        return str(self.clients.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])

    def _lookup(self, name: str, queue: str) -> str:
        try:
            return str(self.clients.sqs.get_queue_url(QueueName=name)["QueueUrl"])
        except ClientError as exc:
            if "NonExistentQueue" not in exc.response["Error"]["Code"] and "QueueDoesNotExist" not in exc.response["Error"]["Code"]:
                raise
        if self.settings.auto_create and self.create_queue is not None:
            self.create_queue(queue)
            return str(self.clients.sqs.get_queue_url(QueueName=name)["QueueUrl"])
        raise QueueNotFound(
            f"queue {queue!r}: SQS queue {name!r} does not exist; create it with `jobqueue sqs init` or deploy template.yaml, "
            "or set JOBQUEUE_SQS_QUEUE_URLS"
        )

    def arn(self, url: str) -> str:
        return str(self.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    def forget(self, queue: str | None = None) -> None:
        with self._lock:
            for cache in (self._urls, self._dlq_urls, self._sizes):
                if queue is None:
                    cache.clear()
                else:
                    cache.pop(queue, None)

    # -- producing ----------------------------------------------------------------------------

    @staticmethod
    def message_attributes(envelope: Envelope, *, stored: bool = True) -> dict[str, dict[str, str]]:
        attributes = {ATTR_JOB_ID: _attr(envelope.id)}
        if stored:
            attributes[ATTR_STORED] = _attr("1")
        return attributes

    def max_size(self, queue: str) -> int:
        """The queue's ``MaximumMessageSize`` (read once; 1 MiB for queues made by init or template.yaml)."""
        size = self._sizes.get(queue)
        if size is None:
            attrs = self.clients.sqs.get_queue_attributes(QueueUrl=self.url(queue), AttributeNames=["MaximumMessageSize"])["Attributes"]
            size = self._sizes[queue] = int(attrs.get("MaximumMessageSize", MAX_MESSAGE_BYTES))
        return size

    def prepare(self, envelope: Envelope, now: float) -> Outgoing:
        """Encode ``envelope`` and check it fits one message of its queue, or :class:`MessageTooLarge` naming the job."""
        body = envelope.encode()
        size = len(body.encode("utf-8")) + _attributes_size(self.message_attributes(envelope))
        if size > MAX_MESSAGE_BYTES or size > self.max_size(envelope.queue):
            raise MessageTooLarge(envelope.name, envelope.id, size, min(MAX_MESSAGE_BYTES, self.max_size(envelope.queue)))
        return Outgoing(envelope, body, delay_seconds(envelope.not_before, now))

    def send(self, queue: str, messages: Sequence[Outgoing]) -> list[Outgoing]:
        """Send ``messages`` to ``queue``; returns those SQS still refused after retries (empty: all sent).

        One message is a ``SendMessage``; more go by ``SendMessageBatch`` in tens (and at most 1 MiB a
        batch), retrying only the entries SQS reports as failed.
        """
        url = self.url(queue)
        if len(messages) == 1:
            message = messages[0]
            self.clients.sqs.send_message(
                QueueUrl=url, MessageBody=message.body, DelaySeconds=message.delay, MessageAttributes=self.message_attributes(message.envelope)
            )
            return []
        refused: list[Outgoing] = []
        for batch in _batches(messages):
            refused.extend(self._send_batch(url, batch))
        return refused

    def _send_batch(self, url: str, batch: list[Outgoing]) -> list[Outgoing]:
        pending = {str(i): message for i, message in enumerate(batch)}

        def attempt() -> dict[str, Outgoing]:
            entries = [
                {"Id": key, "MessageBody": m.body, "DelaySeconds": m.delay, "MessageAttributes": self.message_attributes(m.envelope)}
                for key, m in pending.items()
            ]
            answer = self.clients.sqs.send_message_batch(QueueUrl=url, Entries=entries)
            for ok in answer.get("Successful", []):
                pending.pop(ok["Id"], None)
            # a SenderFault entry (bad request) will never succeed: stop retrying it
            for failed in answer.get("Failed", []):
                if failed.get("SenderFault"):
                    raise SendFailed(f"SQS refused job {pending[failed['Id']].envelope.id!r}: {failed.get('Code')}: {failed.get('Message')}")
            return pending

        from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential  # only when sending: not on the handler's import

        retrying = Retrying(
            stop=stop_after_attempt(self.send_tries), wait=wait_exponential(multiplier=0.05, max=2),
            retry=retry_if_result(bool), retry_error_callback=lambda state: state.outcome.result() if state.outcome else pending,
        )
        left = retrying(attempt)
        return list(left.values())

    def resend(self, queue: str, body: str, delay: int, job_id: str, *, stored: bool = True) -> None:
        """Send a body again (a delay hop, a backoff past the visibility limit, a retry)."""
        attributes = {ATTR_JOB_ID: _attr(job_id)}
        if stored:
            attributes[ATTR_STORED] = _attr("1")
        self.clients.sqs.send_message(QueueUrl=self.url(queue), MessageBody=body, DelaySeconds=max(0, min(delay, MAX_DELAY_SECONDS)), MessageAttributes=attributes)

    def change_visibility(self, queue: str, receipt_handle: str, seconds: int) -> None:
        self.clients.sqs.change_message_visibility(QueueUrl=self.url(queue), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds)

    # -- the DLQ ----------------------------------------------------------------------------------

    def copy_to_dlq(self, queue: str, body: str, job_id: str | None, error: str) -> None:
        """Put ``body`` on ``queue``'s DLQ, with the job id and the reason as attributes."""
        self.copy_to_dlq_url(self.dlq_url(queue), body, job_id, error)

    def copy_to_dlq_url(self, dlq_url: str, body: str, job_id: str | None, error: str) -> None:
        attributes = {ATTR_ERROR: _attr(error[:1000] or "failed")}
        if job_id:
            attributes[ATTR_JOB_ID] = _attr(job_id)
        self.clients.sqs.send_message(QueueUrl=dlq_url, MessageBody=body or "(empty body)", MessageAttributes=attributes)

    def remove_from_dlq(self, queue: str, job_ids: Iterable[str], *, max_rounds: int = 200) -> dict[str, str]:
        """Delete the DLQ messages of ``job_ids`` and return their bodies by job id; the other messages
        it looked at become visible again."""
        wanted = set(job_ids)
        removed: dict[str, str] = {}
        if not wanted:
            return removed
        url = self.dlq_url(queue)
        sqs = self.clients.sqs
        looked: list[str] = []
        try:
            for _ in range(max_rounds):
                answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30, MessageAttributeNames=["All"])
                messages = answer.get("Messages", [])
                if not messages:
                    break
                doomed = []
                for message in messages:
                    job_id = message.get("MessageAttributes", {}).get(ATTR_JOB_ID, {}).get("StringValue")
                    if job_id in wanted:
                        doomed.append(message["ReceiptHandle"])
                        removed[job_id] = message["Body"]
                    else:
                        looked.append(message["ReceiptHandle"])
                if doomed:
                    sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(doomed)])
                if wanted <= removed.keys():
                    break
        finally:
            for start in range(0, len(looked), BATCH_ENTRIES):
                chunk = looked[start:start + BATCH_ENTRIES]
                sqs.change_message_visibility_batch(
                    QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)]
                )
        return removed

    # -- reading ------------------------------------------------------------------------------------

    def depths(self, queue: str) -> dict[str, int]:
        """Approximate counts of ``queue``'s messages (visible, in flight, delayed) and of its DLQ."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
        main = self.clients.sqs.get_queue_attributes(QueueUrl=self.url(queue), AttributeNames=names)["Attributes"]
        dlq = self.clients.sqs.get_queue_attributes(QueueUrl=self.dlq_url(queue), AttributeNames=names[:1])["Attributes"]
        return {
            "visible": int(main.get(names[0], 0)), "in_flight": int(main.get(names[1], 0)),
            "delayed": int(main.get(names[2], 0)), "dead_letter": int(dlq.get(names[0], 0)),
        }


def _batches(messages: Sequence[Outgoing]) -> Iterable[list[Outgoing]]:
    """Tens, and at most 1 MiB of bodies a batch."""
    batch: list[Outgoing] = []
    size = 0
    for message in messages:
        length = len(message.body.encode("utf-8")) + 200
        if batch and (len(batch) == BATCH_ENTRIES or size + length > MAX_MESSAGE_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += length
    if batch:
        yield batch
