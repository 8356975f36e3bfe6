#!/usr/bin/env bash
# One prepared run for a CUDA machine: the figures the speed issue asks of a GPU, as JSON under OUT (default
# ./gpu-results). Needs a checkout with shared/eval beside it, the PyPI wheels reachable (or a local wheelhouse
# through PIP_FIND_LINKS), onnxruntime-gpu's CUDA 12 libraries, and ~5 GB of disk.
#
#   bench/gpu_session.sh [OUT]
#
# What it does, each step logged to OUT/session.log:
#   1. scripts/setup.sh (both completers), then onnxruntime-gpu in place of onnxruntime (the `gpu` extra);
#   2. stops unless onnxruntime runs CUDAExecutionProvider (it says why);
#   3. exports the 0.5B and 1.5B once (the 1.5B is the CUDA default);
#   4. bench/prefill_logits.py and bench/lsp_latency.py for each model (providers "auto": CUDA first, IO binding);
#   5. plusls eval infilling (single-line, all 1,033) for the 1.5B.
# Targets it checks (README): keystrokes that ran the model p50 < 50 ms with the 1.5B.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-results}
mkdir -p "$OUT"
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/session.log"; }

log "setup with the 1.5B"
scripts/setup.sh >>"$OUT/session.log" 2>&1
PY=.venv/bin/python
log "onnxruntime-gpu instead of onnxruntime"
$PY -m pip uninstall -y -q onnxruntime >>"$OUT/session.log" 2>&1 || true
$PY -m pip install -q -e ".[gpu]" >>"$OUT/session.log" 2>&1
if ! $PY -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())"; then
  log "onnxruntime has no CUDAExecutionProvider here (driver or CUDA 12 libraries missing): nothing to measure"
  exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.csv" 2>&1 || true

MODELS=$($PY - <<'EOF'
from plusls.common.paths import default_models_dir
from plusls.exported.defaults import COMPLETER, COMPLETER_GPU, ensure_default
for m in (COMPLETER, COMPLETER_GPU):
    print(ensure_default(m, default_models_dir(), log=lambda s: None))
EOF
)
for dir in $MODELS; do
  name=$(basename "$dir")
  log "prefill bench: $name"
  $PY bench/prefill_logits.py "$dir" >"$OUT/prefill-$name.json" 2>>"$OUT/session.log"
  log "language-server bench: $name"
  $PY bench/lsp_latency.py --modes below,reuse --completion "$dir" \
    >"$OUT/lsp-$name.json" 2>>"$OUT/session.log"
done
big=$(echo "$MODELS" | tail -1)
log "HumanEval single-line infilling, all 1,033: $(basename "$big")"
.venv/bin/plusls eval infilling --infill-mode fim --model "$big" \
  --json "$OUT/infilling-$(basename "$big").json" >>"$OUT/session.log" 2>&1
log "done: $OUT"
