"""`kiln exec` end to end on tiny ONNX models built here: outputs against ONNX Runtime, engine save/load,
the JSON exports, the performance summary, and one-line errors for bad inputs and files.
"""
import json
import os
import re
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

FAST = ["--iterations=3", "--duration=0", "--warmUp=0"]


def kiln(*args, check=True):
    proc = subprocess.run([KILN, "exec", *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, f"kiln exec {args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def const(name, values, dtype=np.int64):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(values, dtype=dtype), name))


def save_model(path, nodes, inputs, outputs, opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="test_exec")
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """x, y: float [1,4,4,6]; idx: int64 [2]. Relu/Add/Transpose, a Shape→Slice→Concat→Reshape chain, Pad,
    Slice, Gather, DepthToSpace; one output name needs sanitizing for the filesystem."""
    d = tmp_path_factory.mktemp("exec_model")
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Add", ["r", "y"], ["a"], name="add"),
        helper.make_node("Transpose", ["a"], ["t"], perm=[0, 2, 3, 1], name="transpose"),
        helper.make_node("Shape", ["x"], ["shp"], name="shape"),
        const("zero", [0]), const("one", [1]), const("minus1", [-1]),
        helper.make_node("Slice", ["shp", "zero", "one"], ["batch"], name="slice_shape"),
        helper.make_node("Concat", ["batch", "minus1"], ["new_shape"], axis=0, name="concat_shape"),
        helper.make_node("Reshape", ["t", "new_shape"], ["flat"], name="reshape"),
        const("pads", [0, 0, 1, 2, 0, 0, 1, 0]),
        helper.make_node("Pad", ["a", "pads"], ["padded"], mode="constant", name="pad"),
        const("s0", [1, 0]), const("s1", [3, 6]), const("sax", [2, 3]), const("sst", [1, 2]),
        helper.make_node("Slice", ["padded", "s0", "s1", "sax", "sst"], ["sliced"], name="slice"),
        helper.make_node("Gather", ["x", "idx"], ["gathered"], axis=1, name="gather"),
        helper.make_node("DepthToSpace", ["gathered"], ["d2s"], blocksize=1, mode="DCR", name="d2s_identity"),
        helper.make_node("Concat", ["d2s", "x"], ["out/depth:0"], axis=1, name="concat"),
    ]
    inputs = [helper.make_tensor_value_info("x", f, [1, 4, 4, 6]), helper.make_tensor_value_info("y", f, [1, 4, 4, 6]),
              helper.make_tensor_value_info("idx", TensorProto.INT64, [2])]
    outputs = [helper.make_tensor_value_info(n, f, shape)
               for n, shape in [("flat", [1, 96]), ("sliced", [1, 4, 2, 3]), ("out/depth:0", [1, 6, 4, 6])]]
    path = save_model(d / "tiny.onnx", nodes, inputs, outputs)
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((1, 4, 4, 6)).astype(np.float32),
             "y": rng.standard_normal((1, 4, 4, 6)).astype(np.float32), "idx": np.array([3, -4], dtype=np.int64)}
    files = {}
    for name, value in feeds.items():
        files[name] = str(d / f"{name}.npy")
        np.save(files[name], value)
    ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
    return {"path": path, "dir": d, "feeds": feeds, "files": files, "ref": dict(zip(["flat", "sliced", "out/depth:0"], ref))}


def load_inputs(files):
    return "--loadInputs=" + ",".join(f"{k}:{v}" for k, v in files.items())


def saved(out_dir):
    return {name: np.load(out_dir / f"{stem}.npy")
            for name, stem in [("flat", "flat"), ("sliced", "sliced"), ("out/depth:0", "out_depth_0")]}


def assert_close(got, want):
    for name, ref in want.items():
        assert got[name].dtype == ref.dtype and got[name].shape == ref.shape, name
        np.testing.assert_allclose(got[name], ref, rtol=1e-5, atol=1e-6, err_msg=name)


def test_outputs_match_onnxruntime(model, tmp_path):
    proc = kiln(f"--onnx={model['path']}", load_inputs(model["files"]), f"--saveOutputs={tmp_path / 'out'}", *FAST)
    assert_close(saved(tmp_path / "out"), model["ref"])
    assert "[build]" in proc.stdout and "Activation memory:" in proc.stdout
    assert re.search(r"^Kernels \(\d+ layers\):( \S+=\d+)+$", proc.stdout, re.M)


def test_tensor_proto_inputs(model, tmp_path):
    files = {}
    for name, value in model["feeds"].items():
        files[name] = str(tmp_path / f"{name}.pb")
        with open(files[name], "wb") as f:
            f.write(numpy_helper.from_array(value, name).SerializeToString())
    kiln(f"--onnx={model['path']}", load_inputs(files), f"--saveOutputs={tmp_path / 'out'}", *FAST)
    assert_close(saved(tmp_path / "out"), model["ref"])


def test_engine_round_trip(model, tmp_path):
    engine = tmp_path / "tiny.kiln"
    kiln(f"--onnx={model['path']}", load_inputs(model["files"]), f"--saveEngine={engine}",
         f"--saveOutputs={tmp_path / 'built'}", *FAST)
    proc = kiln(f"--loadEngine={engine}", load_inputs(model["files"]), f"--saveOutputs={tmp_path / 'loaded'}", *FAST)
    assert "[build]" not in proc.stdout
    built, loaded = saved(tmp_path / "built"), saved(tmp_path / "loaded")
    for name in built:
        assert np.array_equal(built[name], loaded[name]), name


def test_random_inputs_are_reproducible(model, tmp_path):
    for run in ("a", "b"):
        kiln(f"--onnx={model['path']}", f"--saveOutputs={tmp_path / run}", *FAST)
    a, b = saved(tmp_path / "a"), saved(tmp_path / "b")
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def test_exports_and_profile(model, tmp_path):
    times, profile = tmp_path / "times.json", tmp_path / "profile.json"
    proc = kiln(f"--onnx={model['path']}", "--iterations=5", "--duration=0", "--warmUp=0", "--dumpProfile",
                f"--exportTimes={times}", f"--exportProfile={profile}")
    t = json.loads(times.read_text())
    assert len(t) == 5
    for rec in t:
        assert rec["endMs"] >= rec["startMs"] and rec["latencyMs"] == pytest.approx(rec["endMs"] - rec["startMs"])
    layers = int(re.search(r"Kernels \((\d+) layers\)", proc.stdout).group(1))
    p = json.loads(profile.read_text())
    assert len(p) == layers
    assert {"name", "op", "kernel", "timeMs", "averageMs", "percentage"} <= set(p[0])
    assert sum(r["percentage"] for r in p) == pytest.approx(100, abs=0.01)
    assert "=== Profile (5 iterations) ===" in proc.stdout
    for rec in p:
        assert rec["name"] in proc.stdout


def test_performance_summary(model):
    out = kiln(f"--onnx={model['path']}", *FAST).stdout
    assert "=== Performance summary ===" in out
    assert re.search(r"^Throughput: [\d.e+]+ qps$", out, re.M)
    stats = r": min = [\d.e+-]+ ms, max = [\d.e+-]+ ms, mean = [\d.e+-]+ ms, median = [\d.e+-]+ ms, " \
            r"percentile\(90%\) = [\d.e+-]+ ms, percentile\(95%\) = [\d.e+-]+ ms, percentile\(99%\) = [\d.e+-]+ ms"
    for title in ("Latency", "Enqueue Time", "Compute Time"):
        assert re.search("^" + title + stats, out, re.M), title
    for line in ("H2D Latency: not applicable on cpu", "D2H Latency: not applicable on cpu"):
        assert line in out
    assert re.search(r"^Total Host Walltime: [\d.e+-]+ s$", out, re.M)
    assert re.search(r"^Total Compute Time: [\d.e+-]+ s$", out, re.M)
    assert "Timing trace has 3 queries" in out


def test_duration_is_a_minimum(model, tmp_path):
    times = tmp_path / "times.json"
    kiln(f"--onnx={model['path']}", "--iterations=1", "--duration=0.3", "--warmUp=0", f"--exportTimes={times}")
    t = json.loads(times.read_text())
    assert t[-1]["endMs"] >= 300 and len(t) > 1


def test_shapes_for_symbolic_inputs(tmp_path):
    f = TensorProto.FLOAT
    path = save_model(tmp_path / "dyn.onnx", [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "x"], ["y"])],
                      [helper.make_tensor_value_info("x", f, ["N", 3, "H", "W"])], [helper.make_tensor_value_info("y", f, ["N", 3, "H", "W"])])
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 7)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = kiln(f"--onnx={path}", "--shapes=x:2x3x5x7", f"--loadInputs=x:{tmp_path / 'x.npy'}",
                f"--saveOutputs={tmp_path / 'out'}", "--verbose", *FAST)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "y.npy"), np.maximum(x, 0) + x, rtol=1e-6)
    assert "Input x: float32 2x3x5x7" in proc.stdout
    # --verbose lists every layer (Relu→Add is one fused element-wise chain layer)
    assert re.search(r"^  \S+ \(\S+\) -> \S+", proc.stdout, re.M)


def one_error_line(proc):
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def bad_files(model):
    d = model["dir"]
    files = {"shape": d / "bad_shape.npy", "dtype": d / "bad_dtype.npy", "not_onnx": d / "not_onnx.onnx",
             "engine": d / "corrupt.kiln", "npy": d / "garbage.npy"}
    np.save(files["shape"], np.zeros((1, 4, 4, 5), np.float32))
    np.save(files["dtype"], np.zeros((1, 4, 4, 6), np.float64))
    files["not_onnx"].write_text("this is not a protobuf model\n")
    files["npy"].write_bytes(b"\x93NUMPY\x01\x00garbage")
    good = d / "good.kiln"
    kiln(f"--onnx={model['path']}", f"--saveEngine={good}", *FAST)
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    files["engine"].write_bytes(bytes(data))
    return files


@pytest.mark.parametrize("case", ["shape", "dtype", "unknown_input", "corrupt_engine", "not_onnx", "missing_model",
                                  "missing_input", "bad_npy", "device", "both", "neither", "truncated_engine",
                                  "fp16_and_bf16"])
def test_errors_are_one_line(model, bad_files, case, tmp_path):
    onnx_arg = f"--onnx={model['path']}"
    x = model["files"]["x"]
    args, must_name = {
        "shape": ([onnx_arg, f"--loadInputs=y:{bad_files['shape']}"], ["'y'", "1x4x4x6", "1x4x4x5", str(bad_files["shape"])]),
        "dtype": ([onnx_arg, f"--loadInputs=x:{bad_files['dtype']}"], ["'x'", "float32", "float64"]),
        "unknown_input": ([onnx_arg, f"--loadInputs=nope:{x}"], ["'nope'"]),
        "corrupt_engine": ([f"--loadEngine={bad_files['engine']}"], [str(bad_files["engine"])]),
        "not_onnx": ([f"--onnx={bad_files['not_onnx']}"], [str(bad_files["not_onnx"])]),
        "missing_model": ([f"--onnx={tmp_path / 'missing.onnx'}"], ["missing.onnx"]),
        "missing_input": ([onnx_arg, f"--loadInputs=x:{tmp_path / 'missing.npy'}"], ["missing.npy"]),
        "bad_npy": ([onnx_arg, f"--loadInputs=x:{bad_files['npy']}"], [str(bad_files["npy"])]),
        "device": ([onnx_arg, "--device=tpu"], ["device 'tpu' is not available in this build", "cpu"]),
        "fp16_and_bf16": ([onnx_arg, "--fp16", "--bf16"], ["--fp16 and --bf16"]),
        "both": ([onnx_arg, f"--loadEngine={bad_files['engine']}"], ["exactly one"]),
        "neither": ([], ["exactly one"]),
        "truncated_engine": ([f"--loadEngine={model['files']['x']}"], [model["files"]["x"]]),
    }[case]
    line = one_error_line(kiln(*args, *FAST, check=False))
    for s in must_name:
        assert s in line, line


def test_cuda_without_gpu_is_one_clear_line(model):
    """Where there is no GPU (CI), --device=cuda fails with one line saying why; on a GPU machine it runs."""
    r = kiln(f"--onnx={model['path']}", "--device=cuda", *FAST, check=False)
    if r.returncode == 0:
        assert "GPU Compute Time" in r.stdout
        return
    line = one_error_line(r)
    assert "device 'cuda'" in line, line
