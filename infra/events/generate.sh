#!/usr/bin/env bash
# Regenerate the SQS sample event the handler tests start from, with the SAM CLI's own generator.
# The tests replace the bodies with real envelopes; tests/sqs/test_handler.py checks this file
# still matches what `sam local generate-event` prints when the SAM CLI is installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
export SAM_CLI_TELEMETRY=0
.sam-venv/bin/sam local generate-event sqs receive-message > infra/events/sqs-receive-message.json
