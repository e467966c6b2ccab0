#!/usr/bin/env bash
# Configures and builds kiln into build/ (Release), then the Python package's wheel (scripts/build_python.sh;
# KILN_SKIP_PYTHON=1 skips it). Compiles through ccache when it is installed: the wheel's compiles of the same
# sources are then cache hits.
set -euo pipefail
cd "$(dirname "$0")/.."
launchers=()
if command -v ccache >/dev/null; then
  launchers=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${launchers[@]}" "$@" >/dev/null
cmake --build build -j"$(nproc)"
if [ "${KILN_SKIP_PYTHON:-0}" != 1 ]; then
  bash scripts/build_python.sh
fi
