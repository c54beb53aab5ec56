"""End to end, locally: the producer enqueues to a moto server, the local event source mapping (a
separate worker process calling the Lambda handler) runs the jobs, and the outcomes show up in the
table and the DLQ as they would on AWS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from jobqueue import JobFailed, JobQueue, JobState
from tests.sqs import jobs_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def e2e_env(moto_server: Any) -> dict[str, str]:
    prefix = f"e2e{uuid.uuid4().hex[:8]}"
    return {"JOBQUEUE_BACKEND": "sqs", "JOBQUEUE_APP": "tests.sqs.jobs_app:app", "JOBQUEUE_SQS_PREFIX": prefix,
            "JOBQUEUE_JOBS_TABLE": f"{prefix}-jobs", "AWS_ENDPOINT_URL": moto_server.endpoint, "AWS_REGION": "us-east-1",
            "JOBQUEUE_SQS_FUNCTION_TIMEOUT": "30", "POWERTOOLS_METRICS_DISABLED": "true"}


def test_producer_to_local_event_source_mapping(e2e_env: dict[str, str], tmp_path: Path) -> None:
    env = {**os.environ, **e2e_env}
    init = subprocess.run([sys.executable, "-m", "jobqueue_sqs", "init"], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=60)
    assert init.returncode == 0, init.stderr
    assert {q["queue"] for q in json.loads(init.stdout)["queues"]} == {"work", "other"}

    producer = jobs_app.register(JobQueue.from_env({**os.environ, **e2e_env}))
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "jobqueue_sqs", "worker", "--concurrency", "2"], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        ok = producer.registry["ok"].enqueue(value="hello")
        flaky = producer.registry["flaky"].enqueue(succeed_on=2)
        boom = producer.registry["boom"].enqueue(value="e2e")
        assert ok.result(timeout=30) == "hello"
        assert flaky.result(timeout=30) == 2 and flaky.status().attempt == 2
        with pytest.raises(JobFailed, match="boom e2e"):
            boom.result(timeout=30)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        log.close()
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]
    failed = boom.status()
    assert failed.state is JobState.FAILED and failed.attempt == 2 and "ValueError" in failed.error.traceback
    depths = producer.backend.depths("work")
    assert depths["dead_letter"] == 1 and depths["visible"] == 0
    logs = (tmp_path / "worker.log").read_text()
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(line.get("job_id") == ok.id and line.get("message_id") for line in lines)
    # retry of a failed job: its stored envelope goes back to the queue, its DLQ copy is removed
    assert producer.retry(boom.id)
    assert producer.backend.depths("work")["dead_letter"] == 0
    assert producer.get(boom.id).state is JobState.WAITING
