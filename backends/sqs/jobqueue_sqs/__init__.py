"""SQS + Lambda backend for jobqueue: SQS transport, DynamoDB job store, Lambda batch handler.

Importing this package imports only the backend class; the handler, the local event source
mapping and the SAM tooling are imported when used.
"""

from jobqueue_sqs.backend import SQSBackend
from jobqueue_sqs.errors import MessageTooLarge, QueueNotFound, SendFailed
from jobqueue_sqs.settings import SQSSettings

__all__ = ["MessageTooLarge", "QueueNotFound", "SQSBackend", "SQSSettings", "SendFailed"]
