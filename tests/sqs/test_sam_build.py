"""`sam validate --lint` and `sam build` on template.yaml (the SAM CLI from .sam-venv, telemetry off),
then the built function's handler imports and handles an event in a clean interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobqueue import JobQueue, JobState
from tests.sqs.events import failures, receive_event

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".sam-venv" / "bin" / "sam"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not SAM.exists(), reason="the SAM CLI is not installed (run infra/ensure-sam-cli.sh)")]


def _sam(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    for name in ("AWS_ENDPOINT_URL", "VIRTUAL_ENV"):
        env.pop(name, None)
    return subprocess.run([str(SAM), *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=timeout)


def test_sam_validate_lint() -> None:
    result = _sam("validate", "--lint")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    build_dir = tmp_path_factory.mktemp("sam-build")
    result = _sam("build", "--build-dir", str(build_dir), "--cache-dir", str(build_dir.parent / "sam-cache"))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    yield build_dir / "WorkerFunction"


_INVOKE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import app
event = json.load(sys.stdin)
class Context:
    function_name = "worker"; memory_limit_in_mb = 512; aws_request_id = "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:worker"
    def get_remaining_time_in_millis(self): return 60000
print("RESPONSE " + json.dumps(app.lambda_handler(event, Context())))
import jobqueue, pydantic_core
assert jobqueue.__file__.startswith(sys.argv[1]) and pydantic_core.__file__.startswith(sys.argv[1]), "not from the artifact"
"""


def test_built_handler_runs_in_a_clean_interpreter(built: Path, moto_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (built / "app.py").exists() and (built / "jobqueue_sqs" / "handler.py").exists() and (built / "example_jobs").is_dir()
    prefix = f"b{uuid.uuid4().hex[:8]}"
    env = {"JOBQUEUE_BACKEND": "sqs", "JOBQUEUE_APP": "example_jobs:app", "JOBQUEUE_SQS_PREFIX": prefix, "JOBQUEUE_JOBS_TABLE": f"{prefix}-jobs",
           "AWS_ENDPOINT_URL": moto_server.endpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "POWERTOOLS_METRICS_DISABLED": "true"}
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "jobs"))
    monkeypatch.delitem(sys.modules, "example_jobs", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from example_jobs import app as producer

    assert isinstance(producer, JobQueue)
    producer.backend.init()  # type: ignore[attr-defined]
    job = producer.registry["send_welcome_email"].enqueue(user_id=1, email="ada@example.com")
    event = receive_event(producer, "email", 1)
    clean = {"PATH": os.environ.get("PATH", ""), **env}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", _INVOKE, str(built)], input=json.dumps(event), env=clean,
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    response = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESPONSE "))[9:])
    assert failures(response) == []
    status = job.status()
    assert status.state is JobState.COMPLETED and status.result == {"sent_to": "ada@example.com"}


def test_sam_validate_lint_with_webhook_settings(tmp_path: Path) -> None:
    """The parameters an app with webhooks adds (see test_sam_export) pass the linter too."""
    from jobqueue_sqs.sam import render

    from tests.sqs.test_sam_export import _webhook_template

    path = tmp_path / "template.yaml"
    path.write_text(render(_webhook_template({"JOBQUEUE_WEBHOOK_URL": "https://hooks.example.com/jobs"})))
    result = _sam("validate", "--lint", "--template-file", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
