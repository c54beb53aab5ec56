"""The Lambda worker's cold start *including its first event*, against ``import boto3`` plus one boto3 call.

    python -m bench.cold_first_event [--rounds 7]

``bench.cold_import`` times the handler's import alone; whatever the handler defers to its first event
(loading the app, building the backend and its boto3 clients, Powertools) is paid there. This measures
both sides of a cold start against a moto server (AWS's latency is not in the figures; moto's is, on
both sides):

- jobqueue: a fresh interpreter imports ``jobqueue_sqs.handler`` and calls ``lambda_handler`` with one
  SQS event holding one job of ``bench.peers.sqs_app`` (a no-op), as a cold Lambda does;
- boto3: a fresh interpreter imports boto3, makes a DynamoDB client and reads one item.

The two alternate; medians are compared. Prints JSON; ``{"skipped": reason}`` without the SQS backend
or moto. Run it with the project's virtualenv, inside the shared bench lock.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.moto import missing, start_stack

ROOT = Path(__file__).resolve().parent.parent

HANDLER_PROBE = """
import json, sys, time
event = json.loads(sys.stdin.read())
class Context:
    def get_remaining_time_in_millis(self):
        return 60_000
t0 = time.perf_counter()
from jobqueue_sqs.handler import lambda_handler
t1 = time.perf_counter()
answer = lambda_handler(event, Context())
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "total": t2 - t0, "failures": answer["batchItemFailures"]}))
"""

BOTO3_PROBE = """
import json, os, time
t0 = time.perf_counter()
import boto3
t1 = time.perf_counter()
boto3.client("dynamodb").get_item(TableName=os.environ["JOBQUEUE_JOBS_TABLE"], Key={"pk": {"S": "bench#none"}})
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "total": t2 - t0}))
"""


def _probe(code: str, env: dict[str, str], stdin: str = "") -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code], env=env, input=stdin, capture_output=True, text=True, check=True, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _event(app: Any, queue: str) -> dict[str, Any]:
    """One job enqueued and received, as the event source mapping would hand it to the function."""
    app.registry["noop"].enqueue(t=0.0)
    url = app.backend.transport.url(queue)
    arn = app.backend.transport.arn(url)
    while True:
        messages = app.backend.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1,
                                                           AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if messages:
            break
    m = messages[0]
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"], "attributes": m.get("Attributes", {}),
        "messageAttributes": {k: {"stringValue": v.get("StringValue"), "stringListValues": [], "binaryListValues": [],
                                  "dataType": v["DataType"]} for k, v in m.get("MessageAttributes", {}).items()},
        "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1",
    }]}


def run(rounds: int) -> dict[str, Any]:
    reason = missing()
    if reason is not None:
        return {"skipped": reason}
    server, env = start_stack("cold")
    try:
        os.environ.update(env)
        from bench.peers.sqs_app import app

        ours: list[dict[str, Any]] = []
        boto: list[dict[str, Any]] = []
        for i in range(rounds + 1):  # the first round of each warms the .pyc files and moto
            sample = _probe(HANDLER_PROBE, env, json.dumps(_event(app, "bench")))
            if sample["failures"]:
                raise RuntimeError(f"the handler reported failures: {sample['failures']}")
            other = _probe(BOTO3_PROBE, env)
            if i:
                ours.append(sample)
                boto.append(other)
    finally:
        server.terminate()
        server.wait(10)

    def median_ms(samples: list[dict[str, Any]], key: str) -> float:
        return statistics.median(s[key] for s in samples) * 1000

    result = {
        "rounds": rounds,
        "handler_import_ms": median_ms(ours, "import"), "handler_import_and_first_event_ms": median_ms(ours, "total"),
        "boto3_import_ms": median_ms(boto, "import"), "boto3_import_and_one_call_ms": median_ms(boto, "total"),
    }
    result["ratio_import"] = result["handler_import_ms"] / result["boto3_import_ms"]
    result["ratio_first_event"] = result["handler_import_and_first_event_ms"] / result["boto3_import_and_one_call_ms"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_first_event")
    parser.add_argument("--rounds", type=int, default=7)
    print(json.dumps(run(parser.parse_args().rounds)))


if __name__ == "__main__":
    main()
