"""The short chaos run (`make chaos` runs the long one): kills, a redis-server restart, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.chaos import ChaosConfig, run_chaos


@pytest.mark.slow
def test_kills_and_a_redis_restart_lose_nothing_and_duplicate_only_interrupted_jobs(tmp_path: Path) -> None:
    report = run_chaos(ChaosConfig(jobs=1500, workers=3, kill_every=1.0, redis_restarts=1, timeout=240), tmp_path)
    print(report.table())
    assert report.drained, f"the queue did not drain within the timeout: {report.table()}"
    assert report.kills >= 3 and report.redis_restarts == 1
    assert report.enqueued == 1500 and report.completed == 1500
    assert report.lost == 0 and report.failed == 0, report.lost_ids
    assert report.unexplained_duplicates == 0, f"ran twice but in flight at no kill: {report.unexplained_ids}"
    assert report.over_explained == 0 and report.never_ran == 0
    assert report.runs == 1500 + report.extra_runs
