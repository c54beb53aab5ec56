#!/usr/bin/env bash
# A throwaway moto server (SQS, DynamoDB, STS, Lambda, Scheduler) on loopback for local development.
# Then: export AWS_ENDPOINT_URL=http://127.0.0.1:${PORT} AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
#       python -m jobqueue_sqs init --app your.module:app && python -m jobqueue_sqs worker --app your.module:app
# The tests start their own on a free port (tests/sqs/moto_server.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-5000}"
PYTHON="${PYTHON:-.venv/bin/python}"
exec "$PYTHON" -m moto.server -H 127.0.0.1 -p "$PORT"
