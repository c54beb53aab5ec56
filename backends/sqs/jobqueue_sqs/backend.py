"""``SQSBackend``: producer and web-app side (enqueue, status, cancel, retry, stats) over SQS and
DynamoDB; the Lambda handler (handler.py) and the local event source mapping (poller.py) run jobs."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from jobqueue.backends.base import Backend, Capability
from jobqueue.envelope import Envelope, decode_envelope
from jobqueue.errors import UnsupportedEnvelope
from jobqueue.states import FINISHED_STATES, JobState
from jobqueue.status import EnqueueReceipt, Health, JobPage, JobStatus, QueueStats
from jobqueue_sqs.clients import Clients
from jobqueue_sqs.errors import SendFailed
from jobqueue_sqs.settings import SQSSettings
from jobqueue_sqs.store import JobRow, JobStore
from jobqueue_sqs.transport import Outgoing, Transport

if TYPE_CHECKING:
    from jobqueue.app import JobQueue
    from jobqueue.schedules.store import ScheduleStore
    from jobqueue_sqs.handler import SQSWorker
    from jobqueue_sqs.workflows import DynamoWorkflowStore

logger = logging.getLogger("jobqueue.sqs")


class SQSBackend(Backend):
    """Jobs on SQS (one queue and DLQ per logical queue), their state in a DynamoDB table.

    Configured from the app's environment (``JOBQUEUE_SQS_QUEUE_URL``/``_URLS``, ``JOBQUEUE_JOBS_TABLE``,
    ``AWS_REGION``, ``AWS_ENDPOINT_URL``...) when bound, or explicitly: ``SQSBackend(settings=...)`` or
    any :class:`SQSSettings` field as a keyword, plus an injectable ``session`` or clients.
    """

    name: ClassVar[str] = "sqs"
    # concurrency keys: a standard queue cannot hold one key's messages back (see the README of jobqueue-sqs)
    lacks: ClassVar[frozenset[Capability]] = frozenset({
        Capability.PRIORITY, Capability.RATE_LIMIT, Capability.RETENTION_COUNT, Capability.CONCURRENCY_KEY,
    })
    time_resolution: ClassVar[float] = 1.0

    def __init__(self, *, settings: SQSSettings | None = None, session: Any = None, sqs_client: Any = None,
                 dynamodb_client: Any = None, lambda_client: Any = None, **options: Any) -> None:
        self._given_settings = settings
        self._options = options
        self._client_args = {"session": session, "sqs": sqs_client, "dynamodb": dynamodb_client, "lambda_": lambda_client}
        self._worker: SQSWorker | None = None
        self._workflows: DynamoWorkflowStore | None = None

    def bind(self, app: JobQueue) -> None:
        super().bind(app)
        if self._given_settings is not None:
            settings = self._given_settings.with_(**self._options) if self._options else self._given_settings
        else:
            settings = SQSSettings.from_environ(app.settings.environ, default_queue=app.settings.default_queue,
                                                prefix=app.settings.prefix, **self._options)
        self.settings = settings
        self.clients = Clients(settings, **self._client_args)
        self.transport = Transport(self.clients, settings)
        self.transport.create_queue = self.create_queue
        self.store = JobStore(self.clients, settings.jobs_table, app.queue_config)
        self._workflows = None

    def _now(self) -> float:
        return self.app.clock.now()

    # -- resources --------------------------------------------------------------------------------

    def create_queue(self, queue: str) -> dict[str, str]:
        """Create ``queue``'s SQS queue and DLQ as template.yaml declares them (auto-create and ``sqs init``)."""
        from jobqueue_sqs.init import create_queue
        from jobqueue_sqs.resources import queue_spec

        return create_queue(self.clients, queue_spec(self.app, self.settings, queue))

    def init(self) -> dict[str, Any]:
        """Create the table and every declared queue with its DLQ; what ``jobqueue sqs init`` runs."""
        from jobqueue_sqs.init import create_table

        created = create_table(self.clients, self.settings.jobs_table)
        queues = [self.create_queue(name) for name in sorted(self.app.queues)]
        self.transport.forget()
        return {"table": self.settings.jobs_table, "table_created": created, "queues": queues}

    # -- producing ------------------------------------------------------------------------------

    def enqueue(self, envelopes: Sequence[Envelope]) -> list[EnqueueReceipt]:
        """Write the jobs' items (one conditional put, or transactions of up to 100), then send the new ones.

        A job with ``depends_on`` is stored in waiting-children and not sent: its last parent's release sends it.
        """
        now = self._now()
        prepared = [self.transport.prepare(envelope, now) for envelope in envelopes]  # size checks before anything is written
        receipts: list[EnqueueReceipt] = []
        by_queue: dict[str, list[Outgoing]] = defaultdict(list)
        added = self.store.add_many([m.envelope for m in prepared], now, self._idempotency_window)
        for message, (job_id, created) in zip(prepared, added):
            receipts.append(EnqueueReceipt(id=job_id, created=created))
            if created and not message.envelope.depends_on:
                by_queue[message.envelope.queue].append(message)
        for queue, messages in by_queue.items():
            try:
                refused = self.transport.send(queue, messages)
            except BaseException:
                self._unwrite(messages)
                raise
            if refused:
                self._unwrite(refused)
                raise SendFailed(f"SQS did not take {len(refused)} job(s) of queue {queue!r} after retries: "
                                 + ", ".join(m.envelope.id for m in refused[:10]))
        return receipts

    def _idempotency_window(self, envelope: Envelope) -> float:
        return envelope.idempotency_window or self.app.queue_config(envelope.queue).idempotency_window

    def _unwrite(self, messages: Sequence[Outgoing]) -> None:
        for message in messages:
            try:
                self.store.remove(message.envelope.queue, message.envelope.id)
                self.store.release_key(message.envelope)
            except Exception:  # the send error is the one to report; a stale row is dropped at its first delivery
                logger.exception("could not remove the row of unsent job %s", message.envelope.id)

    # -- reading ----------------------------------------------------------------------------------

    def _row(self, job_id: str, queue: str | None) -> JobRow | None:
        now = self._now()
        if queue is not None:
            return self.store.load(queue, job_id, now)
        return self.store.find(job_id, list(self.app.queues), now)

    def get(self, job_id: str, queue: str | None = None) -> JobStatus | None:
        row = self._row(job_id, queue)
        return None if row is None else row.status(self._now())

    def stats(self, queue: str) -> QueueStats:
        now = self._now()
        counts = {state: self.store.count(queue, state, now) for state in JobState}
        return QueueStats(queue=queue, counts=counts, paused=self.store.is_paused(queue))

    def depths(self, queue: str) -> dict[str, int]:
        """SQS's own approximate counts for ``queue`` and its DLQ (visible, in flight, delayed, dead letter)."""
        return self.transport.depths(queue)

    def list_jobs(self, queue: str, state: JobState, *, limit: int = 50, cursor: str | None = None) -> JobPage:
        now = self._now()
        rows, next_cursor = self.store.page(queue, state, now, limit, cursor)
        return JobPage(jobs=[row.status(now) for row in rows], next_cursor=next_cursor)

    def health(self) -> Health:
        started = time.perf_counter()
        try:
            self.clients.sqs.list_queues(QueueNamePrefix=self.settings.prefix, MaxResults=1)
        except Exception as exc:  # noqa: BLE001  (health reports any failure, it never raises)
            return Health(status="unhealthy", backend=self.name, broker_reachable=False, detail=f"SQS: {exc}"[:500])
        try:
            self.clients.dynamodb.describe_table(TableName=self.settings.jobs_table)
        except Exception as exc:  # noqa: BLE001
            return Health(status="degraded", backend=self.name, broker_reachable=True, detail=f"job table: {exc}"[:500])
        return Health(status="healthy", backend=self.name, broker_reachable=True,
                      latency_ms=round((time.perf_counter() - started) * 1000, 2), detail=f"table {self.settings.jobs_table}")

    # -- steering ---------------------------------------------------------------------------------

    def cancel(self, job_id: str, queue: str | None = None) -> bool:
        row = self._row(job_id, queue)
        if row is None:
            return False
        after = self.store.cancel(row, self._now())
        self.follow_up(after)  # a pending job ends here: tell its dependents and group
        return after is not None

    def retry(self, job_id: str, queue: str | None = None) -> bool:
        row = self._row(job_id, queue)
        if row is None or row.state not in (JobState.FAILED, JobState.CANCELLED):
            return False
        return self._retry_rows(row.queue, [row]) == 1

    def retry_failed(self, queue: str) -> int:
        rows = list(self.store.rows(queue, JobState.FAILED, self._now()))
        return self._retry_rows(queue, rows)

    def _retry_rows(self, queue: str, rows: list[JobRow]) -> int:
        """Send each row's stored envelope back to ``queue`` with fresh attempts and take its copy off the DLQ."""
        if not rows:
            return 0
        bodies = self.transport.remove_from_dlq(queue, [r.id for r in rows if r.state is JobState.FAILED])
        now = self._now()
        outgoing: list[Outgoing] = []
        for row in rows:
            envelope = row.envelope()
            if row.payload_omitted:
                body = bodies.get(row.id)
                if body is None:
                    logger.warning("job %s: its payload was too large for the table and its DLQ copy is gone; it cannot be retried", row.id)
                    continue
                try:
                    envelope = decode_envelope(body)
                except UnsupportedEnvelope:
                    continue
            envelope = envelope.model_copy(update={"attempt": 1, "not_before": None, "enqueued_at": envelope.enqueued_at})
            if self.store.reset_for_retry(row, now, envelope):
                outgoing.append(self.transport.prepare(envelope, now))
        refused = self.transport.send(queue, outgoing) if outgoing else []
        if refused:
            raise SendFailed(f"SQS did not take {len(refused)} retried job(s) of queue {queue!r}: " + ", ".join(m.envelope.id for m in refused[:10]))
        return len(outgoing)

    def pause(self, queue: str) -> None:
        self.store.set_paused(queue, True)
        self._set_mapping(queue, enabled=False)

    def resume(self, queue: str) -> None:
        self.store.set_paused(queue, False)
        self._set_mapping(queue, enabled=True)

    def is_paused(self, queue: str) -> bool:
        return self.store.is_paused(queue)

    def _set_mapping(self, queue: str, *, enabled: bool) -> None:
        """On AWS a paused queue's event source mapping is disabled (with JOBQUEUE_SQS_FUNCTION_NAME set)."""
        function = self.settings.function_name
        if not function:
            return
        arn = self.transport.arn(self.transport.url(queue))
        mappings = self.clients.lambda_.list_event_source_mappings(FunctionName=function, EventSourceArn=arn).get("EventSourceMappings", [])
        for mapping in mappings:
            self.clients.lambda_.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)

    def clean(self, queue: str, state: JobState, older_than: float = 0.0) -> int:
        if state is JobState.ACTIVE:
            raise ValueError("active jobs cannot be cleaned; cancel them instead")
        now = self._now()
        removed = 0
        for row in list(self.store.rows(queue, state, now)):
            status = row.status(now)
            changed = status.finished_at if state in FINISHED_STATES and status.finished_at else status.created_at
            if now - changed >= older_than:
                self.store.delete(row)  # a pending job's message is dropped when it arrives: its row is gone
                removed += 1
        return removed

    # -- workflows ---------------------------------------------------------------------------------

    def workflow_store(self) -> DynamoWorkflowStore:
        """Dependencies, groups and follow-ups in the job table (see :mod:`jobqueue_sqs.workflows`)."""
        if self._workflows is None:
            from jobqueue_sqs.workflows import DynamoWorkflowStore

            self._workflows = DynamoWorkflowStore(self)
        return self._workflows

    def follow_up(self, row: JobRow | None) -> bool:
        """Run the pending follow-up of a job that ended (its dependents, its group); True if there was one.

        Errors are logged, never raised: the follow-up stays recorded, and a redelivery of the job's message
        or :meth:`recover` runs it again.
        """
        if row is None or not row.has_duties:
            return False
        try:
            followup = self.workflow_store().followup_of(row)
            if followup is None:
                return False
            self.app.workflows.after_end(followup)
        except Exception:
            logger.exception("job %s ended, but telling its dependents or group failed; recovery will retry", row.id)
        return True

    def recover(self, queues: Sequence[str] | None = None, *, older_than: float | None = None) -> int:
        """Finish workflow steps a crash left half done (follow-ups, unlinked children, released children not sent).

        On AWS the worker function runs this on its maintenance schedule; locally the poller every
        ``RECOVER_EVERY`` seconds. Returns how many steps it finished.
        """
        from jobqueue.workflows.coordinator import RECOVER_AFTER

        return self.app.workflows.recover(queues, older_than=RECOVER_AFTER if older_than is None else older_than)

    def schedule_store(self) -> ScheduleStore:
        """Dynamic schedules as EventBridge Scheduler schedules (see :mod:`jobqueue_sqs.schedule_store`)."""
        store = self._schedule_store
        if store is None:
            from jobqueue_sqs.schedule_store import EventBridgeScheduleStore

            store = self._schedule_store = EventBridgeScheduleStore(self)
        return store

    def close(self) -> None:
        if hasattr(self, "clients"):
            self.clients.close()

    # -- running ----------------------------------------------------------------------------------

    @property
    def worker(self) -> SQSWorker:
        """The Lambda batch handler for this app (what ``functions/worker/app.py`` calls)."""
        if self._worker is None:
            from jobqueue_sqs.handler import SQSWorker

            self._worker = SQSWorker(self)
        return self._worker

    def drain(self, queues: Sequence[str] | None = None, *, max_rounds: int = 100) -> int:
        """Run everything receivable now through the handler, as the event source mapping would; returns records handled."""
        from jobqueue_sqs.poller import LocalEventSource

        return LocalEventSource(self, queues).drain(max_rounds=max_rounds)

    def run_worker(self, queues: Sequence[str] | None = None, **options: Any) -> None:
        """The local event source mapping: long-poll the queues and call the Lambda handler with SQS events.

        ``burst=True`` handles what is receivable now and returns. ``concurrency`` is how many batches run at once.
        """
        from jobqueue_sqs.poller import LocalEventSource

        source = LocalEventSource(self, queues)
        if options.get("burst"):
            source.drain()
            return
        source.run(concurrency=int(options.get("concurrency") or 1), grace=float(options.get("grace") or 30.0))
