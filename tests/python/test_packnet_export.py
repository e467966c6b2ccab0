"""PackNet01 export: a small variant (width 0.25, 64x64) at opsets 11 and 13 has the spec's structure, its
input/output .npy files have the right shapes, and ONNX Runtime reproduces PyTorch's output.

The structural counts do not depend on width or resolution, so the small export is checked against the
full model's numbers (except the parameter count).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKNET = os.path.join(ROOT, "examples", "packnet")
EXPORT = os.path.join(PACKNET, "export.py")
CHECK = os.path.join(PACKNET, "check_structure.py")
H, W = 64, 64

pytest.importorskip("torch")
pytest.importorskip("onnx")


def run(*args):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module", params=[11, 13])
def exported(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"packnet_opset{request.param}")
    run(EXPORT, "--out", str(out), "--opset", str(request.param), "--width", "0.25",
        "--height", str(H), "--width-px", str(W), "--seed", "0")
    return request.param, out


def test_files_and_shapes(exported):
    _, out = exported
    assert sorted(p for p in os.listdir(out) if not p.startswith(".")) == \
        ["input.npy", "output.npy", "packnet01.onnx"]
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")], "temp files left behind"
    x = np.load(out / "input.npy")
    y = np.load(out / "output.npy")
    assert x.dtype == np.float32 and x.shape == (1, 3, H, W)
    assert y.dtype == np.float32 and y.shape == (1, 1, H, W)
    # Inverse depth in (0, 2), and not saturated or constant (weights are non-trivial).
    assert 0.0 < y.min() and y.max() < 2.0
    assert 0.2 < y.mean() < 1.8 and y.std() > 1e-2


def test_structure(exported):
    opset, out = exported
    report = json.loads(run(CHECK, str(out / "packnet01.onnx"), "--json", "--no-shape-inference"))
    assert report["opset"] == opset
    assert report["nodes"] == {11: 1684, 13: 1771}[opset]
    assert report["non_constant_nodes"] == 1069
    assert report["groupnorm"] == 47
    assert report["groupnorm_after_conv"] == 37
    assert report["groupnorm_after_add"] == 10
    assert report["pad"] == report["pad_chains_constant"] == report["pad_into_conv"] == 41
    assert report["pad_sizes"] == {"1": 38, "2": 2, "3": 1}
    assert report["resize"] == 3
    assert report["depth_to_space"] == 5
    assert report["conv"] == 61
    assert report["conv3d"] == 10
    assert report["space_to_depth_transpose"] == 5
    assert report["sigmoid"] == 4
    # The spec's op set, nothing else (e.g. no Identity from deduplicated initializers, no SpaceToDepth).
    assert set(report["op_histogram"]) == {
        "Constant", "Reshape", "Shape", "Unsqueeze", "Gather", "Concat", "Mul", "Cast", "Conv", "Add",
        "InstanceNormalization", "Elu", "Transpose", "ConstantOfShape", "Slice", "Pad", "Div",
        "DepthToSpace", "Sigmoid", "Resize"}
    # --expect runs every check, including the per-subgraph pattern checks, and fails on any mismatch.
    run(CHECK, str(out / "packnet01.onnx"), "--expect", "--no-shape-inference")


def test_onnxruntime_matches_pytorch(exported):
    ort = pytest.importorskip("onnxruntime")
    _, out = exported
    x = np.load(out / "input.npy")
    ref = np.load(out / "output.npy")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(out / "packnet01.onnx"), opts, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert [o.name for o in sess.get_outputs()] == ["disp"]
    (y,) = sess.run(None, {"input": x})
    rel = np.linalg.norm(y.astype(np.float64) - ref) / np.linalg.norm(ref.astype(np.float64))
    assert rel < 1e-4, f"relative L2 {rel:.3e}"


def test_export_is_deterministic(exported, tmp_path):
    opset, out = exported
    if opset != 11:
        pytest.skip("one opset is enough")
    run(EXPORT, "--out", str(tmp_path), "--opset", "11", "--width", "0.25",
        "--height", str(H), "--width-px", str(W), "--seed", "0")
    np.testing.assert_array_equal(np.load(tmp_path / "input.npy"), np.load(out / "input.npy"))
    np.testing.assert_allclose(np.load(tmp_path / "output.npy"), np.load(out / "output.npy"), rtol=0, atol=1e-6)


def test_checker_catches_mismatches(exported, tmp_path):
    """check_structure --expect must fail on a graph that deviates (here: DepthToSpace DCR instead of CRD),
    and --expect-full must fail on the small model's parameter count."""
    import onnx

    opset, out = exported
    if opset != 11:
        pytest.skip("one opset is enough")
    model = onnx.load(str(out / "packnet01.onnx"))
    d2s = next(n for n in model.graph.node if n.op_type == "DepthToSpace")
    next(a for a in d2s.attribute if a.name == "mode").s = b"DCR"
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))
    for path, flag in ((bad, "--expect"), (out / "packnet01.onnx", "--expect-full")):
        proc = subprocess.run([sys.executable, CHECK, str(path), flag, "--no-shape-inference"],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 1 and "MISMATCH" in proc.stderr, proc.stdout + proc.stderr
