"""jobqueue: typed background jobs on Redis, SQS + Lambda, or inline, with one API.

The public names are imported on first access (PEP 562), so ``import jobqueue.envelope`` (the Lambda
handler's path) does not pay for the whole app graph; ``from jobqueue import JobQueue`` works as always.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobqueue.lazy import lazy_exports

if TYPE_CHECKING:
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

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "JobQueue": "jobqueue.app",
    "FakeClock": "jobqueue.clock", "SystemClock": "jobqueue.clock",
    "JobContext": "jobqueue.context",
    **dict.fromkeys((
        "BackendNotInstalled", "BrokerUnavailable", "CapabilityMissing", "ConfigurationError", "InvalidPayload",
        "JobCancelled", "JobFailed", "JobNotFound", "JobQueueError", "PayloadTooLarge", "Retry", "UnknownBackend",
        "UnknownJob",
    ), "jobqueue.errors"),
    "JobHandle": "jobqueue.handle",
    "JobEvent": "jobqueue.hooks",
    "JobDefinition": "jobqueue.job",
    **dict.fromkeys(("Backoff", "QueueConfig", "RateLimit", "Retention"), "jobqueue.options"),
    "Secret": "jobqueue.redaction",
    "JobRef": "jobqueue.refs",
    "Settings": "jobqueue.settings",
    "JobState": "jobqueue.states",
    **dict.fromkeys(("ErrorInfo", "Health", "JobPage", "JobStatus", "QueueStats", "Throughput"), "jobqueue.status"),
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "Backoff", "BackendNotInstalled", "BrokerUnavailable", "CapabilityMissing", "ConfigurationError",
    "ErrorInfo", "FakeClock", "Health", "InvalidPayload", "JobCancelled", "JobContext", "JobDefinition",
    "JobEvent", "JobFailed", "JobHandle", "JobNotFound", "JobPage", "JobQueue", "JobQueueError", "JobRef", "JobState",
    "JobStatus", "PayloadTooLarge", "QueueConfig", "QueueStats", "RateLimit", "Retention", "Retry", "Secret",
    "Settings", "SystemClock", "Throughput", "UnknownBackend", "UnknownJob", "__version__",
]
