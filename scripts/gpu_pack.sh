#!/usr/bin/env bash
# Here (no GPU): builds kiln for the lent GPU machine and packs what it needs into .devbin/ (gitignored), which
# the device call carries: the CLI, libkiln, the GPU tests, the backend sweep, the conformance runner (with the
# ONNX node tests' data, ~4 MB compressed), the kernel benchmark and the Debian libraries the GPU machine lacks
# (ONNX protobuf classes, protobuf). oneDNN is left out: the GPU machine runs CUDA, and the CPU reference
# kernels (the tests' oracle) need no oneDNN.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON -DKILN_DNNL=OFF >/dev/null
cmake --build build-gpu -j"$(nproc)" --target kiln kiln_gpu_tests kiln_backend_sweep kiln_conformance bench_cuda_kernels
rm -rf .devbin && mkdir -p .devbin
cp build-gpu/kiln build-gpu/libkiln.so build-gpu/kiln_gpu_tests build-gpu/kiln_backend_sweep build-gpu/kiln_conformance \
   build-gpu/bench_cuda_kernels .devbin/
for lib in $(ldd build-gpu/libkiln.so | awk '/=>/ {print $3}' | grep -E "libonnx|libprotobuf"); do cp -L "$lib" .devbin/; done
strip --strip-unneeded .devbin/* 2>/dev/null || true
# ONNX backend node tests for `scripts/gpu.sh conformance` (Debian's libonnx-testdata; absent: that stage skips).
NODE_TESTS=/usr/share/libonnx-testdata/data
if [ -d $NODE_TESTS/node ]; then tar czf .devbin/onnx_node_tests.tar.gz -C $NODE_TESTS node; fi
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include tools || echo -dirty)" > .devbin/REV
# The model suite's wheel models for `scripts/gpu.sh models modelbench` (bench/bench_models_cuda.py): the light zoo
# (0.6 MB) and PP-OCR (16 MB) from scripts/fetch_models.sh; the torch exports are made on the GPU machine.
for d in light ppocr; do
  if ls out/models/$d/*.onnx >/dev/null 2>&1; then
    mkdir -p .devbin/models/$d && cp out/models/$d/*.onnx .devbin/models/$d/
  else
    echo "gpu_pack: no out/models/$d/*.onnx (run scripts/fetch_models.sh): the models stage will skip them"
  fi
done
# pytest (pure Python, ~1 MB packed) for `scripts/gpu.sh python`, whose Python may lack it: from .venv.
if [ -d .venv/lib ]; then
  site=$(ls -d .venv/lib/python3*/site-packages | head -1)
  (cd "$site" && tar chJf "$OLDPWD/.devbin/pylib.tar.xz" --exclude=__pycache__ pytest _pytest pluggy iniconfig packaging py.py pygments)
fi
# libkiln (mostly CUDA kernel images, ~47 MB) travels xz-compressed: with the models it would not fit the carry;
# scripts/gpu.sh unpacks it before anything runs.
xz -T0 -6 -f .devbin/libkiln.so
du -sh .devbin
# The device call carries at most 64 MiB (working tree included).
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1 || true)
total=$(( $(du -sb .devbin | cut -f1) + ${tracked:-0} ))
echo "gpu_pack: .devbin + tracked files = $(( total / 1048576 )) MiB of the 64 MiB a device call carries"
if (( total > 60 * 1048576 )); then echo "gpu_pack: WARNING: close to the 64 MiB limit" >&2; fi
