"""template.yaml grants no wildcard on queues or tables: no ``sqs:*``-like action anywhere, and ``Resource: "*"``
only for the few list calls AWS cannot scope. Checked twice: on the file as written, and on the IAM that SAM
resolves from it (SAM adds policies of its own: for an SQS event it would attach AWSLambdaSQSQueueExecutionRole,
receive and delete on every queue of the account, to a role it makes; the template gives its own role).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAM_PYTHON = ROOT / ".sam-venv" / "bin" / "python"

#: calls IAM cannot scope to a resource, so "*" is their only form
UNSCOPABLE = {"sqs:ListQueues", "lambda:ListEventSourceMappings", "scheduler:ListSchedules"}
#: AWS managed policies a role here may carry, with what they allow (none touches a queue or a table)
MANAGED = {"service-role/AWSLambdaBasicExecutionRole": {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}}

TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicyNames:
    def load(self):
        return {}

template = yaml_parse(open(sys.argv[1]).read())
for resource in template["Resources"].values():
    if resource.get("Type") == "AWS::Serverless::Function":
        resource["Properties"]["CodeUri"] = "s3://bucket/key"  # as after `sam package`
pseudo = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
print(json.dumps(transform(template, pseudo, NoManagedPolicyNames())))
"""


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every IAM statement of the template's roles, policies and functions, with where it is."""
    found: list[tuple[str, dict[str, Any]]] = []
    for name, resource in resources.items():
        kind, props = resource.get("Type"), resource.get("Properties") or {}
        documents: list[Any] = []
        if kind == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            documents = [props["PolicyDocument"]]
        elif kind == "AWS::Serverless::Function":
            for policy in _listed(props.get("Policies", [])):
                assert isinstance(policy, dict) and "Statement" in policy, (
                    f"{name}: policy {policy!r} is a SAM policy template or a managed policy; give statements (their actions are checked here)")
                documents.append(policy)
        for document in documents:
            found.extend((name, statement) for statement in _listed(document["Statement"]))
    return found


def wildcard_problems(resources: dict[str, Any]) -> list[str]:
    problems = []
    for name, statement in statements(resources):
        if statement.get("Effect") != "Allow" or "Principal" in statement:
            continue
        actions = set(_listed(statement.get("Action", [])))
        assert "NotAction" not in statement and "NotResource" not in statement, f"{name}: NotAction/NotResource grant wildcards"
        for action in actions:
            if "*" in action:
                problems.append(f"{name}: wildcard action {action!r}")
        if "*" in _listed(statement.get("Resource")) and not actions <= UNSCOPABLE:
            problems.append(f"{name}: Resource '*' for {sorted(actions - UNSCOPABLE)}")
    return problems


def managed_policy_problems(resources: dict[str, Any]) -> list[str]:
    problems = []
    for name, resource in resources.items():
        for arn in (resource.get("Properties") or {}).get("ManagedPolicyArns", []):
            text = arn if isinstance(arn, str) else json.dumps(arn)
            known = [key for key in MANAGED if text.endswith(f":policy/{key}") or text.endswith(f':policy/{key}"}}')]
            if not known:
                problems.append(f"{name}: managed policy {text} (not one known to stay off queues and tables)")
    return problems


def test_template_as_written_has_no_wildcards() -> None:
    resources = yaml.safe_load(TEMPLATE.read_text())["Resources"]
    assert statements(resources), "the template's statements were found"
    assert wildcard_problems(resources) == []
    assert managed_policy_problems(resources) == []
    function = resources["WorkerFunction"]["Properties"]
    assert function.get("Role") == {"Fn::GetAtt": ["WorkerRole", "Arn"]}, "a role of its own, so SAM attaches nothing"


@pytest.mark.skipif(not SAM_PYTHON.exists() and not os.environ.get("CI"), reason="the SAM CLI is not installed (infra/ensure-sam-cli.sh)")
def test_iam_as_sam_resolves_it_has_no_wildcards(tmp_path: Path) -> None:
    script = tmp_path / "translate.py"
    script.write_text(TRANSLATE)
    done = subprocess.run([str(SAM_PYTHON), str(script), str(TEMPLATE)], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"})
    assert done.returncode == 0, done.stderr[-2000:]
    resources = json.loads(done.stdout)["Resources"]
    assert not any(r["Type"].startswith("AWS::Serverless::") for r in resources.values()), "fully translated"
    assert wildcard_problems(resources) == []
    assert managed_policy_problems(resources) == []
    roles = [name for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"]
    assert "WorkerFunctionRole" not in roles, "SAM made no role of its own (it would carry AWSLambdaSQSQueueExecutionRole)"
    mappings = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert mappings and all(m["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)


def test_the_check_catches_what_sam_would_add() -> None:
    """The checks above are not vacuous: SAM's own role for an SQS event fails them."""
    sams_role = {"WorkerFunctionRole": {"Type": "AWS::IAM::Role", "Properties": {
        "ManagedPolicyArns": ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                              "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"],
        "Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": ["sqs:*"], "Resource": "arn:aws:sqs:us-east-1:1:q"},
            {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"}]}}]}}}
    assert len(wildcard_problems(sams_role)) == 2
    assert managed_policy_problems(sams_role) == [
        "WorkerFunctionRole: managed policy arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole "
        "(not one known to stay off queues and tables)"]
    with pytest.raises(AssertionError, match="SAM policy template"):
        statements({"F": {"Type": "AWS::Serverless::Function", "Properties": {"Policies": [{"SQSPollerPolicy": {"QueueName": "q"}}]}}})
