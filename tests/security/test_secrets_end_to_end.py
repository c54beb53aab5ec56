"""Payload fields marked secret are stored intact (the job gets them) and reach none of: a worker's log at DEBUG,
the producer's log, webhook events, the admin API and dashboard data, metrics, the CLI. A real worker process on
a real redis-server, a real HTTP receiver for the webhooks."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from jobqueue import JobState
from jobqueue.webhooks import verify_request
from tests.redis_servers import RedisServer
from tests.security.secrets_app import QUEUE, build
from tests.webhooks.test_webhooks import Receiver

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-" + uuid.uuid4().hex
CARD = "4111" + uuid.uuid4().hex[:12]
SECRETS = (PASSWORD, CARD)
WEBHOOK_SECRET = "whsec-e2e"


def leaks(text: str | bytes) -> list[str]:
    data = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return [s for s in SECRETS if s in data]


def test_secret_fields_never_leave_the_job(redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = Receiver()
    env = {**os.environ, "JOBQUEUE_BACKEND": "redis", "REDIS_URL": redis_server.url, "JOBQUEUE_PREFIX": f"secrets-{uuid.uuid4().hex[:6]}",
           "JOBQUEUE_FALLBACK": "raise", "JOBQUEUE_WEBHOOK_URL": receiver.url, "JOBQUEUE_WEBHOOK_SECRET": WEBHOOK_SECRET,
           "JOBQUEUE_APP": "tests.security.secrets_app:app", "PYTHONPATH": str(ROOT)}
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "tests.security.secrets_app"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    app = build(env)
    try:
        signup = app.registry["signup"]
        payload = {"email": "ada@example.com", "password": PASSWORD, "card": {"number": CARD, "brand": "visa"}}
        done = signup.enqueue(**payload)
        failed = signup.enqueue(**payload, outcome="fail")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (len(receiver.received) < 2 or failed.status().state is not JobState.FAILED):
            time.sleep(0.05)
        assert done.status().state is JobState.COMPLETED and failed.status().state is JobState.FAILED, log.read_text()[-3000:]
        assert done.status().payload["password"] == PASSWORD, "stored intact: the job gets the real value"

        # webhooks: signed, redacted
        assert sorted(e["type"] for e in receiver.events()) == ["job.completed", "job.failed"]
        for headers, body in receiver.received:
            assert verify_request(headers, body, WEBHOOK_SECRET) and leaks(body) == []
            assert json.loads(body)["job"]["payload"]["password"] == "[redacted]"
            assert json.loads(body)["job"]["payload"]["card"] == {"number": "[redacted]", "brand": "visa"}

        # the admin API (what the dashboard shows) and metrics
        with TestClient(app.admin_asgi(token="t")) as client:
            client.headers["Authorization"] = "Bearer t"
            pages = [client.get(f"/api/jobs/{done.id}"), client.get(f"/api/jobs/{failed.id}"),
                     client.get("/api/jobs", params={"queue": QUEUE, "state": "completed"}),
                     client.get("/api/jobs", params={"queue": QUEUE, "state": "failed"}), client.get("/api/jobs"),
                     client.get("/api/stats"), client.get("/metrics")]
            assert all(p.status_code == 200 for p in pages)
            assert [leaks(p.text) for p in pages] == [[]] * len(pages)
            assert client.get(f"/api/jobs/{done.id}").json()["payload"]["password"] == "[redacted]"

        # the CLI
        for args in (["status", done.id, "--json"], ["status", failed.id], ["jobs", "--queue", QUEUE, "--state", "failed", "--json"]):
            shown = subprocess.run([sys.executable, "-c", "from jobqueue.cli import main; main()", *args], cwd=ROOT, env=env,
                                   capture_output=True, text=True, timeout=60, check=True)
            assert leaks(shown.stdout + shown.stderr) == [], args
    finally:
        worker.terminate()
        worker.wait(30)
        app.close()
        receiver.close()
    worker_log = log.read_text()
    assert "DEBUG" in worker_log and "signing up ada@example.com" in worker_log, "the log was written, at DEBUG"
    assert leaks(worker_log) == []
    assert leaks("\n".join(r.getMessage() for r in caplog.records)) == []
