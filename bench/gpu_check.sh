#!/usr/bin/env bash
# The GPU checks of the engine, as one script for a machine with a CUDA device: the engine-overhead
# benchmark with device=0 and AMP, then one short training run of each task on the GPU.
# Usage: bench/gpu_check.sh [OUT_DIR]   (expects `make install` done; prints figures, exits non-zero on failure)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-bench/out/gpu}
mkdir -p "$OUT"
export TRAINER_ENGINE_DATA_DIR="$OUT/data"

"$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.cuda.get_device_name(0))'
"$PY" bench/engine_overhead.py --device 0 --amp --imgsz 128 --batch 128 --epochs 3 --workers 4 | tee "$OUT/engine_overhead.txt"
"$PY" -m trainer_engine classify train data=synthetic:classify epochs=3 imgsz=64 batch=64 device=0 \
  project="$OUT/runs" name=classify exist_ok=True | tee "$OUT/classify.json"
"$PY" -m trainer_engine detect train model=tiny-det-n.yaml data=synthetic:shapes epochs=3 imgsz=128 batch=32 \
  device=0 project="$OUT/runs" name=detect exist_ok=True | tee "$OUT/detect.json"
