"""The Lambda handler's cold start keeps heavy modules out: what only some paths need is imported on those paths.

Each check runs a fresh interpreter and reads its ``sys.modules``; no timing is asserted (bench/cold_import.py
and bench/cold_first_event.py measure the time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from jobqueue import JobQueue, JobState
from tests.sqs import jobs_app
from tests.sqs.events import receive_event

ROOT = Path(__file__).resolve().parents[2]

#: never needed to handle an SQS record of a plain job (schedules, workflows' coordinator and groups, the admin app,
#: bulk-send retries, tracing nobody set up, the SAM tooling, other backends)
NEVER_ON_AN_EVENT = (
    "jobqueue.schedules", "jobqueue.workflows.coordinator", "jobqueue.workflows.group", "jobqueue.admin", "jobqueue.cli", "tenacity",
    "opentelemetry", "yaml", "starlette", "redis", "jobqueue_redis", "jobqueue_sqs.sam", "jobqueue_sqs.poller",
)
#: loaded by the first event (the app, boto3 and its clients), not by the import
FIRST_EVENT = ("jobqueue.app", "jobqueue.webhooks", "boto3", "botocore.session", "botocore.client")
#: what handling a record needs: the import keeps it (deferring it would only move its cost to the first event)
NEEDED = ("pydantic", "jobqueue.envelope", "jobqueue.runner", "jobqueue_sqs.store", "jobqueue_sqs.transport",
          "aws_lambda_powertools.logging", "aws_lambda_powertools.metrics", "aws_lambda_powertools.utilities.batch")


def loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    """The modules of ``modules`` that are one of ``names`` or inside one of them."""
    return [m for m in modules if any(m == name or m.startswith(name + ".") for name in names)]


def run_fresh(code: str, env: dict[str, str] | None = None, stdin: str = "") -> Any:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env or dict(os.environ), input=stdin,
                         capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_handler_import_leaves_heavy_modules_out() -> None:
    modules = run_fresh("import json, sys; import jobqueue_sqs.handler; print(json.dumps(sorted(sys.modules)))")
    assert loaded(modules, NEVER_ON_AN_EVENT) == []
    assert loaded(modules, FIRST_EVENT) == []
    assert all(name in modules for name in NEEDED)


FIRST_EVENT_PROBE = """
import json, sys
event = json.loads(sys.stdin.read())

class Context:
    def get_remaining_time_in_millis(self):
        return 60_000

from jobqueue_sqs.handler import lambda_handler
answer = lambda_handler(event, Context())
print(json.dumps({"answer": answer, "modules": sorted(sys.modules)}))
"""


def test_the_first_event_loads_only_what_it_uses(moto_server: Any) -> None:
    prefix = f"cold{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "JOBQUEUE_BACKEND": "sqs", "JOBQUEUE_APP": "tests.sqs.jobs_app:app", "JOBQUEUE_SQS_PREFIX": prefix,
           "JOBQUEUE_JOBS_TABLE": f"{prefix}-jobs", "AWS_ENDPOINT_URL": moto_server.endpoint, "AWS_REGION": "us-east-1",
           "POWERTOOLS_METRICS_DISABLED": "true"}
    producer = jobs_app.register(JobQueue.from_env(env))
    producer.backend.init()  # type: ignore[attr-defined]
    try:
        job = producer.registry["ok"].enqueue(value="cold")
        event = receive_event(producer, jobs_app.QUEUE, 1)
        seen = run_fresh(FIRST_EVENT_PROBE, env, json.dumps(event))
        assert seen["answer"] == {"batchItemFailures": []}
        assert job.status().state is JobState.COMPLETED and job.status().result == "cold"
        modules = seen["modules"]
        assert loaded(modules, NEVER_ON_AN_EVENT) == []
        assert all(name in modules for name in FIRST_EVENT)
    finally:
        producer.close()
