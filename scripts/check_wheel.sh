#!/usr/bin/env bash
# Builds the wheel, installs it into a fresh venv (no system packages) and runs the CLI from
# it: proves the package installs on its own and that the demo data ships inside it.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/python -m pip wheel -q --no-deps --disable-pip-version-check -w "$tmp/dist" .
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --disable-pip-version-check "$tmp"/dist/mailstats-*.whl
"$tmp/venv/bin/mailstats" --help >/dev/null
"$tmp/venv/bin/mailstats" modules >/dev/null
"$tmp/venv/bin/mailstats" demo --out "$tmp/demo" -q
test -s "$tmp/demo/summary.csv"
echo "wheel check: ok"
