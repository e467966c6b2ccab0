"""`kiln inspect` and `kiln surgeon sanitize` on the small PackNet01 variant, checked against independent
oracles: PyTorch (parameter count, MACs from forward hooks) and ONNX Runtime (outputs of the sanitized model).
Also the CLI's behaviour on bad files: one line naming the file, non-zero exit.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples", "packnet"))
KILN = os.environ.get("KILN_BIN", os.path.join(ROOT, "build", "kiln"))
EXPORT = os.path.join(ROOT, "examples", "packnet", "export.py")
WIDTH, H, W = 0.25, 64, 96

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
if not os.path.exists(KILN):
    pytest.skip(f"{KILN} not built", allow_module_level=True)


def kiln(*args, check=True):
    proc = subprocess.run([KILN, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, f"kiln {args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module", params=[11, 13])
def exported(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"packnet_cli_{request.param}")
    subprocess.run([sys.executable, EXPORT, "--out", str(out), "--opset", str(request.param), "--width",
                    str(WIDTH), "--height", str(H), "--width-px", str(W)], check=True, capture_output=True)
    return request.param, out


@pytest.fixture(scope="module")
def torch_oracle():
    """Parameter count and conv MACs of the same network, measured in PyTorch."""
    from packnet01 import PackNet01
    model = PackNet01(width=WIDTH).eval()
    macs = []

    def hook(mod, inp, out):
        k = int(np.prod(mod.kernel_size))
        macs.append(out.numel() * (mod.in_channels // mod.groups) * k)

    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.rand(1, 3, H, W))
    return sum(p.numel() for p in model.parameters()), sum(macs)


def rel_l2(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


def test_inspect_matches_pytorch(exported, torch_oracle):
    opset, out = exported
    params, macs = torch_oracle
    j = json.loads(kiln("inspect", out / "packnet01.onnx", "--json").stdout)
    assert j["nodes"] == {11: 1684, 13: 1771}[opset]
    assert j["op_histogram"]["InstanceNormalization"] == 47
    assert j["params"] == params
    assert j["macs"] == macs
    assert j["unknown_shapes"] == 0
    assert j["unknown_shapes_in_file"] > 0  # the exporter's own shapes are incomplete
    assert j["inputs"] == [{"name": "input", "dtype": "float32", "shape": [1, 3, H, W]}]
    assert j["outputs"][0]["shape"] == [1, 1, H, W]


def test_inspect_fold(exported, torch_oracle):
    _, out = exported
    j = json.loads(kiln("inspect", out / "packnet01.onnx", "--fold", "--json").stdout)
    hist = j["op_histogram"]
    assert 400 <= j["nodes"] <= 500, j["nodes"]
    for gone in ("Constant", "Shape", "Gather", "ConstantOfShape", "Cast", "Slice"):
        assert gone not in hist, (gone, hist)
    assert hist["Unsqueeze"] == 10  # only the packing blocks' "view as a 1-channel volume" stays
    assert hist["Conv"] == 61 and hist["Pad"] == 41 and hist["InstanceNormalization"] == 47
    assert hist["Resize"] == 3 and hist["DepthToSpace"] == 5
    assert j["unknown_shapes"] == 0
    assert j["macs"] == torch_oracle[1]
    assert j["not_folded"] == []


def test_sanitize_runs_in_onnxruntime_with_equal_outputs(exported, tmp_path):
    _, out = exported
    sanitized = tmp_path / "sanitized.onnx"
    proc = kiln("surgeon", "sanitize", out / "packnet01.onnx", "-o", sanitized, "--fold-constants",
                "--cleanup", "--toposort")
    assert "folded" in proc.stderr
    x = np.load(out / "input.npy")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    run = lambda p: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    original, folded = run(out / "packnet01.onnx"), run(sanitized)
    assert folded.shape == original.shape
    assert rel_l2(folded, original) < 1e-6
    assert rel_l2(folded, np.load(out / "output.npy")) < 1e-4
    onnx = pytest.importorskip("onnx")
    onnx.checker.check_model(str(sanitized), full_check=True)


@pytest.mark.parametrize("content", [b"", b"this is not an onnx model\n", bytes(range(256)) * 64])
def test_bad_files_give_one_line_errors(tmp_path, content):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    for args in (("inspect", bad), ("surgeon", "sanitize", bad, "-o", tmp_path / "o.onnx")):
        proc = kiln(*args, check=False)
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "bad.onnx" in lines[0], proc.stderr
        assert not (tmp_path / "o.onnx").exists()


def test_truncated_model_gives_one_line_error(exported, tmp_path):
    _, out = exported
    data = (out / "packnet01.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    proc = kiln("inspect", cut, check=False)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and "cut.onnx" in proc.stderr, proc.stderr
