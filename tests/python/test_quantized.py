"""Real quantized models through `kiln exec`, against ONNX Runtime: a small float Conv+MatMul model (seeded
random weights) quantized by onnxruntime.quantization three ways:
  - quantize_dynamic             -> DynamicQuantizeLinear, ConvInteger, MatMulInteger (+ Cast/Mul/Add)
  - quantize_static, QDQ format  -> QuantizeLinear / DequantizeLinear (per-channel int8 weights, int32 bias)
  - quantize_static, QOperator   -> QLinearConv (per-channel int8 weights, int32 bias), QLinearMatMul
ORT runs with graph optimizations off, so it executes the quantized graph as written (its optimizer would fuse
QDQ pairs into integer kernels that round differently). Integer tensors (the quantized activations, the int32
ConvInteger/MatMulInteger sums, DynamicQuantizeLinear's scales) must match exactly. Float outputs: see the tolerance notes per test.
onnxruntime.quantization needs onnx >= 1.13 (onnx.reference) and ml_dtypes; without them this module skips.
"""
import os
import subprocess

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
quantization = pytest.importorskip("onnxruntime.quantization",
                                   reason="onnxruntime.quantization needs onnx >= 1.13 and ml_dtypes")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILN = os.environ.get("KILN_BIN", os.path.join(ROOT, "build", "kiln"))
if not os.path.exists(KILN):
    pytest.skip(f"{KILN} not built", allow_module_level=True)

INPUT_SHAPE = (1, 3, 12, 12)


def float_model(path):
    """x [1,3,12,12] -> Conv 3x3 stride 2 (8 channels) -> Relu -> flatten -> MatMul [288,10] -> Add."""
    rng = np.random.default_rng(1234)

    def init(name, shape, scale):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [init("w1", [8, 3, 3, 3], 0.3), init("b1", [8], 0.1), init("w2", [8 * 6 * 6, 10], 0.1),
             init("b2", [10], 0.1), numpy_helper.from_array(np.array([1, -1], np.int64), "flat_shape")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["conv"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["conv"], ["relu"]),
             helper.make_node("Reshape", ["relu", "flat_shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w2"], ["mm"]),
             helper.make_node("Add", ["mm", "b2"], ["y"])]
    graph = helper.make_graph(nodes, "convmatmul", [helper.make_tensor_value_info("x", TensorProto.FLOAT, INPUT_SHAPE)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


class RandomCalibration(quantization.CalibrationDataReader):
    def __init__(self):
        rng = np.random.default_rng(99)
        self.batches = iter([{"x": rng.standard_normal(INPUT_SHAPE).astype(np.float32)} for _ in range(16)])

    def get_next(self):
        return next(self.batches, None)


def expose(path, op_types):
    """Adds the outputs of every node of `op_types` as graph outputs (dtype and shape left for inference)."""
    model = onnx.load(str(path))
    names = [o for n in model.graph.node if n.op_type in op_types for o in n.output]
    model.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in names)
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    del model.graph.output[1:]
    model.graph.output.extend(types[name] for name in names)
    onnx.save(model, str(path))
    return names


def ops_of(path):
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def run_kiln(model, x, tmp_path):
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "kiln_out"
    proc = subprocess.run([KILN, "exec", f"--onnx={model}", f"--loadInputs=x:{tmp_path / 'x.npy'}",
                           f"--saveOutputs={out}", "--iterations=1", "--duration=0", "--warmUp=0"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"kiln exec failed:\n{proc.stdout}\n{proc.stderr}"
    return lambda name: np.load(out / f"{name.replace('/', '_').replace(':', '_')}.npy")


def run_ort(model, x):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": x})))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("quantized")
    float_model(d / "float.onnx")
    quantization.quantize_dynamic(str(d / "float.onnx"), str(d / "dynamic.onnx"), op_types_to_quantize=["Conv", "MatMul"],
                                  weight_type=quantization.QuantType.QUInt8)
    # QOperator format turns an Add into com.microsoft.QLinearAdd (not ONNX): there only Conv and MatMul.
    for fmt, op_types in (("QDQ", None), ("QOperator", ["Conv", "MatMul"])):
        quantization.quantize_static(str(d / "float.onnx"), str(d / f"{fmt}.onnx"), RandomCalibration(),
                                     quant_format=getattr(quantization.QuantFormat, fmt), per_channel=True,
                                     op_types_to_quantize=op_types,
                                     activation_type=quantization.QuantType.QUInt8,
                                     weight_type=quantization.QuantType.QInt8)
    return d


@pytest.fixture(params=[0, 1, 2])
def x(request):
    return np.random.default_rng(request.param).standard_normal(INPUT_SHAPE).astype(np.float32)


def compare(model, x, tmp_path, exposed):
    got, want = run_kiln(model, x, tmp_path), run_ort(model, x)
    for name in exposed:  # quantized tensors, integer sums, DynamicQuantizeLinear's float32 scales: exact
        assert got(name).dtype == want[name].dtype and np.array_equal(got(name), want[name]), name
    return got("y"), want["y"]


def test_dynamic_quantization(models, x, tmp_path):
    model = models / "dynamic.onnx"
    assert {"DynamicQuantizeLinear", "ConvInteger", "MatMulInteger"} <= ops_of(model)
    exposed = expose(model, {"DynamicQuantizeLinear", "ConvInteger", "MatMulInteger"})
    got, want = compare(model, x, tmp_path, exposed)
    # Every integer step matched exactly; what remains is float Cast/Mul/Add, one rounding each.
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def quant_step(model, tensor):
    """The scale of the QuantizeLinear writing `tensor`'s quantized form (the final output's resolution)."""
    m = onnx.load(str(model))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    return float(inits[tensor + "_scale"])


def test_static_qdq(models, x, tmp_path):
    model = models / "QDQ.onnx"
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "MatMul"} <= ops_of(model)
    exposed = expose(model, {"QuantizeLinear"})
    got, want = compare(model, x, tmp_path, exposed)
    # The quantized activations matched exactly (kiln's float Conv/MatMul on dequantized values rounded to
    # the same int8 as ORT's); the output is DequantizeLinear of them: one float multiply.
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert quant_step(model, "y") > 0


def test_static_qoperator(models, x, tmp_path):
    model = models / "QOperator.onnx"
    assert {"QLinearConv", "QLinearMatMul", "QuantizeLinear", "DequantizeLinear"} <= ops_of(model)
    exposed = expose(model, {"QuantizeLinear", "QLinearConv", "QLinearMatMul"})
    got, want = compare(model, x, tmp_path, exposed)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_quantized_models_approximate_the_float_model(models, x, tmp_path):
    """The quantized graphs did real work: each stays within a few output quantization steps of the float model."""
    (tmp_path / "f").mkdir()
    ref = run_kiln(models / "float.onnx", x, tmp_path / "f")("y")
    for name in ("dynamic", "QDQ", "QOperator"):
        (tmp_path / name).mkdir()
        y = run_kiln(models / f"{name}.onnx", x, tmp_path / name)("y")
        err = np.abs(y - ref).max()
        assert err < 0.1 * np.abs(ref).max(), (name, err, np.abs(ref).max())
