"""template.yaml from code (``jobqueue sam export``), and the drift check (``jobqueue sam check``).

The template is written in CloudFormation's long form (``{"Ref": ...}``, ``{"Fn::GetAtt": ...}``),
so it reads back with any YAML parser and the check compares plain data.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jobqueue_sqs.resources import (
    FOLLOWUP_INDEX,
    MAINTENANCE_EVENT,
    MAINTENANCE_RATE,
    STATE_INDEX,
    TTL_ATTRIBUTE,
    QueueSpec,
    queue_specs,
    table_definition,
)
from jobqueue_sqs.sam_schedules import is_schedule, schedule_drift, scheduler_outputs, scheduler_resources
from jobqueue_sqs.settings import MAX_MESSAGE_BYTES, SQSSettings

if TYPE_CHECKING:
    from jobqueue.app import JobQueue

CODE_URI = "functions/worker/"
RUNTIME = "python3.11"


def _ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def _arn(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _queue_resources(spec: QueueSpec) -> dict[str, Any]:
    stem = spec.logical_id
    suffix = spec.sqs_name[len(spec.sqs_name) - len(spec.queue):]  # the queue's part of its name, after the prefix
    return {
        f"{stem}DeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": _sub("${Prefix}-" + suffix + "-dlq"),
                "MaximumMessageSize": MAX_MESSAGE_BYTES,
                "MessageRetentionPeriod": int(spec.dlq_attributes()["MessageRetentionPeriod"]),
            },
        },
        f"{stem}Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": _sub("${Prefix}-" + suffix),
                "MaximumMessageSize": MAX_MESSAGE_BYTES,
                "MessageRetentionPeriod": int(spec.dlq_attributes()["MessageRetentionPeriod"]),
                "VisibilityTimeout": spec.visibility_timeout,
                "RedrivePolicy": {"deadLetterTargetArn": _arn(f"{stem}DeadLetterQueue"), "maxReceiveCount": spec.max_receive_count},
            },
        },
        f"{stem}DeadLetterAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": f"Jobs of queue {spec.queue!r} reached its dead-letter queue",
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [f"{stem}DeadLetterQueue", "QueueName"]}}],
                "Statistic": "Maximum",
                "Period": 60,
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": {"Fn::If": ["HasAlarmTopic", [_ref("AlarmTopicArn")], _ref("AWS::NoValue")]},
            },
        },
    }


def _event(spec: QueueSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "Queue": _arn(f"{spec.logical_id}Queue"),
        "BatchSize": spec.batch_size,
        "MaximumBatchingWindowInSeconds": spec.batching_window,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }
    if spec.max_concurrency is not None:
        properties["ScalingConfig"] = {"MaximumConcurrency": spec.max_concurrency}
    return {"Type": "SQS", "Properties": properties}


def _table() -> dict[str, Any]:
    definition = table_definition("unused")
    return {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "TableName": _sub("${Prefix}-jobs"),
            "BillingMode": definition["BillingMode"],
            "AttributeDefinitions": definition["AttributeDefinitions"],
            "KeySchema": definition["KeySchema"],
            "GlobalSecondaryIndexes": definition["GlobalSecondaryIndexes"],
            "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
        },
    }


def _table_arns() -> list[Any]:
    return [_arn("JobsTable"), _sub("${JobsTable.Arn}/index/" + STATE_INDEX), _sub("${JobsTable.Arn}/index/" + FOLLOWUP_INDEX)]


def _maintenance_event() -> dict[str, Any]:
    """The schedule that invokes the worker function to finish workflow steps a crash left half done (handler.maintain)."""
    return {"Type": "ScheduleV2", "Properties": {
        "Description": "jobqueue maintenance: run workflow follow-ups and releases a crash left half done",
        "ScheduleExpression": MAINTENANCE_RATE,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Input": json.dumps(MAINTENANCE_EVENT, separators=(",", ":")),
        "RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60},
    }}


def _worker_role(specs: list[QueueSpec]) -> dict[str, Any]:
    """The worker function's role, given explicitly: a function without one gets a role from SAM, and for
    each SQS event SAM attaches AWSLambdaSQSQueueExecutionRole, which allows receiving and deleting the
    messages of every queue in the account (``Resource: "*"``). This one reaches only the app's queues,
    DLQs and table, plus the logs every function writes (AWSLambdaBasicExecutionRole)."""
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": "jobqueue worker function: the app's queues, DLQs and job table only",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
            ]},
            "ManagedPolicyArns": [_sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")],
            "Policies": [{"PolicyName": "jobqueue-worker", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                                               "dynamodb:BatchGetItem", "dynamodb:Query"], "Resource": _table_arns()},
                {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                                               "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"],
                 "Resource": [_arn(f"{s.logical_id}Queue") for s in specs]},
                {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
                 "Resource": [_arn(f"{s.logical_id}DeadLetterQueue") for s in specs]},
            ]}}],
        },
    }


def _producer_policy(specs: list[QueueSpec]) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "Description": "What a producer (a web app) needs: enqueue, status, cancel, retry, stats, pause",
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
                 "Resource": [_arn(f"{s.logical_id}Queue") for s in specs]},
                {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                                               "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
                 "Resource": [_arn(f"{s.logical_id}DeadLetterQueue") for s in specs]},
                {"Effect": "Allow", "Action": ["sqs:ListQueues"], "Resource": "*"},
                {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                                               "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable"], "Resource": _table_arns()},
                {"Effect": "Allow", "Action": ["lambda:ListEventSourceMappings"], "Resource": "*"},
                {"Effect": "Allow", "Action": ["lambda:UpdateEventSourceMapping"],
                 "Resource": _sub("arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:event-source-mapping:*"),
                 "Condition": {"StringEquals": {"lambda:FunctionArn": _arn("WorkerFunction")}}},
            ]},
        },
    }


def _webhook_settings(app: JobQueue) -> list[tuple[str, str, dict[str, Any]]]:
    """(variable, parameter, definition) of each webhook setting, when the app uses webhooks (the function runs the
    deliveries and signs them); the function's variable takes the parameter's value.

    Defaults are the export's settings, except the secret: it is never written to the file (``NoEcho``; pass it at
    deploy with ``--parameter-overrides WebhookSecret=...``). An empty value leaves the setting unset.
    """
    if not app.webhooks.enabled:
        return []
    settings = app.settings
    rows: list[tuple[str, str, str, dict[str, Any], str]] = [
        ("JOBQUEUE_WEBHOOK_URL", "WebhookUrl", settings.webhook_url or "", {},
         "where job events go unless a queue or job names its own URL"),
        ("JOBQUEUE_WEBHOOK_SECRET", "WebhookSecret", "", {"NoEcho": True}, "signs deliveries; pass it at deploy, never in this file"),
        ("JOBQUEUE_WEBHOOK_ALLOW", "WebhookAllow", ",".join(settings.webhook_allow), {},
         "where jobs' own _webhook= URLs may point (comma-separated)"),
        ("JOBQUEUE_WEBHOOK_ATTEMPT_FAILED", "WebhookAttemptFailed", "true" if settings.webhook_attempt_failed else "false",
         {"AllowedValues": ["true", "false"]}, "also send an event for each failed attempt"),
    ]
    return [
        (variable, parameter, {"Type": "String", "Default": default, **extra, "Description": f"{variable}: {text}"})
        for variable, parameter, default, extra, text in rows
    ]


def build_template(app: JobQueue, settings: SQSSettings, app_spec: str) -> dict[str, Any]:
    """The whole SAM template for ``app``'s queues (``app_spec`` is its ``JOBQUEUE_APP``)."""
    specs = queue_specs(app, settings)
    resources: dict[str, Any] = {"JobsTable": _table()}
    for spec in specs:
        resources.update(_queue_resources(spec))
    resources["WorkerRole"] = _worker_role(specs)
    resources["WorkerFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Description": f"Runs the jobs of {app_spec} from SQS (jobqueue)",
            "CodeUri": CODE_URI,
            "Handler": "app.lambda_handler",
            "Runtime": RUNTIME,
            "Architectures": ["x86_64"],
            "MemorySize": 512,
            "Timeout": settings.function_timeout,
            "Environment": {"Variables": {
                "JOBQUEUE_BACKEND": "sqs",
                "JOBQUEUE_APP": app_spec,
                "JOBQUEUE_SQS_PREFIX": _ref("Prefix"),
                "JOBQUEUE_JOBS_TABLE": _ref("JobsTable"),
                "JOBQUEUE_SQS_FUNCTION_TIMEOUT": str(settings.function_timeout),
                "POWERTOOLS_SERVICE_NAME": "jobqueue-worker",
                "POWERTOOLS_METRICS_NAMESPACE": _ref("MetricsNamespace"),
                "POWERTOOLS_LOG_LEVEL": _ref("LogLevel"),
                **{variable: _ref(parameter) for variable, parameter, _ in _webhook_settings(app)},
            }},
            "Role": _arn("WorkerRole"),
            "Events": {**{f"{spec.logical_id}Messages": _event(spec) for spec in specs}, "Maintenance": _maintenance_event()},
        },
    }
    resources["ProducerPolicy"] = _producer_policy(specs)
    resources.update(scheduler_resources(app, specs))  # EventBridge Scheduler: the group, its role, the code's schedules
    outputs: dict[str, Any] = {
        "JobsTableName": {"Description": "JOBQUEUE_JOBS_TABLE for producers", "Value": _ref("JobsTable")},
        "WorkerFunctionName": {"Description": "JOBQUEUE_SQS_FUNCTION_NAME for producers (pause/resume)", "Value": _ref("WorkerFunction")},
        "ProducerPolicyArn": {"Description": "Attach to the role a producer assumes", "Value": _ref("ProducerPolicy")},
    }
    for spec in specs:
        outputs[f"{spec.logical_id}QueueUrl"] = {"Description": f"URL of queue {spec.queue!r}", "Value": _ref(f"{spec.logical_id}Queue")}
        outputs[f"{spec.logical_id}DeadLetterQueueUrl"] = {"Description": f"URL of queue {spec.queue!r}'s DLQ",
                                                           "Value": _ref(f"{spec.logical_id}DeadLetterQueue")}
    outputs.update(scheduler_outputs())
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"jobqueue on SQS + Lambda for {app_spec}. Generated by `jobqueue sam export`; "
                       "`jobqueue sam check template.yaml` fails when the code and this file disagree.",
        "Parameters": {
            "Prefix": {"Type": "String", "Default": settings.prefix, "AllowedPattern": "[A-Za-z0-9_-]{1,60}",
                       "Description": "Prefix of the queue and table names (JOBQUEUE_SQS_PREFIX)"},
            "LogLevel": {"Type": "String", "Default": "INFO", "AllowedValues": ["DEBUG", "INFO", "WARNING", "ERROR"]},
            "MetricsNamespace": {"Type": "String", "Default": "jobqueue"},
            "AlarmTopicArn": {"Type": "String", "Default": "", "Description": "SNS topic told when a DLQ holds messages (optional)"},
            **{parameter: definition for _, parameter, definition in _webhook_settings(app)},
        },
        "Conditions": {"HasAlarmTopic": {"Fn::Not": [{"Fn::Equals": [_ref("AlarmTopicArn"), ""]}]}},
        "Resources": resources,
        "Outputs": outputs,
    }


def render(template: dict[str, Any]) -> str:
    import yaml  # type: ignore[import-untyped,unused-ignore]

    return str(yaml.safe_dump(template, sort_keys=False, default_flow_style=False, width=120))


def drift(template: dict[str, Any], path: str, app: JobQueue | None = None) -> list[str]:
    """How the file at ``path`` differs from ``template`` in what the code decides (empty: no drift).

    Resources and outputs the file adds of its own are allowed; a queue resource the code does not
    declare is not.
    """
    import yaml  # type: ignore[import-untyped,unused-ignore]

    with open(path, encoding="utf-8") as handle:
        found = yaml.safe_load(handle) or {}
    problems: list[str] = []
    for section in ("Parameters", "Conditions", "Resources", "Outputs"):
        want, have = template.get(section, {}), found.get(section) or {}
        for name, value in want.items():
            if app is not None and is_schedule(value):
                continue  # compared below, by what the schedule means rather than how the template refers to things
            if name not in have:
                problems.append(f"{section}.{name}: missing from {path}")
            elif have[name] != value:
                problems.extend(_differences(f"{section}.{name}", value, have[name]))
    if app is not None:
        problems.extend(schedule_drift(app, found.get("Resources") or {}))
    for name, value in (found.get("Resources") or {}).items():
        if isinstance(value, dict) and value.get("Type") == "AWS::SQS::Queue" and name not in template["Resources"]:
            problems.append(f"Resources.{name}: a queue the app does not declare (remove it, or declare the queue with app.queue())")
    return problems


def _differences(where: str, want: Any, have: Any) -> list[str]:
    if isinstance(want, dict) and isinstance(have, dict):
        out = []
        for key in sorted(set(want) | set(have), key=str):
            if key not in have:
                out.append(f"{where}.{key}: missing (code says {want[key]!r})")
            elif key not in want:
                out.append(f"{where}.{key}: not in the code (file says {have[key]!r})")
            elif want[key] != have[key]:
                out.extend(_differences(f"{where}.{key}", want[key], have[key]))
        return out
    return [f"{where}: file says {have!r}, code says {want!r}"]
