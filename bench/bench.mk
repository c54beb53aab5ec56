# Benchmarks against peer job queues (issue 8). Included from the top-level Makefile: `include bench/bench.mk`.
# Not part of `make test`. Needs the project's .venv (the `venv` target) and creates bench/.venv-peers.
#   make bench         every peer, N=10000, median of 3 rounds (about half an hour on 2 cores)
#   make bench-quick   jobqueue against the two fastest peers of the last full run (a few minutes)
#   make bench BENCH_ARGS="--n 1000 --rounds 1"
BENCH_VENV := bench/.venv-peers
BENCH_PYTHON := $(BENCH_VENV)/bin/python
BENCH_ARGS ?=

.PHONY: bench bench-quick bench-setup bench-report bench-clean

## Create bench/.venv-peers (pinned peers on one redis-py) and install redis-server if missing.
bench-setup: venv
	bash bench/setup_peers.sh

## Measure jobqueue against every peer; writes BENCHMARKS.md, bench/benchmarks.png and bench/results/.
bench: bench-setup
	$(BENCH_PYTHON) -m bench.run $(BENCH_ARGS)

## jobqueue against the two fastest peers, quickly.
bench-quick: bench-setup
	$(BENCH_PYTHON) -m bench.run --quick $(BENCH_ARGS)

## Re-render BENCHMARKS.md and the chart from the last full run's results.
bench-report: bench-setup
	$(BENCH_PYTHON) -m bench.report bench/results/latest-full.json

bench-clean:
	rm -rf $(BENCH_VENV) bench/results/runs bench/results/logs
