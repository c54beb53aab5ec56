"""The schedules in template.yaml: an EventBridge Scheduler resource per code-defined schedule, and the drift check on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jobqueue_sqs.cli import sam

from tests.sqs.test_sam_export import example_on_path  # noqa: F401  (autouse: the example app on sys.path)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "example_jobs:app"
SCHEDULE = "JobqueueScheduleMonthlyReport"


def template() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "template.yaml").read_text())  # type: ignore[no-any-return]


def check(tmp_path: Path, change: Any) -> tuple[int, str]:
    changed = template()
    change(changed)
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(changed, sort_keys=False))
    result = CliRunner().invoke(sam, ["check", "--app", EXAMPLE, str(path)])
    return result.exit_code, result.output


def test_the_code_defined_schedule_is_an_eventbridge_schedule_on_its_queue() -> None:
    resources = template()["Resources"]
    schedule = resources[SCHEDULE]
    assert schedule["Type"] == "AWS::Scheduler::Schedule"
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "cron(0 6 1 * ? *)" and props["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert props["GroupName"] == {"Ref": "JobqueueScheduleGroup"} and props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = props["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["DefaultQueue", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["JobqueueSchedulerRole", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DefaultDeadLetterQueue", "Arn"]}}
    assert set(target["RetryPolicy"]) == {"MaximumEventAgeInSeconds", "MaximumRetryAttempts"}
    envelope = json.loads(target["Input"])
    assert envelope["id"] == "monthly-report:<aws.scheduler.scheduled-time>" and envelope["name"] == "monthly_report"
    assert envelope["trace"]["jobqueue.fire_time"] == "<aws.scheduler.scheduled-time>"
    role = resources["JobqueueSchedulerRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    sent_to = role["Policies"][0]["PolicyDocument"]["Statement"][0]["Resource"]
    assert {"Fn::GetAtt": ["DefaultQueue", "Arn"]} in sent_to and {"Fn::GetAtt": ["DefaultDeadLetterQueue", "Arn"]} in sent_to
    assert resources["JobqueueScheduleGroup"]["Type"] == "AWS::Scheduler::ScheduleGroup"
    assert {"SchedulerRoleArn", "ScheduleGroupName", "SchedulesPolicyArn"} <= set(template()["Outputs"])


def test_drift_check_passes_when_the_template_agrees(tmp_path: Path) -> None:
    code, output = check(tmp_path, lambda t: None)
    assert code == 0 and "matches" in output, output


def test_drift_check_fails_on_a_changed_cron(tmp_path: Path) -> None:
    def hourly(t: dict[str, Any]) -> None:
        t["Resources"][SCHEDULE]["Properties"]["ScheduleExpression"] = "cron(0 * * * ? *)"

    code, output = check(tmp_path, hourly)
    assert code == 1
    assert f"Resources.{SCHEDULE}: ScheduleExpression is 'cron(0 * * * ? *)' in the template, 'cron(0 6 1 * ? *)' in the code" in output
    assert output.count("ScheduleExpression") == 1  # reported once, by the schedule check


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t["Resources"][SCHEDULE]["Properties"].update(ScheduleExpressionTimezone="UTC"), "ScheduleExpressionTimezone is 'UTC'"),
        (lambda t: t["Resources"].pop(SCHEDULE), "is in the code but not in the template"),
        (lambda t: t["Resources"].update(JobqueueScheduleOld={"Type": "AWS::Scheduler::Schedule", "Properties": {}}),
         "JobqueueScheduleOld: schedule is in the template but no longer in the code"),
        (lambda t: t["Resources"][SCHEDULE]["Properties"]["Target"].update(Input="{}"), "Target.Input (the job envelope) differs"),
        (lambda t: t["Resources"].pop("JobqueueSchedulerRole"), "Resources.JobqueueSchedulerRole: missing"),
    ],
)
def test_drift_check_fails_on_other_schedule_changes(tmp_path: Path, change: Any, expected: str) -> None:
    code, output = check(tmp_path, change)
    assert code == 1 and expected in output, output
