"""Workflows through the Lambda handler, fed events made from `sam local generate-event sqs receive-message`:
follow-ups after a crash, released children that were never sent, and the AWS requests each step costs."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from jobqueue import JobQueue, JobState
from jobqueue_sqs.store import job_key
from tests.sqs import jobs_app
from tests.sqs.events import Context, failures, receive_event
from tests.sqs.request_counter import RequestCounter

QUEUE = jobs_app.QUEUE


def handle(app: JobQueue, event: dict, context: Context | None = None) -> dict:
    return app.backend.worker.handle(event, context or Context(60_000))  # type: ignore[attr-defined]


def runs(value: Any) -> list[int]:
    return [attempt for job, v, attempt in jobs_app.RUNS if job == "ok" and v == value]


def nothing_to_receive(app: JobQueue) -> bool:
    backend: Any = app.backend
    answer = backend.clients.sqs.receive_message(QueueUrl=backend.transport.url(QUEUE), WaitTimeSeconds=0, VisibilityTimeout=0)
    return not answer.get("Messages")


def item(app: JobQueue, job_id: str) -> dict[str, Any]:
    backend: Any = app.backend
    return dict(backend.clients.dynamodb.get_item(TableName=backend.store.table, Key=job_key(QUEUE, job_id), ConsistentRead=True)["Item"])


def parent_and_child(app: JobQueue) -> tuple[Any, Any]:
    """A job ``p`` and a job ``c`` that depends on it, both of job ``ok``."""
    ok = app.registry["ok"]
    parent = ok.enqueue(value="p")
    return parent, ok.enqueue(value="c", _depends_on=[parent])


def test_a_child_is_stored_waiting_and_not_sent(sqs_app: JobQueue) -> None:
    parent, child = parent_and_child(sqs_app)
    assert child.status().state is JobState.WAITING_CHILDREN
    assert failures(handle(sqs_app, receive_event(sqs_app, QUEUE, 1))) == []  # the parent's message only
    assert parent.status().state is JobState.COMPLETED
    assert failures(handle(sqs_app, receive_event(sqs_app, QUEUE, 1))) == []  # the child's, sent by the parent's follow-up
    assert child.status().state is JobState.COMPLETED and runs("c") == [1]


def test_redelivered_message_of_a_finished_job_reruns_its_followup(sqs_app: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    parent, child = parent_and_child(sqs_app)
    first = receive_event(sqs_app, QUEUE, 1)
    body = first["Records"][0]["body"]

    def crash(followup: object) -> None:
        raise ConnectionError("the invocation died between the end and its follow-up")

    monkeypatch.setattr(sqs_app.workflows, "after_end", crash)
    assert failures(handle(sqs_app, first)) == []  # the follow-up's error is logged; the job itself is done
    monkeypatch.undo()
    assert parent.status().state is JobState.COMPLETED and child.status().state is JobState.WAITING_CHILDREN
    assert "followup_at" in item(sqs_app, parent.id)  # the follow-up is still recorded
    assert nothing_to_receive(sqs_app)

    sqs_app.backend.transport.resend(QUEUE, body, 0, parent.id)  # SQS delivers the parent's message again
    assert failures(handle(sqs_app, receive_event(sqs_app, QUEUE, 1))) == []
    assert runs("p") == [1]  # not run again: the follow-up was
    assert "followup_at" not in item(sqs_app, parent.id)
    assert failures(handle(sqs_app, receive_event(sqs_app, QUEUE, 1))) == []
    assert child.status().state is JobState.COMPLETED and runs("c") == [1]


def test_a_child_released_but_not_sent_is_sent_by_recovery(sqs_app: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    parent, child = parent_and_child(sqs_app)
    event = receive_event(sqs_app, QUEUE, 1)
    transport = sqs_app.backend.transport  # type: ignore[attr-defined]

    def dies(queue: str, messages: Any) -> Any:
        raise ConnectionError("the invocation died after the release was written, before the child's message was sent")

    monkeypatch.setattr(transport, "send", dies)
    assert failures(handle(sqs_app, event)) == []
    monkeypatch.undo()
    stored = item(sqs_app, child.id)
    assert child.status().state is JobState.WAITING and stored["unsent"] == {"BOOL": True}
    assert nothing_to_receive(sqs_app)

    # the maintenance schedule's invocation (here with no grace period) finishes both the follow-up and the send
    monkeypatch.setattr("jobqueue.workflows.coordinator.RECOVER_AFTER", 0.0)
    assert handle(sqs_app, {"jobqueue": "maintenance"}) == {"recovered": 1}
    assert "unsent" not in item(sqs_app, child.id)
    assert failures(handle(sqs_app, receive_event(sqs_app, QUEUE, 1))) == []
    assert child.status().state is JobState.COMPLETED and runs("c") == [1]
    assert sqs_app.backend.recover(older_than=0) == 0  # type: ignore[attr-defined]


def test_a_child_sent_twice_runs_once(sqs_app: JobQueue) -> None:
    """The crash came after the send, before the mark came off: recovery sends again, the handler runs it once."""
    parent, child = parent_and_child(sqs_app)
    assert failures(handle(sqs_app, receive_event(sqs_app, QUEUE, 1))) == []
    backend: Any = sqs_app.backend
    backend.clients.dynamodb.update_item(  # as if the mark had never come off
        TableName=backend.store.table, Key=job_key(QUEUE, child.id), UpdateExpression="SET unsent = :t, fq = :q, followup_at = :zero",
        ExpressionAttributeValues={":t": {"BOOL": True}, ":q": {"S": QUEUE}, ":zero": {"N": "0"}},
    )
    assert backend.recover(older_than=0) == 0  # no follow-up, but the child is sent again
    both = receive_event(sqs_app, QUEUE, 2)
    assert len({r["messageId"] for r in both["Records"]}) == 2
    assert failures(handle(sqs_app, both)) == []
    assert child.status().state is JobState.COMPLETED and runs("c") == [1]


def test_cancelling_a_pending_parent_cancels_its_child(sqs_app: JobQueue) -> None:
    parent, child = parent_and_child(sqs_app)
    assert parent.cancel()
    status = child.status()
    assert status.state is JobState.CANCELLED and status.error.type == "DependencyCancelled"
    assert failures(handle(sqs_app, receive_event(sqs_app, QUEUE, 1))) == []  # the parent's message: skipped
    assert runs("p") == [] and runs("c") == []


def test_recovery_links_again_only_what_a_crash_left_unlinked(sqs_app: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    """Children that merely wait for a pending parent are not stale: they never hide the one a crash left unlinked."""
    parent, _ = parent_and_child(sqs_app)  # a child linked to a parent that has not run
    ok = sqs_app.registry["ok"]

    def crash(*args: object) -> None:
        raise ConnectionError("the producer died after storing the child")

    monkeypatch.setattr(sqs_app.workflows, "_link", crash)
    with pytest.raises(ConnectionError):
        ok.enqueue(value="u", _depends_on=[parent], _job_id="unlinked")
    monkeypatch.undo()
    store = sqs_app.backend.workflow_store()  # type: ignore[attr-defined]
    assert [ref.id for ref in store.stale_children(QUEUE, 0)] == ["unlinked"]
    assert sqs_app.workflows.recover([QUEUE], older_than=0) == 1
    assert store.stale_children(QUEUE, 0) == [] and sqs_app.workflows.recover([QUEUE], older_than=0) == 0
    handle(sqs_app, receive_event(sqs_app, QUEUE, 1))  # the parent runs and releases both children
    assert failures(handle(sqs_app, receive_event(sqs_app, QUEUE, 2))) == []
    assert sorted(v for job, v, _ in jobs_app.RUNS if job == "ok") == ["c", "p", "u"]


def test_a_followup_that_keeps_failing_goes_to_the_back(sqs_app: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    parent, child = parent_and_child(sqs_app)

    def down(followup: object) -> None:
        raise ConnectionError("DynamoDB throttled the follow-up")

    monkeypatch.setattr(sqs_app.workflows, "after_end", down)
    handle(sqs_app, receive_event(sqs_app, QUEUE, 1))
    monkeypatch.undo()
    store = sqs_app.backend.workflow_store()  # type: ignore[attr-defined]
    before = item(sqs_app, parent.id)["followup_at"]
    assert [f.envelope.id for f in store.pending_followups(QUEUE, 0)] == [parent.id]
    assert float(item(sqs_app, parent.id)["followup_at"]["N"]) > float(before["N"])  # handed out: moved to the back
    assert sqs_app.workflows.recover([QUEUE], older_than=0) == 1
    assert child.status().state is JobState.WAITING


# -- what each step costs ------------------------------------------------------------------------------


def writes(counts: Counter[str]) -> int:
    return sum(n for op, n in counts.items() if op.split(".")[1] in {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"})


def test_requests_per_workflow_step(sqs_app: JobQueue, capsys: pytest.CaptureFixture[str]) -> None:
    """Counted, and bounded so a change that adds requests to a step shows up here (see the README's table)."""
    ok = sqs_app.registry["ok"]
    requests = RequestCounter()
    requests.watch(sqs_app.backend.clients.sqs, sqs_app.backend.clients.dynamodb)  # type: ignore[attr-defined]
    table: dict[str, Counter[str]] = {}
    parent = ok.enqueue(value="warm")  # queue URLs and attributes looked up once
    handle(sqs_app, receive_event(sqs_app, QUEUE, 1))

    with requests.step() as table["enqueue a job (no workflow)"]:
        parent = ok.enqueue(value="p")
    with requests.step() as table["enqueue a child of a pending parent"]:
        child = ok.enqueue(value="c", _depends_on=[parent])
    event = receive_event(sqs_app, QUEUE, 1)
    with requests.step() as table["run a parent with one child (end, follow-up, release, send)"]:
        assert failures(handle(sqs_app, event)) == []
    event = receive_event(sqs_app, QUEUE, 1)
    with requests.step() as table["run a released child without duties"]:
        assert failures(handle(sqs_app, event)) == []
    assert child.status().state is JobState.COMPLETED
    with requests.step() as table["enqueue with an idempotency key (new key)"]:
        ok.enqueue(value="k", _idempotency_key="key-1")
    with requests.step() as table["enqueue with an idempotency key (key held)"]:
        assert not ok.enqueue(value="k2", _idempotency_key="key-1").created
    handle(sqs_app, receive_event(sqs_app, QUEUE, 1))
    with requests.step() as table["start a group of 20 with a callback"]:
        group = sqs_app.group([ok.s(value=i) for i in range(20)]).then(ok.s(value="then")).enqueue()
    member_events = receive_event(sqs_app, QUEUE, 20, timeout=20)["Records"]
    with requests.step() as table["run a group member that is not the last"]:
        assert failures(handle(sqs_app, {"Records": member_events[:1]})) == []
    handle(sqs_app, {"Records": member_events[1:-1]})
    with requests.step() as table["run the last member (tally done, callback enqueued)"]:
        assert failures(handle(sqs_app, {"Records": member_events[-1:]})) == []
    event = receive_event(sqs_app, QUEUE, 1)
    with requests.step() as table["run the callback (a job that does not read the ends)"]:
        assert failures(handle(sqs_app, event)) == []
    assert group.callback.status().state is JobState.COMPLETED
    with requests.step() as table["recover, nothing to do (one queue)"]:
        sqs_app.backend.recover([QUEUE], older_than=0)  # type: ignore[attr-defined]

    with capsys.disabled():
        print("\nAWS requests per workflow step (DynamoDB writes in brackets):")
        for name, counts in table.items():
            print(f"  {name}: {sum(counts.values())} [{writes(counts)}]  {dict(sorted(counts.items()))}")
    assert writes(table["enqueue a child of a pending parent"]) == 3  # the child's item, link on the parent, "linked" on the child
    assert "sqs.SendMessage" not in table["enqueue a child of a pending parent"]
    assert writes(table["run a parent with one child (end, follow-up, release, send)"]) <= 5  # claim, finish, release, mark, clear
    assert table["run a parent with one child (end, follow-up, release, send)"]["sqs.SendMessage"] == 1
    assert writes(table["run a group member that is not the last"]) <= 5  # claim, finish, end marker, tally chunk, clear
    assert table["enqueue with an idempotency key (new key)"]["dynamodb.TransactWriteItems"] == 1
    assert "sqs.SendMessage" not in table["enqueue with an idempotency key (key held)"]
