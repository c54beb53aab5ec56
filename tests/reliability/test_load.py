"""The short load run (`make load` runs 100,000 jobs and also checks the workers' memory growth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.load import problems, run_memory, run_redis


@pytest.mark.slow
def test_ten_thousand_jobs_through_two_redis_workers_all_complete_within_retention(tmp_path: Path) -> None:
    report = run_redis(10_000, tmp_path, workers=2, timeout=300)
    print(report.line())
    # RSS growth is only asserted on the long run: over 10,000 jobs it is noise (imports, caches warming up)
    assert problems(report, check_rss=False) == []
    assert report.ran == 10_000 and report.ran_twice == 0 and report.job_keys_after <= 1000


def test_ten_thousand_jobs_on_the_memory_backend_all_complete_within_retention(tmp_path: Path) -> None:
    report = run_memory(10_000, tmp_path)
    print(report.line())
    assert problems(report, check_rss=False) == []
    assert report.retained_completed == 1000
