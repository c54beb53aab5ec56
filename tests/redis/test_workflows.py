"""Workflow steps of the Redis backend on fakeredis and a fake clock: concurrency keys parked and given back,
follow-ups that outlive retention, waiting-children, idempotency keys, and every key in its queue's slot."""

from __future__ import annotations

from collections.abc import Iterator

import fakeredis
import pytest
from jobqueue_redis import RedisBackend
from pydantic import BaseModel

from jobqueue import FakeClock, JobDefinition, JobQueue, JobState, Retention
from jobqueue.envelope import Envelope
from jobqueue.refs import JobRef
from jobqueue.runner import Outcome
from jobqueue.status import ErrorInfo


class Tag(BaseModel):
    tag: str = ""


@pytest.fixture
def app() -> Iterator[JobQueue]:
    server = fakeredis.FakeServer()
    backend = RedisBackend(client=fakeredis.FakeRedis(server=server, decode_responses=True), lease=10.0)
    made = JobQueue(backend=backend, clock=FakeClock())
    made.queue("k", attempts=2)
    made.queue("k2", attempts=1, concurrency_per_key=2)
    made.queue("p", attempts=1, retention=Retention(completed=0, failed=0))
    made.queue("c", attempts=1)
    yield made
    made.close()


def _backend(app: JobQueue) -> RedisBackend:
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    return backend


def _claim(app: JobQueue, queue: str, n: int = 10) -> dict[str, tuple[Envelope, str]]:
    """Claim up to ``n`` jobs of ``queue``: tag -> (envelope, lease token)."""
    claimed, _ = _backend(app).claim(queue, n, "w")
    return {env.payload["tag"]: (env, token) for env, token in claimed}


def _keyed(app: JobQueue, queue: str) -> JobDefinition[str]:
    def keyed(payload: Tag) -> str:
        return payload.tag

    return app.job(name=f"keyed_{queue}", queue=queue)(keyed)


# -- concurrency keys -------------------------------------------------------------------------------


def test_a_key_at_its_limit_parks_its_next_job_until_one_leaves_active(app: JobQueue) -> None:
    job = _keyed(app, "k")
    a1, a2, b1 = (job.enqueue(tag=t, _concurrency_key=k) for t, k in (("a1", "org-1"), ("a2", "org-1"), ("b1", "org-2")))
    first = _claim(app, "k")
    assert set(first) == {"a1", "b1"}
    assert a2.status().state is JobState.WAITING and app.stats("k")[JobState.WAITING] == 1  # parked, still waiting
    assert _claim(app, "k") == {}
    env, token = first["a1"]
    assert _backend(app).finish(env, token, Outcome(JobState.COMPLETED, result="a1"))
    assert set(_claim(app, "k")) == {"a2"}
    assert a1.status().state is JobState.COMPLETED and b1.status().state is JobState.ACTIVE


def test_a_retry_a_lost_lease_and_a_cancel_each_give_the_key_back(app: JobQueue) -> None:
    job = _keyed(app, "k")
    backend, clock = _backend(app), app.clock
    handles = {t: job.enqueue(tag=t, _concurrency_key="org") for t in ("x1", "x2", "x3")}
    (env, token), = _claim(app, "k").values()
    assert env.payload["tag"] == "x1"
    # the attempt fails with one left: x1 goes to delayed, and x2 may run
    retry_at = clock.now() + 60
    assert backend.finish(env, token, Outcome(JobState.DELAYED, error=ErrorInfo(type="E", message="again"), retry_at=retry_at))
    (env, token), = _claim(app, "k").values()
    assert env.payload["tag"] == "x2"
    # x2's worker dies: once its lease runs out the key is free again, and only one job of it is active
    clock.advance(11)
    claimed = _claim(app, "k")
    assert len(claimed) == 1 and app.stats("k")[JobState.ACTIVE] == 1
    (env, token), = claimed.values()
    # cancel the parked one: it ends, and finishing the active one brings back nothing
    parked = [t for t in ("x2", "x3") if handles[t].status().state is JobState.WAITING]
    assert len(parked) == 1 and handles[parked[0]].cancel()
    assert handles[parked[0]].status().state is JobState.CANCELLED
    assert backend.finish(env, token, Outcome(JobState.COMPLETED))
    assert _claim(app, "k") == {} and app.stats("k")[JobState.WAITING] == 0
    clock.advance(60)
    assert set(_claim(app, "k")) == {"x1"}  # the retry, due now


def test_the_queue_sets_how_many_jobs_of_one_key_run_at_once(app: JobQueue) -> None:
    job = _keyed(app, "k2")
    for i in range(5):
        job.enqueue(tag=f"t{i}", _concurrency_key="tenant")
    assert set(_claim(app, "k2")) == {"t0", "t1"}
    assert app.stats("k2")[JobState.WAITING] == 3


# -- dependencies and follow-ups ------------------------------------------------------------------


def test_a_follow_up_outlives_the_retention_of_its_job(app: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    """Retention keeps no finished job of queue ``p``; the parent's end still reaches its child."""
    parent_job = app.job(name="parent", queue="p")(lambda payload: "from parent")
    child_job = app.job(name="child", queue="c")(lambda payload, ctx: ctx.parent_results)
    parent = parent_job.enqueue()
    child = child_job.enqueue(_depends_on=[parent])
    assert child.status().state is JobState.WAITING_CHILDREN
    real = app.workflows.after_end

    def crash(followup: object) -> None:
        raise ConnectionError("the process died between the steps")

    monkeypatch.setattr(app.workflows, "after_end", crash)
    _backend(app).drain(["p"])
    assert parent.status() is None  # gone for readers, as retention says
    store = _backend(app).workflow_store()
    [followup] = store.pending_followups("p", older_than=0)
    assert followup.envelope.id == parent.id and followup.end.state is JobState.COMPLETED and followup.end.result == "from parent"
    assert store.link(JobRef(queue="p", id=parent.id), JobRef(queue="c", id="late")) == followup.end  # a late child learns the end too
    monkeypatch.setattr(app.workflows, "after_end", real)
    assert app.workflows.recover(["p"], older_than=0) == 1
    assert child.status().state is JobState.WAITING
    raw = _backend(app).client
    assert not [k for k in raw.keys("*") if ":fu:" in k or f"dependents:{parent.id}" in k]
    _backend(app).drain(["c"])
    assert child.status().state is JobState.COMPLETED


def test_a_follow_up_left_by_a_failure_waits_while_the_job_is_retried(app: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    """A parent fails, its follow-up is cut short, someone retries it: its next end decides, not the stale one."""
    outcomes = ["boom", "fine"]

    def flaky(payload: Tag) -> str:
        outcome = outcomes.pop(0)
        if outcome == "boom":
            raise RuntimeError(outcome)
        return outcome

    parent = app.job(name="flaky", queue="c")(flaky).enqueue()
    child = app.job(name="after", queue="k")(lambda payload: None).enqueue(_depends_on=[parent])
    real = app.workflows.after_end

    def crash(followup: object) -> None:
        raise ConnectionError("the process died between the steps")

    monkeypatch.setattr(app.workflows, "after_end", crash)
    _backend(app).drain(["c"])
    assert parent.status().state is JobState.FAILED
    assert app.retry(parent.id, "c")
    store = _backend(app).workflow_store()
    assert store.pending_followups("c", older_than=0) == []  # not finished: nothing to tell yet
    monkeypatch.setattr(app.workflows, "after_end", real)
    _backend(app).drain(["c"])
    assert parent.status().state is JobState.COMPLETED
    _backend(app).drain(["k"])
    assert child.status().state is JobState.COMPLETED


def test_cancelling_a_waiting_child_cancels_its_own_child(app: JobQueue) -> None:
    app.pause("p")
    work = app.job(name="work", queue="p")(lambda payload: None)
    later = app.job(name="later", queue="c")(lambda payload: None)
    parent = work.enqueue()
    child = later.enqueue(_depends_on=[parent])
    grandchild = later.enqueue(_depends_on=[child])
    assert child.cancel()
    assert child.status().state is JobState.CANCELLED
    status = grandchild.status()
    assert status.state is JobState.CANCELLED and child.id in status.error.message
    assert app.stats("c")[JobState.WAITING_CHILDREN] == 0
    assert [s.id for s in app.list_jobs("c", JobState.CANCELLED).jobs] == [child.id, grandchild.id]


def test_stale_children_come_round_in_turn(app: JobQueue) -> None:
    """Recovery looks at a bounded number of stale children; each one it checked waits its turn again."""
    app.pause("p")
    work = app.job(name="work", queue="p")(lambda payload: None)
    later = app.job(name="later", queue="c")(lambda payload: None)
    parent = work.enqueue()
    children = [later.enqueue(_depends_on=[parent]) for _ in range(3)]
    store = _backend(app).workflow_store()
    app.clock.advance(60)
    refs = {JobRef(queue="c", id=c.id) for c in children}
    first = store.stale_children("c", older_than=30, limit=2)
    assert len(first) == 2 and set(first) <= refs
    for ref in first:
        assert store.unresolved_parents(ref) == [JobRef(queue="p", id=parent.id)]
    assert store.stale_children("c", older_than=30, limit=2) == list(refs - set(first))


# -- idempotency keys ------------------------------------------------------------------------------------


def test_an_idempotency_key_answers_with_its_first_job_in_its_queue_only(app: JobQueue) -> None:
    one = app.job(name="one", queue="k")(lambda payload: None)
    other = app.job(name="other", queue="c")(lambda payload: None)
    first = one.enqueue(_idempotency_key="key", _idempotency_window="10s")
    again = one.enqueue(_idempotency_key="key")
    elsewhere = other.enqueue(_idempotency_key="key")
    assert (first.created, again.created, again.id, elsewhere.created) == (True, False, first.id, True)
    app.clock.advance(11)
    assert one.enqueue(_idempotency_key="key").created


# -- keys --------------------------------------------------------------------------------------------------


def test_workflow_keys_live_in_their_queues_slot(app: JobQueue) -> None:
    work = app.job(name="work", queue="k")(lambda payload: None)
    summary = app.job(name="summary", queue="c")(lambda payload, ctx: len(ctx.group_results()))
    parent = work.enqueue(_idempotency_key="i", _concurrency_key="ck")
    work.enqueue(_concurrency_key="ck")
    app.job(name="child", queue="p")(lambda payload: None).enqueue(_depends_on=[parent])
    app.group([work.s(), work.s()]).then(summary.s()).enqueue()
    _backend(app).drain()
    keys = _backend(app).client.keys("*")
    assert any(":group:" in k for k in keys) and any(":idem:" in k for k in keys)
    assert all(k.startswith(("jobqueue:{k}:", "jobqueue:{c}:", "jobqueue:{p}:")) for k in keys), keys


def test_a_groups_keys_expire_after_their_last_write_as_on_sqs(app: JobQueue) -> None:
    from jobqueue.workflows.store import GROUP_RETENTION

    work = app.job(name="work", queue="k")(lambda payload: None)
    summary = app.job(name="summary", queue="c")(lambda payload, ctx: len(ctx.group_results()))
    app.group([work.s(), work.s()]).then(summary.s()).enqueue()
    client = _backend(app).client
    created = [k for k in client.keys("*") if ":group:" in k]
    assert created and all(0 < client.pttl(k) <= GROUP_RETENTION * 1000 for k in created)  # the record, from its creation
    _backend(app).drain()
    keys = [k for k in client.keys("*") if any(part in k for part in (":group:", ":gends:", ":gorder:"))]
    assert sorted(k.split(":")[2] for k in keys) == ["gends", "gorder", "group"]
    ttls = {k: client.pttl(k) for k in keys}
    assert all(GROUP_RETENTION * 1000 - 60_000 < ttl <= GROUP_RETENTION * 1000 for ttl in ttls.values()), ttls
