#!/usr/bin/env bash
# The test suite: C++ unit tests through ctest, then the Python tests (PackNet export, ONNX Runtime checks).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/kiln ] || bash scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
# The package must be installed here (scripts/build_python.sh): its tests would otherwise skip themselves.
(cd /tmp && "$OLDPWD/.venv/bin/python" -c "import kiln, kiln.gs, kiln._kiln")
.venv/bin/python -m pytest -q tests/python
