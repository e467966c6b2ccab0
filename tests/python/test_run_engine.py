"""The embedding example (examples/run_engine) builds an engine from ONNX, and loads a saved one, with
outputs equal to ONNX Runtime's."""
import os
import subprocess

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.dirname(os.environ.get("KILN_BIN", os.path.join(ROOT, "build", "kiln")))
RUN = os.path.join(BUILD, "run_engine")
KILN = os.path.join(BUILD, "kiln")
if not os.path.exists(RUN):
    pytest.skip(f"{RUN} not built", allow_module_level=True)


def test_run_engine_matches_onnxruntime(tmp_path):
    rng = np.random.default_rng(7)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Elu", ["c"], ["y"], alpha=1.0)],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 10])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.flatten()),
         helper.make_tensor("b", TensorProto.FLOAT, b.shape, b)])
    model = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), model)
    x = rng.standard_normal((1, 3, 8, 10)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    want = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    subprocess.run([RUN, model, "x", tmp_path / "x.npy", tmp_path], check=True, capture_output=True)
    got = np.load(tmp_path / "y.npy")
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 1e-5

    engine = tmp_path / "tiny.kiln"
    subprocess.run([KILN, "exec", f"--onnx={model}", f"--saveEngine={engine}", "--iterations=1", "--duration=0",
                    "--warmUp=0"], check=True, capture_output=True)
    os.remove(tmp_path / "y.npy")
    subprocess.run([RUN, engine, "x", tmp_path / "x.npy", tmp_path], check=True, capture_output=True)
    assert np.array_equal(np.load(tmp_path / "y.npy"), got)


def test_run_engine_reports_bad_input(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((2, 2), np.float32))
    proc = subprocess.run([RUN, tmp_path / "missing.onnx", "x", tmp_path / "x.npy", tmp_path],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "missing.onnx" in proc.stderr
