"""Workflows with workers as real processes: concurrency keys across two workers on a real redis-server,
and a worker killed between a parent's end and its child's release on a real cluster, recovered by another."""

from __future__ import annotations

import signal
from itertools import combinations
from pathlib import Path

import redis

from jobqueue import JobState
from tests.redis.test_processes import Lab, lab  # noqa: F401 - the fixture
from tests.redis_servers import RedisClusterNodes


def test_two_workers_never_run_two_jobs_of_one_key_at_once(lab: Lab) -> None:
    keyed = lab.job("keyed")
    # more keys than one worker has slots, so both workers hold keys at once (a worker that finishes a job
    # claims in the same script call, so with few keys one worker could keep them all, which proves less)
    keys = [f"org-{c}" for c in "abcdef"]
    payloads = [{"tag": f"{k}{i}", "key": k, "seconds": 0.3} for i in range(2) for k in keys]
    handles = [keyed.enqueue(**p, _concurrency_key=p["key"]) for p in payloads]  # type: ignore[attr-defined]
    workers = [lab.start_worker("--queues", "keyed", "--concurrency", "2") for _ in range(2)]
    lab.wait_for("every keyed job to complete", lambda: lab.all_completed(handles), timeout=60)

    # start/end of each run, in the order Redis gave out sequence numbers (one order across both processes)
    runs: dict[str, dict[str, int]] = {}
    owner: dict[str, tuple[str, int]] = {}
    for entry in lab.log.lrange(lab.key("keyed"), 0, -1):
        edge, key, tag, seq, _, pid = entry.split(":")
        runs.setdefault(tag, {})[edge] = int(seq)
        owner[tag] = (key, int(pid))
    assert sorted(runs) == sorted(p["tag"] for p in payloads)
    spans = {tag: (edges["start"], edges["end"]) for tag, edges in runs.items()}

    def overlap(a: str, b: str) -> bool:
        return spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]

    for a, b in combinations(spans, 2):
        if owner[a][0] == owner[b][0]:
            assert not overlap(a, b), f"{a} and {b} of key {owner[a][0]} ran at once: {spans[a]} {spans[b]}"
    assert any(overlap(a, b) for a, b in combinations(spans, 2) if owner[a][0] != owner[b][0]), "different keys ran side by side"
    assert {pid for _, pid in owner.values()} == {w.pid for w in workers}, "both workers took part"


class ClusterLab(Lab):
    """A :class:`Lab` on a Redis Cluster: workers use a cluster client, and so does the test's log reader."""

    def __init__(self, cluster: RedisClusterNodes, tmp: Path, **env: str) -> None:
        super().__init__(cluster, tmp, JOBQUEUE_REDIS_CLUSTER="1", **env)  # type: ignore[arg-type]
        self.log.close()
        self.log = redis.RedisCluster.from_url(cluster.url, decode_responses=True)  # type: ignore[assignment]


def test_a_worker_killed_between_a_parents_end_and_its_childs_release_is_recovered(
    redis_cluster: RedisClusterNodes, tmp_path: Path,
) -> None:
    lab = ClusterLab(redis_cluster, tmp_path, JOBQUEUE_REDIS_RECOVER_AFTER="1", JOBQUEUE_REDIS_RECOVER_EVERY="0.5")
    try:
        backend = lab.app.backend
        nodes = {backend.client.get_node_from_key(backend.keys(q).base).name for q in ("wf-parents", "wf-children")}  # type: ignore[attr-defined]
        assert len(nodes) == 2, "the parent's and the child's queues are meant to live on different nodes"
        parent = lab.job("wf_parent").enqueue(tag="parent")  # type: ignore[attr-defined]
        child = lab.job("wf_child").enqueue(tag="child", _depends_on=[parent])  # type: ignore[attr-defined]
        assert child.status().state is JobState.WAITING_CHILDREN

        doomed = lab.start_worker("--queues", "wf-parents,wf-children", "--concurrency", "2", "--crash-after-end")
        assert doomed.wait(30) == -signal.SIGKILL, lab.logs()
        assert lab.log.lrange(lab.key("crashed"), 0, -1) == [str(doomed.pid)]
        # the parent's end is recorded, with its follow-up; the child never heard of it
        assert parent.status().state is JobState.COMPLETED
        assert child.status().state is JobState.WAITING_CHILDREN
        [pending] = backend.workflow_store().pending_followups("wf-parents", older_than=0)  # type: ignore[attr-defined]
        assert pending.envelope.id == parent.id

        lab.start_worker("--queues", "wf-parents,wf-children", "--concurrency", "2")
        lab.wait_for("recovery to release and run the child", lambda: lab.all_completed([child]), timeout=30)
        assert child.status().result == {parent.id: "parent parent"}
        # recovery releases the child, then clears the follow-up and logs: the child may finish before either.
        # Read the follow-ups' set directly: pending_followups() marks what it returns as handed out now, so
        # polling it would keep the follow-up too young for the worker's recovery to take it again
        followups = backend.keys("wf-parents").set("followups")  # type: ignore[attr-defined]
        lab.wait_for("recovery to clear the follow-up", lambda: lab.log.zcard(followups) == 0, timeout=10)
        lab.wait_for("recovery to log its work", lambda: "recovered 1 workflow step" in lab.logs(), timeout=10)
        assert [tag for tag, _, _ in lab.runs()] == ["parent", "child"]
    finally:
        lab.stop()
