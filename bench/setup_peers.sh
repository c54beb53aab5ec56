#!/usr/bin/env bash
# Create bench/.venv-peers with the pinned peer libraries (one redis-py for all of them), and make sure
# redis-server is installed. jobqueue's queue measurements run in the same virtualenv (installed editable,
# without dependencies of its own beyond the pins below), so its jobs and its own calls use the same
# redis-py as every peer's; its alone-measurements (sync, cold import, SQS) use the project's .venv.
# Idempotent: does nothing when the pins are already installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${PY:-python3.11}"
command -v "$py" >/dev/null 2>&1 || py=python3
venv="$here/.venv-peers"
stamp="$venv/.installed-stamp"
req="$here/requirements-peers.txt"

if ! command -v redis-server >/dev/null 2>&1; then
  echo "bench: installing redis-server" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq redis-server >/dev/null; fi
fi

jobqueue_here() {  # jobqueue and jobqueue-redis from this checkout; their dependencies come from the pins
  "$venv/bin/python" -m pip install --quiet --no-deps -e "$here/.." -e "$here/../backends/redis" \
    cronsim==2.8 tzdata==2026.6 tenacity==9.2.1
}

# pip byte-compiles every wheel it installs, so the peers start from .pyc files; jobqueue is installed editable
# from this checkout and the harness sets PYTHONDONTWRITEBYTECODE, so without this each launch of a jobqueue
# worker would compile its sources again (~0.17 s of start-up the peers do not pay). Stale files are ignored by
# Python (it checks the source's mtime), so this runs on every setup.
compile_jobqueue() {
  "$venv/bin/python" -m compileall -q "$here/../jobqueue" "$here/../backends/redis/jobqueue_redis" "$here/../backends/sqs/jobqueue_sqs" "$here" >/dev/null
}

if [ -f "$stamp" ] && [ "$stamp" -nt "$req" ]; then
  "$venv/bin/python" -c "import jobqueue_redis, jobqueue" 2>/dev/null || jobqueue_here
  compile_jobqueue
  exit 0
fi
echo "bench: creating $venv from requirements-peers.txt" >&2
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet --no-deps -r "$req"
# the one known, deliberate conflict: arq declares redis<6 (see requirements-peers.txt); anything else fails the setup
if ! problems="$("$venv/bin/python" -m pip check 2>&1)"; then
  if echo "$problems" | grep -v '^arq .* has requirement redis' | grep -q .; then echo "$problems" >&2; exit 1; fi
fi
jobqueue_here
compile_jobqueue
touch "$stamp"
