#!/usr/bin/env bash
# Install the AWS SAM CLI into .sam-venv (a virtualenv of its own: it pins its own boto3).
# Called by `make test-deps`; the SAM tests skip when .sam-venv/bin/sam is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0
PY="${PY:-python3}"
if [ -x .sam-venv/bin/sam ] && .sam-venv/bin/sam --version >/dev/null 2>&1; then
    exit 0
fi
"$PY" -m venv .sam-venv
.sam-venv/bin/python -m pip install --quiet --upgrade pip
.sam-venv/bin/python -m pip install --quiet 'aws-sam-cli>=1.120,<2'
.sam-venv/bin/sam --version
