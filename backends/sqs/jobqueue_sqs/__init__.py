"""SQS + Lambda backend for jobqueue: SQS transport, DynamoDB job store, Lambda batch handler.

Importing this package imports nothing else: the backend class and the settings are imported on
first access (PEP 562), so the Lambda handler (``jobqueue_sqs.handler``) loads only what it uses;
the local event source mapping and the SAM tooling are imported when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobqueue.lazy import lazy_exports

if TYPE_CHECKING:
    from jobqueue_sqs.backend import SQSBackend
    from jobqueue_sqs.errors import MessageTooLarge, QueueNotFound, SendFailed
    from jobqueue_sqs.settings import SQSSettings

_EXPORTS: dict[str, str] = {
    "SQSBackend": "jobqueue_sqs.backend", "SQSSettings": "jobqueue_sqs.settings",
    "MessageTooLarge": "jobqueue_sqs.errors", "QueueNotFound": "jobqueue_sqs.errors", "SendFailed": "jobqueue_sqs.errors",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["MessageTooLarge", "QueueNotFound", "SQSBackend", "SQSSettings", "SendFailed"]
