"""template.yaml is generated from code, and the drift check notices when they part."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jobqueue_sqs.cli import sam, sqs

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "example_jobs:app"


@pytest.fixture(autouse=True)
def example_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "jobs"))
    for name in [n for n in list(__import__("sys").modules) if n.startswith("example_jobs")]:
        monkeypatch.delitem(__import__("sys").modules, name)
    monkeypatch.delenv("JOBQUEUE_SQS_PREFIX", raising=False)


def test_checked_in_template_matches_the_code() -> None:
    result = CliRunner().invoke(sam, ["check", "--app", EXAMPLE, str(ROOT / "template.yaml")])
    assert result.exit_code == 0, result.output
    assert "matches" in result.output


def test_export_is_what_is_checked_in() -> None:
    result = CliRunner().invoke(sam, ["export", "--app", EXAMPLE])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output) == yaml.safe_load((ROOT / "template.yaml").read_text())


def test_template_facts() -> None:
    template = yaml.safe_load((ROOT / "template.yaml").read_text())
    resources = template["Resources"]
    function = resources["WorkerFunction"]["Properties"]
    assert function["Runtime"] == "python3.11" and function["Handler"] == "app.lambda_handler"
    for stem in ("Default", "Email"):
        queue = resources[f"{stem}Queue"]["Properties"]
        assert queue["MaximumMessageSize"] == 1_048_576
        assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
        assert queue["RedrivePolicy"]["maxReceiveCount"] > 5  # above the largest attempts (email: 5)
        event = function["Events"][f"{stem}Messages"]["Properties"]
        assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert resources[f"{stem}DeadLetterAlarm"]["Type"] == "AWS::CloudWatch::Alarm"
    assert function["Events"]["EmailMessages"]["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 5}
    assert resources["JobsTable"]["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert {"ProducerPolicyArn", "JobsTableName", "EmailQueueUrl", "EmailDeadLetterQueueUrl"} <= set(template["Outputs"])


def _drifted(tmp_path: Path, change: Any) -> str:
    template = yaml.safe_load((ROOT / "template.yaml").read_text())
    change(template)
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    result = CliRunner().invoke(sam, ["check", "--app", EXAMPLE, str(path)])
    assert result.exit_code == 1
    return result.output


def test_drift_is_reported(tmp_path: Path) -> None:
    def shorter_visibility(t: dict[str, Any]) -> None:
        t["Resources"]["EmailQueue"]["Properties"]["VisibilityTimeout"] = 30

    assert "Resources.EmailQueue.Properties.VisibilityTimeout: file says 30, code says 360" in _drifted(tmp_path, shorter_visibility)

    def lost_queue(t: dict[str, Any]) -> None:
        del t["Resources"]["DefaultQueue"]
        del t["Resources"]["WorkerFunction"]["Properties"]["Events"]["DefaultMessages"]

    output = _drifted(tmp_path, lost_queue)
    assert "Resources.DefaultQueue: missing" in output and "DefaultMessages: missing" in output

    def stray_queue(t: dict[str, Any]) -> None:
        t["Resources"]["ReportsQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}

    assert "ReportsQueue: a queue the app does not declare" in _drifted(tmp_path, stray_queue)


def test_sqs_init_creates_what_the_template_declares(moto_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_SQS_PREFIX", "initcheck")
    result = CliRunner().invoke(sqs, ["init", "--app", EXAMPLE])
    assert result.exit_code == 0, result.output
    assert '"table_created": true' in result.output
    import boto3

    client = boto3.client("sqs", endpoint_url=moto_server.endpoint, region_name="us-east-1")
    url = client.get_queue_url(QueueName="initcheck-email")["QueueUrl"]
    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    template = yaml.safe_load((ROOT / "template.yaml").read_text())["Resources"]["EmailQueue"]["Properties"]
    assert int(attrs["VisibilityTimeout"]) == template["VisibilityTimeout"]
    assert int(attrs["MaximumMessageSize"]) == template["MaximumMessageSize"]
    assert f'"maxReceiveCount":{template["RedrivePolicy"]["maxReceiveCount"]}' in attrs["RedrivePolicy"].replace(" ", "")
    again = CliRunner().invoke(sqs, ["init", "--app", EXAMPLE])  # idempotent
    assert again.exit_code == 0 and '"table_created": false' in again.output


def test_app_from_a_parent_group() -> None:
    import click

    @click.group()
    @click.option("--app", "app_spec")
    @click.pass_context
    def main(ctx: click.Context, app_spec: str) -> None:
        ctx.ensure_object(dict)
        ctx.obj.update(app_spec=app_spec)

    main.add_command(sam)
    result = CliRunner().invoke(main, ["--app", EXAMPLE, "sam", "check", str(ROOT / "template.yaml")])
    assert result.exit_code == 0, result.output
