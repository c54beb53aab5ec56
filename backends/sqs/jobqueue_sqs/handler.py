"""The Lambda batch handler: runs each SQS record's job through the core's ``JobRunner``.

A record is reported done (left out of ``batchItemFailures``, so SQS deletes it) only if its job
completed, was skipped (already completed or cancelled: decided by a conditional write on the job
id, not the message id) or was copied to the DLQ. Everything else is reported failed, never swallowed:
a failed attempt with attempts left (its backoff set by ``ChangeMessageVisibility``), a record not
started because the invocation's time ran low, a job another delivery is running, any error.

Workflows: a job that ends with dependents or a group has its follow-up run right after the write that
ended it (``app.workflows.after_end``; errors are logged and the record is still done). A redelivered
record of a job that already ended runs a follow-up still pending before it is acknowledged: that is how
a crash between the end and its follow-up is finished on Lambda. An event that is not an SQS batch but
``{"jobqueue": "maintenance"}`` (the function's maintenance schedule) runs ``recover`` instead.

The queue a record came from (its ``eventSourceARN``, set by SQS) is authoritative: an envelope naming a
queue that is not sent to that SQS queue is refused like a poison body (to the source queue's DLQ, with
the reason, never retried), and the job it names is not touched. Logical queues sharing one SQS queue
(``queue_urls`` pointing at one URL) are compared by that SQS queue, so they keep working; AWS's DLQ
redrive returns messages to their source queue, so redriven jobs pass. Only a redrive to another queue
(or a copy by hand) is refused.

Imports are kept to what handling an SQS record needs (the job core, Powertools' Logger and Metrics, built
with the worker so that nothing reads the environment at import); the app (``JOBQUEUE_APP``), boto3 and its
clients load with the first event. The partial batch response is Powertools' ``BatchProcessor``, imported
with the module: every invocation uses it (its import, with the parser models Powertools loads alongside, is
the largest part of the cold import left; see bench/ANALYSIS.md).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from jobqueue.envelope import Envelope, decode_envelope
from jobqueue.errors import ConfigurationError, UnsupportedEnvelope
from jobqueue.runner import JobRunner, Outcome
from jobqueue.states import JobState
from jobqueue.status import ErrorInfo
from jobqueue_sqs.resources import MAINTENANCE_EVENT
from jobqueue_sqs.settings import MAX_DELAY_SECONDS, MAX_VISIBILITY_SECONDS
from jobqueue_sqs.store import JobRow
from jobqueue_sqs.transport import ATTR_STORED

if TYPE_CHECKING:
    from jobqueue.app import JobQueue
    from jobqueue_sqs.backend import SQSBackend

#: a backoff is set by visibility only while it stays this far inside SQS's 12-hour limit
VISIBILITY_MARGIN = 600
#: seconds a read of a queue's pause flag is trusted (a paused queue's mapping takes longer than that to stop on AWS)
PAUSE_FRESH = 1.0


class NotDone(Exception):
    """The record goes back to its queue (reported in ``batchItemFailures``)."""


class RetryLater(NotDone):
    """The attempt failed with attempts left; the message is invisible for its backoff."""


class NotStarted(NotDone):
    """The invocation's remaining time ran low: the record was not started."""


class Busy(NotDone):
    """Another delivery of this job is running it now."""


class _Sink:
    """What a running attempt writes to: the job's row."""

    def __init__(self, worker: SQSWorker) -> None:
        self.backend = worker.backend
        self.store = worker.backend.store
        self.clock = worker.app.clock
        self.row: JobRow | None = None
        self.kept = False

    def set_progress(self, envelope: Envelope, value: float) -> None:
        self.store.set_progress(envelope, value, self.clock.now())

    def is_cancel_requested(self, envelope: Envelope) -> bool:
        return self.store.is_cancel_requested(envelope, self.clock.now())

    def finish(self, envelope: Envelope, outcome: Outcome) -> bool:
        self.row = self.store.finish(envelope, outcome, self.clock.now())
        self.kept = self.row is not None
        return self.kept

    def after_finish(self, envelope: Envelope) -> None:
        """Once the end is written and the job's hooks fired: tell its dependents and group (if it ended)."""
        if self.row is not None and self.row.state.is_finished:
            self.backend.follow_up(self.row)


def _remaining_ms(context: Any) -> float:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return float(getter()) if getter is not None else float("inf")


class _Processor(BatchProcessor):
    """Powertools' SQS batch processor (partial responses, never the whole batch failed), telling the worker of each failure."""

    def __init__(self, on_failure: Callable[[SQSRecord, Exception], None]) -> None:
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._on_failure = on_failure

    def failure_handler(self, record: Any, exception: Any) -> Any:
        if isinstance(exception[1], Exception):
            self._on_failure(record, exception[1])
        return super().failure_handler(record, exception)


class SQSWorker:
    """Handles SQS event batches for one app bound to an :class:`SQSBackend`."""

    def __init__(self, backend: SQSBackend) -> None:
        self.backend = backend
        self.app: JobQueue = backend.app
        self.runner = JobRunner(backend.app)
        environ = backend.app.settings.environ  # the app's one reading of the environment, not this module's import
        self.log = Logger(service=environ.get("POWERTOOLS_SERVICE_NAME", "jobqueue-worker"))
        self.metrics = Metrics(namespace=environ.get("POWERTOOLS_METRICS_NAMESPACE", "jobqueue"))
        self.processor = _Processor(self._record_failed)
        self._stop = False
        #: queue -> when (monotonic) it was last seen not paused: the flag is read once a PAUSE_FRESH seconds, not once a record
        self._running_seen: dict[str, float] = {}

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """Process one SQS event; returns ``{"batchItemFailures": [...]}``. A maintenance event runs :meth:`maintain`."""
        if "Records" not in event and event == MAINTENANCE_EVENT:
            return self.maintain(context)
        self._stop = False
        try:
            response: PartialItemFailureResponse = process_partial_response(
                event=event, record_handler=lambda record: self.record(record, context), processor=self.processor, context=context)
            return dict(response)
        finally:
            if self.metrics.metric_set:
                self.metrics.flush_metrics()

    def maintain(self, context: Any = None) -> dict[str, Any]:
        """The maintenance schedule's invocation: finish workflow steps a crash left half done, in every queue."""
        recovered = 0
        for queue in sorted(self.app.queues):
            if _remaining_ms(context) < self.backend.settings.reserve_ms:
                self.log.warning("maintenance stopped before queue %s: time is running low", queue)
                break
            try:
                recovered += self.backend.recover([queue])
            except Exception:
                self.log.exception("recovering the workflow steps of queue %s failed", queue)
        if recovered:
            self.log.info("maintenance finished %d workflow step(s) a crash had left", recovered)
        return {"recovered": recovered}

    def _record_failed(self, record: SQSRecord, exc: Exception) -> None:
        """A record reported failed: a NotDone says why itself (its reason was logged); anything else is logged here."""
        if not isinstance(exc, NotDone):
            self.log.error("record %s failed: %s: %s", record.message_id, type(exc).__name__, exc, exc_info=exc)

    def _count(self, name: str) -> None:
        self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)

    def _duration(self, milliseconds: float) -> None:
        self.metrics.add_metric(name="duration", unit=MetricUnit.Milliseconds, value=milliseconds)

    # -- one record --------------------------------------------------------------------------------

    def record(self, record: SQSRecord, context: Any) -> str:
        with self.log.append_context_keys(message_id=record.message_id):
            remaining = _remaining_ms(context)
            if self._stop or remaining < self.backend.settings.reserve_ms:
                self._stop = True
                self.log.warning("time is running low (%.0f ms left): record not started", remaining)
                self._release(record)
                raise NotStarted(f"not started: {remaining:.0f} ms left in the invocation")
            try:
                envelope = decode_envelope(record.body)
            except UnsupportedEnvelope as exc:
                return self._poison(record, str(exc))
            misaddressed = self._misaddressed(record, envelope)
            if misaddressed is not None:
                return self._poison(record, misaddressed)
            needed = self._needed_ms(envelope)
            if remaining < needed:
                self._stop = True
                self.log.warning("%.0f ms left, job %s may need %.0f ms: record not started", remaining, envelope.id, needed)
                self._release(record)
                raise NotStarted(f"not started: {remaining:.0f} ms left, the job may need {needed:.0f} ms")
            with self.log.append_context_keys(job_id=envelope.id, job_name=envelope.name, queue=envelope.queue):
                return self._job(record, envelope, remaining)

    def _needed_ms(self, envelope: Envelope) -> float:
        """The time to keep for an attempt: its timeout (when the function could ever give it) and the reserve."""
        settings = self.backend.settings
        timeout = envelope.timeout if envelope.timeout is not None and envelope.timeout < settings.function_timeout else 0.0
        return timeout * 1000 + settings.reserve_ms

    def _release(self, record: SQSRecord, seconds: int = 0) -> None:
        """Make a record that was not started visible again at once (best effort: it is reported failed anyway)."""
        try:
            self.backend.clients.sqs.change_message_visibility(
                QueueUrl=self._source_url(record), ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds)
        except Exception:
            self.log.exception("could not release the record; it returns after the visibility timeout")

    def _misaddressed(self, record: SQSRecord, envelope: Envelope) -> str | None:
        """Why ``envelope`` may not run from this record: it names a queue other than the one the record came from.

        The record's source (``eventSourceARN``, set by SQS) is authoritative, not the envelope (written by
        whoever could send to the queue). Several logical queues may share one SQS queue (``queue_urls``
        pointing at one URL), so the envelope's queue is compared by the SQS queue it maps to. None: it may run.
        """
        source = record.event_source_arn.rsplit(":", 1)[-1]
        try:
            expected = self._sqs_name(envelope.queue)
        except ConfigurationError as exc:
            return f"the envelope names queue {envelope.queue!r}, which maps to no SQS queue ({exc}); it arrived on {source!r}"
        if expected == source:
            return None
        return (f"the envelope names queue {envelope.queue!r} (SQS queue {expected!r}) but arrived on SQS queue {source!r}: "
                "refused, a job runs only from its own queue")

    def _sqs_name(self, queue: str) -> str:
        """The SQS queue name logical queue ``queue`` is sent to: its configured URL's last segment, else its derived name."""
        settings = self.backend.settings
        configured = settings.configured_url(queue)
        return configured.rstrip("/").rsplit("/", 1)[-1] if configured else settings.queue_name(queue)

    def _source_url(self, record: SQSRecord) -> str:
        """The URL of the queue a record came from (its logical queue's, when the app declares it)."""
        name = record.event_source_arn.rsplit(":", 1)[-1]
        settings = self.backend.settings
        for queue in self.app.queues:
            if settings.queue_name(queue) == name or (settings.configured_url(queue) or "").endswith("/" + name):
                return self.backend.transport.url(queue)
        return str(self.backend.clients.sqs.get_queue_url(QueueName=name)["QueueUrl"])

    def _poison(self, record: SQSRecord, reason: str) -> str:
        """A body that is no job envelope, or one for another queue: to the DLQ at once, never retried."""
        self.log.error("poison message: %s", reason)
        dlq_url = self.backend.transport.redrive_target(self._source_url(record))
        if dlq_url is None:
            raise NotDone(f"poison message, and its queue has no DLQ to put it in: {reason}")
        self.backend.transport.copy_to_dlq_url(dlq_url, record.body or "", None, reason)
        self._count("failed")
        return "dead-lettered"

    def _job(self, record: SQSRecord, envelope: Envelope, remaining_ms: float) -> str:
        store = self.backend.store
        now = self.app.clock.now()
        row = store.load(envelope.queue, envelope.id, now)
        if row is None:
            if ATTR_STORED in (record.message_attributes or {}):
                self.log.info("the job's row is gone (cleaned, or past retention): message dropped")
                return "dropped"
            row = store.create_on_first_sight(envelope, now) or store.load(envelope.queue, envelope.id, now)
            if row is None:
                raise NotDone("the job's row could not be created")
        for _ in range(5):
            decided = self._step(record, envelope, row, now, remaining_ms)
            if isinstance(decided, str):
                return decided
            now = self.app.clock.now()
            reread = store.load(envelope.queue, envelope.id, now)
            if reread is None:
                return "dropped"
            row = reread
        raise Busy("the job's row kept changing under this delivery")

    def _step(self, record: SQSRecord, envelope: Envelope, row: JobRow, now: float, remaining_ms: float) -> str | None:
        """Decide and act on one reading of the row; None when a conditional write lost a race (read again)."""
        store = self.backend.store
        state = row.state
        if state in (JobState.COMPLETED, JobState.CANCELLED):
            if self.backend.follow_up(row):
                self.log.info("job already %s: its pending follow-up was run again", state.value)
            self.log.info("job already %s: duplicate delivery skipped", state.value)
            return "skipped"
        if state is JobState.FAILED:
            if not row.in_dlq:
                self._dead_letter(row, record.body, row.status(now).error)
            self.backend.follow_up(row)
            return "dead-lettered"
        if state is JobState.WAITING_CHILDREN:
            self.log.warning("job waits for its parents: message dropped (the release of its last parent sends it)")
            return "skipped"
        if state is JobState.ACTIVE:
            if row.lease_until > now:
                self._release(record, min(math.ceil(row.lease_until - now) + 1, MAX_VISIBILITY_SECONDS))  # back when the lease ends
                raise Busy(f"job {row.id!r} is being run by another delivery")
            if row.starts >= row.max_attempts:
                error = ErrorInfo(type="AttemptsSpent", retryable=False,
                                  message=f"attempt {row.starts} of {row.max_attempts} never reported back (its invocation timed out or died)")
                ended = store.fail_spent(row, now, error)
                if ended is None:
                    return None
                self._dead_letter(ended, record.body, error)
                self.backend.follow_up(ended)
                self._count("failed")
                return "dead-lettered"
        elif row.not_before is not None and row.not_before > now:
            wait = math.ceil(row.not_before - now)
            self.backend.transport.resend(envelope.queue, record.body, min(wait, MAX_DELAY_SECONDS), envelope.id)
            self.log.info("not due for %ss: sent again with a delay (a hop)", wait)
            return "hopped"
        if self._is_paused(envelope.queue):
            raise NotStarted(f"queue {envelope.queue!r} is paused")
        lease_until = now + min(remaining_ms / 1000.0, self.backend.settings.visibility_timeout)
        claimed = store.claim(row, now, lease_until)
        if claimed is None:
            return None
        return self._run(record, envelope, claimed)

    def _is_paused(self, queue: str) -> bool:
        """The queue's pause flag; "not paused" is trusted for PAUSE_FRESH seconds, "paused" is read again every time."""
        if time.monotonic() - self._running_seen.get(queue, -PAUSE_FRESH - 1) <= PAUSE_FRESH:
            return False
        if self.backend.is_paused(queue):
            return True
        self._running_seen[queue] = time.monotonic()
        return False

    def _run(self, record: SQSRecord, envelope: Envelope, claimed: JobRow) -> str:
        attempt = envelope.model_copy(update={"attempt": claimed.starts})
        sink = _Sink(self)
        started = time.perf_counter()
        outcome = self.runner.execute(attempt, sink)
        self._duration((time.perf_counter() - started) * 1000)
        if not sink.kept or sink.row is None:
            raise NotDone(f"the outcome of attempt {attempt.attempt} was not written (the job changed meanwhile)")
        written = sink.row.state
        if written is JobState.COMPLETED:
            self._count("completed")
            self.log.info("job completed on attempt %d", attempt.attempt)
            return "completed"
        if written is JobState.CANCELLED:
            self.log.info("job cancelled")
            return "cancelled"
        if written is JobState.FAILED:
            self._count("failed")
            self.log.warning("job failed on attempt %d: %s", attempt.attempt, outcome.error)
            self._dead_letter(sink.row, record.body, outcome.error)
            return "dead-lettered"
        return self._back_off(record, envelope, outcome)

    def _back_off(self, record: SQSRecord, envelope: Envelope, outcome: Outcome) -> str:
        """Attempts left: the message comes back after the backoff (visibility), or hops if the backoff is too long for it."""
        wait = max(0, math.ceil((outcome.retry_at or 0) - self.app.clock.now()))
        self.log.info("attempt failed (%s); next attempt in %ss", outcome.error, wait)
        if wait <= MAX_VISIBILITY_SECONDS - VISIBILITY_MARGIN:
            self.backend.transport.change_visibility(envelope.queue, record.receipt_handle, wait)
            raise RetryLater(f"attempt failed; retry in {wait}s")
        self.backend.transport.resend(envelope.queue, record.body, MAX_DELAY_SECONDS, envelope.id)
        return "hopped"

    def _dead_letter(self, row: JobRow, body: str | None, error: ErrorInfo | None) -> None:
        reason = str(error) if error is not None else "failed"
        self.backend.transport.copy_to_dlq(row.queue, body or row.envelope().encode(), row.id, reason)
        self.backend.store.mark_in_dlq(row)


_worker: SQSWorker | None = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: the app named by ``JOBQUEUE_APP`` (``module:attr``), on its SQS backend."""
    global _worker
    if _worker is None:
        from jobqueue.cli_support import load_app
        from jobqueue_sqs.backend import SQSBackend

        app = load_app(os.environ.get("JOBQUEUE_APP"))
        backend = app.backend
        if not isinstance(backend, SQSBackend):
            raise RuntimeError(f"JOBQUEUE_APP's app runs on the {backend.name!r} backend; the worker function needs JOBQUEUE_BACKEND=sqs")
        _worker = backend.worker
    return _worker.handle(event, context)


__all__ = ["SQSWorker", "lambda_handler"]
