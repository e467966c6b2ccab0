#!/usr/bin/env bash
# The model suite's real models (tests/models/README.md), from the PyPI wheels that ship them, into out/models/:
#   onnx 1.17.0                    onnx/backend/test/data/light/*.onnx  (AlexNet, DenseNet-121, Inception v1/v2,
#                                  ResNet-50, ShuffleNet, SqueezeNet, VGG-19, ZFNet-512; weights as ConstantOfShape)
#   rapidocr-onnxruntime 1.4.4     PP-OCRv4 detection and recognition, PP-OCR mobile v2 direction classifier
# Only the wheels are downloaded (no install, no dependencies); a second run reuses them.
# Then our own torch exports (tests/models/export_torchvision.py: torchvision architectures, seeded random weights)
# into out/models/torch/: the files of the suite's fast entries (those CI runs, about a minute on 2 cores), or with
# --all every file (several minutes and 1.7 GB). Exports are cached: a file is redone only when the script changed.
#   scripts/fetch_models.sh [--all]
set -euo pipefail
suite=fast
[[ "${1:-}" == "--all" ]] && suite=all
cd "$(dirname "$0")/.."
out=out/models
mkdir -p "$out/wheels"
fetch() {  # fetch WHEEL_GLOB REQUIREMENT
  if ! ls "$out/wheels"/$1 >/dev/null 2>&1; then
    .venv/bin/pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$out/wheels" "$2"
  fi
  ls "$out/wheels"/$1 | head -1
}
onnx_wheel=$(fetch 'onnx-1.17.0-*.whl' onnx==1.17.0)
ocr_wheel=$(fetch 'rapidocr_onnxruntime-1.4.4-*.whl' rapidocr-onnxruntime==1.4.4)
.venv/bin/python - "$onnx_wheel" "$ocr_wheel" "$out" <<'PY'
import os, sys, zipfile
onnx_wheel, ocr_wheel, out = sys.argv[1:]
for wheel, prefix, dest in ((onnx_wheel, "onnx/backend/test/data/light/", "light"),
                            (ocr_wheel, "rapidocr_onnxruntime/models/", "ppocr")):
    os.makedirs(os.path.join(out, dest), exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.startswith(prefix) and n.endswith((".onnx", ".pb"))]
        for n in names:
            target = os.path.join(out, dest, os.path.basename(n))
            if not os.path.exists(target):
                with z.open(n) as src, open(target, "wb") as dst:
                    dst.write(src.read())
    print(f"fetch_models: {len(names)} files from {os.path.basename(wheel)} in {out}/{dest}")
PY
# The sequence models (LSTM, GRU) exported here with Debian's torch: seeded weights, no download.
.venv/bin/python tests/models/export_sequence.py --out "$out/torch"
.venv/bin/python -W ignore tests/models/export_torchvision.py --suite "$suite"
