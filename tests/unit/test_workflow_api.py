"""The workflow API's input checks and envelope fields, on the in-process backends (issue 7)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from jobqueue import CapabilityMissing, ConfigurationError, FakeClock, InvalidPayload, JobContext, JobNotFound, JobQueue, JobState
from jobqueue.backends.base import Capability
from jobqueue.backends.memory import MemoryBackend
from jobqueue.envelope import decode_envelope
from jobqueue.refs import GroupRef, JobRef
from jobqueue.workflows.store import GroupRecord, dependency_error, end_of


class Order(BaseModel):
    order_id: int


def make_app(backend: object = "memory") -> JobQueue:
    app = JobQueue(backend=backend, clock=FakeClock())  # type: ignore[arg-type]

    @app.job(queue="orders")
    def confirm(payload: Order) -> int:
        return payload.order_id

    return app


def test_workflow_fields_travel_in_the_envelope() -> None:
    app = make_app()
    parent = app.registry["confirm"].enqueue(order_id=1)
    envelope = app.registry["confirm"].build_envelope(
        {"order_id": 2},
        {"_depends_on": [parent], "_idempotency_key": "order:2", "_idempotency_window": "1h", "_concurrency_key": "org-1"},
    )
    again = decode_envelope(envelope.encode())
    assert again.depends_on == [JobRef(queue="orders", id=parent.id)]
    assert (again.idempotency_key, again.idempotency_window, again.concurrency_key) == ("order:2", 3600.0, "org-1")
    assert again.ref == JobRef(queue="orders", id=envelope.id)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"_depends_on": [42]}, "_depends_on takes job handles"),
        ({"_idempotency_key": ""}, "_idempotency_key must be a non-empty string"),
        ({"_concurrency_key": 7}, "_concurrency_key must be a non-empty string"),
        ({"_idempotency_window": "soon"}, "is not a duration"),
    ],
)
def test_bad_workflow_options_are_clear_errors(options: dict[str, object], message: str) -> None:
    app = make_app()
    with pytest.raises(ConfigurationError, match=message):
        app.registry["confirm"].enqueue(order_id=1, **options)
    assert app.stats("orders")[JobState.WAITING] == 0


def test_depending_on_an_unknown_id_is_job_not_found() -> None:
    app = make_app()
    with pytest.raises(JobNotFound, match="no job with id 'no-such-id'"):
        app.registry["confirm"].enqueue(order_id=1, _depends_on="no-such-id")


def test_a_signature_validates_its_payload_when_made() -> None:
    app = make_app()
    with pytest.raises(InvalidPayload):
        app.registry["confirm"].s(order_id="not a number")
    with pytest.raises(ConfigurationError, match="get their ids from the group"):
        app.registry["confirm"].s(order_id=1, _job_id="mine")
    with pytest.raises(TypeError, match="signatures"):
        app.group([{"order_id": 1}])  # type: ignore[list-item]


def test_a_bad_member_fails_the_group_before_anything_is_sent() -> None:
    app = make_app()
    good = app.registry["confirm"].s(order_id=1)
    with pytest.raises(InvalidPayload):
        app.group([good, app.registry["confirm"].s(order_id="x")])
    assert sum(app.stats("orders").counts.values()) == 0


def test_a_backend_without_workflows_refuses_them_by_name() -> None:
    class Plain(MemoryBackend):
        lacks = frozenset({Capability.DEPENDENCIES, Capability.GROUPS, Capability.IDEMPOTENCY_KEY, Capability.CONCURRENCY_KEY})

    app = make_app(Plain())
    confirm = app.registry["confirm"]
    parent = confirm.enqueue(order_id=1)
    for options, capability in [
        ({"_depends_on": [parent]}, "dependencies"),
        ({"_idempotency_key": "k"}, "idempotency_key"),
        ({"_concurrency_key": "k"}, "concurrency_key"),
    ]:
        with pytest.raises(CapabilityMissing, match=capability):
            confirm.enqueue(order_id=2, **options)
    with pytest.raises(CapabilityMissing, match="groups"):
        app.group([confirm.s(order_id=3)]).enqueue()
    assert app.stats("orders")[JobState.WAITING] == 1  # only the parent


def test_group_record_names_members_by_runs() -> None:
    record = GroupRecord(group=GroupRef(id="g", home="a"), size=5, member_runs=[("x", "a", 2), ("y", "b", 3)])
    assert [(name, str(ref)) for name, ref in record.members()] == [
        ("x", "a/g.0"), ("x", "a/g.1"), ("y", "b/g.2"), ("y", "b/g.3"), ("y", "b/g.4"),
    ]


def test_dependency_errors_name_the_parent() -> None:
    parent = JobRef(queue="q", id="p1")
    failed = dependency_error(parent, end_of(JobState.FAILED, "ValueError: boom"))
    assert failed.type == "DependencyFailed" and "'p1'" in failed.message and "boom" in failed.message
    cancelled = dependency_error(parent, end_of(JobState.CANCELLED))
    assert cancelled.type == "DependencyCancelled" and not cancelled.retryable
    assert end_of(JobState.COMPLETED, "ignored", {"r": 1}).result == {"r": 1}


def test_callback_only_context_helpers_say_what_is_wrong() -> None:
    app = JobQueue(backend="sync", clock=FakeClock())
    seen: list[str] = []

    @app.job(queue="q")
    def plain(ctx: JobContext) -> None:
        try:
            ctx.group_results()
        except RuntimeError as exc:
            seen.append(str(exc))
        seen.append(repr(ctx.parent_results))

    plain.enqueue()
    assert "is not the callback of a group" in seen[0] and seen[1] == "{}"
