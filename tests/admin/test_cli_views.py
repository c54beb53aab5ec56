"""The CLI's operator views: tables and --json, the live progress bar, and the standalone dashboard."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobqueue.cli import main
from tests.admin import cli_app

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.admin.cli_app:app"


@pytest.fixture(autouse=True)
def fresh() -> None:
    cli_app.reset()


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--app", APP, *args])
    return result.exit_code, result.output


def test_stats_and_health_print_tables_or_json() -> None:
    cli_app.app.enqueue("slow", {"steps": 1})
    cli_app.app.enqueue("broken", {})
    cli_app.gate.set()
    cli_app.app.backend.run_until_empty()
    cli_app.app.pause("work")
    cli_app.app.enqueue("slow", {"steps": 1})
    code, out = cli("stats")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:7] == ["queue", "waiting", "active", "delayed", "completed", "failed", "cancelled"]
    work = next(line for line in lines if line.startswith("work"))
    assert work.split()[:8] == ["work", "1", "0", "0", "1", "0", "0", "yes"]
    code, out = cli("stats", "--json")
    data = json.loads(out)
    assert data["work"]["counts"]["completed"] == 1 and data["other"]["failed_recent"] == 1 and data["work"]["paused"] is True
    code, out = cli("health")
    assert code == 0 and out.startswith("healthy  backend=memory") and "other" in out
    code, out = cli("health", "--json", "--stall-after", "0")
    data = json.loads(out)
    assert data["queues"]["work"]["paused"] is True and data["queues"]["work"]["status"] == "healthy"


def test_jobs_lists_failed_jobs_across_queues() -> None:
    cli_app.app.enqueue("broken", {"token": "hush"})
    cli_app.app.backend.run_until_empty()
    code, out = cli("jobs", "--state", "failed")
    assert code == 0 and "broken" in out and "RuntimeError: broken on purpose" in out
    code, out = cli("jobs", "--state", "failed", "--json")
    assert json.loads(out)["jobs"][0]["error"]["type"] == "RuntimeError"
    code, out = cli("jobs", "--state", "completed")
    assert code == 0 and out.strip() == "no completed jobs"


def test_status_wait_follows_progress_until_the_job_ends() -> None:
    handle = cli_app.app.enqueue("slow", {"steps": 4, "token": "hush"})
    worker = threading.Thread(target=cli_app.app.backend.run_until_empty, daemon=True)
    worker.start()
    cli_app.gate.set()
    result = CliRunner().invoke(main, ["--app", APP, "status", handle.id, "--wait"])
    worker.join(10)
    assert result.exit_code == 0, result.output
    assert f"slow {handle.id}" in result.stderr  # the bar's label (drawn live on a terminal)
    assert "state     completed" in result.stdout and "progress  100%" in result.stdout
    assert '"token": "[redacted]"' in result.stdout and "hush" not in result.stdout


def test_status_wait_gives_up_after_the_given_seconds() -> None:
    handle = cli_app.app.enqueue("slow", {"steps": 1})
    started = time.monotonic()
    code, out = cli("status", handle.id, "--wait", "0.3", "--json")
    assert code == 1 and "still waiting after 0.3s" in out and time.monotonic() - started < 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def run_dashboard(*args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "JOBQUEUE_ADMIN_TOKEN"}
    process = subprocess.Popen(
        [sys.executable, "-m", "jobqueue.cli", "--app", APP, "dashboard", "--port", str(port), *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    return process, port


def wait_for(url: str, process: subprocess.Popen[str], token: str | None = None) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dashboard exited: {process.stderr.read() if process.stderr else ''}")
        try:
            return get(url, token)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError("dashboard did not answer in time")


@pytest.mark.parametrize("token", [None, "standalone-token"])
def test_standalone_dashboard_on_loopback(token: str | None) -> None:
    process, port = run_dashboard(*(["--token", token] if token else []))
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for(f"{base}/api/health", process, token) == 200
        assert get(f"{base}/") == 200
        if token:
            assert get(f"{base}/api/stats") == 401
            assert get(f"{base}/api/stats", token) == 200
        else:
            assert get(f"{base}/api/stats") == 200  # loopback only, so no token needed
    finally:
        process.terminate()
        process.wait(10)


def test_standalone_dashboard_refuses_other_addresses_without_a_token() -> None:
    result = CliRunner().invoke(main, ["--app", APP, "dashboard", "--host", "0.0.0.0", "--port", "1"], env={"JOBQUEUE_ADMIN_TOKEN": None})
    assert result.exit_code == 1 and "without a token" in result.output
