"""Errors of the SQS backend."""

from __future__ import annotations

from jobqueue.errors import BrokerUnavailable, ConfigurationError, JobQueueError


class MessageTooLarge(JobQueueError, ValueError):
    """An encoded envelope is larger than the queue takes; nothing of the batch was sent."""

    def __init__(self, job_name: str, job_id: str, size: int, limit: int) -> None:
        super().__init__(
            f"job {job_name!r} (id {job_id!r}) encodes to {size} bytes; its SQS queue takes at most {limit} bytes a message: "
            "send a reference (an S3 key, a row id) in the payload instead of the data"
        )
        self.job_name, self.job_id, self.size, self.limit = job_name, job_id, size, limit


class QueueNotFound(ConfigurationError):
    """A logical queue whose SQS queue does not exist (and auto-create is off)."""


class SendFailed(BrokerUnavailable):
    """SQS kept refusing some entries of a batch; their job rows were removed again."""


__all__ = ["MessageTooLarge", "QueueNotFound", "SendFailed"]
