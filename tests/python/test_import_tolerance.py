"""What real exports bring along (issue 11 item 5), each small model run by kiln and checked against ONNX Runtime:
newer and older forms of the resampling / padding / splitting / reducing ops (opsets 7 to 21), initializers listed
as graph inputs, external data, fp16 weights and inputs. The suite's torch exports cover the same at model scale
(tests/models/suite.py: resample_op9..13, *_initinputs, *_extdata, *_fp16)."""
import os
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models"))
import runner  # noqa: E402

if not os.path.exists(runner.KILN):
    pytest.skip(f"{runner.KILN} not built", allow_module_level=True)

F = TensorProto.FLOAT


def i64(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def f32(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.float32), name)


def model(nodes, x_shape, outputs, opset, inits=(), x_type=F, ir_version=8):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", x_type, x_shape)],
                          [helper.make_tensor_value_info(o, x_type, None) for o in outputs], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version)


def check(m, tmp_path, x_shape, dtype=np.float32, tol=1e-5, save=None):
    path = str(tmp_path / "m.onnx")
    (save or onnx.save)(m, path)
    x = np.random.default_rng(7).uniform(-1, 1, x_shape).astype(dtype)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    want = dict(zip(names, s.run(None, {"x": x})))
    got, _ = runner.run_kiln(path, {"x": x}, names)
    for n in names:
        assert got[n] is not None, f"kiln wrote no output {n}"
        assert got[n].shape == want[n].shape, f"{n}: kiln shape {got[n].shape}, ONNX Runtime {want[n].shape}"
        assert got[n].dtype == want[n].dtype
        assert np.any(want[n]), f"{n}: the reference is all zeros"
        assert runner.rel_l2(got[n], want[n]) <= tol, f"{n}: rel L2 {runner.rel_l2(got[n], want[n]):.3e}"


RESIZES = [
    # (opset, inputs after X, attributes, initializers): every Resize form since 10, and Upsample 7 / 9.
    (7, "Upsample", [], dict(mode="nearest", scales=[1.0, 1.0, 2.0, 3.0]), []),
    (9, "Upsample", ["s"], dict(mode="linear"), [f32("s", [1, 1, 2, 2])]),
    (10, "Resize", ["s"], dict(mode="nearest"), [f32("s", [1, 1, 2, 1.5])]),
    (11, "Resize", ["roi", "s"], dict(mode="linear", coordinate_transformation_mode="align_corners"),
     [f32("roi", []), f32("s", [1, 1, 1.5, 2])]),
    (11, "Resize", ["roi", "s", "sz"], dict(mode="cubic"), [f32("roi", []), f32("s", []), i64("sz", [1, 2, 9, 7])]),
    (13, "Resize", ["", "s"], dict(mode="nearest", nearest_mode="floor",
                                   coordinate_transformation_mode="asymmetric"), [f32("s", [1, 1, 0.5, 2])]),
    (18, "Resize", ["", "s"], dict(mode="linear", axes=[2, 3]), [f32("s", [1.5, 2])]),
    (18, "Resize", ["", "", "sz"], dict(mode="linear", axes=[3, 2], keep_aspect_ratio_policy="not_larger"),
     [i64("sz", [20, 9])]),
    (18, "Resize", ["", "", "sz"], dict(mode="nearest", keep_aspect_ratio_policy="not_smaller", axes=[2, 3]),
     [i64("sz", [9, 20])]),
    (19, "Resize", ["", "s"], dict(mode="linear", coordinate_transformation_mode="half_pixel_symmetric"),
     [f32("s", [1, 1, 1.7, 0.6])]),
    (21, "Resize", ["", "s"], dict(mode="cubic", axes=[-1, -2]), [f32("s", [2, 2])]),
    # Antialiased downscaling (18): the filter widens by 1 / scale; upscaling is plain.
    (18, "Resize", ["", "s"], dict(mode="linear", antialias=1), [f32("s", [1, 1, 0.5, 0.4])]),
    (18, "Resize", ["", "s"], dict(mode="cubic", antialias=1), [f32("s", [1, 1, 0.6, 1.6])]),
    (18, "Resize", ["", "", "sz"], dict(mode="cubic", antialias=1, exclude_outside=1, axes=[2, 3]),
     [i64("sz", [2, 3])]),
    (19, "Resize", ["", "", "sz"], dict(mode="linear", antialias=1, keep_aspect_ratio_policy="not_larger",
                                        coordinate_transformation_mode="half_pixel_symmetric", axes=[2, 3]),
     [i64("sz", [3, 3])]),
]


@pytest.mark.parametrize("case", RESIZES, ids=[f"{c[1]}{c[0]}_{c[3].get('mode')}_{k}" for k, c in enumerate(RESIZES)])
def test_resize_forms(case, tmp_path):
    opset, op, extra, attrs, inits = case
    m = model([helper.make_node(op, ["x"] + extra, ["y"], **attrs)], [1, 2, 6, 5], ["y"], opset, inits)
    check(m, tmp_path, [1, 2, 6, 5])


def test_pad_forms(tmp_path):
    # Pad-2 (attributes), Pad-11 (pads/value inputs), Pad-18 (axes input, negative axes), Pad-19 wrap mode.
    for opset, nodes, inits in [
        (2, [helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 2, 0, 2, 1], value=0.5)], []),
        (11, [helper.make_node("Pad", ["x", "p", "v"], ["y"], mode="reflect")], [i64("p", [0, 1, 2, 0, 2, 1]),
                                                                             f32("v", 0.0)]),
        (18, [helper.make_node("Pad", ["x", "p", "v", "a"], ["y"])], [i64("p", [1, 2, 0, 3]), f32("v", -2.0),
                                                                     i64("a", [-1, 1])]),
        (19, [helper.make_node("Pad", ["x", "p", "", "a"], ["y"], mode="wrap")], [i64("p", [2, 1]),
                                                                                  i64("a", [2])]),
    ]:
        check(model(nodes, [2, 4, 5], ["y"], opset, inits), tmp_path, [2, 4, 5])


def test_split_forms(tmp_path):
    # Split-2 (split attribute), Split-13 (split input), Split-18 (num_outputs, last part smaller).
    for opset, node, inits in [
        (2, helper.make_node("Split", ["x"], ["a", "b", "c"], axis=1, split=[1, 3, 3]), []),
        (13, helper.make_node("Split", ["x", "s"], ["a", "b", "c"], axis=-1), [i64("s", [2, 2, 1])]),
        (18, helper.make_node("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3), []),
    ]:
        check(model([node], [2, 7, 5], ["a", "b", "c"], opset, inits), tmp_path, [2, 7, 5])


def test_reduce_mean_forms(tmp_path):
    # ReduceMean-13 (axes attribute), ReduceMean-18 (axes input; none given and noop_with_empty_axes).
    for opset, node, inits in [
        (13, helper.make_node("ReduceMean", ["x"], ["y"], axes=[1, -1], keepdims=0), []),
        (18, helper.make_node("ReduceMean", ["x", "a"], ["y"], keepdims=1), [i64("a", [0, 2])]),
        (18, helper.make_node("ReduceMean", ["x"], ["y"], keepdims=0), []),
        (18, helper.make_node("ReduceSumSquare", ["x", "a"], ["y"]), [i64("a", [-2])]),
    ]:
        check(model([node], [3, 4, 5], ["y"], opset, inits), tmp_path, [3, 4, 5])


def test_initializers_listed_as_inputs(tmp_path):
    # IR 3 style: every weight also a graph input (ONNX Runtime may let a feed override it; kiln keeps it constant).
    w = f32("w", np.random.default_rng(1).uniform(-1, 1, [5, 3]))
    m = model([helper.make_node("MatMul", ["x", "w"], ["y"])], [2, 5], ["y"], 9, [w], ir_version=3)
    m.graph.input.append(helper.make_tensor_value_info("w", F, [5, 3]))
    check(m, tmp_path, [2, 5])


def test_external_data(tmp_path):
    w = f32("w", np.random.default_rng(2).uniform(-1, 1, [64, 32]))
    m = model([helper.make_node("MatMul", ["x", "w"], ["y"])], [3, 64], ["y"], 13, [w])
    check(m, tmp_path, [3, 64], save=lambda m, p: onnx.save(m, p, save_as_external_data=True, location="w.bin",
                                                            size_threshold=0))
    assert (tmp_path / "w.bin").stat().st_size == 64 * 32 * 4


def test_fp16_weights_and_inputs(tmp_path):
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.uniform(-1, 1, [8, 4, 3, 3]).astype(np.float16), "w")
    g = numpy_helper.from_array(rng.uniform(0.5, 1.5, [4]).astype(np.float16), "g")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("Split", ["t"], ["t0", "t1"], axis=3),
             helper.make_node("Mul", ["t0", "g"], ["y0"]),
             helper.make_node("ReduceMean", ["t1"], ["y1"], axes=[1, 2])]
    m = model(nodes, [1, 4, 6, 6], ["y0", "y1"], 17, [w, g], x_type=TensorProto.FLOAT16)
    check(m, tmp_path, [1, 4, 6, 6], dtype=np.float16, tol=2e-3)


N = helper.make_node
BN = [f32("s", [1, 2, .5]), f32("b", [.1, .2, .3]), f32("m", [.1, -.1, 0]), f32("v", [1, 2, .5])]
FORMS = [
    # (name, opset, nodes, x shape, outputs, initializers): older and newer forms of the ops real exports use.
    ("BatchNormalization7", 7, [N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)],
     [2, 3, 4, 5], ["y"], BN),
    ("BatchNormalization15", 15, [N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], training_mode=0)],
     [2, 3, 4, 5], ["y"], BN),
    ("LayerNormalization_axis-2", 17, [N("LayerNormalization", ["x", "s", "b"], ["y"], axis=-2, epsilon=1e-3)],
     [2, 3, 4, 5], ["y"], [f32("s", np.linspace(.5, 1.5, 20).reshape(4, 5)),
                           f32("b", np.linspace(-1, 1, 20).reshape(4, 5))]),
    ("LayerNormalization_no_bias", 17, [N("LayerNormalization", ["x", "s"], ["y"])], [2, 3, 4, 5], ["y"],
     [f32("s", np.linspace(.5, 1.5, 5))]),
    ("LayerNormalization_broadcast", 17, [N("LayerNormalization", ["x", "s", "b"], ["y"], axis=2)], [2, 3, 4, 5],
     ["y"], [f32("s", np.linspace(.5, 1.5, 5)), f32("b", [0.5])]),
    ("InstanceNormalization6", 6, [N("InstanceNormalization", ["x", "s", "b"], ["y"])], [2, 3, 4, 5], ["y"],
     BN[:2]),
    ("Squeeze1", 1, [N("Squeeze", ["x"], ["y"], axes=[1])], [2, 1, 4, 5], ["y"], []),
    ("Squeeze13", 13, [N("Squeeze", ["x", "a"], ["y"])], [2, 1, 4, 1], ["y"], [i64("a", [-1, 1])]),
    ("Squeeze13_all", 13, [N("Squeeze", ["x"], ["y"])], [2, 1, 4, 1], ["y"], []),
    ("Unsqueeze11", 11, [N("Unsqueeze", ["x"], ["y"], axes=[-1, 0])], [2, 4], ["y"], []),
    ("Unsqueeze13", 13, [N("Unsqueeze", ["x", "a"], ["y"])], [2, 4], ["y"], [i64("a", [3, 1])]),
    ("Slice1", 1, [N("Slice", ["x"], ["y"], starts=[1, -3], ends=[100, -1], axes=[0, 2])], [3, 4, 5], ["y"], []),
    ("Slice10_negative_steps", 10, [N("Slice", ["x", "s", "e", "a", "st"], ["y"])], [3, 4, 5], ["y"],
     [i64("s", [-1, 4]), i64("e", [-100, 0]), i64("a", [1, 2]), i64("st", [-1, -2])]),
    ("Slice13_int64_limits", 13, [N("Slice", ["x", "s", "e"], ["y"])], [3, 4, 5], ["y"],
     [i64("s", [0, 1, -2**63]), i64("e", [2**62, 2**63 - 1, 2**63 - 1])]),
    ("Reshape5", 5, [N("Reshape", ["x", "s"], ["y"])], [3, 4, 5], ["y"], [i64("s", [0, -1])]),
    ("Reshape14", 14, [N("Reshape", ["x", "s"], ["y"], allowzero=0)], [3, 4, 5], ["y"], [i64("s", [-1, 0, 5])]),
    ("Concat4", 4, [N("Concat", ["x", "x"], ["y"], axis=1)], [3, 4, 5], ["y"], []),
    ("Concat11_negative_axis", 11, [N("Concat", ["x", "x", "x"], ["y"], axis=-1)], [3, 4, 5], ["y"], []),
    ("Expand8", 8, [N("Expand", ["x", "s"], ["y"])], [3, 1, 5], ["y"], [i64("s", [2, 1, 4, 1])]),
    ("Pad11_edge", 11, [N("Pad", ["x", "p"], ["y"], mode="edge")], [3, 4], ["y"], [i64("p", [2, 1, 0, 3])]),
    ("Pad13_negative", 13, [N("Pad", ["x", "p"], ["y"])], [3, 4], ["y"], [i64("p", [-1, 1, 0, -2])]),
    ("Split11_equal", 11, [N("Split", ["x"], ["a", "b"], axis=-1)], [3, 4], ["a", "b"], []),
    ("ReduceMean1_all_axes", 1, [N("ReduceMean", ["x"], ["y"])], [3, 4, 5], ["y"], []),
    ("ReduceL2_18", 18, [N("ReduceL2", ["x", "a"], ["y"], keepdims=0)], [3, 4, 5], ["y"], [i64("a", [1])]),
    ("ReduceMax18_noop_empty_axes", 18, [N("ReduceMax", ["x", "a"], ["y"], noop_with_empty_axes=1)], [3, 4, 5],
     ["y"], [i64("a", [])]),
    ("MatMul_1d_right", 13, [N("MatMul", ["x", "w"], ["y"])], [2, 3, 4, 5], ["y"], [f32("w", np.linspace(-1, 1, 5))]),
    ("MatMul_1d_left", 13, [N("MatMul", ["w", "x"], ["y"])], [2, 3, 4, 5], ["y"], [f32("w", np.linspace(-1, 1, 4))]),
    ("MatMul_broadcast", 13, [N("MatMul", ["x", "w"], ["y"])], [2, 3, 4, 5], ["y"],
     [f32("w", np.linspace(-1, 1, 30).reshape(1, 5, 6))]),
    ("Shape15_start", 15, [N("Shape", ["x"], ["s"], start=-2), N("Cast", ["s"], ["y"], to=F)], [3, 4, 5], ["y"], []),
    ("Gemm7", 7, [N("Gemm", ["x", "w", "c"], ["y"], transB=1, alpha=0.5, beta=2.0)], [3, 4], ["y"],
     [f32("w", np.linspace(-1, 1, 20).reshape(5, 4)), f32("c", [1.0])]),
    ("Resize13_tf_crop_and_resize", 13, [N("Resize", ["x", "roi", "", "sz"], ["y"], mode="linear",
                                           coordinate_transformation_mode="tf_crop_and_resize",
                                           extrapolation_value=2.0)], [1, 2, 5, 6], ["y"],
     [f32("roi", [0, 0, 0.2, -0.1, 1, 1, 0.9, 1.3]), i64("sz", [1, 2, 4, 7])]),
    ("Resize11_pytorch_half_pixel", 11, [N("Resize", ["x", "roi", "s"], ["y"], mode="linear",
                                           coordinate_transformation_mode="pytorch_half_pixel")], [1, 2, 5, 1],
     ["y"], [f32("roi", []), f32("s", [1, 1, 2, 1])]),
]


@pytest.mark.parametrize("case", FORMS, ids=[c[0] for c in FORMS])
def test_op_forms(case, tmp_path):
    _, opset, nodes, shape, outputs, inits = case
    check(model(nodes, shape, outputs, opset, inits), tmp_path, shape)


def test_stale_value_info_after_the_batch_dim_was_made_dynamic(tmp_path):
    # A model exported at batch 1 whose input was later made dynamic ("N") with value_info left as it was.
    m = model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])], ["N", 3], ["y"], 13)
    m.graph.value_info.append(helper.make_tensor_value_info("r", F, [1, 3]))
    check(m, tmp_path, [4, 3])
