#!/usr/bin/env bash
# Main job: PackNet01 end to end on this machine.
#   1. export the full-size model from our PyTorch definition (opset 11 and 13), with a fixed input and
#      PyTorch's output;
#   2. inspect it (raw, then folded);
#   3. sanitize it (fold constants, cleanup, toposort) and write the result as ONNX;
#   4. check the sanitized model in ONNX Runtime against the original and against PyTorch.
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
done
echo "== PackNet01 main job: done"
