#!/usr/bin/env bash
# The main job: set up .venv if needed, then run `raydemand demo` on a local Ray cluster with
# generated data. It prints one line per stage and a summary; Ray's own output goes to RUN/ray.log.
# Extra arguments go to `raydemand demo`, e.g. scripts/demo.sh --out runs/demo2, or --verbose to
# print Ray's output on the terminal too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/raydemand demo "$@"
