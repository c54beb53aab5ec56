"""The Lambda handler's cold import time in a fresh interpreter, as a ratio to ``import boto3`` alone.

    python -m bench.cold_import [--rounds 15] [--module jobqueue_sqs.handler]

Run with the project's virtualenv. Each sample is a fresh interpreter that times one import
statement (interpreter start-up excluded; the ``.pyc`` files are warm, as in a deployed bundle
that ships them); the two statements alternate, and the medians are compared. Prints JSON;
``{"skipped": reason}`` when the handler module cannot be imported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


def sample(stmt: str, env: dict[str, str]) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE.format(stmt=stmt)], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_import")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--module", default="jobqueue_sqs.handler", help="the module the Lambda entry point imports")
    parser.add_argument("--attr", default="lambda_handler")
    args = parser.parse_args()
    env = dict(os.environ)
    handler = f"from {args.module} import {args.attr}"
    try:
        sample(handler, env)  # also warms the .pyc files
        sample("import boto3", env)
    except subprocess.CalledProcessError as exc:
        print(json.dumps({"skipped": f"`{handler}` fails: {exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else exc}"}))
        return
    ours, boto = [], []
    for _ in range(args.rounds):
        ours.append(sample(handler, env))
        boto.append(sample("import boto3", env))
    result = {
        "statement": handler, "rounds": args.rounds,
        "handler_ms": statistics.median(ours) * 1000, "boto3_ms": statistics.median(boto) * 1000,
    }
    result["ratio"] = result["handler_ms"] / result["boto3_ms"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
