#!/usr/bin/env bash
# README command 1: set up, then run the main job on the embedded default models.
# Results go to the terminal, one line per long step; installer and export details go to the log file.
set -euo pipefail
cd "$(dirname "$0")/.."
log="${PLUSLS_DEMO_LOG:-${XDG_CACHE_HOME:-$HOME/.cache}/plusls/demo.log}"
mkdir -p "$(dirname "$log")"
echo "plusls demo: setting up .venv (first time: a few minutes; details in $log)"
if ! scripts/setup.sh >>"$log" 2>&1; then
  echo "plusls demo: setup failed; the end of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
exec .venv/bin/plusls demo --log "$log" "$@"
