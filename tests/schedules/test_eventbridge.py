"""Code-defined schedules as AWS::Scheduler::Schedule resources, and the drift check."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jobqueue.schedules.eventbridge import (
    SCHEDULED_TIME,
    check_resources,
    eventbridge_name,
    logical_id,
    schedule_resource,
    schedule_resources,
    target_input,
)
from tests.schedules.conftest import App


@pytest.fixture
def app_env() -> App:
    env = App("memory")
    env.app.schedule("hourly-sync", cron="0 * * * *", job=env.sync_integrations, payload={"org": "acme"}, missed="catch_up")
    return env


def test_resource_for_a_code_defined_schedule(app_env: App) -> None:
    schedule = app_env.app.schedules.get("nightly_report")
    assert schedule is not None
    resource = schedule_resource(schedule, app_env.app)
    props = resource["Properties"]
    assert resource["Type"] == "AWS::Scheduler::Schedule"
    assert props["Name"] == "nightly_report"
    assert props["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert props["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"} and props["State"] == "ENABLED"
    target = props["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["JobqueueQueueReports", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["JobqueueSchedulerRole", "Arn"]}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 185}
    envelope = json.loads(target["Input"])
    assert envelope["id"] == f"nightly_report:{SCHEDULED_TIME}"
    assert envelope["name"] == "nightly_report" and envelope["queue"] == "reports" and envelope["payload"] == {"kind": "daily"}
    assert envelope["trace"] == {"jobqueue.schedule": "nightly_report", "jobqueue.fire_time": SCHEDULED_TIME}


def test_input_becomes_the_same_envelope_the_ticker_enqueues(app_env: App) -> None:
    """EventBridge substitutes the scheduled time; the result is the ticker's envelope for that fire."""
    schedule = app_env.app.schedules.get("hourly-sync")
    assert schedule is not None
    delivered = json.loads(target_input(schedule, app_env.app).replace(SCHEDULED_TIME, "2026-01-05T10:00:00Z"))
    local = schedule.envelope(app_env.app, 1_767_607_200.0).model_dump(mode="json")
    assert delivered == {**local, "enqueued_at": 0.0}
    assert delivered["id"] == "hourly-sync:2026-01-05T10:00:00Z"


def test_input_is_deterministic(app_env: App) -> None:
    schedule = app_env.app.schedules.get("hourly-sync")
    assert schedule is not None
    first = target_input(schedule, app_env.app)
    app_env.advance(3600)
    assert target_input(schedule, app_env.app) == first


def test_options_and_missed_policy(app_env: App) -> None:
    schedule = app_env.app.schedules.get("hourly-sync")
    assert schedule is not None
    props = schedule_resource(
        schedule, app_env.app, queue_arn={"Ref": "Q"}, role_arn="arn:aws:iam::1:role/r", dead_letter_arn={"Ref": "D"}, group_name="g",
    )["Properties"]
    assert props["Target"]["Arn"] == {"Ref": "Q"} and props["Target"]["RoleArn"] == "arn:aws:iam::1:role/r"
    assert props["Target"]["DeadLetterConfig"] == {"Arn": {"Ref": "D"}} and props["GroupName"] == "g"
    assert props["Target"]["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400  # catch_up: late delivery is wanted
    assert props["ScheduleExpressionTimezone"] == "UTC"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("hourly-sync", "hourly-sync"), ("nightly_report", "nightly_report"), ("a.b", "a.b")],
)
def test_valid_names_are_kept(name: str, expected: str) -> None:
    assert eventbridge_name(name) == expected


def test_other_names_are_cleaned_and_hashed() -> None:
    a, b = eventbridge_name("sync:org-123"), eventbridge_name("sync/org-123")
    assert a.startswith("sync-org-123-") and b.startswith("sync-org-123-") and a != b
    long = eventbridge_name("x" * 100)
    assert len(long) <= 64
    assert logical_id("hourly-sync") == "JobqueueScheduleHourlySync"
    assert logical_id("hourly_sync") != logical_id("hourly-sync")  # lossy names get a hash
    assert logical_id("hourly_sync").isalnum()


def test_drift_check(app_env: App) -> None:
    resources = schedule_resources(app_env.app)
    assert sorted(resources) == ["JobqueueScheduleHourlySync", logical_id("nightly_report")]
    assert check_resources(app_env.app, resources) == []

    changed = copy.deepcopy(resources)
    changed["JobqueueScheduleHourlySync"]["Properties"]["ScheduleExpression"] = "cron(30 * * * ? *)"
    assert check_resources(app_env.app, changed) == [
        "JobqueueScheduleHourlySync: ScheduleExpression is 'cron(30 * * * ? *)' in the template, 'cron(0 * * * ? *)' in the code"
    ]

    app_env.app.schedules._code.pop("hourly-sync")  # the code dropped a schedule the template still has
    problems = check_resources(app_env.app, resources)
    assert problems == ["JobqueueScheduleHourlySync: schedule is in the template but no longer in the code"]

    app_env.app.schedule("new-one", cron="@daily", job=app_env.sync_integrations, payload={"org": "z"})
    assert "JobqueueScheduleNewOne: schedule 'new-one' is in the code but not in the template" in check_resources(app_env.app, resources)


def test_drift_check_sees_a_changed_payload(app_env: App) -> None:
    resources = schedule_resources(app_env.app)
    target = resources["JobqueueScheduleHourlySync"]["Properties"]["Target"]
    target["Input"] = target["Input"].replace('"acme"', '"other"')
    assert check_resources(app_env.app, resources) == ["JobqueueScheduleHourlySync: Target.Input (the job envelope) differs from the code's"]


def _cfn_lint() -> str | None:
    beside = Path(sys.executable).with_name("cfn-lint")
    return str(beside) if beside.exists() else shutil.which("cfn-lint")


@pytest.mark.skipif(_cfn_lint() is None, reason="cfn-lint is not installed (it comes with moto[server])")
def test_rendered_resources_pass_cfn_lint(app_env: App, tmp_path: Path) -> None:
    """``sam validate --lint`` runs cfn-lint; the schedules must pass it in a template with their queue and role."""
    resources: dict[str, Any] = {
        "JobqueueQueueReports": {"Type": "AWS::SQS::Queue"},
        "JobqueueQueueIntegrations": {"Type": "AWS::SQS::Queue"},
        "JobqueueSchedulerRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole"}],
                },
                "Policies": [{
                    "PolicyName": "send",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": [
                            {"Fn::GetAtt": ["JobqueueQueueReports", "Arn"]}, {"Fn::GetAtt": ["JobqueueQueueIntegrations", "Arn"]},
                        ]}],
                    },
                }],
            },
        },
        **schedule_resources(app_env.app),
    }
    template = tmp_path / "template.json"
    template.write_text(json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}, indent=2))
    result = subprocess.run([_cfn_lint() or "cfn-lint", "--regions", "us-east-1", "--", str(template)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_dynamic_schedule_round_trips_through_the_scheduler_api(app_env: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's Scheduler stores schedules (it never fires them): check what was created reads back as the schedule."""
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from jobqueue.schedules.eventbridge import create_schedule_request, schedule_from_eventbridge

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    schedule = app_env.app.schedules.add(
        "sync:org-123", cron="*/15 8-18 * * 1-5", tz="America/New_York", job=app_env.sync_integrations, payload={"org": "org-123"},
    )
    with moto.mock_aws():
        queue_url = boto3.client("sqs").create_queue(QueueName="integrations")["QueueUrl"]
        queue_arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        scheduler = boto3.client("scheduler")
        request = create_schedule_request(schedule, app_env.app, queue_arn=queue_arn, role_arn="arn:aws:iam::123456789012:role/scheduler")
        scheduler.create_schedule(**request)
        created = scheduler.get_schedule(Name=request["Name"])
    assert created["ScheduleExpression"] == "cron(0/15 8-18 ? * 2-6 *)"
    assert created["ScheduleExpressionTimezone"] == "America/New_York"
    assert created["Target"]["Arn"] == queue_arn
    assert json.loads(created["Target"]["Input"])["id"] == f"sync:org-123:{SCHEDULED_TIME}"
    assert schedule_from_eventbridge(created) == schedule


def test_a_schedule_not_made_by_jobqueue_is_refused() -> None:
    from jobqueue.schedules.eventbridge import schedule_from_eventbridge

    with pytest.raises(ValueError, match="not made by jobqueue"):
        schedule_from_eventbridge({"Name": "someone-elses", "Description": "nightly backup", "Target": {"Input": "{}"}})


def test_an_envelope_too_big_for_eventbridge_is_a_clear_error(app_env: App) -> None:
    from jobqueue import ConfigurationError

    schedule = app_env.app.schedule("big", cron="@daily", job=app_env.sync_integrations, payload={"org": "x" * 9000})
    with pytest.raises(ConfigurationError, match="at most 8192"):
        schedule_resource(schedule, app_env.app)
