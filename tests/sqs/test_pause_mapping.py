"""Pausing a queue disables its event source mapping when the worker function is named."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import boto3

from jobqueue import JobQueue
from tests.sqs import jobs_app


def _function(endpoint: str, name: str) -> Any:
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("app.py", "def lambda_handler(event, context):\n    return {}\n")
    client = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1")
    client.create_function(FunctionName=name, Runtime="python3.11", Role=role["Role"]["Arn"], Handler="app.lambda_handler",
                           Code={"ZipFile": archive.getvalue()})
    return client


def test_pause_disables_the_queues_mapping(make_sqs_app: Callable[..., JobQueue], moto_server: Any) -> None:
    app = make_sqs_app()
    name = f"{app.backend.settings.prefix}-worker"  # type: ignore[attr-defined]
    client = _function(moto_server.endpoint, name)
    app = make_sqs_app(prefix=app.backend.settings.prefix, function_name=name)  # type: ignore[attr-defined]
    backend: Any = app.backend
    arns = {q: backend.transport.arn(backend.transport.url(q)) for q in ("work", "other")}
    for arn in arns.values():
        client.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=10, Enabled=True)

    def enabled(queue: str) -> bool:
        mapping = client.list_event_source_mappings(FunctionName=name, EventSourceArn=arns[queue])["EventSourceMappings"][0]
        return mapping["State"] in ("Enabled", "Enabling")

    app.pause(jobs_app.QUEUE)
    assert not enabled("work") and enabled("other")
    assert app.stats(jobs_app.QUEUE).paused
    app.resume(jobs_app.QUEUE)
    assert enabled("work") and not app.stats(jobs_app.QUEUE).paused
