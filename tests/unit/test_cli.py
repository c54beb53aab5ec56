from __future__ import annotations

import gc
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from jobqueue.cli import main
from tests.unit import cli_app


@pytest.fixture(autouse=True)
def fresh_app() -> None:
    cli_app.reset()


def run(*args: str) -> tuple[int, object]:
    result = CliRunner().invoke(main, ["--app", "tests.unit.cli_app:app", *args])
    try:
        return result.exit_code, json.loads(result.output)
    except ValueError:
        return result.exit_code, result.output


def test_enqueue_status_stats() -> None:
    code, out = run("enqueue", "greet", '{"name": "Ada"}', "--job-id", "g1")
    assert code == 0 and out == {"id": "g1", "queue": "default", "created": True}
    code, out = run("status", "g1", "--json")
    assert code == 0 and out["state"] == "waiting" and out["payload"] == {"name": "Ada"}
    cli_app.app.backend.run_until_empty()
    code, out = run("status", "g1", "--wait", "1", "--json")
    assert out["state"] == "completed" and out["result"] == "hello Ada"
    code, out = run("stats", "default", "--json")
    assert out["default"]["counts"]["completed"] == 1


def test_steering_commands() -> None:
    run("pause", "default")
    run("enqueue", "greet", '{"name": "Bo"}', "--job-id", "b1")
    cli_app.app.backend.run_until_empty()
    _, out = run("stats", "--json")
    assert out["default"]["paused"] is True and out["default"]["counts"]["waiting"] == 1
    assert run("cancel", "b1")[0] == 0
    assert run("cancel", "b1")[0] == 1
    assert run("retry", "b1")[1] == {"id": "b1", "retried": True}
    assert run("resume", "default")[0] == 0
    cli_app.app.backend.run_until_empty()
    assert run("clean", "default", "--state", "completed")[1]["removed"] == 1
    assert run("jobs", "--queue", "default", "--state", "completed", "--json")[1]["jobs"] == []


def test_bad_input_gets_a_clear_error() -> None:
    code, out = run("enqueue", "nope", "{}")
    assert code == 1 and "no job named 'nope'" in out
    code, out = run("enqueue", "greet", '{"name": 5}')
    assert code == 1 and "invalid payload for job 'greet'" in out
    code, out = run("enqueue", "greet", "{not json")
    assert code == 2 and "not JSON" in out
    code, out = run("status", "missing")
    assert code == 1 and "no job 'missing'" in out
    result = CliRunner().invoke(main, ["--app", "no.such.module:app", "health"])
    assert result.exit_code == 1 and "cannot import module 'no'" in result.output
    result = CliRunner().invoke(main, ["--backend", "rabbit", "health"])
    assert result.exit_code == 1 and "unknown backend 'rabbit'" in result.output


def test_health_and_worker_on_in_process_backends() -> None:
    code, out = run("health", "--json")
    assert code == 0 and out["status"] == "healthy" and out["backend"] == "memory"
    result = CliRunner().invoke(main, ["--app", "tests.unit.cli_app:app", "worker", "--burst"])
    assert result.exit_code == 1 and "does not support 'worker'" in result.output


def test_worker_leaves_the_garbage_collector_as_it_found_it() -> None:
    """``worker`` loads the app with the collector paused and freezes what it loaded; run in-process, it undoes both."""
    for app in ("tests.unit.cli_app:app", "no.such.module:app"):
        result = CliRunner().invoke(main, ["--app", app, "worker", "--burst"])
        assert result.exit_code == 1
        assert gc.isenabled() and gc.get_freeze_count() == 0


def test_importing_the_cli_leaves_the_app_graph_to_the_app() -> None:
    code = "import sys, jobqueue.cli; print(sorted(m for m in ('jobqueue.app', 'pydantic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
