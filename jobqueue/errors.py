"""Exceptions raised by jobqueue; every one names the problem it reports."""

from __future__ import annotations

from typing import Any


class JobQueueError(Exception):
    """Base class of every error jobqueue raises on purpose."""


class ConfigurationError(JobQueueError, ValueError):
    """A setting, an environment variable or an option has a value jobqueue cannot use."""


class UnknownBackend(ConfigurationError):
    """A backend name that is neither built in nor importable."""


class BackendNotInstalled(ConfigurationError, ImportError):
    """A known backend whose distribution is not installed; the message names the pip extra."""


class UnknownJob(JobQueueError, LookupError):
    """No handler is registered under a job name."""


class InvalidPayload(JobQueueError, ValueError):
    """A payload failed validation against its job's pydantic model."""

    def __init__(self, job_name: str, errors: list[dict[str, Any]], detail: str) -> None:
        super().__init__(f"invalid payload for job {job_name!r}: {detail}")
        self.job_name = job_name
        self._errors = errors

    def errors(self) -> list[dict[str, Any]]:
        """The structured validation errors, as pydantic reports them."""
        return self._errors


class PayloadTooLarge(InvalidPayload):
    """A payload whose JSON is larger than ``JOBQUEUE_MAX_PAYLOAD_BYTES`` or nests too deep."""

    def __init__(self, job_name: str, detail: str) -> None:
        super().__init__(job_name, [], detail)


class ResultNotSerializable(JobQueueError, TypeError):
    """A handler returned a value that is not JSON-serialisable."""


class UnsupportedEnvelope(JobQueueError, ValueError):
    """A message that is not a job envelope this version of jobqueue can read."""


class BrokerUnavailable(JobQueueError, ConnectionError):
    """The broker could not be reached within the configured bound."""


class CapabilityMissing(JobQueueError, NotImplementedError):
    """The backend declares that it lacks this capability."""

    def __init__(self, backend: str, capability: str) -> None:
        super().__init__(f"the {backend!r} backend does not support {capability!r}")
        self.backend = backend
        self.capability = capability


class JobFailed(JobQueueError):
    """Raised by ``JobHandle.result()`` when the job ended failed."""

    def __init__(self, job_id: str, error: Any) -> None:
        message = getattr(error, "message", None) or str(error)
        super().__init__(f"job {job_id!r} failed: {message}")
        self.job_id = job_id
        self.error = error


class JobCancelled(JobQueueError):
    """The job was cancelled: raised inside a handler at ``ctx.progress()`` and by ``result()``."""


class JobNotFound(JobQueueError, LookupError):
    """No job with this id is known (never enqueued, or its record was not retained)."""


class Retry(Exception):
    """Raise from a handler to ask for another attempt after ``delay`` seconds.

    The attempt still counts; when attempts are spent the job ends failed.
    """

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        self.delay = delay
