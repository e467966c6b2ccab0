"""Control flow from a real exporter: a torch.jit.script-ed model with a Python `for` loop (trip count from a tensor)
and an `if` on a tensor condition, exported to ONNX opset 13 (Loop and If whose bodies read outer-scope values),
run by `kiln exec` and compared with ONNX Runtime."""
import os
import subprocess

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILN = os.environ.get("KILN_BIN", os.path.join(ROOT, "build", "kiln"))
if not os.path.exists(KILN):
    pytest.skip(f"{KILN} not built", allow_module_level=True)


class LoopIf(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x, steps):
        h = x
        for i in range(int(steps)):  # Loop: M = steps; the body reads x, lin.weight, lin.bias from outside
            h = torch.tanh(self.lin(h)) + x * float(i)
        if h.sum() > 0:  # If on a tensor: both branches read the Loop's output, one also x
            h = h * 2.0
        else:
            h = h - x
        return h


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("control_flow") / "loop_if.onnx"
    scripted = torch.jit.script(LoopIf())
    torch.onnx.export(scripted, (torch.randn(2, 4), torch.tensor(3)), str(path), opset_version=13,
                      input_names=["x", "steps"], output_names=["y"])
    return path


# These inputs take both branches: the sum before the If is +1.05, -0.42, -5.08, +5.86.
@pytest.mark.parametrize("steps,seed", [(0, 1), (1, 2), (4, 3), (7, 4)])
def test_scripted_loop_and_if_match_onnxruntime(model, tmp_path, steps, seed):
    x = np.random.default_rng(seed).uniform(-1, 1, (2, 4)).astype(np.float32)
    want = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(
        None, {"x": x, "steps": np.array(steps, dtype=np.int64)})[0]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "steps.npy", np.array(steps, dtype=np.int64))
    proc = subprocess.run([KILN, "exec", f"--onnx={model}", f"--loadInputs=x:{tmp_path}/x.npy,steps:{tmp_path}/steps.npy",
                           f"--saveOutputs={tmp_path}/out", "--iterations=1", "--duration=0", "--warmUp=0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "out" / "y.npy")
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
