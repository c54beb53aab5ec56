"""The local event source mapping: long-poll the app's queues and call the same Lambda handler with
SQS-shaped event batches, deleting only the records it reports done. Retries, backoff and the DLQ
then behave as on AWS (``jobqueue worker --backend sqs``; ``drain()`` for tests and scripts)."""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobqueue_sqs.backend import SQSBackend

logger = logging.getLogger("jobqueue.sqs.poller")

#: seconds between two runs of workflow recovery in :meth:`LocalEventSource.run` (on AWS: the maintenance schedule)
RECOVER_EVERY = 30.0


class LocalContext:
    """The part of Lambda's context the handler reads: the time left, from the function timeout."""

    def __init__(self, timeout_seconds: float, function_name: str = "jobqueue-worker-local") -> None:
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 1024
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalEventSource:
    """One event source mapping per queue, run in this process."""

    def __init__(self, backend: SQSBackend, queues: Sequence[str] | None = None) -> None:
        self.backend = backend
        self.queues = list(queues) if queues else list(backend.app.queues)
        self._arns: dict[str, str] = {}
        self._stop = threading.Event()

    # -- one batch ----------------------------------------------------------------------------------

    def receive(self, queue: str, wait: int) -> list[dict[str, Any]]:
        answer = self.backend.clients.sqs.receive_message(
            QueueUrl=self.backend.transport.url(queue), MaxNumberOfMessages=min(self.backend.settings.batch_size, 10),
            WaitTimeSeconds=wait, AttributeNames=["All"], MessageAttributeNames=["All"],
        )
        return list(answer.get("Messages", []))

    def event(self, queue: str, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The event Lambda would pass for ``messages`` of ``queue``."""
        arn = self._arns.get(queue)
        if arn is None:
            arn = self._arns[queue] = self.backend.transport.arn(self.backend.transport.url(queue))
        region = arn.split(":")[3]
        return {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m.get("Body", ""),
            "attributes": dict(m.get("Attributes", {})),
            "messageAttributes": {
                name: {"stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"), "stringListValues": [],
                       "binaryListValues": [], "dataType": value.get("DataType", "String")}
                for name, value in m.get("MessageAttributes", {}).items()
            },
            "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": region,
        } for m in messages]}

    def handle(self, queue: str, messages: Sequence[dict[str, Any]]) -> int:
        """Call the handler with one batch; delete the records it did not report failed. Returns how many were done."""
        context = LocalContext(self.backend.settings.function_timeout)
        response = self.backend.worker.handle(self.event(queue, messages), context)
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start:start + 10]
            self.backend.clients.sqs.delete_message_batch(
                QueueUrl=self.backend.transport.url(queue),
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        return len(done)

    def poll_once(self, queue: str, wait: int) -> int:
        """Receive one batch of ``queue`` (unless it is paused: its mapping is disabled) and handle it."""
        if self.backend.is_paused(queue):
            return 0
        messages = self.receive(queue, wait)
        if messages:
            self.handle(queue, messages)
        return len(messages)

    # -- modes -----------------------------------------------------------------------------------------

    def drain(self, *, max_rounds: int = 100) -> int:
        """Handle what is receivable now, queue by queue, until nothing is; returns the records handled."""
        handled = 0
        for _ in range(max_rounds):
            got = sum(self.poll_once(queue, 0) for queue in self.queues)
            handled += got
            if not got:
                break
        return handled

    def stop(self) -> None:
        self._stop.set()

    def recover(self) -> int:
        """Finish the workflow steps a crash left half done in these queues (what the maintenance schedule does on AWS)."""
        try:
            return self.backend.recover(self.queues)
        except Exception:
            logger.exception("workflow recovery failed; trying again in %.0fs", RECOVER_EVERY)
            return 0

    def run(self, *, concurrency: int = 1, grace: float = 30.0, wait: int = 5) -> None:
        """Poll until SIGTERM/SIGINT (or :meth:`stop`): up to ``concurrency`` batches at once across the queues."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self._stop.set())
        logger.info("local event source mapping on %s (concurrency %d)", ", ".join(self.queues), concurrency)
        slots = threading.Semaphore(max(1, concurrency))

        def loop(queue: str) -> None:
            while not self._stop.is_set():
                with slots:
                    try:
                        if self.poll_once(queue, wait) == 0 and self.backend.is_paused(queue):
                            self._stop.wait(wait)
                    except Exception:
                        logger.exception("polling %s failed; retrying", queue)
                        self._stop.wait(1.0)

        # at least one poller per queue, and enough of them to keep ``concurrency`` batches going
        pollers = [self.queues[i % len(self.queues)] for i in range(max(len(self.queues), concurrency))]
        threads = [threading.Thread(target=loop, args=(q,), name=f"jobqueue-sqs-poll-{q}-{i}", daemon=True) for i, q in enumerate(pollers)]
        for thread in threads:
            thread.start()
        next_recovery = time.monotonic() + RECOVER_EVERY
        while not self._stop.is_set():
            self._stop.wait(0.5)
            if time.monotonic() >= next_recovery and not self._stop.is_set():
                self.recover()
                next_recovery = time.monotonic() + RECOVER_EVERY
        deadline = time.monotonic() + grace + wait
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
