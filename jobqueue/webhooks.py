"""Webhooks: a signed JSON POST when a job completes or fails (optionally on each failed attempt).

Where events go, first match wins: the job's ``_webhook=`` at enqueue, its queue's ``webhook=``,
then ``JOBQUEUE_WEBHOOK_URL``. Each delivery is itself a job, ``jobqueue.webhook`` on the internal queue
``jobqueue-webhooks``: it retries with backoff, it is enqueued after the job's outcome is stored (so it
never delays the job's completion), and on SQS it is in the queue before the Lambda returns (so it
survives the function being frozen). On the ``sync`` backend, which runs jobs at enqueue, deliveries
are enqueued from a background thread so a slow receiver never slows the caller.

Signing (``JOBQUEUE_WEBHOOK_SECRET``): ``X-Jobqueue-Signature: v1=<hex HMAC-SHA256(secret, f"{ts}." + body)>``
with ``X-Jobqueue-Timestamp: <ts>`` (Unix seconds). A receiver checks it with :func:`verify_request`::

    from jobqueue.webhooks import verify_request
    if not verify_request(request.headers, await request.body(), secret):
        return Response(status_code=401)
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import logging
import queue as queue_module
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from jobqueue.context import JobContext
from jobqueue.errors import ConfigurationError
from jobqueue.hooks import JobEvent
from jobqueue.job import JobDefinition
from jobqueue.options import Backoff, Retention
from jobqueue.webhook_allow import AllowList

if TYPE_CHECKING:
    from jobqueue.app import JobQueue
    from jobqueue.envelope import Envelope

logger = logging.getLogger("jobqueue.webhooks")

WEBHOOK_QUEUE = "jobqueue-webhooks"  # a name SQS accepts (no dots)
WEBHOOK_JOB = "jobqueue.webhook"
SIGNATURE_HEADER = "X-Jobqueue-Signature"
TIMESTAMP_HEADER = "X-Jobqueue-Timestamp"
EVENT_HEADER = "X-Jobqueue-Event"
DELIVERY_HEADER = "X-Jobqueue-Delivery"
DEFAULT_TOLERANCE = 300.0

EVENT_TYPES = {"job_completed": "job.completed", "job_failed": "job.failed", "attempt_failed": "job.attempt_failed"}


class Delivery(BaseModel):
    """The payload of a delivery job: where to POST, and the event."""

    url: str
    event: dict[str, Any]


class DeliveryFailed(Exception):
    """The receiver could not be reached or answered 5xx, 408 or 429: the delivery is retried."""


class DeliveryRejected(Exception):
    """The receiver answered another 4xx (or a redirect): retrying would not help."""


# -- signing and verifying ------------------------------------------------------------------------------


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The signature header value of ``body`` sent at ``timestamp``: ``v1=<hex>``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(
    body: bytes, signature: str | None, timestamp: str | int | None, secret: str,
    *, tolerance: float = DEFAULT_TOLERANCE, now: float | None = None,
) -> bool:
    """True if ``signature`` signs ``body`` and ``timestamp`` with ``secret``, and the timestamp is recent.

    ``tolerance`` bounds the age (and skew) of the timestamp in seconds, against replays.
    """
    if not signature or timestamp is None or not secret:
        return False
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        return False
    expected = sign(body, secret, ts)
    return any(hmac.compare_digest(expected, part.strip()) for part in signature.split(","))


def verify_request(headers: Mapping[str, str], body: bytes, secret: str, *, tolerance: float = DEFAULT_TOLERANCE) -> bool:
    """:func:`verify_signature` reading the two headers from ``headers`` (any letter case)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return verify_signature(
        body, lowered.get(SIGNATURE_HEADER.lower()), lowered.get(TIMESTAMP_HEADER.lower()), secret, tolerance=tolerance
    )


# -- sending ------------------------------------------------------------------------------------------------


_opener: Any = None  # urllib's opener that follows no redirect, built by the first POST


def _no_redirect_opener() -> Any:
    global _opener
    if _opener is None:
        import urllib.request  # with http.client and ssl: only a process that sends webhooks pays for them

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        _opener = urllib.request.build_opener(NoRedirect)
    return _opener


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """POST ``body``; the status code, or :class:`DeliveryFailed` / :class:`DeliveryRejected`."""
    import urllib.error
    import urllib.request

    opener = _no_redirect_opener()
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code in (408, 425, 429):
            raise DeliveryFailed(f"{url} answered {exc.code}") from None
        raise DeliveryRejected(f"{url} answered {exc.code}; not retried") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"{url} could not be reached: {reason}") from None


class Webhooks:
    """An app's webhook settings and the delivery job; built by :class:`~jobqueue.JobQueue` itself."""

    #: seconds one POST may take
    timeout: float = 10.0

    def __init__(self, app: JobQueue) -> None:
        self.app = app
        self.url: str | None = app.settings.webhook_url
        self.secret: str | None = app.settings.webhook_secret
        self.attempt_failed: bool = app.settings.webhook_attempt_failed
        #: where jobs' own URLs may point besides the app's URLs (``JOBQUEUE_WEBHOOK_ALLOW``)
        self.allow = AllowList(app.settings.webhook_allow)
        self._pending: queue_module.Queue[Delivery] = queue_module.Queue()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._flush_at_exit = False

        def deliver(payload: Delivery, ctx: JobContext) -> dict[str, Any]:
            return self.deliver(payload, ctx.job_id)

        # registered on every app (a worker must know the job), but its queue is declared only once
        # webhooks are in use (see enable), so apps without webhooks keep exactly the queues they declare
        app.registry[WEBHOOK_JOB] = JobDefinition(
            app, deliver, name=WEBHOOK_JOB, queue=WEBHOOK_QUEUE, attempts=8,
            backoff=Backoff.exponential(5.0, max_delay=3600.0, jitter=True), timeout=self.timeout * 3,
            retry_on=(DeliveryFailed,),
        )
        self.enabled = False
        if self.url:
            self.enable()
        for kind in EVENT_TYPES:
            app.hooks.add(kind, self._on_event, applies=self.applies_to)  # type: ignore[arg-type]

    def enable(self) -> None:
        """Declare the internal queue ``jobqueue-webhooks``, so workers serve it and ``jobqueue sam export`` creates it.

        Done by itself when a default URL is set (``JOBQUEUE_WEBHOOK_URL``, :meth:`configure`) or a queue
        names a ``webhook``; call it when only jobs carry ``_webhook=`` URLs.
        """
        if not self.enabled:
            self.enabled = True
            self.app.queue(WEBHOOK_QUEUE, retention=Retention(completed=(1000, "1d"), failed=(10000, "7d")))

    def configure(
        self, *, url: str | None = None, secret: str | None = None, attempt_failed: bool | None = None,
        allow: Iterable[str] | None = None,
    ) -> None:
        """Set the default URL, the signing secret, whether failed attempts send events, and the allow list, in code.

        ``allow`` replaces ``JOBQUEUE_WEBHOOK_ALLOW``: URL prefixes or host names jobs' own ``_webhook=`` URLs
        may point to (``*`` for any); see :mod:`jobqueue.webhook_allow`.
        """
        if allow is not None:
            try:
                self.allow = AllowList([allow] if isinstance(allow, str) else allow)
            except ValueError as exc:
                raise ConfigurationError(f"webhook allow list: {exc}") from None
        if url is not None:
            if not url.startswith(("http://", "https://")):
                raise ConfigurationError(f"webhook url must be http:// or https://, not {url!r}")
            self.url = url
            self.enable()
        if secret is not None:
            self.secret = secret
        if attempt_failed is not None:
            self.attempt_failed = attempt_failed

    def url_for(self, queue: str, job_url: str | None) -> str | None:
        """Where events of a job go: its own URL, its queue's, or the app's default."""
        if job_url:
            return job_url
        config = self.app.queues.get(queue)
        return (config.webhook if config is not None else None) or self.url

    def applies_to(self, envelope: Envelope) -> bool:
        """Whether events of ``envelope``'s job may go anywhere (else the hooks need not build them)."""
        return envelope.queue != WEBHOOK_QUEUE and bool(self.url_for(envelope.queue, envelope.webhook))

    def is_allowed(self, url: str) -> bool:
        """Whether events may be POSTed to ``url``: one of the app's own URLs, or matched by the allow list."""
        if url == self.url or any(config.webhook == url for config in self.app.queues.values()):
            return True
        return self.allow.permits(url)

    def check_url(self, url: str) -> None:
        """:class:`ConfigurationError` unless :meth:`is_allowed` (enqueue's early check of ``_webhook=``)."""
        if not self.is_allowed(url):
            raise ConfigurationError(_refusal(url))

    # -- from hooks to delivery jobs ---------------------------------------------------------------------

    def event_for(self, event: JobEvent) -> dict[str, Any]:
        """The JSON event of a hook's :class:`JobEvent` (secret payload fields redacted)."""
        env = event.envelope
        state = {"job_completed": "completed", "job_failed": "failed", "attempt_failed": "delayed"}[event.kind]
        error = None if event.error is None else {"type": event.error.type, "message": event.error.message}
        return {
            "id": uuid.uuid4().hex,
            "type": EVENT_TYPES[event.kind],
            "created_at": self.app.clock.now(),
            "job": {
                "id": env.id, "name": env.name, "queue": env.queue, "state": state,
                "attempt": env.attempt, "max_attempts": env.max_attempts,
                "payload": self.app.redacted_payload(env.name, env.payload),
                "result": event.result if event.kind == "job_completed" else None,
                "error": error, "retry_at": event.retry_at, "duration": event.duration,
            },
        }

    def _on_event(self, event: JobEvent) -> None:
        env = event.envelope
        if env.queue == WEBHOOK_QUEUE or (event.kind == "attempt_failed" and not self.attempt_failed):
            return
        url = self.url_for(env.queue, env.webhook)
        if not url:
            return
        if not self.is_allowed(url):  # an envelope written past enqueue's check
            logger.warning("job %s: no %s event sent: %s", env.id, EVENT_TYPES[event.kind], _refusal(url))
            return
        delivery = Delivery(url=url, event=self.event_for(event))
        if self.app.backend.name == "sync":
            self._pending.put(delivery)
            self._ensure_thread()
        else:
            self._enqueue(delivery)

    def _enqueue(self, delivery: Delivery) -> None:
        try:
            self.app.job_named(WEBHOOK_JOB).enqueue(delivery, _job_id=str(delivery.event["id"]))
        except Exception:
            logger.exception("could not enqueue the webhook delivery of %s for job %s", delivery.event["type"], delivery.event["job"]["id"])

    def _ensure_thread(self) -> None:
        with self._thread_lock:
            if not self._flush_at_exit:
                # a script that exits right after its jobs still sends their events (bounded wait)
                atexit.register(self.flush, 10.0)
                self._flush_at_exit = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._drain_pending, name="jobqueue-webhooks", daemon=True)
                self._thread.start()

    def _drain_pending(self) -> None:
        while True:
            try:
                delivery = self._pending.get(timeout=5.0)
            except queue_module.Empty:
                with self._thread_lock:
                    if self._pending.empty():
                        self._thread = None
                        return
                continue
            try:
                self._enqueue(delivery)
            finally:
                self._pending.task_done()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the background deliveries of the sync backend are enqueued (and so, on sync, run)."""
        deadline = time.monotonic() + timeout
        while self._pending.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    # -- the delivery job -----------------------------------------------------------------------------------

    def deliver(self, delivery: Delivery, delivery_id: str) -> dict[str, Any]:
        """POST one event; raises :class:`DeliveryFailed` (retried) or :class:`DeliveryRejected` (not).

        The URL is checked here, where it is sent, because a delivery job can be written to its queue directly.
        """
        if not self.is_allowed(delivery.url):
            raise DeliveryRejected(_refusal(delivery.url))
        body = json.dumps(delivery.event, separators=(",", ":"), sort_keys=True, default=str).encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "jobqueue-webhooks/1",
            EVENT_HEADER: str(delivery.event.get("type", "")),
            DELIVERY_HEADER: delivery_id,
            TIMESTAMP_HEADER: str(timestamp),
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(body, self.secret, timestamp)
        status = post(delivery.url, body, headers, self.timeout)
        return {"status": status, "url": delivery.url}


def _refusal(url: str) -> str:
    return (f"webhook URL {url!r} is not allowed: it is none of the app's own webhook URLs and matches no entry of "
            "JOBQUEUE_WEBHOOK_ALLOW (URL prefixes or host names; see jobqueue.webhook_allow)")
