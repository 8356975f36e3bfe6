#!/usr/bin/env bash
# README command 2: set up, then run the whole test suite (what CI runs).
# --quick: everything not marked slow (no real models, training, servers or editors), for the edit-test loop.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "${1:-}" = "--quick" ]; then
  shift
  exec .venv/bin/python -m pytest -q -m "not slow" "$@"
fi
exec .venv/bin/python -m pytest -q "$@"
