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


def _webhook_template(environ: dict[str, str]) -> dict[str, Any]:
    from jobqueue_sqs.sam import build_template
    from jobqueue_sqs.settings import SQSSettings

    from jobqueue import JobQueue, Settings

    app = JobQueue(backend="memory", settings=Settings.from_env(environ))
    app.queue("default")
    return build_template(app, SQSSettings.from_environ(environ, default_queue="default", prefix="jobqueue"), "hooks:app")


def test_an_app_with_webhooks_passes_their_settings_to_the_worker_and_keeps_the_secret_out() -> None:
    from jobqueue.webhooks import WEBHOOK_QUEUE

    environ = {"JOBQUEUE_WEBHOOK_URL": "https://hooks.example.com/jobs", "JOBQUEUE_WEBHOOK_SECRET": "s3cret-value",
               "JOBQUEUE_WEBHOOK_ALLOW": "https://partner.example.com/,api.example.org",
               "JOBQUEUE_WEBHOOK_ATTEMPT_FAILED": "true"}
    template = _webhook_template(environ)
    variables = template["Resources"]["WorkerFunction"]["Properties"]["Environment"]["Variables"]
    assert {k: v for k, v in variables.items() if k.startswith("JOBQUEUE_WEBHOOK_")} == {
        "JOBQUEUE_WEBHOOK_URL": {"Ref": "WebhookUrl"}, "JOBQUEUE_WEBHOOK_SECRET": {"Ref": "WebhookSecret"},
        "JOBQUEUE_WEBHOOK_ALLOW": {"Ref": "WebhookAllow"}, "JOBQUEUE_WEBHOOK_ATTEMPT_FAILED": {"Ref": "WebhookAttemptFailed"},
    }
    parameters = template["Parameters"]
    assert parameters["WebhookUrl"]["Default"] == "https://hooks.example.com/jobs"
    assert parameters["WebhookAllow"]["Default"] == "https://partner.example.com/,api.example.org"
    assert parameters["WebhookAttemptFailed"]["Default"] == "true"
    assert parameters["WebhookSecret"] == {**parameters["WebhookSecret"], "Default": "", "NoEcho": True}
    from jobqueue_sqs.sam import render

    assert "s3cret-value" not in render(template)
    queue = template["Resources"]["JobqueueWebhooksQueue"]["Properties"]
    assert queue["QueueName"] == {"Fn::Sub": f"${{Prefix}}-{WEBHOOK_QUEUE}"}
    # a deployed function reads them back as the settings they came from (an empty parameter leaves one unset)
    from jobqueue import Settings

    deployed = {k: parameters[v["Ref"]]["Default"] for k, v in variables.items() if k.startswith("JOBQUEUE_WEBHOOK_")}
    read = Settings.from_env(deployed)
    assert (read.webhook_url, read.webhook_secret, read.webhook_allow, read.webhook_attempt_failed) == (
        "https://hooks.example.com/jobs", None, ("https://partner.example.com/", "api.example.org"), True)


def test_an_app_without_webhooks_gets_no_webhook_settings() -> None:
    template = _webhook_template({})
    assert not [name for name in template["Parameters"] if name.startswith("Webhook")]
    assert not [k for k in template["Resources"]["WorkerFunction"]["Properties"]["Environment"]["Variables"] if "WEBHOOK" in k]


def test_drift_notices_a_template_without_the_webhook_settings(tmp_path: Path) -> None:
    from jobqueue_sqs.sam import drift, render

    template = _webhook_template({"JOBQUEUE_WEBHOOK_URL": "https://hooks.example.com/jobs"})
    old = yaml.safe_load(render(template))
    del old["Parameters"]["WebhookSecret"]
    del old["Resources"]["WorkerFunction"]["Properties"]["Environment"]["Variables"]["JOBQUEUE_WEBHOOK_SECRET"]
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(old, sort_keys=False))
    problems = drift(template, str(path))
    assert "Parameters.WebhookSecret: missing from " + str(path) in problems
    assert any("Variables.JOBQUEUE_WEBHOOK_SECRET: missing" in p for p in problems), problems
