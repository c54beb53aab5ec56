"""Redis with a password, with an ACL user, and with TLS (``rediss://``): enqueue, a worker process runs the
job, its status is read; a client without the credentials (or without the CA) is refused; no password shows
up in an error or a worker's log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobqueue import JobQueue, JobState
from jobqueue.errors import BrokerUnavailable
from tests.redis_servers import HOST, RedisServer
from tests.reliability.chaos_app import build
from tests.security.certs import make_tls_files

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-Pa55word-" + uuid.uuid4().hex[:8]


def app_env(url: str, runs: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "JOBQUEUE_BACKEND": "redis", "REDIS_URL": url, "JOBQUEUE_PREFIX": f"sec-{uuid.uuid4().hex[:6]}",
            "JOBQUEUE_FALLBACK": "raise", "JOBQUEUE_REDIS_RETRY_FOR": "0.5", "CHAOS_DIR": str(runs), "PYTHONPATH": str(ROOT), **extra}


def round_trip(env: dict[str, str], tmp: Path) -> tuple[JobState, str]:
    """Enqueue a job here, let a worker process run it, read its status; returns the state and the worker's log."""
    Path(env["CHAOS_DIR"]).mkdir(exist_ok=True)
    log = tmp / f"worker-{uuid.uuid4().hex[:6]}.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "tests.reliability.chaos_app", "--queues", "chaos", "--concurrency", "2"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    app = build(env)
    try:
        handle = app.registry["tick"].enqueue(ms=0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and handle.status().state is not JobState.COMPLETED:
            time.sleep(0.05)
        return handle.status().state, log.read_text()
    finally:
        worker.kill()
        worker.wait(10)
        app.close()


def refused(env: dict[str, str]) -> str:
    app: JobQueue = build(env)
    try:
        with pytest.raises(BrokerUnavailable) as caught:
            app.registry["tick"].enqueue(ms=0)
        assert app.health().status == "unhealthy"
        return str(caught.value)
    finally:
        app.close()


@pytest.fixture
def password_server() -> Iterator[RedisServer]:
    # requirepass for the default user, and an ACL user who may touch only keys under "acl-*" with no admin commands
    server = RedisServer(password=PASSWORD, extra_args=["--user", "jq", "on", f">{PASSWORD}-acl", "~acl-*", "&*", "+@all", "-@admin", "-@dangerous"])
    yield server.start()
    server.cleanup()


def test_password_protected_redis_end_to_end(password_server: RedisServer, tmp_path: Path) -> None:
    state, log = round_trip(app_env(password_server.url, tmp_path / "runs"), tmp_path)
    assert state is JobState.COMPLETED
    assert PASSWORD not in log and "***@" in log, "the worker names Redis by its redacted URL"
    message = refused(app_env(f"redis://{HOST}:{password_server.port}/0", tmp_path / "runs"))
    assert "authentication failed or is required" in message
    wrong = refused(app_env(f"redis://:wrong-{PASSWORD}@{HOST}:{password_server.port}/0", tmp_path / "runs"))
    assert PASSWORD not in wrong and "***@" in wrong and "authentication failed or is required" in wrong


def test_acl_user_limited_to_its_prefix_end_to_end(password_server: RedisServer, tmp_path: Path) -> None:
    url = f"redis://jq:{PASSWORD}-acl@{HOST}:{password_server.port}/0"
    env = app_env(url, tmp_path / "runs", JOBQUEUE_PREFIX=f"acl-{uuid.uuid4().hex[:6]}")
    state, log = round_trip(env, tmp_path)
    assert state is JobState.COMPLETED and PASSWORD not in log
    outside = app_env(url, tmp_path / "runs", JOBQUEUE_PREFIX="elsewhere")  # keys the ACL does not grant
    app = build(outside)
    try:
        with pytest.raises(Exception, match="(?i)no permissions|NOPERM"):
            app.registry["tick"].enqueue(ms=0)
    finally:
        app.close()


def test_redis_over_tls_end_to_end(tmp_path: Path) -> None:
    cert, key, ca = make_tls_files(tmp_path / "tls")
    server = RedisServer(tls=(cert, key, ca), password=PASSWORD)
    try:
        server.start()
        url = f"{server.url}?ssl_ca_certs={ca}"
        assert url.startswith("rediss://")
        state, log = round_trip(app_env(url, tmp_path / "runs"), tmp_path)
        assert state is JobState.COMPLETED and PASSWORD not in log
        # a client that does not trust the CA is refused: the certificate is verified, not just encrypted
        message = refused(app_env(server.url, tmp_path / "runs"))
        assert "certificate verify failed" in message and PASSWORD not in message
        # and plain TCP to the TLS port gets nowhere
        refused(app_env(f"redis://:{PASSWORD}@{HOST}:{server.port}/0", tmp_path / "runs"))
    finally:
        server.cleanup()
