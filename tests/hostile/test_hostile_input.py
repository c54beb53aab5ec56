"""Hostile and broken input: every case gets a clear error and leaves the queue intact."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from pydantic import BaseModel

from jobqueue import ConfigurationError, FakeClock, JobContext, JobQueue, JobState, PayloadTooLarge
from jobqueue.envelope import Envelope, decode_envelope
from jobqueue.errors import UnsupportedEnvelope


class Anything(BaseModel):
    data: Any = None


def make_app(**settings: Any) -> tuple[JobQueue, Any]:
    app = JobQueue.from_env({"JOBQUEUE_BACKEND": "memory"}, clock=FakeClock(), **settings)

    @app.job(queue="q")
    def take(payload: Anything, ctx: JobContext) -> str:
        return "ok"

    return app, take


def test_message_chosen_names_are_never_imported_or_evaluated() -> None:
    app, _ = make_app()
    hostile_names = ["os:system", "subprocess.run", "builtins.eval", "__import__('os').system('true')",
                     "jobqueue_hostile_probe:run", "pickle.loads"]
    before = set(sys.modules)
    for i, name in enumerate(hostile_names):
        app.submit([Envelope(id=f"h{i}", name=name, queue="q", payload={"data": "x"}, max_attempts=3)])
    app.backend.run_until_empty()  # type: ignore[attr-defined]
    for i in range(len(hostile_names)):
        status = app.get(f"h{i}")
        assert status is not None and status.state is JobState.FAILED
        assert "no handler is registered" in status.error.message and status.attempt == 1
    assert "jobqueue_hostile_probe" not in sys.modules
    assert {m for m in set(sys.modules) - before if m.split(".")[0] in {"subprocess", "pickle", "jobqueue_hostile_probe"}} == set()


def test_oversized_payload_is_refused_naming_the_job_and_size() -> None:
    app, take = make_app(max_payload_bytes=10_000)
    with pytest.raises(PayloadTooLarge, match=r"invalid payload for job 'take': payload is 20,0\d\d bytes of JSON; the limit is 10,000"):
        take.enqueue(data="x" * 20_000)
    assert sum(app.stats("q").counts.values()) == 0


def test_deeply_nested_payload_is_refused() -> None:
    app, take = make_app()
    nested: Any = "leaf"
    for _ in range(200):
        nested = [nested]
    with pytest.raises(PayloadTooLarge, match="nests deeper"):
        take.enqueue(data=nested)
    assert sum(app.stats("q").counts.values()) == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"\xc3\x28", "not UTF-8"), ("{", "not JSON"), ("null", "JSON object"), ('{"id": 5, "name": [], "queue": 1}', "not a job envelope"),
     ('{"id": "", "name": "take", "queue": "q"}', "id"), ('{"id": "a", "name": "take", "queue": "q", "attempt": -4}', "attempt")],
)
def test_malformed_messages_are_rejected_clearly(body: str | bytes, message: str) -> None:
    with pytest.raises(UnsupportedEnvelope, match=message):
        decode_envelope(body)


def test_huge_and_odd_progress_values_fail_the_attempt_clearly() -> None:
    app = JobQueue(backend="sync")
    values = [10**300, float("nan"), -1, "50", True]

    @app.job(attempts=1)
    def report(payload: Anything, ctx: JobContext) -> None:
        ctx.progress(payload.data)

    for value in values:
        status = report.enqueue(data=value).status()
        assert status.state is JobState.FAILED and "progress must be" in status.error.message


def test_negative_and_nonsense_delays() -> None:
    app, take = make_app()
    for delay in (-1, float("nan"), "yesterday", float("inf")):
        with pytest.raises(ConfigurationError, match="_delay"):
            take.enqueue(data=1, _delay=delay)
    assert sum(app.stats("q").counts.values()) == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [("JOBQUEUE_DEFAULT_ATTEMPTS", "three"), ("JOBQUEUE_MAX_PAYLOAD_BYTES", "1e99x"), ("JOBQUEUE_DEFAULT_TIMEOUT", "forever"),
     ("JOBQUEUE_FALLBACK", "pickle")],
)
def test_wrong_types_in_environment_variables(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        JobQueue.from_env({variable: value})
