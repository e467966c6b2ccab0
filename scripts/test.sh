#!/usr/bin/env bash
# The test suite: C++ unit tests through ctest, then the Python tests (PackNet export, ONNX Runtime checks).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/kiln ] || bash scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
.venv/bin/python -m pytest -q tests/python
