"""Between job hashes in Redis and the core's models."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jobqueue.envelope import MAX_ENVELOPE_DEPTH, Envelope, decode_envelope
from jobqueue.options import QueueConfig
from jobqueue.refs import JobRef
from jobqueue.runner import Outcome
from jobqueue.states import JobState
from jobqueue.status import ErrorInfo, JobStatus


def encode_ref(ref: JobRef) -> str:
    """A job reference as the scripts store it (members of ``deps:<id>`` and ``dependents:<id>``)."""
    return json.dumps([ref.queue, ref.id], separators=(",", ":"))


def lease_ms(deadline: float) -> str:
    """A lease deadline (seconds) as the active set scores it: whole milliseconds (see ``lease_ms`` in ``_lib.lua``)."""
    return str(int(deadline * 1000))


def num(value: str | None) -> float | None:
    return None if value is None or value == "" else float(value)


def retention_spec(config: QueueConfig) -> str:
    """The queue's retention as the scripts read it: ``"ccount,cage,fcount,fage"``."""

    def part(value: float | None) -> str:
        return "" if value is None else repr(value)

    c, f = config.retention.completed, config.retention.failed
    return ",".join([part(c.max_count), part(c.max_age), part(f.max_count), part(f.max_age)])


def envelope_of(job_id: str, queue: str, raw: str, attempt: str | None) -> Envelope:
    """The envelope a worker runs: the stored JSON with the attempt counted in Redis.

    The usual envelope (shallow: fewer opening brackets than the depth limit) is parsed and validated in one
    step by pydantic; anything it refuses goes through :func:`decode_envelope`, which says what is wrong in the
    words the worker records (and is the one path for a deep one, which it walks).
    """
    count = int(attempt) if attempt else None
    if (count is None or count >= 1) and raw.count("{") + raw.count("[") <= MAX_ENVELOPE_DEPTH:
        try:
            envelope: Envelope = _validate_json(raw)  # Envelope.model_validate_json, without its keyword plumbing
        except ValueError:  # pydantic's ValidationError among them; the slow path below says what is wrong
            envelope = _decoded(raw, count)
        else:
            if count is not None and envelope.attempt != count:
                envelope = envelope.model_copy(update={"attempt": count})
    else:
        envelope = _decoded(raw, count)
    if envelope.id != job_id or envelope.queue != queue:
        envelope = envelope.model_copy(update={"id": job_id, "queue": queue})
    return envelope


_validate_json = Envelope.__pydantic_validator__.validate_json


def _decoded(raw: str, attempt: int | None) -> Envelope:
    """``raw`` as an :class:`Envelope` through :func:`decode_envelope` (``attempt``: Redis's count, over the
    stored one), or UnsupportedEnvelope naming what is wrong."""
    return decode_envelope(raw, attempt=attempt) if attempt is not None else decode_envelope(raw)


def status_of(data: Mapping[str, str], queue: str, job_id: str) -> JobStatus | None:
    """A :class:`JobStatus` from a job hash (None for an empty or unreadable hash)."""
    if not data or "state" not in data:
        return None
    raw_env = data.get("env") or "{}"
    try:
        raw_env.encode("utf-8")  # bytes that were not UTF-8 (decoded to lone surrogates): unreadable, not shown
        env: dict[str, Any] = json.loads(raw_env)
    except (ValueError, RecursionError):
        env = {}
    if not isinstance(env, dict):
        env = {}
    error = None
    if data.get("error"):
        try:
            error = ErrorInfo.model_validate_json(data["error"])
        except ValueError:
            error = ErrorInfo(type="Unknown", message=data["error"][:4000])
    result = None
    if data.get("result"):
        result = json.loads(data["result"])
    payload = env.get("payload")
    return JobStatus(
        id=job_id,
        name=str(env.get("name") or "?"),
        queue=queue,
        state=JobState(data["state"]),
        progress=num(data.get("progress")) or 0.0,
        attempt=int(data.get("attempt") or env.get("attempt") or 1),
        max_attempts=int(data.get("max_attempts") or env.get("max_attempts") or 1),
        priority=int(data.get("priority") or env.get("priority") or 5),
        payload=payload if isinstance(payload, dict) else {},
        result=result,
        error=error,
        created_at=num(data.get("created_at")) or 0.0,
        not_before=num(data.get("not_before")),
        started_at=num(data.get("started_at")),
        finished_at=num(data.get("finished_at")),
        cancel_requested=data.get("cancel") == "1",
    )


def expired(status: JobStatus, config: QueueConfig, now: float) -> bool:
    """Whether a finished job is past its retention age (it counts as gone even before a sweep)."""
    if not status.state.is_finished or status.finished_at is None:
        return False
    rule = config.retention_for(status.state.value)
    return rule.max_age is not None and now - status.finished_at > rule.max_age


_COMPLETED = JobState.COMPLETED
_DELAYED = JobState.DELAYED
_SMALL = [str(n) for n in range(100)]  # attempt counts as text, without a str() call per outcome


def outcome_args(job_id: str, token: str, envelope: Envelope, outcome: Outcome) -> list[str]:
    """What ``finish.lua`` is told of one outcome: id, token, outcome, envelope json|'', attempt, not_before|'',
    result json|'', error json|'' (the cycle script's ARGV per outcome; see :func:`finish_args`)."""
    state = outcome.state
    error = "" if outcome.error is None else outcome.error.model_dump_json()
    if state is _COMPLETED:
        result = outcome.result
        attempt = envelope.attempt
        return [job_id, token, "completed", "", _SMALL[attempt] if 0 <= attempt < 100 else str(attempt), "",
                "null" if result is None else json.dumps(result), error]
    new_env = ""
    attempt_text = str(envelope.attempt)
    not_before = ""
    if state is _DELAYED:
        nxt = envelope.next_attempt(outcome.retry_at)
        new_env = nxt.encode()
        attempt_text = str(nxt.attempt)
        not_before = "" if outcome.retry_at is None else repr(outcome.retry_at)
    return [job_id, token, state.value, new_env, attempt_text, not_before, "", error]


def finish_args(
    job_id: str, token: str, now: float, envelope: Envelope, outcome: Outcome, retention: str, capped: bool = False,
) -> list[str]:
    """The ARGV of ``finish.lua`` for ``outcome`` (``capped``: the queue has a concurrency cap, so a finish wakes a
    worker that held back for it)."""
    one = outcome_args(job_id, token, envelope, outcome)
    return [one[0], one[1], repr(now), *one[2:], retention, "1" if capped else ""]
