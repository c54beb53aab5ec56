"""What the app's queues and the job table look like on AWS: one description that
``jobqueue sqs init`` creates and ``jobqueue sam export`` writes as SAM resources."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobqueue.errors import ConfigurationError
from jobqueue_sqs.settings import MAX_MESSAGE_BYTES, SQSSettings

if TYPE_CHECKING:
    from jobqueue.app import JobQueue

RETENTION_SECONDS = 14 * 86400  # SQS's longest message retention, for the queues and the DLQs
STATE_INDEX = "by_state"
#: sparse index of jobs with workflow duties whose follow-up is pending (see workflows.py)
FOLLOWUP_INDEX = "by_followup"
#: the event the worker function's maintenance schedule sends (handler.SQSWorker.maintain), and how often
MAINTENANCE_EVENT = {"jobqueue": "maintenance"}
MAINTENANCE_RATE = "rate(1 minute)"
TTL_ATTRIBUTE = "expires_at"
#: receives past the largest ``attempts`` before SQS's own redrive moves a message (a safety net only:
#: throttled and never-started records raise the receive count too)
REDRIVE_MARGIN = 10


@dataclass(frozen=True)
class QueueSpec:
    """One logical queue as AWS resources."""

    queue: str
    sqs_name: str
    dlq_name: str
    visibility_timeout: int
    max_receive_count: int
    max_concurrency: int | None
    batch_size: int
    batching_window: int

    @property
    def logical_id(self) -> str:
        """``email-high`` -> ``EmailHigh``: the stem of its resources' logical ids in template.yaml."""
        return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", self.queue) if part) or "Default"

    def queue_attributes(self, dlq_arn: str) -> dict[str, str]:
        return {
            "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
            "MessageRetentionPeriod": str(RETENTION_SECONDS),
            "VisibilityTimeout": str(self.visibility_timeout),
            "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":{self.max_receive_count}}}',
        }

    def dlq_attributes(self) -> dict[str, str]:
        return {"MaximumMessageSize": str(MAX_MESSAGE_BYTES), "MessageRetentionPeriod": str(RETENTION_SECONDS)}


def largest_attempts(app: JobQueue, queue: str) -> int:
    """The most attempts any job of ``queue`` is declared with."""
    config = app.queue_config(queue)
    declared = [job.attempts for job in app.registry.values() if job.queue == queue and job.attempts]
    return max([config.attempts, *declared])


def queue_spec(app: JobQueue, settings: SQSSettings, queue: str) -> QueueSpec:
    config = app.queue_config(queue)
    if config.concurrency is not None and not 2 <= config.concurrency <= 1000:
        raise ConfigurationError(
            f"queue {queue!r}: concurrency {config.concurrency} cannot be an SQS event source mapping's "
            "MaximumConcurrency (2..1000); for one job at a time give the queue its own function with reserved concurrency 1"
        )
    return QueueSpec(
        queue=queue,
        sqs_name=settings.queue_name(queue),
        dlq_name=settings.dlq_name(queue),
        visibility_timeout=settings.visibility_timeout,
        max_receive_count=min(largest_attempts(app, queue) + REDRIVE_MARGIN, 1000),
        max_concurrency=config.concurrency,
        batch_size=settings.batch_size,
        batching_window=settings.batching_window,
    )


def queue_specs(app: JobQueue, settings: SQSSettings) -> list[QueueSpec]:
    """Every declared queue of ``app``, sorted by name."""
    return [queue_spec(app, settings, name) for name in sorted(app.queues)]


def table_definition(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of the job table (the SAM resource mirrors them)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "qstate", "AttributeType": "S"},
            {"AttributeName": "sort", "AttributeType": "N"},
            {"AttributeName": "fq", "AttributeType": "S"},
            {"AttributeName": "followup_at", "AttributeType": "N"},
        ],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": STATE_INDEX,
                "KeySchema": [{"AttributeName": "qstate", "KeyType": "HASH"}, {"AttributeName": "sort", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": FOLLOWUP_INDEX,
                "KeySchema": [{"AttributeName": "fq", "KeyType": "HASH"}, {"AttributeName": "followup_at", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
    }
