#!/usr/bin/env bash
# Builds the Python package's wheel (pyproject.toml; CMake tree kept in build-wheel/), installs it into a FRESH
# venv and checks `import kiln` and `python -m kiln --help` there (issue 13's "installs in a fresh venv"), then
# installs it into .venv so scripts/test.sh runs tests/python/test_python_api.py against it.
#
#   bash scripts/build_python.sh
#   KILN_CUDA=OFF bash scripts/build_python.sh   # CPU-only wheel
# Without ccache the wheel defaults to CPU only: compiling the CUDA backend a second time costs CI minutes, and
# with ccache (scripts/build.sh compiles through it) the wheel's compiles are cache hits of build/'s.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
if ! command -v ccache >/dev/null && [ -z "${KILN_CUDA:-}" ]; then
  export KILN_CUDA=OFF
fi
# build.sh's generator, so that the wheel's compile lines are build/'s and ccache hits them (Ninja's differ).
export CMAKE_GENERATOR=${CMAKE_GENERATOR:-Unix Makefiles}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
rm -rf build-wheel/dist
# No build isolation: .venv holds scikit-build-core and nanobind (scripts/setup.sh), so nothing is downloaded.
.venv/bin/pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps . -w build-wheel/dist
wheel=$(ls build-wheel/dist/kiln-*.whl)
echo "build_python: built $wheel in $(($(date +%s) - start)) s"

fresh=build-wheel/venv-fresh
rm -rf "$fresh"
/usr/bin/python3 -m venv "$fresh"
"$fresh/bin/pip" install -q --disable-pip-version-check "$wheel"
(cd /tmp && "$OLDPWD/$fresh/bin/python" -c "import kiln, numpy; print('build_python: import kiln', kiln.__version__, 'in a fresh venv')")
(cd /tmp && "$OLDPWD/$fresh/bin/python" -m kiln --help >/dev/null)

.venv/bin/pip install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel"
echo "build_python: done in $(($(date +%s) - start)) s"
