"""A registered job: the handler, its payload model, its options, and how to enqueue it."""

from __future__ import annotations

import inspect
import json
import math
import os
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, from_json

from jobqueue import telemetry
from jobqueue.envelope import MAX_ENVELOPE_DEPTH, Envelope, nesting_depth
from jobqueue.errors import ConfigurationError, InvalidPayload, JobNotFound, PayloadTooLarge
from jobqueue.options import Backoff, Duration, QueueConfig, check_priority, parse_duration
from jobqueue.redaction import redact, secret_paths_of
from jobqueue.refs import JobRef

if TYPE_CHECKING:
    from jobqueue.app import JobQueue
    from jobqueue.handle import JobHandle
    from jobqueue.workflows import Signature

R = TypeVar("R")

ENQUEUE_OPTIONS = frozenset({
    "_delay", "_priority", "_attempts", "_backoff", "_job_id", "_timeout", "_webhook",
    "_depends_on", "_idempotency_key", "_idempotency_window", "_concurrency_key",
})


def new_job_id() -> str:
    """A fresh random job id: a version-4 UUID as 32 hex digits (what ``uuid.uuid4().hex`` gives, at a fifth of its cost)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


class ValidatedPayload(dict[str, Any]):
    """An envelope's payload (JSON data) that still carries the model instance it was made from, once.

    A job run in the process that enqueued it (the sync and memory backends, the inline fallback) takes
    that instance instead of validating the payload again (:meth:`JobDefinition.validate_payload`). It is
    handed over once: a retry validates the data afresh, so what an attempt did to its model never leaks
    into the next one. Everywhere else it is a plain dict; it never leaves the process as anything else.
    """

    __slots__ = ("_model",)

    def __init__(self, data: dict[str, Any], model: BaseModel) -> None:
        super().__init__(data)
        self._model: BaseModel | None = model

    def take_model(self) -> BaseModel | None:
        """The model instance, the first time only."""
        model, self._model = self._model, None
        return model


class JobDefinition(Generic[R]):
    """What ``@app.job`` returns. Calling it calls the function directly (handy in tests)."""

    def __init__(
        self,
        app: JobQueue,
        func: Callable[..., R],
        *,
        name: str,
        queue: str,
        priority: int | None = None,
        attempts: int | None = None,
        backoff: Backoff | None = None,
        timeout: Duration | None = None,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        secret_fields: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.func = func
        self.name = name
        self.queue = queue
        self.priority = None if priority is None else check_priority(priority)
        if attempts is not None and attempts < 1:
            raise ConfigurationError(f"job {name!r}: attempts must be >= 1, not {attempts}")
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = None if timeout is None else parse_duration(timeout, what=f"job {name!r} timeout")
        self.retry_on = retry_on
        self.is_async = inspect.iscoroutinefunction(func)
        self.payload_model, self.takes_payload, self.takes_context = _inspect_signature(func, name)
        if isinstance(secret_fields, str):
            secret_fields = [secret_fields]
        #: dotted payload paths shown as "[redacted]" in the dashboard, the admin API, webhooks and logs
        self.secret_fields: frozenset[str] = frozenset(secret_fields) | secret_paths_of(self.payload_model)
        self.__doc__ = func.__doc__
        self.__name__ = getattr(func, "__name__", name)
        self.__wrapped__ = func

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        return self.func(*args, **kwargs)

    def invoke(self, payload: BaseModel | None, ctx: Any) -> Any:
        """Call the handler the way its signature asks (a coroutine for ``async def``)."""
        if not self.takes_payload:
            return self.func(ctx)
        return self.func(payload, ctx) if self.takes_context else self.func(payload)

    def __repr__(self) -> str:
        return f"<job {self.name!r} on queue {self.queue!r}>"

    # -- payloads -----------------------------------------------------------------

    def validate_payload(self, data: BaseModel | Mapping[str, Any] | None) -> BaseModel | None:
        """The payload as its model, or :class:`InvalidPayload` naming the job and the fields."""
        model = self.payload_model
        if model is None:
            if data:
                raise InvalidPayload(self.name, [], "this job takes no payload")
            return None
        if type(data) is not dict:  # a stored payload (the worker's case) is a plain dict: none of these apply
            if isinstance(data, model):
                return data
            if type(data) is ValidatedPayload:
                handed = data.take_model()
                if type(handed) is model:
                    return handed
            if isinstance(data, BaseModel):
                data = data.model_dump(mode="json")
        try:
            # what model.model_validate does, without its keyword plumbing (a third of its cost on a small model)
            validated: BaseModel = model.__pydantic_validator__.validate_python(data if data is not None else {})
            return validated
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors())
            raise InvalidPayload(self.name, [dict(e) for e in exc.errors(include_url=False)], detail) from None

    def redacted(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``payload`` as it may be shown: secret fields replaced by ``"[redacted]"`` (the stored job keeps them)."""
        return redact(payload, self.secret_fields) if self.secret_fields else dict(payload)

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is one this job retries (its ``retry_on``)."""
        return isinstance(exc, self.retry_on)

    # -- envelopes ------------------------------------------------------------------

    def build_envelope(self, payload: BaseModel | Mapping[str, Any] | None, options: Mapping[str, Any]) -> Envelope:
        """Validate ``payload`` and resolve options against the queue's defaults.

        The payload is validated and encoded once; the envelope is then built without a second validation
        of what was just checked (pydantic still checks the envelope as a whole, cheaply).
        """
        if options:
            _refuse_unknown(options, self.name)
        model = self.validate_payload(payload)
        data = self._checked_payload(model)
        if model is not None and model is not payload:  # a model made here, not the caller's: hand it to an in-process attempt
            data = ValidatedPayload(data, model)
        queue: QueueConfig = self.app.queue_config(self.queue)
        now = self.app.clock.now()
        if not options:
            envelope = Envelope(
                id=new_job_id(), name=self.name, queue=self.queue, attempt=1, max_attempts=self.attempts or queue.attempts,
                backoff=self.backoff or queue.backoff, priority=self.priority or queue.priority,
                timeout=self.timeout or queue.timeout, enqueued_at=now, trace=telemetry.inject(),
            )
        else:
            envelope = self._envelope_with_options(queue, now, options)
        envelope.payload = data  # already checked: no second validation (and the model hand-off survives)
        return envelope

    def _envelope_with_options(self, queue: QueueConfig, now: float, options: Mapping[str, Any]) -> Envelope:
        delay = options.get("_delay")
        delay_seconds = 0.0 if delay is None else _delay_seconds(delay)
        attempts = options.get("_attempts", self.attempts or queue.attempts)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            raise ConfigurationError(f"_attempts must be an integer >= 1, not {attempts!r}")
        backoff = options.get("_backoff", self.backoff or queue.backoff)
        if not isinstance(backoff, Backoff):
            raise ConfigurationError(f"_backoff must be a Backoff, not {backoff!r}")
        timeout = options.get("_timeout")
        job_id = options.get("_job_id") or new_job_id()
        if not isinstance(job_id, str) or len(job_id) > 512:
            raise ConfigurationError(f"_job_id must be a string of at most 512 characters, not {job_id!r}")
        webhook = options.get("_webhook")
        if webhook is not None and (not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))):
            raise ConfigurationError(f"_webhook must be an http:// or https:// URL, not {webhook!r}")
        if webhook is not None:
            self.app.webhooks.check_url(webhook)  # JOBQUEUE_WEBHOOK_ALLOW: refused here, early, as well as where it is sent
        window = options.get("_idempotency_window")
        return Envelope(
            id=job_id,
            name=self.name,
            queue=self.queue,
            attempt=1,
            max_attempts=attempts,
            backoff=backoff,
            priority=check_priority(options.get("_priority", self.priority or queue.priority)),
            not_before=now + delay_seconds if delay_seconds > 0 else None,
            timeout=parse_duration(timeout, what="_timeout") if timeout is not None else (self.timeout or queue.timeout),
            enqueued_at=now,
            trace=telemetry.inject(),
            webhook=webhook,
            depends_on=self._parents(options.get("_depends_on")),
            idempotency_key=_key(options.get("_idempotency_key"), "_idempotency_key"),
            idempotency_window=None if window is None else parse_duration(window, what="_idempotency_window") or None,
            concurrency_key=_key(options.get("_concurrency_key"), "_concurrency_key"),
        )

    def _parents(self, parents: Any) -> list[JobRef]:
        """``_depends_on``: handles, :class:`JobRef`s, statuses, or ids (looked up in every queue)."""
        if parents is None:
            return []
        if isinstance(parents, (str, bytes)) or not isinstance(parents, Iterable):
            parents = [parents]
        refs: list[JobRef] = []
        for parent in parents:
            if isinstance(parent, JobRef):
                ref = parent
            elif isinstance(parent, str):
                status = self.app.get(parent)
                if status is None:
                    raise JobNotFound(f"_depends_on: no job with id {parent!r} is known (never enqueued, or no longer retained)")
                ref = JobRef(queue=status.queue, id=parent)
            elif isinstance(getattr(parent, "id", None), str) and isinstance(getattr(parent, "queue", None), str):
                ref = JobRef(queue=parent.queue, id=parent.id)
            else:
                raise ConfigurationError(f"_depends_on takes job handles, JobRefs or job ids, not {parent!r}")
            if ref not in refs:
                refs.append(ref)
        return refs

    def _checked_payload(self, model: BaseModel | None) -> dict[str, Any]:
        """The payload as JSON data, within the size and nesting bounds every backend can carry.

        One encoding gives both the size and the data; the nesting is walked only when the text has more
        brackets than the bound (JSON cannot nest deeper than it has opening brackets).
        """
        if model is None:
            return {}
        try:
            text = model.model_dump_json()
        except PydanticSerializationError as exc:  # nested past pydantic's own depth limit, or a value JSON cannot hold
            if "depth" in str(exc):
                raise PayloadTooLarge(self.name, f"payload nests deeper than {MAX_ENVELOPE_DEPTH - 2} levels") from None
            raise InvalidPayload(self.name, [], f"payload is not JSON-serialisable: {exc}") from None
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
        limit = self.app.settings.max_payload_bytes
        if size > limit:
            raise PayloadTooLarge(self.name, f"payload is {size:,} bytes of JSON; the limit is {limit:,} (JOBQUEUE_MAX_PAYLOAD_BYTES)")
        bound = MAX_ENVELOPE_DEPTH - 2
        if text.count("{") + text.count("[") <= bound:
            shallow: dict[str, Any] = from_json(text)
            return shallow
        data: dict[str, Any] = json.loads(text)
        if nesting_depth(data, bound) > bound:
            raise PayloadTooLarge(self.name, f"payload nests deeper than {bound} levels")
        return data

    def _split(self, payload: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        options = {k: v for k, v in kwargs.items() if k.startswith("_")}
        fields = {k: v for k, v in kwargs.items() if not k.startswith("_")}
        if payload is not None and fields:
            raise TypeError(f"job {self.name!r}: pass the payload either as a model/dict or as keyword fields, not both")
        return (payload if payload is not None else fields or None), options

    def s(self, payload: BaseModel | Mapping[str, Any] | None = None, /, **kwargs: Any) -> Signature:
        """This job with a payload and options, to enqueue later as part of a group (``app.group``)."""
        from jobqueue.workflows import Signature

        data, options = self._split(payload, kwargs)
        _refuse_unknown(options, self.name)
        return Signature(self, data, options)

    # -- enqueue ----------------------------------------------------------------------

    def enqueue(self, payload: BaseModel | Mapping[str, Any] | None = None, /, **kwargs: Any) -> JobHandle:
        """Validate and enqueue one job; returns its handle. Options start with ``_``."""
        data, options = self._split(payload, kwargs)
        return self.app.submit([self.build_envelope(data, options)])[0]

    async def aenqueue(self, payload: BaseModel | Mapping[str, Any] | None = None, /, **kwargs: Any) -> JobHandle:
        """:meth:`enqueue` for asyncio code."""
        data, options = self._split(payload, kwargs)
        return (await self.app.asubmit([self.build_envelope(data, options)]))[0]

    def enqueue_many(self, payloads: Iterable[BaseModel | Mapping[str, Any]], **options: Any) -> list[JobHandle]:
        """Enqueue many jobs in one go. A dict item may carry its own ``_`` options (say ``_job_id``).

        Every payload is validated before any job is sent.
        """
        return self.app.submit(self._envelopes(payloads, options))

    async def aenqueue_many(self, payloads: Iterable[BaseModel | Mapping[str, Any]], **options: Any) -> list[JobHandle]:
        """:meth:`enqueue_many` for asyncio code."""
        return await self.app.asubmit(self._envelopes(payloads, options))

    def _envelopes(self, payloads: Iterable[BaseModel | Mapping[str, Any]], options: Mapping[str, Any]) -> list[Envelope]:
        envelopes = []
        for item in payloads:
            own: Mapping[str, Any] = options
            if isinstance(item, Mapping) and any(k.startswith("_") for k in item):
                own = {**options, **{k: v for k, v in item.items() if k.startswith("_")}}
                item = {k: v for k, v in item.items() if not k.startswith("_")}
            envelopes.append(self.build_envelope(item, own))
        return envelopes


def _refuse_unknown(options: Mapping[str, Any], job: str) -> None:
    unknown = set(options) - ENQUEUE_OPTIONS
    if unknown:
        raise TypeError(f"unknown enqueue option(s) {', '.join(sorted(unknown))} for job {job!r}; known: {', '.join(sorted(ENQUEUE_OPTIONS))}")


def _key(value: Any, option: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 400:
        raise ConfigurationError(f"{option} must be a non-empty string of at most 400 characters, not {value!r}")
    return value


def _delay_seconds(delay: Any) -> float:
    if isinstance(delay, timedelta):
        seconds = delay.total_seconds()
    elif isinstance(delay, (int, float)) and not isinstance(delay, bool):
        seconds = float(delay)
    else:
        return parse_duration(delay, what="_delay")
    if seconds < 0 or not math.isfinite(seconds):
        raise ConfigurationError(f"_delay must be >= 0 seconds, not {delay!r}")
    return seconds


def _inspect_signature(func: Callable[..., Any], name: str) -> tuple[type[BaseModel] | None, bool, bool]:
    """The payload model (first parameter's annotation), whether the handler takes a payload and a context."""
    params = [p for p in inspect.signature(func).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not params or len(params) > 2:
        raise ConfigurationError(f"job {name!r}: a handler takes (payload) or (payload, ctx), got {len(params)} parameter(s)")
    try:
        hints = typing.get_type_hints(func)
    except Exception as exc:  # unresolvable forward references
        raise ConfigurationError(f"job {name!r}: cannot resolve the handler's annotations: {exc}") from None
    annotation = hints.get(params[0].name)
    from jobqueue.context import JobContext

    if annotation is JobContext and len(params) == 1:
        return None, False, True
    model: type[BaseModel] | None
    if annotation is None:  # an unannotated first parameter: a job that takes no payload (it receives None)
        model = None
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        model = annotation
    else:
        raise ConfigurationError(f"job {name!r}: the payload parameter must be annotated with a pydantic model, not {annotation!r}")
    return model, True, len(params) == 2
