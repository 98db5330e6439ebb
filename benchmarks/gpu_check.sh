#!/usr/bin/env bash
# One short GPU check (< 5 min): device, training steps/s (tf.function, XLA,
# mixed precision) at batch 256 for the UCF main preset, and a 1-epoch quick
# train. Run from the repository root with a fresh python3 (no venv):
#     bash benchmarks/gpu_check.sh [OUT_DIR]
# Results: OUT_DIR (default ${OUT:-/tmp/avca_gpu_check}) gets *.json and logs.
set -euo pipefail
OUT_DIR="${1:-${OUT:-/tmp/avca_gpu_check}}"
mkdir -p "$OUT_DIR"
PY=python3
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1

echo "== install"
if ! $PY -c "import tensorflow, keras, h5py, tqdm" 2>/dev/null; then
  $PY -m pip install -q "tensorflow[and-cuda]==2.21.0" keras h5py numpy tqdm \
    || $PY -m pip install -q tensorflow==2.21.0 keras h5py numpy tqdm
fi
$PY -m pip install -q -e . --no-deps

echo "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY - <<'PY' | tee "$OUT_DIR/device.txt"
import tensorflow as tf, keras
gpus = tf.config.list_physical_devices("GPU")
print("tensorflow", tf.__version__, "keras", keras.__version__)
print("GPUs:", [tf.config.experimental.get_device_details(g).get("device_name") for g in gpus])
PY

# Benchmark data: the real UCF splits (packaged) with synthetic features.
BENCH="$OUT_DIR/bench"
$PY -m avca_tf.cli synth --dataset UCF --features main_features --seed 0 --out "$BENCH" > "$OUT_DIR/synth.log" 2>&1
ROOT_ARGS=(--root "$BENCH"); DS=UCF

echo "== throughput: float32 (tf.function, XLA), bf16 matmuls, mixed_float16 + loss scaling; batch 256, data $DS"
timeout 240 $PY benchmarks/train_throughput.py "${ROOT_ARGS[@]}" --modes function,xla,bf16-matmul,mixed \
  --steps 200 --json-out "$OUT_DIR/throughput.json" | grep '^{' || echo "throughput failed or timed out"

echo "== 1-epoch quick train (both stages) on $DS"
rm -rf "$OUT_DIR/run"
timeout 90 $PY -m avca_tf.cli train --root "$BENCH" --dataset "$DS" --features main_features \
  --out "$OUT_DIR/run" --epochs 1 --n-batches 50 --seed 0 -q 2>&1 | grep -v "^W0000\|^I0000" | tail -3
echo "== done: $OUT_DIR"
