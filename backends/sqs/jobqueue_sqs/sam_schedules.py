"""The schedules' part of template.yaml: one ``AWS::Scheduler::Schedule`` per code-defined schedule, their
group and the role EventBridge Scheduler assumes to send a fire's job envelope to its queue.

The schedules live in a schedule group named after the prefix (``${Prefix}``), so two stacks never clash
on a schedule name; dynamic schedules (:mod:`jobqueue_sqs.schedule_store`) go to the same group and
use the same role (the ``SchedulerRoleArn`` output, ``JOBQUEUE_SQS_SCHEDULER_ROLE_ARN``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jobqueue.schedules.eventbridge import RESOURCE_TYPE, check_resources, logical_id, schedule_resource
from jobqueue_sqs.resources import QueueSpec

if TYPE_CHECKING:
    from jobqueue.app import JobQueue

ROLE = "JobqueueSchedulerRole"
GROUP = "JobqueueScheduleGroup"
POLICY = "JobqueueSchedulesPolicy"


def _arn(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _role(specs: list[QueueSpec]) -> dict[str, Any]:
    queues = [_arn(f"{s.logical_id}{kind}") for s in specs for kind in ("Queue", "DeadLetterQueue")]
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": "Assumed by EventBridge Scheduler to send the schedules' jobs to their queues (jobqueue)",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            }]},
            "Policies": [{"PolicyName": "send-scheduled-jobs", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": queues},
            ]}}],
        },
    }


def _dynamic_policy() -> dict[str, Any]:
    schedules = {"Fn::Sub": "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${JobqueueScheduleGroup}/*"}
    return {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "Description": "What a producer needs for dynamic schedules (app.schedules.add/remove/list)",
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule",
                                               "scheduler:GetSchedule"], "Resource": schedules},
                {"Effect": "Allow", "Action": ["scheduler:ListSchedules"], "Resource": "*"},
                {"Effect": "Allow", "Action": ["scheduler:GetScheduleGroup"],
                 "Resource": {"Fn::GetAtt": [GROUP, "Arn"]}},
                {"Effect": "Allow", "Action": ["iam:PassRole"], "Resource": _arn(ROLE),
                 "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}},
            ]},
        },
    }


def scheduler_resources(app: JobQueue, specs: list[QueueSpec]) -> dict[str, Any]:
    """The group, the role, the producers' policy for dynamic schedules, and one resource per code-defined schedule."""
    by_queue = {s.queue: s for s in specs}
    resources: dict[str, Any] = {
        GROUP: {"Type": "AWS::Scheduler::ScheduleGroup", "Properties": {"Name": {"Ref": "Prefix"}}},
        ROLE: _role(specs),
        POLICY: _dynamic_policy(),
    }
    for schedule in app.schedules.code_defined():
        stem = by_queue[schedule.queue].logical_id
        resources[logical_id(schedule.name)] = schedule_resource(
            schedule, app, queue_arn=_arn(f"{stem}Queue"), role_arn=_arn(ROLE), dead_letter_arn=_arn(f"{stem}DeadLetterQueue"),
            group_name={"Ref": GROUP},  # type: ignore[arg-type]
        )
    return resources


def scheduler_outputs() -> dict[str, Any]:
    return {
        "SchedulerRoleArn": {"Description": "JOBQUEUE_SQS_SCHEDULER_ROLE_ARN for producers (dynamic schedules)", "Value": _arn(ROLE)},
        "ScheduleGroupName": {"Description": "The schedule group of this stack's schedules", "Value": {"Ref": GROUP}},
        "SchedulesPolicyArn": {"Description": "Attach to a producer's role to add dynamic schedules", "Value": {"Ref": POLICY}},
    }


def is_schedule(resource: Any) -> bool:
    return isinstance(resource, Mapping) and resource.get("Type") == RESOURCE_TYPE


def schedule_drift(app: JobQueue, found_resources: Mapping[str, Any]) -> list[str]:
    """What :func:`~jobqueue.schedules.eventbridge.check_resources` finds: a changed cron, time zone, name, job envelope..."""
    return [f"Resources.{problem}" for problem in check_resources(app, found_resources)]
