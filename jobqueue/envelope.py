"""The job envelope: the JSON document every backend stores and carries. Never pickle."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobqueue.errors import UnsupportedEnvelope
from jobqueue.options import Backoff
from jobqueue.refs import GroupRef, JobRef

ENVELOPE_VERSION = 1
MAX_ENVELOPE_DEPTH = 64


class Envelope(BaseModel):
    """One job as it travels: what to run, with what, and under which policy.

    Unknown fields are ignored so an older worker can read a newer minor version;
    a newer *major* version (``v``) is refused by :func:`check_version`.
    """

    model_config = ConfigDict(extra="ignore")

    v: int = ENVELOPE_VERSION
    id: str = Field(min_length=1, max_length=512)
    name: str = Field(min_length=1)
    queue: str = Field(min_length=1)
    payload: dict[str, Any] = Field(default_factory=dict)
    attempt: int = Field(default=1, ge=1)
    max_attempts: int = Field(default=1, ge=1)
    backoff: Backoff = Backoff()
    priority: int = Field(default=5, ge=1, le=10)
    not_before: float | None = None
    timeout: float | None = Field(default=None, gt=0)
    enqueued_at: float = 0.0
    #: parents that must all complete before this job may run (it waits in ``waiting-children``)
    depends_on: list[JobRef] = Field(default_factory=list)
    #: a further enqueue with this key within ``idempotency_window`` seconds returns this job instead
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=400)
    idempotency_window: float | None = Field(default=None, gt=0)
    #: at most the queue's ``concurrency_per_key`` jobs with this key are active at once
    concurrency_key: str | None = Field(default=None, min_length=1, max_length=400)
    #: this job is member ``group_index`` of ``group``; its end is counted in the group's tally
    group: GroupRef | None = None
    group_index: int | None = Field(default=None, ge=0)
    #: this job is the callback of ``callback_of``: it runs once, after every member ended
    callback_of: GroupRef | None = None
    trace: dict[str, str] = Field(default_factory=dict)
    #: where to POST this job's completed/failed event (``_webhook=`` at enqueue); see jobqueue.webhooks
    webhook: str | None = None

    def encode(self) -> str:
        """Compact JSON text of the envelope. Fields that are None are left out: each defaults to None, so
        readers of this version and older ones decode the same envelope, from about half the bytes."""
        return self.model_dump_json(exclude_none=True)

    @property
    def ref(self) -> JobRef:
        """This job as a :class:`JobRef`."""
        return JobRef(queue=self.queue, id=self.id)

    def next_attempt(self, not_before: float | None) -> Envelope:
        """The envelope of the attempt after this one."""
        return self.model_copy(update={"attempt": self.attempt + 1, "not_before": not_before})


def nesting_depth(value: Any, limit: int) -> int:
    """How deep ``value`` nests, counting stops once past ``limit``."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def decode_envelope(raw: str | bytes | dict[str, Any], **override: Any) -> Envelope:
    """An :class:`Envelope` from JSON text or a dict, or :class:`UnsupportedEnvelope` naming what is wrong.

    ``override``: fields to set over the decoded ones (a backend's own count of attempts, say).
    """
    shallow = False
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsupportedEnvelope(f"message body is not UTF-8: {exc}") from None
    if isinstance(raw, str):
        # JSON cannot nest deeper than it has opening brackets: most envelopes need no walk
        shallow = raw.count("{") + raw.count("[") <= MAX_ENVELOPE_DEPTH
        try:
            raw.encode("utf-8")  # text decoded with surrogateescape from bytes that were not UTF-8
        except UnicodeEncodeError as exc:
            raise UnsupportedEnvelope(f"message body is not UTF-8: {exc}") from None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise UnsupportedEnvelope(f"message body is not JSON: {str(exc)[:200]}") from None
    else:
        data = raw
    if not isinstance(data, dict):
        raise UnsupportedEnvelope(f"a job envelope is a JSON object, not {type(data).__name__}")
    if not shallow and nesting_depth(data, MAX_ENVELOPE_DEPTH) > MAX_ENVELOPE_DEPTH:
        raise UnsupportedEnvelope(f"message nests deeper than {MAX_ENVELOPE_DEPTH} levels")
    if override:
        data = {**data, **override}
    try:
        envelope = Envelope.model_validate(data)
    except ValidationError as exc:
        raise UnsupportedEnvelope(f"not a job envelope: {_short(exc)}") from None
    return envelope


def check_version(envelope: Envelope) -> None:
    """Raise :class:`UnsupportedEnvelope` for an envelope of a newer major version than this code reads."""
    if envelope.v > ENVELOPE_VERSION:
        raise UnsupportedEnvelope(
            f"job {envelope.id!r} has envelope version {envelope.v}; this jobqueue reads version "
            f"{ENVELOPE_VERSION} and older: upgrade the worker"
        )


def _short(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()[:5]]
    return "; ".join(parts)
