"""Zero-copy torch tensors on a cuda session (issue 13, item 5): a CUDA torch tensor goes in device-to-device
and, with output_device="cuda", the outputs come back as torch CUDA tensors without a host copy. Checked
against ONNX Runtime (CPU) and against the same engine fed host arrays, within 1e-5 relative L2 (strict fp32)
on random non-zero inputs. The GPU tests skip without a CUDA torch and a kiln built with CUDA (scripts/gpu.sh
python runs them on the GPU machine); the argument checks at the end run everywhere."""
import contextlib
import functools

import numpy as np
import pytest

from installed_kiln import IR, kiln, onnx, ort  # noqa: E402  (skips this module without them)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


try:
    import torch
except ImportError:  # the argument checks below still run
    torch = None


@functools.lru_cache(maxsize=None)
def _gpu_reason():
    if torch is None:
        return "torch is not importable"
    if not torch.cuda.is_available():
        return "no CUDA device for torch"
    try:
        kiln.InferenceSession(mlp_model(), device="cuda")
    except kiln.Error as e:
        return f"kiln has no usable cuda device: {e}"
    return ""


def mlp_model(batch=4):
    """x [batch, 16] -> MatMul 16x32 + bias -> Relu -> MatMul 32x8 -> Softmax: y [batch, 8]; h [batch, 32]."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32) * 0.3, "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((32, 8)).astype(np.float32) * 0.3, "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["m"]), helper.make_node("Add", ["m", "b1"], ["a"]),
             helper.make_node("Relu", ["a"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["l"]),
             helper.make_node("Softmax", ["l"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 8]),
                               helper.make_tensor_value_info("h", TensorProto.FLOAT, [batch, 32])], [w1, b1, w2])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=IR)


def conv_model(batch="N"):
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 8, 8])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=IR)


def ort_run(model, feed):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)


def rel_l2(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def random_cuda(*shape, seed=0):
    """Random values in ±[0.1, 2] (never zero) on cuda:0."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    mag = torch.rand(*shape, generator=g) * 1.9 + 0.1
    sign = torch.where(torch.rand(*shape, generator=g) < 0.5, -1.0, 1.0)
    return (mag * sign).to("cuda:0")


@contextlib.contextmanager
def no_host_copies():
    """torch's ways of bringing a tensor to the host fail inside the block (so kiln's Python layer used none)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a host copy of a CUDA tensor was made")
    saved = {name: getattr(torch.Tensor, name) for name in ("cpu", "numpy", "__array__", "tolist")}
    saved_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        if self.is_cuda and (target == "cpu" or (isinstance(target, torch.device) and target.type == "cpu")):
            refuse()
        return saved_to(self, *args, **kwargs)
    try:
        for name in saved:
            setattr(torch.Tensor, name, refuse)
        torch.Tensor.to = to
        yield
    finally:
        for name, f in saved.items():
            setattr(torch.Tensor, name, f)
        torch.Tensor.to = saved_to


def gpu(test):
    """Runs `test` only with a CUDA torch and a kiln that can build for cuda (else a skip saying why)."""
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        if _gpu_reason():
            pytest.skip(_gpu_reason())
        return test(*args, **kwargs)
    return wrapper


@gpu
@pytest.mark.parametrize("make_model,shape", [(mlp_model, (4, 16)), (lambda: conv_model(2), (2, 3, 8, 8))])
def test_cuda_tensor_in_and_out_without_host_copy(make_model, shape):
    model = make_model()
    sess = kiln.InferenceSession(model, device="cuda")
    names = [o.name for o in sess.get_outputs()]
    for seed in range(3):
        x = random_cuda(*shape, seed=seed)
        want = ort_run(model, {"x": x.cpu().numpy()})
        host = sess.run(None, {"x": x.cpu().numpy()})  # the same engine through the host
        with no_host_copies():
            got = sess.run(None, {"x": x}, output_device="cuda")
        for name, g, w, h in zip(names, got, want, host):
            assert isinstance(g, torch.Tensor) and g.is_cuda and g.device.index == 0, name
            assert g.dtype == torch.float32 and tuple(g.shape) == w.shape, name
            g = g.cpu().numpy()
            assert not np.isnan(g).any(), name
            assert rel_l2(g, w) <= 1e-5, (name, rel_l2(g, w))
            np.testing.assert_array_equal(g, h)  # device path == host path, bit for bit
        # the numpy default is unchanged for CUDA inputs
        (y,) = sess.run([names[0]], {"x": x})
        assert isinstance(y, np.ndarray) and rel_l2(y, want[0]) <= 1e-5


@gpu
def test_outputs_are_fresh_tensors_not_views_of_the_engine():
    sess = kiln.InferenceSession(mlp_model(), device="cuda")
    x1, x2 = random_cuda(4, 16, seed=1), random_cuda(4, 16, seed=2)
    (y1,) = sess.run(["y"], {"x": x1}, output_device="cuda")
    keep = y1.clone()
    (y2,) = sess.run(["y"], {"x": x2}, output_device="cuda")
    assert y1.data_ptr() != y2.data_ptr()
    assert torch.equal(y1, keep)  # the second run did not write into the first run's output
    assert rel_l2(y2.cpu().numpy(), ort_run(mlp_model(), {"x": x2.cpu().numpy()})[0]) <= 1e-5


@gpu
def test_low_level_context_poisoned_destination_and_errors():
    engine = kiln.Builder("cuda").build(mlp_model())
    ctx = engine.create_context()._native
    stream = torch.cuda.current_stream(0).cuda_stream
    x = random_cuda(4, 16, seed=3)
    ctx.set_input_device("x", x, stream)
    x.zero_()  # after the copy on the same stream: the engine holds its own copy
    ctx.set_data_transfers(False)
    ctx.run()
    out = torch.full((4, 8), float("nan"), device="cuda:0")  # poisoned
    ctx.copy_output_to_device("y", out, stream)
    want = ort_run(mlp_model(), {"x": random_cuda(4, 16, seed=3).cpu().numpy()})[0]
    assert not torch.isnan(out).any()
    assert rel_l2(out.cpu().numpy(), want) <= 1e-5
    with pytest.raises(kiln.Error, match="'x'"):
        ctx.set_input_device("x", x.double(), stream)
    with pytest.raises(kiln.Error, match="'x'"):
        ctx.set_input_device("x", x[:2].contiguous(), stream)
    with pytest.raises(kiln.Error, match="'y'"):
        ctx.copy_output_to_device("y", torch.empty(4, 7, device="cuda:0"), stream)
    with pytest.raises(kiln.Error, match="'y'"):
        ctx.copy_output_to_device("y", torch.empty(4, 8, dtype=torch.float64, device="cuda:0"), stream)
    with pytest.raises(TypeError):  # nanobind refuses host memory where device memory is wanted
        ctx.set_input_device("x", x.cpu(), stream)
    with pytest.raises(kiln.Error, match="'x'"):
        kiln.InferenceSession(mlp_model(), device="cuda").run(None, {"x": random_cuda(2, 16)}, output_device="cuda")


@gpu
def test_side_stream_and_grad_and_noncontiguous_inputs():
    model = conv_model(2)
    sess = kiln.InferenceSession(model, device="cuda")
    base = random_cuda(2, 3, 8, 8, seed=4)
    want = ort_run(model, {"x": base.cpu().numpy()})[0]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        if hasattr(torch.cuda, "_sleep"):
            torch.cuda._sleep(100_000_000)  # the side stream is busy when the input is written
        x = base * 1.0  # written on the side stream, after the sleep
        (y,) = sess.run(None, {"x": x}, output_device="cuda")
        y2 = y * 2  # consumed on the side stream
    side.synchronize()
    assert rel_l2(y.cpu().numpy(), want) <= 1e-5
    assert rel_l2(y2.cpu().numpy() / 2, want) <= 1e-5
    xg = base.clone().requires_grad_(True)
    (yg,) = sess.run(None, {"x": xg}, output_device="cuda")
    assert rel_l2(yg.cpu().numpy(), want) <= 1e-5
    xt = base.transpose(2, 3).contiguous().transpose(2, 3)  # non-contiguous view of the same values
    (yt,) = sess.run(None, {"x": xt}, output_device="cuda")
    assert rel_l2(yt.cpu().numpy(), want) <= 1e-5


@gpu
def test_dynamic_shapes_profile_and_per_shape_engines():
    model = conv_model("N")
    for sess in (kiln.InferenceSession(model, device="cuda", profile={"x": ((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))}),
                 kiln.InferenceSession(model, device="cuda")):
        for n in (3, 1, 4):
            x = random_cuda(n, 3, 8, 8, seed=n)
            with no_host_copies():
                (y,) = sess.run(None, {"x": x}, output_device="cuda")
            assert tuple(y.shape) == (n, 4, 8, 8) and y.is_cuda
            assert rel_l2(y.cpu().numpy(), ort_run(model, {"x": x.cpu().numpy()})[0]) <= 1e-5


@gpu
def test_engine_context_run_and_cpu_session_with_cuda_tensor():
    engine = kiln.Builder("cuda").build(mlp_model())
    x = random_cuda(4, 16, seed=5)
    want = ort_run(mlp_model(), {"x": x.cpu().numpy()})
    ctx = engine.create_context()
    with no_host_copies():
        got = ctx.run({"x": x}, output_device="cuda")
    for g, w in zip(got, want):
        assert g.is_cuda and rel_l2(g.cpu().numpy(), w) <= 1e-5
    # a CPU session copies a CUDA tensor to the host and gives numpy
    cpu = kiln.InferenceSession(mlp_model())
    (y,) = cpu.run(["y"], {"x": x})
    assert rel_l2(y, want[0]) <= 1e-5


@gpu
def test_fp16_session_takes_fp32_cuda_tensors():
    sess = kiln.InferenceSession(conv_model(2), device="cuda", precision="fp16")
    x = random_cuda(2, 3, 8, 8, seed=6)
    (y,) = sess.run(None, {"x": x}, output_device="cuda")
    assert y.dtype == torch.float32 and rel_l2(y.cpu().numpy(), ort_run(conv_model(2), {"x": x.cpu().numpy()})[0]) <= 5e-3


def test_output_device_argument_checks():
    sess = kiln.InferenceSession(mlp_model())
    x = np.random.default_rng(7).standard_normal((4, 16)).astype(np.float32)
    (y,) = sess.run(["y"], {"x": x}, output_device="cpu")
    assert isinstance(y, np.ndarray)
    with pytest.raises(kiln.Error, match="cuda engine"):
        sess.run(["y"], {"x": x}, output_device="cuda")
    with pytest.raises(kiln.Error, match="output_device"):
        sess.run(["y"], {"x": x}, output_device="tpu")
    ctx = kiln.Builder("cpu").build(mlp_model()).create_context()
    with pytest.raises(kiln.Error, match="cuda engine"):
        ctx.run({"x": x}, output_device="cuda")
    assert isinstance(ctx.run({"x": x}, ["h"], output_device=None)[0], np.ndarray)


def test_cuda_arrays_go_to_the_device_call():
    """The Python layer's dispatch, without a GPU: a CUDA DLPack producer goes to Context.set_input_device on a
    cuda engine (stream 0 for producers other than torch), host arrays to set_input; a CPU engine refuses a
    CUDA producer that cannot copy itself to the host."""
    from kiln import _convert

    class FakeCuda:
        def __dlpack__(self, stream=None):
            raise AssertionError("the recorder never reads it")

        def __dlpack_device__(self):
            return (2, 0)

    class Recorder:
        def __init__(self):
            self.calls = []

        def set_input_device(self, name, array, stream):
            self.calls.append(("device", name, array, stream))

        def set_input(self, name, array):
            self.calls.append(("host", name, array))

    ctx, x, a = Recorder(), FakeCuda(), np.ones(3, np.float32)
    _convert.set_input(ctx, "x", x, device_memory=True)
    _convert.set_input(ctx, "a", a, device_memory=True)
    assert ctx.calls[0] == ("device", "x", x, 0)
    assert ctx.calls[1][:2] == ("host", "a") and ctx.calls[1][2] is a
    with pytest.raises(kiln.Error, match="'x'"):
        _convert.set_input(ctx, "x", x, device_memory=False)
