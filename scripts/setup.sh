#!/usr/bin/env bash
# Create .venv and install raydemand with its offline-data and dev extras. Idempotent: it
# reinstalls only when pyproject.toml or constraints.txt changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.raydemand-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "setup: installing raydemand and dependencies into .venv (first time: a few minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,offline,tune]" 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import raydemand, ray, torch, torchvision" || { echo "setup: install failed" >&2; exit 1; }
  touch "$stamp"
fi
