"""Settings of the SQS backend, read from the app's snapshot of the environment (never at import)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from jobqueue.errors import ConfigurationError

#: SQS's largest message, and the size the queues are created with
MAX_MESSAGE_BYTES = 1_048_576
#: DynamoDB's largest item
MAX_ITEM_BYTES = 400 * 1024
#: SQS's longest DelaySeconds; longer delays hop (see transport.py)
MAX_DELAY_SECONDS = 900
#: SQS's longest visibility timeout
MAX_VISIBILITY_SECONDS = 43_200


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SQSSettings:
    """Where the queues and the job table are, and how the worker function is sized.

    Each logical queue ``q`` of the app is the SQS queue ``{prefix}-{q}`` with the DLQ ``{prefix}-{q}-dlq``,
    unless ``queue_urls`` names its URL (``queue_url`` is the URL of the app's default queue).
    """

    prefix: str = "jobqueue"
    jobs_table: str = "jobqueue-jobs"
    queue_url: str | None = None
    queue_urls: dict[str, str] = field(default_factory=dict)
    default_queue: str = "default"
    region: str | None = None
    endpoint_url: str | None = None
    #: create a missing queue (and its DLQ) on first use: for local development against moto
    auto_create: bool = False
    #: the worker function's name: pause/resume then disable/enable its event source mappings
    function_name: str | None = None
    #: the worker function's timeout; the queues' visibility timeout is six times it
    function_timeout: int = 60
    batch_size: int = 10
    batching_window: int = 0
    #: the handler starts no record when less than this many milliseconds remain
    reserve_ms: int = 5_000

    @property
    def visibility_timeout(self) -> int:
        return min(6 * self.function_timeout, MAX_VISIBILITY_SECONDS)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, default_queue: str = "default", prefix: str = "jobqueue", **overrides: Any) -> SQSSettings:
        """Read ``JOBQUEUE_SQS_*``, ``JOBQUEUE_JOBS_TABLE`` and the standard AWS variables; ``overrides`` win."""
        env = environ
        values: dict[str, Any] = {"default_queue": default_queue, "prefix": env.get("JOBQUEUE_SQS_PREFIX") or prefix}
        if env.get("JOBQUEUE_JOBS_TABLE"):
            values["jobs_table"] = env["JOBQUEUE_JOBS_TABLE"]
        else:
            values["jobs_table"] = f"{values['prefix']}-jobs"
        if env.get("JOBQUEUE_SQS_QUEUE_URL"):
            values["queue_url"] = env["JOBQUEUE_SQS_QUEUE_URL"].strip()
        if env.get("JOBQUEUE_SQS_QUEUE_URLS"):
            values["queue_urls"] = _url_map(env["JOBQUEUE_SQS_QUEUE_URLS"])
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            values["region"] = region
        endpoint = env.get("AWS_ENDPOINT_URL_SQS") or env.get("AWS_ENDPOINT_URL")
        if endpoint:
            values["endpoint_url"] = endpoint
        values["auto_create"] = _truthy(env.get("JOBQUEUE_SQS_AUTO_CREATE"))
        if env.get("JOBQUEUE_SQS_FUNCTION_NAME"):
            values["function_name"] = env["JOBQUEUE_SQS_FUNCTION_NAME"]
        for name, variable in (("function_timeout", "JOBQUEUE_SQS_FUNCTION_TIMEOUT"), ("batch_size", "JOBQUEUE_SQS_BATCH_SIZE"),
                               ("batching_window", "JOBQUEUE_SQS_BATCHING_WINDOW"), ("reserve_ms", "JOBQUEUE_SQS_RESERVE_MS")):
            raw = env.get(variable)
            if raw:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise ConfigurationError(f"{variable}={raw!r}: expected a whole number") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).checked()

    def checked(self) -> SQSSettings:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,60}", self.prefix):
            raise ConfigurationError(f"SQS queue prefix {self.prefix!r} must be 1-60 letters, digits, '-' or '_'")
        if not 1 <= self.function_timeout <= 900:
            raise ConfigurationError(f"JOBQUEUE_SQS_FUNCTION_TIMEOUT={self.function_timeout}: a Lambda timeout is 1..900 seconds")
        if not 1 <= self.batch_size <= 10_000:
            raise ConfigurationError(f"JOBQUEUE_SQS_BATCH_SIZE={self.batch_size}: an SQS event source takes 1..10000 records")
        if not 0 <= self.batching_window <= 300:
            raise ConfigurationError(f"JOBQUEUE_SQS_BATCHING_WINDOW={self.batching_window}: an SQS event source waits 0..300 seconds")
        if not 0 <= self.reserve_ms < self.function_timeout * 1000:
            raise ConfigurationError(
                f"JOBQUEUE_SQS_RESERVE_MS={self.reserve_ms}: the time kept back must be 0 or more milliseconds and less than "
                f"the function's timeout ({self.function_timeout * 1000} ms), or no record would ever start"
            )
        return self

    def with_(self, **changes: Any) -> SQSSettings:
        return replace(self, **changes).checked()

    # -- names ------------------------------------------------------------------------------

    def queue_name(self, queue: str) -> str:
        """The SQS name of logical queue ``queue`` (dots become dashes: SQS allows letters, digits, - and _)."""
        name = f"{self.prefix}-{queue.replace('.', '-')}"
        if len(name) > 76:
            raise ConfigurationError(f"queue {queue!r}: SQS name {name!r} is longer than 76 characters (80 with '-dlq')")
        return name

    def dlq_name(self, queue: str) -> str:
        return self.queue_name(queue) + "-dlq"

    def configured_url(self, queue: str) -> str | None:
        """The URL given for ``queue`` by configuration, if any (else it is looked up by name)."""
        if queue in self.queue_urls:
            return self.queue_urls[queue]
        if self.queue_url and queue == self.default_queue:
            return self.queue_url
        return None


def _url_map(raw: str) -> dict[str, str]:
    """``{"email": "https://..."}`` or ``email=https://...,reports=https://...``."""
    raw = raw.strip()
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ConfigurationError(f"JOBQUEUE_SQS_QUEUE_URLS is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ConfigurationError("JOBQUEUE_SQS_QUEUE_URLS must map queue names to URLs")
        return data
    result = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, sep, url = part.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise ConfigurationError(f"JOBQUEUE_SQS_QUEUE_URLS: {part!r} is not 'queue=url'")
        result[name.strip()] = url.strip()
    return result
