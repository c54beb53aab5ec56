#!/usr/bin/env bash
# Make sure redis-server and redis-cli are on PATH: install Debian's redis-server package when they
# are missing and we are root. The Redis tests start their own throw-away servers on loopback ports.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "redis-server is missing and this is not root: install the redis-server package (apt-get install redis-server)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "redis-server is missing and there is no apt-get here: install Redis 7 another way" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# the package starts a system service on 6379 where an init system runs; the tests never use it
command -v redis-server >/dev/null 2>&1
redis-server --version
