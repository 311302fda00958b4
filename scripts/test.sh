#!/usr/bin/env bash
# The test command: set up .venv if needed, then run the suite (a local Ray cluster is started
# once for the whole session). Extra arguments go to pytest, e.g. scripts/test.sh -k schema.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
