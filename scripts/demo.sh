#!/usr/bin/env bash
# README command 1: set up, then run the main job on the embedded default models.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/plusls demo "$@"
