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

if [ -f "$stamp" ] && [ "$stamp" -nt "$req" ]; then
  "$venv/bin/python" -c "import jobqueue_redis, jobqueue" 2>/dev/null || jobqueue_here
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
touch "$stamp"
