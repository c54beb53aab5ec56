# jobqueue: `make demo` and `make test` work on a fresh machine (they create .venv and install).
PY ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: venv demo test test-fast test-group-size test-deps check-infra chaos load clean

$(STAMP): pyproject.toml backends/redis/pyproject.toml backends/sqs/pyproject.toml
	$(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev,redis,sqs,admin,otel]' -e ./backends/redis -e ./backends/sqs
	touch $(STAMP)

venv: $(STAMP)

## Run the demo of the main jobs on the default backend (sync).
demo: venv
	$(PYTHON) examples/demo.py

## Install what the tests need (redis-server, the SAM CLI, validators), then run every test.
test: venv test-deps check-infra
	$(PYTHON) -m pytest $(PYTEST_ARGS)

## Only the in-process tests (no servers): quick feedback while editing.
test-fast: venv
	$(PYTHON) -m pytest -m "not slow" tests/unit tests/conformance -k "sync or memory or not harness" $(PYTEST_ARGS)

## Issue 7's 10,000-member group on the SQS backend, against a moto server whose SQS does not scan the queue on
## every request (tests/sqs/moto_launch_sized.py); not in `make test`: ~30 min on 2 busy cores (backends/sqs/README.md).
test-group-size: venv
	JOBQUEUE_TEST_SQS_SIZE_CASES=1 $(PYTHON) -m pytest tests/conformance/test_workflows.py -k "test_group_of_ten_thousand_members and sqs" --timeout 7200 $(PYTEST_ARGS)

test-deps:
	@for script in infra/ensure-*.sh; do [ ! -f "$$script" ] || bash "$$script" || exit 1; done

## Validate the worker recipes under infra/ (Dockerfile, compose, systemd, Kubernetes).
check-infra: venv
	PYTHON=$(PYTHON) bash infra/check-infra.sh

## Reliability (RELIABILITY.md): 20,000 jobs, workers SIGKILLed every ~2 s, redis-server killed and restarted twice.
chaos: venv
	bash infra/ensure-redis-server.sh
	$(PYTHON) -m tests.reliability.chaos --jobs 20000 --json test-artifacts/chaos.json $(CHAOS_ARGS)

## Reliability (RELIABILITY.md): 100,000 jobs through two Redis workers and the memory backend; memory must not grow.
load: venv
	bash infra/ensure-redis-server.sh
	$(PYTHON) -m tests.reliability.load --jobs 100000 --check-rss --json test-artifacts/load.json $(LOAD_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .aws-sam test-artifacts

include bench/bench.mk
