"""The enqueue path validates and encodes the payload once; an in-process attempt gets the validated model."""

from __future__ import annotations

import uuid

import pytest
from pydantic import BaseModel

from jobqueue import JobContext, JobQueue, PayloadTooLarge, Retry, Settings
from jobqueue.job import ValidatedPayload, new_job_id


class Box(BaseModel):
    items: list[int] = []


class Deep(BaseModel):
    value: object = None


def test_job_ids_are_version_4_uuids() -> None:
    ids = {new_job_id() for _ in range(200)}
    assert len(ids) == 200
    for job_id in ids:
        assert uuid.UUID(hex=job_id).version == 4 and uuid.UUID(hex=job_id).hex == job_id


def test_a_sync_attempt_gets_the_model_validated_at_enqueue_and_a_retry_a_fresh_one() -> None:
    app = JobQueue(backend="sync", settings=Settings())
    app.queue("q", attempts=2)
    seen: list[Box] = []

    @app.job(queue="q")
    def fill(payload: Box, ctx: JobContext) -> None:
        seen.append(payload)
        payload.items.append(99)  # an attempt that changes its payload, then fails
        if ctx.attempt == 1:
            raise Retry(delay=0)

    validated: list[BaseModel] = []
    original = fill.validate_payload

    def spy(data: object) -> BaseModel | None:
        model = original(data)  # type: ignore[arg-type]
        validated.append(model)  # type: ignore[arg-type]
        return model

    fill.validate_payload = spy  # type: ignore[method-assign]
    handle = fill.enqueue(items=[1])
    assert handle.status().state.value == "completed"  # type: ignore[union-attr]
    assert seen[0] is validated[0]  # attempt 1 ran on the model made at enqueue: validated once
    assert seen[1] is not seen[0] and seen[1].items == [1, 99]  # the retry validated the stored data afresh
    assert handle.status().payload == {"items": [1]}  # type: ignore[union-attr]


def test_a_callers_own_model_is_never_handed_to_the_attempt() -> None:
    app = JobQueue(backend="memory", settings=Settings())

    @app.job(queue="q")
    def job(payload: Box) -> None: ...

    mine = Box(items=[1])
    envelope = job.build_envelope(mine, {})
    assert type(envelope.payload) is dict and envelope.payload == {"items": [1]}
    built = job.build_envelope({"items": [2]}, {})
    assert type(built.payload) is ValidatedPayload and job.validate_payload(built.payload) == Box(items=[2])
    assert built.payload.take_model() is None  # handed over once


def test_size_and_depth_limits_still_hold() -> None:
    app = JobQueue(backend="memory", settings=Settings(max_payload_bytes=1024))

    @app.job(queue="q")
    def deep(payload: Deep) -> None: ...

    @app.job(queue="q")
    def big(payload: Box) -> None: ...

    with pytest.raises(PayloadTooLarge, match="1,024"):
        big.enqueue(items=list(range(1000)))
    nested: object = 1
    for _ in range(70):
        nested = [nested]
    with pytest.raises(PayloadTooLarge, match="nests deeper"):
        deep.enqueue(value=nested)
    roomy = JobQueue(backend="memory", settings=Settings())
    wide = roomy.job(name="deep", queue="q")(deep.func)
    assert wide.enqueue(value={"x": [[1]] * 40}).created  # more brackets than the bound, little depth: walked, accepted
