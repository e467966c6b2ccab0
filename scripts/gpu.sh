#!/usr/bin/env bash
# On the GPU machine (device tool, carrying .devbin from scripts/gpu_pack.sh): GPU tests, the backend sweep, ONNX
# conformance on CUDA, kernel benchmark, PackNet01 end to end and the side-by-side benchmark against PyTorch, in
# one call.
#   bash scripts/gpu.sh [tests] [sweep] [conformance] [sanitize] [kernels] [packnet] [bench] [profile] [models]
#                       [modelbench] [modelprofile] [python]
#   (default: tests sweep conformance kernels packnet bench)
# sweep: kiln_backend_sweep --device=cuda, every registered CUDA kernel against the CPU reference
# (docs/backend_sweep.md); SWEEP_ARGS adds options (e.g. "--perf", "--filter=Conv").
# conformance: the ONNX node tests with every engine built for cuda (tests/conformance/README.md).
# sanitize: compute-sanitizer memcheck over every GPU test, racecheck and synccheck over kiln's own kernels
# (the shared-memory and barrier users; cuDNN/cuBLAS convolutions are left to memcheck).
# models: the model suite on CUDA in fp32/TF32/fp16 against ONNX Runtime CPU (bench/bench_models_cuda.py
# --check-only; light zoo and PP-OCR from .devbin/models, torch exports made in /tmp/kiln_models_cuda).
# modelbench: kiln fp16 against PyTorch eager / CUDA graph / torch.compile on ResNet-50, MobileNetV3, EfficientNet,
# ViT-B/16, a transformer encoder, PP-OCRv4 (bench_models_cuda.py --bench-only).
# Both stop starting cases after MODELS_BUDGET seconds (default 540: run each in its own call) and name the cases
# left; MODELS="substring ..." (suite case ids or file paths, e.g. "light/ ppocr/" or "torch/"; =NAME exact)
# picks a part, to split the work across calls.
# python: builds the extension kiln._kiln HERE against .devbin's libkiln (python/prebuilt/CMakeLists.txt: this
# machine's Python is not the wheel's), then runs tests/python/test_cuda_dlpack.py (torch CUDA tensors in and out
# of a cuda session without host copies, against ONNX Runtime) and test_python_api.py with it; pytest comes from
# .devbin/pylib.tar.xz where this Python lacks it. Prints "python: PASS" or "python: FAIL (...)".
# Writes logs and reports under $OUT (or out/gpu when run elsewhere).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
stages=${*:-tests sweep conformance kernels packnet bench}
BIN=$PWD/.devbin
# gpu_pack.sh sends libkiln xz-compressed (the carry limit); Python's lzma unpacks it wherever xz is missing.
if [ -f "$BIN/libkiln.so.xz" ] && [ ! -f "$BIN/libkiln.so" ]; then
  python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
    "$BIN/libkiln.so.xz" "$BIN/libkiln.so" || { echo "!! cannot unpack $BIN/libkiln.so.xz"; exit 1; }
fi
# cuDNN 9.19 (the version kiln is built against) comes with PyTorch's Python environment there.
CUDNN_DIR=$(python3 - <<'PY' 2>/dev/null
import glob, os, site
for d in site.getsitepackages() + [site.getusersitepackages()]:
    hits = glob.glob(os.path.join(d, "nvidia", "cudnn", "lib", "libcudnn.so.9"))
    if hits: print(os.path.dirname(hits[0])); break
PY
)
CUDA_LIB=$(dirname "$(ls /usr/local/cuda/lib64/libcublas.so.13 /usr/local/cuda*/lib64/libcublas.so.13 2>/dev/null | head -1)" 2>/dev/null)
export LD_LIBRARY_PATH="$BIN:${CUDNN_DIR}:${CUDA_LIB}:${LD_LIBRARY_PATH:-}"
export PYTHONUNBUFFERED=1
export KILN_REV=$(cat "$BIN/REV" 2>/dev/null || echo unknown)
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader)"
echo "== cuDNN from ${CUDNN_DIR:-system}; CUDA libs from ${CUDA_LIB:-system}"
ldd "$BIN/libkiln.so" | grep -E "not found|cudnn|cublas" || true
status=0
run() { echo "== $*"; "$@" || { echo "!! failed ($?): $*"; status=1; }; }

if [[ " $stages " == *" tests "* ]]; then
  run "$BIN/kiln_gpu_tests" 2>&1 | tee "$OUT/gpu_tests.log" | grep -E "^\[  (FAILED|PASSED|SKIPPED) |^\[==========\]|Failure|error|Expected|Which is|rel" | head -150
fi
if [[ " $stages " == *" sweep "* ]]; then
  run "$BIN/kiln_backend_sweep" --device=cuda ${SWEEP_ARGS:-} > "$OUT/backend_sweep.log" 2>&1
  grep -E "^FAIL|^SKIP|never exercised|skipped|^[0-9]+ factories" "$OUT/backend_sweep.log" | head -60
fi
if [[ " $stages " == *" conformance "* ]]; then
  if [ -f "$BIN/onnx_node_tests.tar.gz" ]; then
    rm -rf /tmp/onnx_node_tests && mkdir -p /tmp/onnx_node_tests
    tar xzf "$BIN/onnx_node_tests.tar.gz" -C /tmp/onnx_node_tests
    run "$BIN/kiln_conformance" /tmp/onnx_node_tests/node --device cuda --json "$OUT/conformance_cuda.json" \
      > "$OUT/conformance_cuda.log" 2>&1
    sed -n '/^op /,/^$/p' "$OUT/conformance_cuda.log" | grep -vE " 0 +0 +[0-9]+$"  # ops with a result
    grep -E "^  FAIL|^[0-9]+ tests in|^[0-9]+ passed|skipped:" "$OUT/conformance_cuda.log" | head -60
  else
    echo "== conformance: no onnx_node_tests.tar.gz in .devbin (gpu_pack.sh packs it where libonnx-testdata is installed)"
  fi
fi
if [[ " $stages " == *" sanitize "* ]]; then
  CS=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
  OWN="CudaConv3d.*:CudaElementwise.*:CudaMovement.*:CudaNormalization.*"  # kiln's own kernels
  for tool in memcheck racecheck synccheck; do
    # memcheck: everything but the sweep over every cuDNN engine (minutes under the tool; the per-precision conv
    # tests still run cuDNN, cuBLAS and the epilogues under it).
    filter=$([ $tool = memcheck ] && echo "-CudaConv.EveryEngineMatchesReference" || echo "$OWN")
    run timeout "${SANITIZE_TIMEOUT:-300}" "$CS" --tool $tool --error-exitcode 86 --print-limit 20 "$BIN/kiln_gpu_tests" --gtest_filter="$filter" \
      > "$OUT/sanitize_$tool.log" 2>&1
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|^\[  (PASSED|FAILED) |^=+ (Invalid|Race|Barrier|Error)" "$OUT/sanitize_$tool.log" | head -20
  done
fi
if [[ " $stages " == *" kernels "* ]]; then
  run "$BIN/bench_cuda_kernels" 2>&1 | tee "$OUT/bench_cuda_kernels.log"
fi
MODEL_DIR=/tmp/packnet_full
if [[ " $stages " == *" packnet "* || " $stages " == *" bench "* || " $stages " == *" profile "* ]]; then
  if [ ! -f $MODEL_DIR/packnet01.onnx ]; then
    run python3 examples/packnet/export.py --out $MODEL_DIR --opset 11 2>&1 | tail -3
  fi
fi
if [[ " $stages " == *" packnet "* ]]; then
  for mode in --noTF32 --tf32 --fp16 --bf16; do
    tag=${mode#--}
    run "$BIN/kiln" exec --onnx=$MODEL_DIR/packnet01.onnx --device=cuda $mode --timingCacheFile="$OUT/timing.cache" \
      --loadInputs=input:$MODEL_DIR/input.npy --saveOutputs=/tmp/kiln_$tag --iterations=100 --duration=0 \
      --saveEngine=/tmp/packnet_$tag.kiln 2>&1 | tee "$OUT/packnet_$tag.log" | grep -vE "^\[build\] (layer|kernels chosen)" | tail -22
    python3 - "$MODEL_DIR/output.npy" /tmp/kiln_$tag <<'PY'
import glob, sys, numpy as np
ref = np.load(sys.argv[1]).astype(np.float64)
got = np.load(glob.glob(sys.argv[2] + "/*.npy")[0]).astype(np.float64)
print(f"PackNet01 {sys.argv[2].split('_')[-1]}: rel L2 vs PyTorch CPU fp32 {np.linalg.norm(got - ref) / np.linalg.norm(ref):.3e}  nan={np.isnan(got).sum()}")
PY
  done
  run "$BIN/kiln" exec --loadEngine=/tmp/packnet_fp16.kiln --iterations=50 --duration=0 --noDataTransfers 2>&1 | grep -E "GPU Compute|Latency|Error|error" | head -5
fi
if [[ " $stages " == *" profile "* ]]; then
  for mode in ${PROFILE_MODES:---fp16 --tf32 --noTF32}; do
    tag=${mode#--}
    run "$BIN/kiln" exec --onnx=$MODEL_DIR/packnet01.onnx --device=cuda $mode --timingCacheFile="$OUT/timing.cache" \
      --iterations=20 --duration=0 --verbose --exportProfile="$OUT/profile_$tag.json" > "$OUT/profile_$tag.txt" 2>&1
    python3 bench/profile_summary.py "$OUT/profile_$tag.json" | head -40
  done
fi
# modelprofile: per-layer fp16 profile of torchvision ResNet-50 and ViT-B/16 (exported here, opset 17: why a model is
# slower than its peer); PROFILE_FILES: other .onnx paths instead.
if [[ " $stages " == *" modelprofile "* ]]; then
  if [ -z "${PROFILE_FILES:-}" ]; then
    python3 -W ignore tests/models/export_torchvision.py --out /tmp/kiln_profile --only resnet50_op17 vit_b_16_op17 \
      > "$OUT/profile_export.log" 2>&1 || echo "!! export failed (profile_export.log)"
  fi
  for f in ${PROFILE_FILES:-/tmp/kiln_profile/resnet50_op17.onnx /tmp/kiln_profile/vit_b_16_op17.onnx}; do
    tag=$(basename "$f" .onnx)
    run "$BIN/kiln" exec --onnx="$f" --device=cuda --fp16 --iterations=20 --duration=0 \
      --exportProfile="$OUT/profile_$tag.json" > "$OUT/profile_$tag.txt" 2>&1
    python3 bench/profile_summary.py "$OUT/profile_$tag.json" | head -28
  done
fi
if [[ " $stages " == *" bench "* ]]; then
  run python3 bench/bench_packnet_cuda.py --onnx $MODEL_DIR/packnet01.onnx --workdir /tmp/bench --kiln "$BIN/kiln" \
    --out "$OUT/bench_packnet_cuda.md" --json "$OUT/bench_packnet_cuda.json" 2>&1 | tail -40
fi
MODELS_ARGS=(--kiln "$BIN/kiln" --models-dir "$BIN/models" --workdir /tmp/kiln_models_cuda
             --budget-s "${MODELS_BUDGET:-540}" ${MODELS:+--models $MODELS})
if [[ " $stages " == *" models "* ]]; then
  run python3 bench/bench_models_cuda.py --check-only "${MODELS_ARGS[@]}" \
    --out "$OUT/models_cuda.md" --json "$OUT/models_cuda.json" > "$OUT/models_cuda.log" 2>&1
  grep -E "^\[ *[0-9.]+s\] done;|time budget|^!! failed|Traceback|Error" "$OUT/models_cuda.log" | tail -20
  cat "$OUT/models_cuda.md" 2>/dev/null
fi
if [[ " $stages " == *" modelbench "* ]]; then
  run python3 bench/bench_models_cuda.py --bench-only "${MODELS_ARGS[@]}" \
    --out "$OUT/bench_models_cuda.md" --json "$OUT/bench_models_cuda.json" > "$OUT/bench_models_cuda.log" 2>&1
  grep -E "failed|error|Error|Traceback|time budget" "$OUT/bench_models_cuda.log" | head -20
  cat "$OUT/bench_models_cuda.md" 2>/dev/null
fi
if [[ " $stages " == *" python "* ]]; then
  PYDIR=/tmp/kiln_python
  rm -rf "$PYDIR/pkg" "$PYDIR/build" && mkdir -p "$PYDIR/pkg"
  PYLIB=""
  if ! python3 -c "import pytest" 2>/dev/null && [ -f "$BIN/pylib.tar.xz" ]; then
    rm -rf "$PYDIR/pylib"
    python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], **({'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}))" \
      "$BIN/pylib.tar.xz" "$PYDIR/pylib"
    PYLIB=":$PYDIR/pylib"
  fi
  GEN=$(command -v ninja >/dev/null && echo "-GNinja" || true)
  echo "== python: building kiln._kiln for $(python3 --version) against $BIN/libkiln.so (log: $OUT/python_build.log)"
  if cmake -S python/prebuilt -B "$PYDIR/build" $GEN -DKILN_LIB="$BIN/libkiln.so" \
       -DPython_EXECUTABLE="$(command -v python3)" > "$OUT/python_build.log" 2>&1 &&
     cmake --build "$PYDIR/build" -j 8 >> "$OUT/python_build.log" 2>&1; then
    cp -r python/kiln "$PYDIR/pkg/kiln"
    cp "$PYDIR"/build/_kiln*.so "$PYDIR/pkg/kiln/"
    mkdir -p "$PYDIR/pkg/kiln/bin" && ln -sf "$BIN/kiln" "$PYDIR/pkg/kiln/bin/kiln"  # `python -m kiln`
    (cd /tmp && PYTHONPATH="$PYDIR/pkg$PYLIB" python3 -c "import kiln, torch; print('== python: kiln', kiln.__version__, 'from', kiln.__file__, '| torch', torch.__version__, 'cuda', torch.cuda.is_available())")
    PYTHONPATH="$PYDIR/pkg$PYLIB" python3 -m pytest -q -rs -p no:cacheprovider \
      tests/python/test_cuda_dlpack.py tests/python/test_python_api.py > "$OUT/python_tests.log" 2>&1
    rc=$?
    grep -E "passed|failed|error|SKIPPED|^FAILED|^ERROR" "$OUT/python_tests.log" | tail -30
    if [ $rc -eq 0 ] && ! grep -q "SKIPPED.*test_cuda_dlpack" "$OUT/python_tests.log"; then
      echo "python: PASS"
    else
      echo "python: FAIL (pytest rc $rc or CUDA tests skipped; $OUT/python_tests.log)"
      grep -E "^E |Error" "$OUT/python_tests.log" | head -30
      status=1
    fi
  else
    echo "python: FAIL (extension build; $OUT/python_build.log)"
    tail -25 "$OUT/python_build.log"
    status=1
  fi
fi
exit $status
