from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from pydantic import BaseModel

from jobqueue import ConfigurationError, FakeClock, InvalidPayload, JobContext, JobQueue, JobState, UnknownJob
from jobqueue.envelope import decode_envelope
from jobqueue.errors import UnsupportedEnvelope


class Welcome(BaseModel):
    user_email: str
    user_name: str


def make_app(backend: str = "memory") -> JobQueue:
    return JobQueue(backend=backend, clock=FakeClock())


def test_payload_as_model_dict_or_fields() -> None:
    app = make_app()

    @app.job(queue="email", priority=1)
    def send(payload: Welcome, ctx: JobContext) -> dict[str, str]:
        return {"to": payload.user_email}

    a = send.enqueue(Welcome(user_email="a@b.c", user_name="A"))
    b = send.enqueue({"user_email": "b@b.c", "user_name": "B"})
    c = send.enqueue(user_email="c@b.c", user_name="C", _delay=30, _job_id="welcome:42")
    assert c.id == "welcome:42"
    assert [h.status().payload["user_email"] for h in (a, b, c)] == ["a@b.c", "b@b.c", "c@b.c"]
    assert c.status().state is JobState.DELAYED and c.status().priority == 1


def test_job_options_override_queue_defaults() -> None:
    app = make_app()
    app.queue("reports", attempts=5, timeout="2m", priority=7)

    @app.job(queue="reports", attempts=2)
    def report(payload: Welcome) -> None: ...

    envelope = report.build_envelope({"user_email": "x", "user_name": "y"}, {})
    assert envelope.max_attempts == 2 and envelope.timeout == 120 and envelope.priority == 7
    envelope = report.build_envelope({"user_email": "x", "user_name": "y"}, {"_attempts": 9, "_priority": 2, "_timeout": 5})
    assert (envelope.max_attempts, envelope.priority, envelope.timeout) == (9, 2, 5)


def test_bad_enqueue_options() -> None:
    app = make_app()

    @app.job
    def job(payload: Welcome) -> None: ...

    fields = {"user_email": "x", "user_name": "y"}
    with pytest.raises(TypeError, match="unknown enqueue option.*_dealy"):
        job.enqueue(**fields, _dealy=3)
    with pytest.raises(ConfigurationError, match="_delay"):
        job.enqueue(**fields, _delay=-1)
    with pytest.raises(ConfigurationError, match="priority"):
        job.enqueue(**fields, _priority=0)
    with pytest.raises(ConfigurationError, match="_attempts"):
        job.enqueue(**fields, _attempts=0)
    with pytest.raises(TypeError, match="not both"):
        job.enqueue(Welcome(**fields), user_name="z")
    assert job.enqueue(**fields, _delay=timedelta(minutes=1)).status().state is JobState.DELAYED


def _int_payload(payload: int, ctx: JobContext) -> None: ...


def test_handler_signatures() -> None:
    app = make_app("sync")

    @app.job
    def payload_only(payload: Welcome) -> str:
        return payload.user_name

    @app.job
    def context_only(ctx: JobContext) -> int:
        return ctx.attempt

    assert payload_only.enqueue(user_email="e", user_name="N").result() == "N"
    assert context_only.enqueue().result() == 1
    with pytest.raises(InvalidPayload, match="takes no payload"):
        context_only.enqueue({"unexpected": 1})
    with pytest.raises(ConfigurationError, match="pydantic model"):
        app.job(name="typed_wrong")(_int_payload)
    untyped = app.job(name="untyped")(lambda payload, ctx: payload)
    assert untyped.enqueue().result() is None
    with pytest.raises(ConfigurationError, match="already registered"):
        app.job(name="payload_only")(lambda ctx: None)


def test_enqueue_by_name_for_the_cli() -> None:
    app = make_app("sync")

    @app.job
    def greet(payload: Welcome) -> str:
        return f"hi {payload.user_name}"

    assert app.enqueue("greet", {"user_email": "e", "user_name": "Bo"}).result() == "hi Bo"
    with pytest.raises(UnknownJob, match="no job named 'gret'.*greet"):
        app.enqueue("gret", {})


def test_progress_bounds() -> None:
    app = make_app("sync")

    @app.job(attempts=1)
    def bad_progress(ctx: JobContext) -> None:
        ctx.progress(1e12)

    status = bad_progress.enqueue().status()
    assert status.state is JobState.FAILED and "progress must be from 0 to 100" in status.error.message


def test_sync_backend_in_a_running_loop() -> None:
    app = make_app("sync")
    seen: list[str] = []

    @app.job
    async def notify(ctx: JobContext) -> str:
        await asyncio.sleep(0.01)
        seen.append(ctx.job_id)
        return "sent"

    @app.job
    def plain(ctx: JobContext) -> str:
        return "plain"

    async def scenario() -> None:
        handle = notify.enqueue()  # scheduled on this loop, not blocking it
        assert handle.status().state is JobState.WAITING
        assert await handle.aresult(timeout=5) == "sent"
        awaited = await notify.aenqueue()  # awaited inline
        assert (await awaited.astatus()).state is JobState.COMPLETED
        assert (await plain.aenqueue()).status().result == "plain"

    asyncio.run(scenario())
    assert len(seen) == 2


def test_memory_backend_runs_async_jobs_on_a_loop() -> None:
    app = make_app()

    @app.job
    async def later(ctx: JobContext) -> int:
        return ctx.attempt

    handles = [later.enqueue() for _ in range(3)]
    assert asyncio.run(app.backend.arun_until_empty()) == 3  # type: ignore[attr-defined]
    assert [h.result() for h in handles] == [1, 1, 1]


def test_decode_envelope_rejects_garbage_clearly() -> None:
    cases = {
        b"\xff\xfe": "not UTF-8",
        "not json": "not JSON",
        "[1, 2]": "JSON object",
        '{"id": "x"}': "not a job envelope",
        "[" * 5000 + "]" * 5000: "not JSON|JSON object",
        '{"a":' * 100 + "1" + "}" * 100: "nests deeper",
    }
    for raw, message in cases.items():
        with pytest.raises(UnsupportedEnvelope, match=message):
            decode_envelope(raw)
    envelope = decode_envelope('{"id": "1", "name": "n", "queue": "q", "future_field": true}')
    assert envelope.id == "1" and envelope.v == 1
