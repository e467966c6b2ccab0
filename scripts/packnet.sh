#!/usr/bin/env bash
# Main job: PackNet01 end to end on this machine.
#   1. export the full-size model from our PyTorch definition (opset 11 and 13), with a fixed input and
#      PyTorch's output;
#   2. inspect it (raw, then folded);
#   3. sanitize it (fold constants, cleanup, toposort) and write the result as ONNX;
#   4. check the sanitized model in ONNX Runtime against the original and against PyTorch;
#   5. build a kiln engine (saved to a .kiln file), run it on the CPU, time it, compare with PyTorch;
#   6. reload the engine file without the model and check the outputs are identical;
#   7. the plugin workflow: GroupNorm surgery (examples/packnet/packnet_surgery) → GroupNormalizationPlugin
#      nodes → kiln exec, checked against PyTorch.
# Usage: bash scripts/packnet.sh [OUT_DIR]   (default out/packnet)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/packnet}
kiln=build/kiln
py=.venv/bin/python
[ -x "$kiln" ] || bash scripts/build.sh

for opset in 11 13; do
  dir="$out/opset$opset"
  echo "== PackNet01, opset $opset → $dir"
  if [ ! -f "$dir/packnet01.onnx" ]; then
    /usr/bin/python3 examples/packnet/export.py --out "$dir" --opset "$opset"
  fi
  echo "-- structure of the export"
  /usr/bin/python3 examples/packnet/check_structure.py "$dir/packnet01.onnx" --expect-full
  echo "-- kiln inspect"
  "$kiln" inspect "$dir/packnet01.onnx"
  echo "-- kiln inspect --fold"
  "$kiln" inspect "$dir/packnet01.onnx" --fold
  echo "-- kiln surgeon sanitize"
  /usr/bin/time -f "sanitize: %e s, %M KiB peak RSS" \
    "$kiln" surgeon sanitize "$dir/packnet01.onnx" -o "$dir/packnet01_sanitized.onnx" \
    --fold-constants --cleanup --toposort
  echo "-- ONNX Runtime: sanitized vs original vs PyTorch"
  "$py" scripts/ort_compare.py "$dir/packnet01.onnx" "$dir/packnet01_sanitized.onnx" \
    --input "$dir/input.npy" --reference "$dir/output.npy" --tol 1e-6 --ref-tol 1e-4
  echo "-- kiln exec: build, run, time (CPU)"
  "$kiln" exec --onnx="$dir/packnet01.onnx" --saveEngine="$dir/packnet01.kiln" \
    --loadInputs=input:"$dir/input.npy" --saveOutputs="$dir/kiln_out" --iterations=5 --duration=0 --warmUp=0 \
    --exportProfile="$dir/kiln_profile.json"
  "$kiln" exec --loadEngine="$dir/packnet01.kiln" --loadInputs=input:"$dir/input.npy" \
    --saveOutputs="$dir/kiln_out_loaded" --iterations=1 --duration=0 --warmUp=0 >/dev/null
  "$py" - "$dir" <<'PY'
import sys, numpy as np
d = sys.argv[1]
ref, got, loaded = (np.load(f"{d}/{p}") for p in ("output.npy", "kiln_out/disp.npy", "kiln_out_loaded/disp.npy"))
err = float(np.linalg.norm(got.astype(np.float64) - ref) / np.linalg.norm(ref))
print(f"kiln vs PyTorch: rel L2 {err:.3e} ({'ok' if err <= 1e-4 else 'MISMATCH'}); "
      f"reloaded engine identical: {np.array_equal(got, loaded)}")
sys.exit(0 if err <= 1e-4 and np.array_equal(got, loaded) else 1)
PY
  echo "-- GroupNorm surgery → GroupNormalizationPlugin, run in kiln"
  build/packnet_surgery "$dir/packnet01.onnx" "$dir/packnet01_gn.onnx"
  "$kiln" exec --onnx="$dir/packnet01_gn.onnx" --loadInputs=input:"$dir/input.npy" \
    --saveOutputs="$dir/kiln_gn_out" --iterations=1 --duration=0 --warmUp=0 | grep -E "^Kernels|^Latency"
  "$py" - "$dir" <<'PY'
import sys, numpy as np
d = sys.argv[1]
ref, got = np.load(f"{d}/output.npy"), np.load(f"{d}/kiln_gn_out/disp.npy")
err = float(np.linalg.norm(got.astype(np.float64) - ref) / np.linalg.norm(ref))
print(f"plugin model in kiln vs PyTorch: rel L2 {err:.3e} ({'ok' if err <= 1e-4 else 'MISMATCH'})")
sys.exit(0 if err <= 1e-4 else 1)
PY
  # On a machine with a GPU (and a build with the CUDA backend): fp16 and TF32 engines against PyTorch's output.
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 && [ -x build/kiln_gpu_tests ]; then
    for mode in --fp16 --tf32; do
      echo "-- kiln exec --device=cuda $mode"
      "$kiln" exec --onnx="$dir/packnet01.onnx" --device=cuda $mode --timingCacheFile="$dir/timing.cache" \
        --loadInputs=input:"$dir/input.npy" --saveOutputs="$dir/kiln_cuda_out" --iterations=50 --duration=0 |
        grep -E "^Device memory|^GPU Compute Time|^Precision"
      "$py" - "$dir" "$mode" <<'PY'
import sys, numpy as np
d, mode = sys.argv[1], sys.argv[2]
ref, got = np.load(f"{d}/output.npy"), np.load(f"{d}/kiln_cuda_out/disp.npy")
err = float(np.linalg.norm(got.astype(np.float64) - ref) / np.linalg.norm(ref))
tol = 2e-3 if mode == "--fp16" else 1e-3
print(f"kiln cuda {mode} vs PyTorch fp32: rel L2 {err:.3e} ({'ok' if err <= tol else 'MISMATCH'})")
sys.exit(0 if err <= tol else 1)
PY
    done
  else
    echo "-- CUDA: no GPU here (the GPU run is scripts/gpu.sh on the lent machine; bench/RESULTS.md)"
  fi
done
echo "== PackNet01 main job: done (benchmarks: .venv/bin/python bench/bench_packnet_cpu.py; bench/bench_packnet_cuda.py on a GPU)"
