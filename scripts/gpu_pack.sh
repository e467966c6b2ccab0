#!/usr/bin/env bash
# Here (no GPU): builds kiln for the lent GPU machine and packs what it needs into .devbin/ (gitignored), which
# the device call carries: the CLI, libkiln, the GPU tests, the kernel benchmark and the Debian libraries the
# GPU machine lacks (ONNX protobuf classes, protobuf). oneDNN is left out: the GPU machine runs CUDA, and the
# CPU reference kernels (the tests' oracle) need no oneDNN.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON -DKILN_DNNL=OFF >/dev/null
cmake --build build-gpu -j"$(nproc)" --target kiln kiln_gpu_tests bench_cuda_kernels
rm -rf .devbin && mkdir -p .devbin
cp build-gpu/kiln build-gpu/libkiln.so build-gpu/kiln_gpu_tests build-gpu/bench_cuda_kernels .devbin/
for lib in $(ldd build-gpu/libkiln.so | awk '/=>/ {print $3}' | grep -E "libonnx|libprotobuf"); do cp -L "$lib" .devbin/; done
strip --strip-unneeded .devbin/* 2>/dev/null || true
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include tools || echo -dirty)" > .devbin/REV
du -sh .devbin
