"""``jobqueue sqs init``: create the queues, their DLQs and the job table, with the settings of
template.yaml, against whatever endpoint is configured (a moto server for local development)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from jobqueue_sqs.clients import Clients
from jobqueue_sqs.resources import TTL_ATTRIBUTE, QueueSpec, table_definition


def create_queue(clients: Clients, spec: QueueSpec) -> dict[str, str]:
    """Create (or bring up to date) ``spec``'s DLQ and queue; returns their URLs."""
    sqs = clients.sqs
    dlq_url = _create_or_update(sqs, spec.dlq_name, spec.dlq_attributes())
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = _create_or_update(sqs, spec.sqs_name, spec.queue_attributes(dlq_arn))
    return {"queue": spec.queue, "url": url, "dlq_url": dlq_url}


def _create_or_update(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    try:
        return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    except ClientError as exc:
        if "QueueAlreadyExists" not in exc.response["Error"]["Code"] and "QueueNameExists" not in exc.response["Error"]["Code"]:
            raise
    url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def create_table(clients: Clients, table: str) -> bool:
    """Create the job table with its state index and TTL; False if it already existed."""
    db = clients.dynamodb
    try:
        db.create_table(**table_definition(table))
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        add_missing_indexes(clients, table)
        return False
    db.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    db.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE})
    return True


def add_missing_indexes(clients: Clients, table: str) -> list[str]:
    """Add the indexes a table made by an older version lacks (say ``by_followup``); returns their names.

    DynamoDB builds one new index per UpdateTable and backfills it in the background.
    """
    db = clients.dynamodb
    definition = table_definition(table)
    have = {index["IndexName"] for index in db.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])}
    added = []
    for index in definition["GlobalSecondaryIndexes"]:
        if index["IndexName"] in have:
            continue
        try:
            db.update_table(TableName=table, AttributeDefinitions=definition["AttributeDefinitions"],
                            GlobalSecondaryIndexUpdates=[{"Create": index}])
        except ClientError as exc:  # another index is still being built: the next init adds this one
            if exc.response["Error"]["Code"] not in ("LimitExceededException", "ResourceInUseException"):
                raise
            break
        added.append(index["IndexName"])
    return added
