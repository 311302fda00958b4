#!/usr/bin/env bash
# The main job: set up .venv if needed, then run `raydemand demo` on a local Ray cluster with
# generated data. Extra arguments go to `raydemand demo`, e.g. scripts/demo.sh --out runs/demo2.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/raydemand demo "$@"
