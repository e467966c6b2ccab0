"""GridSample, RoiAlign, DFT, STFT, MaxUnpool and NonMaxSuppression through `kiln exec` against ONNX Runtime on random inputs, over every
attribute combination the node tests leave out (grids reaching well outside [-1, 1] so that every padding
mode matters, RoiAlign max mode and opset 10, DFT onesided/inverse/axes/dft_length, STFT windows and two-sided
output, NonMaxSuppression box formats, thresholds and ties)."""
import itertools
import os
import subprocess

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILN = os.environ.get("KILN_BIN", os.path.join(ROOT, "build", "kiln"))
if not os.path.exists(KILN):
    pytest.skip(f"{KILN} not built", allow_module_level=True)


def run_both(tmp_path, nodes, feeds, consts, out_shape, opset, out_type=TensorProto.FLOAT):
    """A model of `nodes` (one or a list) writing 'y': `feeds` are graph inputs, `consts` initializers; returns
    (kiln, ort) outputs."""
    inputs = [helper.make_tensor_value_info(k, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[v.dtype], v.shape) for k, v in feeds.items()]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    graph = helper.make_graph(nodes if isinstance(nodes, list) else [nodes], "g", inputs, [helper.make_tensor_value_info("y", out_type, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    args = []
    for k, v in feeds.items():
        np.save(tmp_path / f"{k}.npy", v)
        args.append(f"{k}:{tmp_path / (k + '.npy')}")
    load = ["--loadInputs=" + ",".join(args)] if args else []
    proc = subprocess.run([KILN, "exec", f"--onnx={path}", *load, f"--saveOutputs={tmp_path / 'out'}",
                           "--iterations=1", "--duration=0", "--warmUp=0"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"kiln exec failed:\n{proc.stdout}\n{proc.stderr}"
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    return np.load(tmp_path / "out" / "y.npy"), want


@pytest.mark.parametrize("mode,padding,align", itertools.product(["bilinear", "nearest", "bicubic"],
                                                                 ["zeros", "border", "reflection"], [0, 1]))
def test_grid_sample(tmp_path, mode, padding, align):
    rng = np.random.default_rng(hash((mode, padding, align)) % 2**32)
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    # Coordinates up to ±2.6: outside the image by more than its size, so reflection folds more than once.
    grid = rng.uniform(-2.6, 2.6, (2, 4, 6, 2)).astype(np.float32)
    node = helper.make_node("GridSample", ["x", "grid"], ["y"], mode=mode, padding_mode=padding, align_corners=align)
    got, want = run_both(tmp_path, node, {"x": x, "grid": grid}, {}, [2, 3, 4, 6], 16)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode,ctm,opset", [("avg", "half_pixel", 16), ("max", "half_pixel", 16),
                                            ("avg", "output_half_pixel", 16), ("max", "output_half_pixel", 16),
                                            ("avg", None, 10), ("max", None, 10)])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align(tmp_path, mode, ctm, opset, sampling_ratio):
    rng = np.random.default_rng(7 + sampling_ratio)
    x = rng.standard_normal((2, 3, 11, 9)).astype(np.float32)
    # Boxes inside, partly outside, and smaller than one pixel; spatial_scale 0.5 maps them onto x.
    rois = np.array([[1, 2, 12, 16], [-4, -3, 6, 5], [10, 12, 10.6, 12.4], [0, 0, 17.5, 21.5], [3, 1, 30, 8]],
                    np.float32)
    idx = np.array([0, 1, 1, 0, 1], np.int64)
    attrs = dict(mode=mode, output_height=3, output_width=4, sampling_ratio=sampling_ratio, spatial_scale=0.5)
    if ctm:
        attrs["coordinate_transformation_mode"] = ctm
    node = helper.make_node("RoiAlign", ["x", "rois", "idx"], ["y"], **attrs)
    got, want = run_both(tmp_path, node, {"x": x, "rois": rois, "idx": idx}, {}, [5, 3, 3, 4], opset)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,axis,length,onesided,inverse", [
    ((2, 9, 3, 1), 1, None, 0, 0), ((2, 9, 3, 2), 2, None, 0, 0), ((2, 9, 3, 1), 1, None, 1, 0),
    ((2, 8, 3, 2), 1, None, 0, 1), ((3, 7, 1), 1, 12, 0, 0), ((3, 7, 2), 1, 5, 0, 1), ((3, 7, 1), -2, 10, 1, 0)])
def test_dft(tmp_path, shape, axis, length, onesided, inverse):
    x = np.random.default_rng(len(shape) * 10 + axis).standard_normal(shape).astype(np.float32)
    consts, inputs = {}, ["x"]
    if length is not None:
        consts["n"] = np.array(length, np.int64)
        inputs.append("n")
    node = helper.make_node("DFT", inputs, ["y"], axis=axis, onesided=onesided, inverse=inverse)
    got, want = run_both(tmp_path, node, {"x": x}, consts, None, 17)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("window,frame_length,onesided", [(True, None, 1), (False, 16, 1), (True, 16, 0), (False, 10, 0)])
def test_stft(tmp_path, window, frame_length, onesided):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 100, 1)).astype(np.float32)
    consts, inputs = {"step": np.array(6, np.int64)}, ["x", "step", "", ""]
    if window:
        consts["window"] = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(16) / 16)).astype(np.float32)  # Hann
        inputs[2] = "window"
    if frame_length is not None:
        consts["frame_length"] = np.array(frame_length, np.int64)
        inputs[3] = "frame_length"
    node = helper.make_node("STFT", inputs, ["y"], onesided=onesided)
    got, want = run_both(tmp_path, node, {"x": x}, consts, None, 17)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mels,dft,rate,lo,hi", [(8, 16, 8192, 0.0, 4096.0), (20, 512, 16000, 20.0, 7600.0),
                                                 (5, 64, 22050, 300.0, 8000.0)])
def test_mel_weight_matrix(tmp_path, mels, dft, rate, lo, hi):
    consts = {"n": np.array(mels, np.int64), "d": np.array(dft, np.int64), "sr": np.array(rate, np.int64),
              "lo": np.array(lo, np.float32), "hi": np.array(hi, np.float32)}
    got, want = run_both(tmp_path, helper.make_node("MelWeightMatrix", list(consts), ["y"]), {}, consts, None, 17)
    assert got.shape == want.shape == (dft // 2 + 1, mels)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("size,kernel,strides,pads,output_shape", [
    (8, [2, 2], [2, 2], [0, 0, 0, 0], None), (9, [3, 3], [2, 2], [1, 1, 1, 1], None),
    (9, [3, 2], [1, 2], [0, 1, 0, 0], None), (9, [3, 3], [2, 2], [1, 1, 1, 1], [2, 3, 9, 11])])
def test_max_pool_unpool(tmp_path, size, kernel, strides, pads, output_shape):
    """MaxPool's values and indices unpooled again (zeros except at each window's maximum), on shapes that the
    unpooling restores exactly (an output_shape is then the same shape)."""
    x = np.random.default_rng(11).standard_normal((2, 3, size, size + 2)).astype(np.float32)
    attrs = dict(kernel_shape=kernel, strides=strides, pads=pads)
    consts, unpool_in = {}, ["v", "i"]
    if output_shape:
        consts["shape"] = np.array(output_shape, np.int64)
        unpool_in.append("shape")
    nodes = [helper.make_node("MaxPool", ["x"], ["v", "i"], **attrs), helper.make_node("MaxUnpool", unpool_in, ["y"], **attrs)]
    got, want = run_both(tmp_path, nodes, {"x": x}, consts, None, 11)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("center,max_out,iou,score", [(0, 3, 0.5, None), (1, 10, 0.3, 0.2), (0, 100, 0.0, 0.5),
                                                      (1, 1, 1.0, None)])
def test_non_max_suppression(tmp_path, center, max_out, iou, score):
    rng = np.random.default_rng(3 + center)
    xy = rng.uniform(0, 10, (2, 30, 2))
    wh = rng.uniform(0.5, 4, (2, 30, 2))
    # center_point_box 0: [y1, x1, y2, x2] with the corners in either order; 1: [xc, yc, w, h].
    boxes = np.concatenate([xy, xy + wh], axis=2)[..., [1, 0, 3, 2]] if center == 0 else np.concatenate([xy, wh], axis=2)
    if center == 0:
        boxes[:, ::3] = boxes[:, ::3][..., [2, 3, 0, 1]]  # flipped corners
    scores = rng.uniform(0, 1, (2, 3, 30)).astype(np.float32)
    scores[:, :, 5] = scores[:, :, 6]  # a tie: the lower index goes first
    consts = {"max_out": np.array([max_out], np.int64), "iou": np.array([iou], np.float32)}
    inputs = ["boxes", "scores", "max_out", "iou"]
    if score is not None:
        consts["score"] = np.array([score], np.float32)
        inputs.append("score")
    node = helper.make_node("NonMaxSuppression", inputs, ["y"], center_point_box=center)
    # The output's length depends on the values, which the engine cannot run yet (data-dependent shapes): with
    # every input an initializer, kiln's constant folding runs the reference kernel instead.
    consts.update(boxes=boxes.astype(np.float32), scores=scores)
    got, want = run_both(tmp_path, node, {}, consts, None, 11, out_type=TensorProto.INT64)
    assert got.shape[0] > 0
    np.testing.assert_array_equal(got, want)
