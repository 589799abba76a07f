#!/usr/bin/env bash
# The demo on a fresh machine: installs mailstats into .venv and runs it on the bundled demo
# mailbox (offline: DNS answers come from a bundled snapshot). Writes demo-results/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv --system-site-packages .venv 2>/dev/null || {
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq python3-venv >/dev/null; fi
    python3 -m venv --system-site-packages .venv
  }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[report]'
exec .venv/bin/mailstats demo --report "$@"
