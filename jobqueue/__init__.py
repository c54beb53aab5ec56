"""jobqueue: typed background jobs on Redis, SQS + Lambda, or inline, with one API."""

from jobqueue.app import JobQueue
from jobqueue.clock import FakeClock, SystemClock
from jobqueue.context import JobContext
from jobqueue.errors import (
    BackendNotInstalled,
    BrokerUnavailable,
    CapabilityMissing,
    ConfigurationError,
    InvalidPayload,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobQueueError,
    PayloadTooLarge,
    Retry,
    UnknownBackend,
    UnknownJob,
)
from jobqueue.handle import JobHandle
from jobqueue.hooks import JobEvent
from jobqueue.job import JobDefinition
from jobqueue.options import Backoff, QueueConfig, RateLimit, Retention
from jobqueue.redaction import Secret
from jobqueue.refs import JobRef
from jobqueue.settings import Settings
from jobqueue.states import JobState
from jobqueue.status import ErrorInfo, Health, JobPage, JobStatus, QueueStats, Throughput

__version__ = "0.1.0"

__all__ = [
    "Backoff", "BackendNotInstalled", "BrokerUnavailable", "CapabilityMissing", "ConfigurationError",
    "ErrorInfo", "FakeClock", "Health", "InvalidPayload", "JobCancelled", "JobContext", "JobDefinition",
    "JobEvent", "JobFailed", "JobHandle", "JobNotFound", "JobPage", "JobQueue", "JobQueueError", "JobRef", "JobState",
    "JobStatus", "PayloadTooLarge", "QueueConfig", "QueueStats", "RateLimit", "Retention", "Retry", "Secret",
    "Settings", "SystemClock", "Throughput", "UnknownBackend", "UnknownJob", "__version__",
]
