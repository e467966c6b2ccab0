"""One engine for a range of input shapes (issue 11): built once with --minShapes/--optShapes/--maxShapes and saved,
then loaded and run at several shapes inside the profile, each checked against ONNX Runtime on the same input;
a shape outside the profile is refused naming input, dim and range."""
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models"))
import runner  # noqa: E402

ort = pytest.importorskip("onnxruntime")

# name, model, input, (min, opt, max), shapes to run, a shape outside the profile and the error it must give
CASES = [
    ("ppocr_rec", "ppocr/ch_PP-OCRv4_rec_infer.onnx", "x",
     ("1x3x48x160", "1x3x48x320", "1x3x48x640"), [(1, 3, 48, 160), (1, 3, 48, 320), (1, 3, 48, 640), (1, 3, 48, 448)],
     "1x3x48x672", "input 'x' dim 3 = 672 is outside every profile (profile 0: 160..640)"),
    ("resnet50_dynbatch", "torch/resnet50_dynbatch_op17.onnx", "input",
     ("1x3x224x224", "4x3x224x224", "32x3x224x224"), [(1, 3, 224, 224), (7, 3, 224, 224), (32, 3, 224, 224)],
     "33x3x224x224", "input 'input' dim 0 = 33 is outside every profile (profile 0: 1..32)"),
]


def ensure_model(model):
    """Suite models from our own exporter are made on demand (fetch_models.sh exports only the fast set)."""
    if os.path.exists(model) or "/torch/" not in model:
        return
    exporter = os.path.join(os.path.dirname(runner.__file__), "export_torchvision.py")
    name = os.path.splitext(os.path.basename(model))[0]
    subprocess.run([sys.executable, exporter, "--only", name], check=True, capture_output=True, timeout=600)


def kiln(*args):
    return subprocess.run([runner.KILN, "exec", "--threads=1", "--iterations=1", "--duration=0", "--warmUp=0", *args],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    return tmp_path_factory.mktemp("dynamic")


@pytest.mark.parametrize("name,path,inp,profile,shapes,outside,error", CASES, ids=[c[0] for c in CASES])
def test_one_engine_runs_every_shape_in_its_profile(engines, name, path, inp, profile, shapes, outside, error):
    model = os.path.join(runner.MODELS_DIR, path)
    ensure_model(model)
    assert os.path.exists(model), f"{model} missing: run scripts/fetch_models.sh"
    engine = engines / f"{name}.kiln"
    lo, opt, hi = profile
    proc = kiln(f"--onnx={model}", f"--minShapes={inp}:{lo}", f"--optShapes={inp}:{opt}", f"--maxShapes={inp}:{hi}",
                f"--saveEngine={engine}")
    assert proc.returncode == 0, proc.stderr
    assert f"Profile 0: {inp} min {lo} opt {opt} max {hi}" in proc.stdout

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in session.get_outputs()]
    for k, dims in enumerate(shapes):
        x = np.random.default_rng(k).uniform(-1, 1, dims).astype(np.float32)
        np.save(engines / "x.npy", x)
        out = engines / f"out{k}"
        proc = kiln(f"--loadEngine={engine}", f"--loadInputs={inp}:{engines}/x.npy", f"--saveOutputs={out}")
        assert proc.returncode == 0, proc.stderr
        want = session.run(None, {inp: x})
        for o, w in zip(out_names, want):
            got = np.load(out / f"{o}.npy")
            assert got.shape == w.shape, (dims, o)
            assert runner.rel_l2(got, w) <= 1e-4, (dims, o, runner.rel_l2(got, w))

    proc = kiln(f"--loadEngine={engine}", f"--shapes={inp}:{outside}")
    assert proc.returncode != 0
    assert error in proc.stderr
