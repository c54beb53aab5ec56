#!/usr/bin/env bash
# Debian's chromium for the dashboard's browser test (driven by Playwright with executable_path=/usr/bin/chromium).
# Nothing downloads a browser build: this is the distribution's package, installed only when missing and root.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "ensure-chromium: chromium is missing and this is not root; the dashboard browser test will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium
