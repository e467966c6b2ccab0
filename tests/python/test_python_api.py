"""The Python package (pyproject.toml, python/): kiln.InferenceSession against ONNX Runtime, Builder/Engine, errors,
`python -m kiln`, and kiln._kiln.fold_onnx. Skipped when the package is not installed (scripts/build.sh installs
it into .venv)."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from installed_kiln import IR, kiln, onnx, ort  # noqa: E402  (skips this module without them)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = pathlib.Path(os.environ.get("KILN_MODELS_DIR", ROOT / "out" / "models"))


def small_model(batch="N"):
    """Conv -> Relu -> MatMul-free head: x [batch, 3, 8, 8] -> y [batch, 4, 8, 8], z = mean over HW."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
        helper.make_node("ReduceMean", ["y"], ["z"], axes=[2, 3], keepdims=0, name="mean"),
    ]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 8, 8]),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, 4])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=IR)


def ort_run(model, feed, names=None):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(names, feed)


def test_version_and_error_type():
    assert kiln.__version__.count(".") == 2
    assert issubclass(kiln.Error, RuntimeError)


def test_session_matches_onnxruntime_static_and_dynamic():
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    for model in (small_model(batch=2), small_model(batch="N")):
        sess = kiln.InferenceSession(model.SerializeToString())
        got = sess.run(None, {"x": x})
        want = ort_run(model, {"x": x})
        assert len(got) == 2
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
        if model.graph.input[0].type.tensor_type.shape.dim[0].dim_param:
            (z,) = sess.run(["z"], {"x": x[:1]})  # a second shape: a second engine
            np.testing.assert_allclose(z, want[1][:1], rtol=1e-5, atol=1e-5)


def test_session_profile_range(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(small_model(), str(path))
    sess = kiln.InferenceSession(str(path), profile={"x": ((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))})
    x = np.ones((3, 3, 8, 8), np.float32)
    np.testing.assert_allclose(sess.run(["y"], {"x": x})[0], ort_run(small_model(), {"x": x}, ["y"])[0], rtol=1e-5,
                               atol=1e-5)


def test_inputs_outputs_like_onnxruntime():
    model = small_model()
    sess = kiln.InferenceSession(model)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for mine, theirs in ((sess.get_inputs(), want.get_inputs()), (sess.get_outputs(), want.get_outputs())):
        assert [(a.name, a.type, a.shape) for a in mine] == [(a.name, a.type, a.shape) for a in theirs]


def test_torch_tensors_via_dlpack():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    sess = kiln.InferenceSession(small_model(batch=2))
    (y,) = sess.run(["y"], {"x": x})
    want = ort_run(small_model(batch=2), {"x": x.detach().numpy()}, ["y"])[0]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    (y2,) = sess.run(["y"], {"x": x.detach().transpose(2, 3).contiguous().transpose(2, 3)})  # non-contiguous
    np.testing.assert_allclose(y2, want, rtol=1e-5, atol=1e-5)


def test_errors_carry_kiln_message(tmp_path):
    with pytest.raises(kiln.Error, match="nope.onnx"):
        kiln.InferenceSession(str(tmp_path / "nope.onnx"))
    with pytest.raises(kiln.Error, match="not an ONNX|parse|protobuf|cannot"):
        kiln.InferenceSession(b"not a model")
    sess = kiln.InferenceSession(small_model(batch=1))
    with pytest.raises(kiln.Error, match="no input 'bogus'.*x"):
        sess.run(None, {"bogus": np.zeros((1, 3, 8, 8), np.float32)})
    with pytest.raises(kiln.Error, match="missing input"):
        sess.run(None, {})
    with pytest.raises(kiln.Error, match="'x'"):  # kiln's own message: wrong dims
        sess.run(None, {"x": np.zeros((1, 3, 4, 4), np.float32)})
    with pytest.raises(kiln.Error, match="precision"):
        kiln.InferenceSession(small_model(batch=1), precision="fp8")
    with pytest.raises(kiln.Error, match="no_such_plugin.so"):
        kiln.load_plugin_library(str(tmp_path / "no_such_plugin.so"))


def test_builder_engine_serialize_round_trip_and_profile(caplog):
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)
    with caplog.at_level("INFO", logger="kiln"):
        engine = kiln.Builder(device="cpu", precision="fp32", progress=False).build(small_model(batch=1))
    assert any("[build]" in r.getMessage() for r in caplog.records), "the build log reaches logging"
    data = engine.serialize()
    assert isinstance(data, bytes) and len(data) > 100
    again = kiln.Engine.deserialize(data)
    assert [i.name for i in again.get_inputs()] == ["x"] and again.device == "cpu"
    want = ort_run(small_model(batch=1), {"x": x})
    for e in (engine, again):
        got = e.run({"x": x})
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    ctx = again.create_context()
    prof = ctx.profile({"x": x}, runs=2)
    assert prof and all(isinstance(k, str) and v >= 0 for k, v in prof.items())
    assert [layer["name"] for layer in again.layers()] == list(prof)
    assert set(ctx.last_run_times()) == {"h2d_ms", "compute_ms", "d2h_ms"}
    assert set(engine.memory()) == {"activations", "weights", "workspace"}
    with pytest.raises(kiln.Error):
        kiln.Engine.deserialize(b"garbage")


def test_plugin_library_bundled():
    plugin = pathlib.Path(kiln.__file__).parent / "plugins" / "libscaled_tanh_plugin.so"
    if not plugin.exists():
        pytest.skip("the example plugin is not bundled in this install")
    kiln.load_plugin_library(str(plugin))
    assert "ScaledTanh" in kiln.plugin_names()


def test_python_m_kiln_help():
    r = subprocess.run([sys.executable, "-m", "kiln", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "surgeon" in r.stdout and "exec" in r.stdout


def shape_chain_model():
    """x [2, 3, 4] -> Reshape(x, Concat(Gather(Shape(x), 0), [-1])) -> Relu, plus a constant-only Add."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("Add", ["c1", "c2"], ["c12"]),
        helper.make_node("Add", ["r", "c12"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "axes0"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
             numpy_helper.from_array(np.full(12, 0.5, np.float32), "c1"),
             numpy_helper.from_array(np.full(12, -1.0, np.float32), "c2")]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 12])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=IR)


def _folded(model, **kwargs):
    """fold_onnx's result as {name: numpy array}."""
    out = {}
    for name, (type_name, dims, data) in kiln._kiln.fold_onnx(model.SerializeToString(), **kwargs).items():
        dtype = {"tensor(float)": np.float32, "tensor(int64)": np.int64}[type_name]
        out[name] = np.frombuffer(data, dtype).reshape(dims)
    return out


def test_fold_onnx_shape_chains():
    model = shape_chain_model()
    folded = _folded(model)
    np.testing.assert_array_equal(folded["shape"], [2, -1])  # Shape -> Gather -> Unsqueeze -> Concat
    np.testing.assert_array_equal(folded["c12"], np.full(12, -0.5, np.float32))
    assert not {"x", "r", "a", "y"} & set(folded), "tensors that depend on x's values cannot fold"
    assert not {"zero", "axes0", "minus1", "c1", "c2"} & set(folded), "initializers given are not returned"
    # fold_shapes=False: only what constants alone compute (c1 + c2) is folded; the Shape chain stays.
    partial = _folded(model, fold_shapes=False)
    assert "c12" in partial and "shape" not in partial, sorted(partial)
    # size_threshold: c1 + c2 (48 bytes) is over 16 bytes and stays; the 16-byte shape folds.
    small = _folded(model, size_threshold=16)
    assert "c12" not in small and "shape" in small, sorted(small)


def test_fold_onnx_errors():
    bad = helper.make_model(helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"])], "g",
                                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]),
                            opset_imports=[helper.make_opsetid("", 13)], ir_version=IR)
    assert kiln._kiln.fold_onnx(bad.SerializeToString(), error_ok=True) == {}
    with pytest.raises(kiln.Error, match="NoSuchOp"):
        kiln._kiln.fold_onnx(bad.SerializeToString(), error_ok=False)


def suite_models():
    sys.path.insert(0, str(ROOT / "tests" / "models"))
    try:
        import suite
    finally:
        sys.path.pop(0)
    return [m for m in suite.MODELS if not m["slow"] and not m["shapes"]][:2]


@pytest.mark.parametrize("entry", suite_models(), ids=lambda m: m["name"])
def test_session_suite_model_matches_onnxruntime(entry):
    path = MODELS / entry["path"]
    if not path.exists():
        pytest.skip(f"{path} is absent (scripts/fetch_models.sh)")
    sess = kiln.InferenceSession(str(path))
    want_sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(4)
    feed = {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in sess.get_inputs()}
    for got, want in zip(sess.run(None, feed), want_sess.run(None, feed)):
        rel = np.linalg.norm(got.astype(np.float64) - want) / max(np.linalg.norm(want), 1e-30)
        assert rel < entry["tol"], f"{entry['name']}: relative L2 {rel:.2e}"


def test_import_warnings_go_to_logging(caplog, capfd):
    # An output listed twice is what ONNX Runtime accepts with a warning: kiln's one-line warning reaches the
    # logger "kiln", not stderr.
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])], [y, y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=IR)
    with caplog.at_level("WARNING", logger="kiln"):
        sess = kiln.InferenceSession(model.SerializeToString())
    warnings = [r.getMessage() for r in caplog.records if r.name == "kiln"]
    assert any("'y'" in w for w in warnings), warnings
    assert "warning" not in capfd.readouterr().err
    x = np.array([-1.0, 2.0], np.float32)
    np.testing.assert_array_equal(sess.run(["y"], {"x": x})[0], np.maximum(x, 0))


def test_providers_pick_the_device_as_onnx_runtime_scripts_pass_them():
    model = small_model(batch=2).SerializeToString()
    sess = kiln.InferenceSession(model, providers=[("CPUExecutionProvider", {})])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    x = np.random.default_rng(5).standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], ort_run(small_model(batch=2), {"x": x})[0],
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(kiln.Error, match="not both"):
        kiln.InferenceSession(model, device="cpu", providers=["CPUExecutionProvider"])
    with pytest.raises(kiln.Error, match="OpenVINOExecutionProvider"):
        kiln.InferenceSession(model, providers=["OpenVINOExecutionProvider"])
