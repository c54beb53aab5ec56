"""``jobqueue schedules list``."""

from __future__ import annotations

import json

from click.testing import CliRunner

from jobqueue.cli import main
from tests.schedules import cli_app


def test_schedules_list_shows_each_schedule_with_its_next_fire_time() -> None:
    cli_app.app.schedules.add("sync:org-1", cron="*/20 * * * *", job="sync_integrations", payload={"org": "org-1"})
    try:
        result = CliRunner().invoke(main, ["--app", "tests.schedules.cli_app:app", "schedules", "list"])
    finally:
        cli_app.app.schedules.remove("sync:org-1")
    assert result.exit_code == 0, result.output
    listed = {s["name"]: s for s in json.loads(result.output)}
    assert list(listed) == ["hourly-sync", "nightly_report", "sync:org-1"]
    assert listed["hourly-sync"] == {
        "name": "hourly-sync", "cron": "0 * * * *", "tz": "UTC", "job": "sync_integrations", "queue": "integrations",
        "payload": {"org": "all", "full": False}, "missed": "skip", "source": "code", "next_fire": "2026-01-05T10:00:00Z",
    }
    assert listed["nightly_report"]["next_fire"] == "2026-01-06T01:00:00Z"  # 02:00 in Berlin
    assert listed["sync:org-1"]["source"] == "dynamic" and listed["sync:org-1"]["next_fire"] == "2026-01-05T10:00:00Z"


def test_schedules_group_is_listed_in_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert "schedules" in result.output
    result = CliRunner().invoke(main, ["--app", "tests.schedules.cli_app:app", "schedules", "--help"])
    assert result.exit_code == 0 and "list" in result.output
