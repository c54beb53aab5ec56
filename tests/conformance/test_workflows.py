"""Workflows on every backend: dependencies, groups, idempotency keys, concurrency keys, and recovery
from a crash between the steps of a cross-queue release (issue 7)."""

from __future__ import annotations

import threading

import pytest

from jobqueue import JobNotFound, JobState
from jobqueue.backends.base import Capability
from jobqueue.refs import JobRef
from tests.conformance.harness import Harness
from tests.conformance.jobs import Jobs
from tests.conformance.workflow_jobs import IDEMPOTENCY_WINDOW, WF, WF2, WorkflowJobs, register_workflow_jobs

requires = pytest.mark.requires


@pytest.fixture
def wf(jobs: Jobs) -> WorkflowJobs:
    return register_workflow_jobs(jobs.app)


def settle(harness: Harness, wf: WorkflowJobs) -> None:
    for queue in (WF, WF2):
        harness.settle(wf.app, queue)
    for queue in (WF, WF2):  # a step in one queue may have released work in the other
        harness.settle(wf.app, queue)


# -- dependencies ----------------------------------------------------------------------------------


@requires(Capability.DEPENDENCIES, Capability.PAUSE)
def test_child_waits_for_every_parent_then_reads_their_results(harness: Harness, wf: WorkflowJobs) -> None:
    wf.app.pause(WF2)
    first = wf.value.enqueue(value=1)
    second = wf.value2.enqueue(value=2)
    child = wf.collect.enqueue(tag="child", _depends_on=[first, second])
    harness.drain(wf.app)
    assert first.status().state is JobState.COMPLETED
    assert child.status().state is JobState.WAITING_CHILDREN
    assert wf.app.stats(WF2)[JobState.WAITING_CHILDREN] == 1
    assert ("collect", "child") not in wf.log
    wf.app.resume(WF2)
    settle(harness, wf)
    status = child.status()
    assert status.state is JobState.COMPLETED
    assert status.result == {"tag": "child", "parents": {first.id: 1, second.id: 2}}
    assert wf.log.index(("value2", 2)) < wf.log.index(("collect", "child"))


@requires(Capability.DEPENDENCIES)
def test_child_of_completed_parents_runs_at_once(harness: Harness, wf: WorkflowJobs) -> None:
    parent = wf.value.enqueue(value="p")
    settle(harness, wf)
    child = wf.collect.enqueue(tag="late", _depends_on=[parent.id])  # an id alone: its queue is looked up
    settle(harness, wf)
    assert child.status().state is JobState.COMPLETED
    assert child.status().result["parents"] == {parent.id: "p"}


@requires(Capability.DEPENDENCIES)
def test_failed_parent_fails_the_child_and_its_child_naming_the_parent(harness: Harness, wf: WorkflowJobs) -> None:
    ok = wf.value.enqueue(value="fine")
    bad = wf.boom.enqueue(value=1)
    child = wf.collect.enqueue(tag="child", _depends_on=[ok, bad])
    grandchild = wf.collect.enqueue(tag="grandchild", _depends_on=[child])
    settle(harness, wf)
    assert bad.status().state is JobState.FAILED
    status = child.status()
    assert status.state is JobState.FAILED
    assert status.error is not None and status.error.type == "DependencyFailed"
    assert bad.id in status.error.message and "boom 1" in status.error.message
    deeper = grandchild.status()
    assert deeper.state is JobState.FAILED and child.id in deeper.error.message
    assert not [entry for entry in wf.log if entry[0] == "collect"]


@requires(Capability.DEPENDENCIES, Capability.PAUSE)
def test_cancelled_parent_cancels_the_child(harness: Harness, wf: WorkflowJobs) -> None:
    wf.app.pause(WF)
    parent = wf.value.enqueue(value="never")
    child = wf.collect.enqueue(tag="child", _depends_on=[parent])
    assert parent.cancel()
    wf.app.resume(WF)
    settle(harness, wf)
    status = child.status()
    assert status.state is JobState.CANCELLED
    assert status.error is not None and status.error.type == "DependencyCancelled" and parent.id in status.error.message
    assert wf.log == []


@requires(Capability.DEPENDENCIES)
def test_depending_on_an_unknown_job_raises_and_stores_nothing(harness: Harness, wf: WorkflowJobs) -> None:
    with pytest.raises(JobNotFound, match="nope"):
        wf.collect.enqueue(tag="orphan", _depends_on=[JobRef(queue=WF, id="nope")])
    assert wf.app.stats(WF2)[JobState.WAITING_CHILDREN] == 0


# -- groups ------------------------------------------------------------------------------------------


@requires(Capability.GROUPS)
def test_group_runs_members_then_the_callback_once_with_results_and_failures(harness: Harness, wf: WorkflowJobs) -> None:
    members = [wf.value.s(value=1), wf.value2.s(value=2), wf.boom.s(value=3), wf.value.s(value=4)]
    group = wf.app.group(members).then(wf.summary.s(tag="sum")).enqueue()
    assert group.size == 4
    settle(harness, wf)
    tally = group.tally()
    assert (tally.completed, tally.failed, tally.cancelled, tally.done) == (3, 1, 0, True)
    callback = group.callback.status()
    assert callback.state is JobState.COMPLETED
    ids = [handle.id for handle in group.members()]
    assert callback.result == {"tag": "sum", "results": {ids[0]: 1, ids[1]: 2, ids[3]: 4}, "failed": [ids[2]], "members": 4}
    assert "boom 3" in (group.results().failures[ids[2]] or "")
    assert wf.log.count(("summary", "sum")) == 1
    assert group.wait(timeout=5).done


@requires(Capability.GROUPS)
def test_empty_group_runs_its_callback(harness: Harness, wf: WorkflowJobs) -> None:
    group = wf.app.group([]).then(wf.summary.s(tag="empty")).enqueue()
    settle(harness, wf)
    assert group.callback.status().result == {"tag": "empty", "results": {}, "failed": [], "members": 0}


@requires(Capability.GROUPS)
def test_starting_a_group_twice_with_its_id_is_one_group(harness: Harness, wf: WorkflowJobs) -> None:
    make = lambda: wf.app.group([wf.value.s(value=i) for i in range(3)]).then(wf.summary.s(tag="once"))
    make().enqueue(group_id="g-fixed")
    make().enqueue(group_id="g-fixed")
    settle(harness, wf)
    assert sorted(entry for entry in wf.log if entry[0] == "value") == [("value", 0), ("value", 1), ("value", 2)]
    assert wf.log.count(("summary", "once")) == 1


# -- idempotency keys ---------------------------------------------------------------------------


@requires(Capability.IDEMPOTENCY_KEY)
def test_same_idempotency_key_within_the_window_is_the_first_job(harness: Harness, wf: WorkflowJobs) -> None:
    first = wf.value.enqueue(value="first", _idempotency_key="order:42:confirmation")
    again = wf.value.enqueue(value="second", _idempotency_key="order:42:confirmation")
    assert first.created and not again.created and again.id == first.id
    other = wf.value.enqueue(value="other", _idempotency_key="order:43:confirmation")
    assert other.created and other.id != first.id
    settle(harness, wf)
    assert sorted(entry for entry in wf.log) == [("value", "first"), ("value", "other")]
    harness.advance(IDEMPOTENCY_WINDOW + max(1.0, harness.time_resolution))
    later = wf.value.enqueue(value="after the window", _idempotency_key="order:42:confirmation")
    assert later.created and later.id != first.id


@requires(Capability.IDEMPOTENCY_KEY)
def test_same_idempotency_key_from_many_threads_makes_one_job(harness: Harness, wf: WorkflowJobs) -> None:
    handles = []
    barrier = threading.Barrier(8)

    def enqueue(n: int) -> None:
        barrier.wait()
        handles.append(wf.value.enqueue(value=n, _idempotency_key="once-only"))

    threads = [threading.Thread(target=enqueue, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({h.id for h in handles}) == 1
    assert sum(h.created for h in handles) == 1
    settle(harness, wf)
    assert len([entry for entry in wf.log if entry[0] == "value"]) == 1


# -- concurrency keys ------------------------------------------------------------------------------


@requires(Capability.CONCURRENCY_KEY)
def test_concurrency_key_keeps_one_active_job_per_key(harness: Harness, wf: WorkflowJobs) -> None:
    """While the first job of key ``org-1`` runs, a nested drain runs the other key's job but not its twin."""
    seen_active: list[set[str]] = []
    nested = []

    def during(tag: str) -> None:
        seen_active.append({s.id for s in wf.app.list_jobs(WF2, JobState.ACTIVE, limit=50).jobs})
        if not nested:
            nested.append(tag)
            harness.drain(wf.app)

    wf.during_hold = during
    a1 = wf.hold.enqueue(tag="a1", _concurrency_key="org-1")
    a2 = wf.hold.enqueue(tag="a2", _concurrency_key="org-1")
    b1 = wf.hold.enqueue(tag="b1", _concurrency_key="org-2")
    settle(harness, wf)
    assert all(h.status().state is JobState.COMPLETED for h in (a1, a2, b1))
    for active in seen_active:
        assert not {a1.id, a2.id} <= active, f"two jobs of one key were active at once: {active}"
    first = nested[0]
    inner = wf.log[wf.log.index(("start", first)) + 1: wf.log.index(("end", first))]
    twin = {"a1": "a2", "a2": "a1"}.get(first)
    if twin is not None:
        assert ("start", twin) not in inner
        assert ("start", "b1") in inner


# -- recovery ---------------------------------------------------------------------------------------


@requires(Capability.DEPENDENCIES, Capability.GROUPS, Capability.PAUSE)
def test_a_crash_after_a_job_ended_is_recovered(harness: Harness, wf: WorkflowJobs, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent ends, then the process 'dies' before telling its child and group: recovery finishes the step."""
    wf.app.pause(WF)
    parent = wf.value.enqueue(value="p")
    child = wf.collect.enqueue(tag="across", _depends_on=[parent])  # child in WF2, parent in WF
    group = wf.app.group([wf.value.s(value="m")]).then(wf.summary.s(tag="g")).enqueue()
    real = wf.app.workflows.after_end

    def crash(followup: object) -> None:
        raise ConnectionError("the process died between the steps")

    monkeypatch.setattr(wf.app.workflows, "after_end", crash)
    wf.app.resume(WF)
    harness.drain(wf.app)
    assert parent.status().state is JobState.COMPLETED
    assert child.status().state is JobState.WAITING_CHILDREN
    assert not group.tally().done and group.callback.status() is None
    monkeypatch.setattr(wf.app.workflows, "after_end", real)
    assert wf.app.workflows.recover([WF, WF2], older_than=0) >= 2
    assert wf.app.workflows.recover([WF, WF2], older_than=0) == 0  # nothing left to do
    settle(harness, wf)
    assert child.status().state is JobState.COMPLETED and child.status().result["parents"] == {parent.id: "p"}
    assert group.callback.status().state is JobState.COMPLETED


@requires(Capability.DEPENDENCIES, Capability.PAUSE)
def test_a_crash_between_storing_and_linking_a_child_is_recovered(harness: Harness, wf: WorkflowJobs, monkeypatch: pytest.MonkeyPatch) -> None:
    wf.app.pause(WF)
    parent = wf.value.enqueue(value="p")

    def crash(*args: object) -> None:
        raise ConnectionError("the process died after storing the child")

    monkeypatch.setattr(wf.app.workflows, "_link", crash)
    with pytest.raises(ConnectionError):
        wf.collect.enqueue(tag="unlinked", _depends_on=[parent], _job_id="unlinked-child")
    monkeypatch.undo()
    wf.app.resume(WF)
    harness.settle(wf.app, WF)
    harness.drain(wf.app)
    child = wf.app.get("unlinked-child", WF2)
    assert parent.status().state is JobState.COMPLETED and child.state is JobState.WAITING_CHILDREN
    assert wf.app.workflows.recover([WF2], older_than=0) == 1
    settle(harness, wf)
    assert wf.app.get("unlinked-child", WF2).state is JobState.COMPLETED


# -- size ------------------------------------------------------------------------------------------------


@pytest.mark.slow
@requires(Capability.GROUPS)
def test_group_of_ten_thousand_members(harness: Harness, wf: WorkflowJobs) -> None:
    if not harness.runs_size_cases:
        pytest.skip(f"{harness.name} is a stand-in; the size case runs on the real backends (sqs: make test-group-size)")
    size = 10_000
    group = wf.app.group([wf.count.s(value=i) for i in range(size)]).then(wf.summary.s(tag="big")).enqueue()
    for _ in range(50):
        settle(harness, wf)
        if group.tally().done and group.callback.status() is not None and group.callback.status().is_finished:
            break
    tally = group.tally()
    assert (tally.completed, tally.size) == (size, size)
    result = group.callback.status().result
    assert result["members"] == size and len(result["results"]) == size and result["failed"] == []


@requires(Capability.GROUPS)
def test_group_of_a_hundred_and_fifty_members_on_the_stand_ins(harness: Harness, wf: WorkflowJobs) -> None:
    """Where the 10,000-member case is too slow to run (fakeredis; moto as it is: ``make test-group-size`` runs it
    on a moto server without its per-message scans), a group that still spans several pages of the tally (SQS
    counts members in chunks of 100) and a failed member."""
    if harness.runs_size_cases:
        pytest.skip(f"{harness.name} runs the 10,000-member case")
    size = 150
    members = [wf.count.s(value=i) for i in range(size - 1)] + [wf.boom.s(value="last")]
    group = wf.app.group(members).then(wf.summary.s(tag="mid")).enqueue()
    settle(harness, wf)
    tally = group.tally()
    assert (tally.completed, tally.failed, tally.size) == (size - 1, 1, size)
    result = group.callback.status().result
    assert result["members"] == size and len(result["results"]) == size - 1
    assert result["failed"] == [f"{group.id}.{size - 1}"]
