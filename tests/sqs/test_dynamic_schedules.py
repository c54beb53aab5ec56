"""Dynamic schedules on the SQS backend: EventBridge Scheduler schedules on the moto server (stored, never fired),
so the test reads back what was created."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from jobqueue import JobQueue
from jobqueue.errors import ConfigurationError
from jobqueue.schedules.eventbridge import create_schedule_request
from tests.schedules.stores_sqs import ROLE_ARN, eventbridge_app
from tests.sqs.moto_server import MotoServer


@pytest.fixture
def app(moto_server: MotoServer) -> Iterator[JobQueue]:
    made = eventbridge_app(moto_server.endpoint)
    try:
        yield made
    finally:
        made.close()


def scheduler(moto_server: MotoServer) -> Any:
    return boto3.client("scheduler", endpoint_url=moto_server.endpoint, region_name="us-east-1")


def test_add_creates_an_eventbridge_schedule_targeting_the_queue(app: JobQueue, moto_server: MotoServer) -> None:
    added = app.schedules.add("sync:org-123", cron="0 * * * 1-5", job="sync_integrations", payload={"org": "org-123"}, tz="Europe/Berlin")
    group = app.backend.settings.prefix  # type: ignore[attr-defined]
    listed = scheduler(moto_server).list_schedules(GroupName=group)["Schedules"]
    assert [s["Name"] for s in listed] == ["sync-org-123-" + listed[0]["Name"].rsplit("-", 1)[1]]  # ':' is not allowed: renamed, hashed
    made = scheduler(moto_server).get_schedule(Name=listed[0]["Name"], GroupName=group)
    assert made["ScheduleExpression"] == "cron(0 * ? * 2-6 *)" and made["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert made["State"] == "ENABLED" and made["FlexibleTimeWindow"] == {"Mode": "OFF"}
    sqs = boto3.client("sqs", endpoint_url=moto_server.endpoint, region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=f"{group}-integrations")["QueueUrl"]
    assert made["Target"]["Arn"] == sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert made["Target"]["RoleArn"] == ROLE_ARN
    assert made["Target"]["DeadLetterConfig"]["Arn"].endswith(f":{group}-integrations-dlq")
    envelope = json.loads(made["Target"]["Input"])
    assert envelope["id"] == "sync:org-123:<aws.scheduler.scheduled-time>"
    assert envelope["name"] == "sync_integrations" and envelope["queue"] == "integrations" and envelope["payload"] == {"org": "org-123"}
    assert envelope["trace"]["jobqueue.schedule"] == "sync:org-123"
    assert envelope["trace"]["jobqueue.fire_time"] == "<aws.scheduler.scheduled-time>"
    # what the API got is exactly what create_schedule_request builds
    want = create_schedule_request(added, app, queue_arn=made["Target"]["Arn"], role_arn=ROLE_ARN, group_name=group,
                                   dead_letter_arn=made["Target"]["DeadLetterConfig"]["Arn"])
    assert {k: made[k] for k in want if k != "Target"} == {k: v for k, v in want.items() if k != "Target"}
    assert app.schedules.get("sync:org-123") == added and app.schedules.dynamic() == [added]


def test_add_again_updates_remove_deletes(app: JobQueue, moto_server: MotoServer) -> None:
    app.schedules.add("nightly", cron="0 3 * * *", job="sync_integrations", payload={"org": "a"})
    app.schedules.add("nightly", cron="30 4 * * *", job="sync_integrations", payload={"org": "b"})
    group = app.backend.settings.prefix  # type: ignore[attr-defined]
    made = scheduler(moto_server).get_schedule(Name="nightly", GroupName=group)
    assert made["ScheduleExpression"] == "cron(30 4 * * ? *)" and json.loads(made["Target"]["Input"])["payload"] == {"org": "b"}
    assert [s.name for s in app.schedules.list()] == ["nightly"]
    assert app.schedules.remove("nightly") is True and app.schedules.remove("nightly") is False
    assert scheduler(moto_server).list_schedules(GroupName=group)["Schedules"] == []


def test_code_defined_and_foreign_schedules_in_the_group_are_not_dynamic(app: JobQueue, moto_server: MotoServer) -> None:
    group = app.backend.settings.prefix  # type: ignore[attr-defined]
    code = app.schedules.build("deployed", cron="0 1 * * *", job="sync_integrations", payload={"org": "x"}, source="code")
    client = scheduler(moto_server)
    app.schedules.add("mine", cron="0 2 * * *", job="sync_integrations", payload={"org": "y"})  # makes the group
    client.create_schedule(**create_schedule_request(code, app, queue_arn="arn:aws:sqs:us-east-1:123456789012:q", role_arn=ROLE_ARN,
                                                     group_name=group))
    client.create_schedule(Name="foreign", GroupName=group, ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"},
                           Target={"Arn": "arn:aws:sqs:us-east-1:123456789012:q", "RoleArn": ROLE_ARN})
    assert [s.name for s in app.schedules.dynamic()] == ["mine"]
    assert app.backend.schedule_store().get("deployed") is None and app.backend.schedule_store().remove("foreign") is False


def test_no_ticker_runs_on_sqs_and_a_missing_role_is_a_clear_error(moto_server: MotoServer) -> None:
    app = eventbridge_app(moto_server.endpoint, JOBQUEUE_SQS_SCHEDULER_ROLE_ARN="")
    try:
        assert app.schedules.ticker().tick() == []  # never the leader: EventBridge fires
        with pytest.raises(ConfigurationError, match="JOBQUEUE_SQS_SCHEDULER_ROLE_ARN"):
            app.schedules.add("x", cron="* * * * *", job="sync_integrations", payload={"org": "x"})
    finally:
        app.close()
