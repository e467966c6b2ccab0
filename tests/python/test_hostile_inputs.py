"""Inputs a fuzzer or an attacker would try, through the CLI: each must end in one short printable line naming
what is wrong and a non-zero exit — never a crash, an `internal error:`, a huge allocation or silent success.
"""
import json
import os
import struct
import subprocess

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILN = os.environ.get("KILN_BIN", os.path.join(ROOT, "build", "kiln"))
if not os.path.exists(KILN):
    pytest.skip(f"{KILN} not built", allow_module_level=True)

FAST = ["--iterations=1", "--duration=0", "--warmUp=0"]


def run(*args, timeout=120):
    return subprocess.run([KILN, *map(str, args)], capture_output=True, timeout=timeout)


def refused(proc, *needles):
    """The run failed cleanly: exit 1 (a user error, not 2 = internal, not a signal), one printable line."""
    err = proc.stderr.decode("utf-8", errors="strict")  # raw non-UTF-8 bytes would raise here
    assert proc.returncode == 1, f"exit {proc.returncode}\nstdout: {proc.stdout[-2000:]!r}\nstderr: {err[-2000:]}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("kiln: error: "), err
    assert "internal error" not in err and "json.exception" not in err
    assert len(lines[0]) < 1200, f"{len(lines[0])} bytes"
    assert all(c == "\t" or 0x20 <= ord(c) for c in lines[0]), repr(lines[0])
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def save(path, nodes, inputs, outputs, initializers=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))
    return str(path)


def relu_model(path, dims):
    return save(path, [helper.make_node("Relu", ["x"], ["y"], name="relu")],
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return relu_model(tmp_path_factory.mktemp("hostile") / "relu.onnx", [2, 3])


def test_constant_of_shape_whose_bytes_wrap(tmp_path):
    # [2^31, 2^31] float: the byte count wraps to 0 without checks, and memcpy wrote past a 1-byte buffer.
    shape = numpy_helper.from_array(np.array([2**31, 2**31], dtype=np.int64), "shape")
    m = save(tmp_path / "cos.onnx", [helper.make_node("ConstantOfShape", ["shape"], ["y"], name="fill")], [],
             [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape])
    refused(run("inspect", m), "cos.onnx", "'fill'", "'y'", "overflows")
    refused(run("inspect", m, "--fold"), "overflows")
    refused(run("exec", f"--onnx={m}", *FAST), "overflows")


def test_input_dim_int64_max(tmp_path):
    m = relu_model(tmp_path / "big.onnx", [2**63 - 1])
    refused(run("exec", f"--onnx={m}", *FAST), "'x'", "overflows")


def test_input_dims_whose_product_wraps_to_zero(tmp_path):
    # 2^32 x 2^32 = 2^64 = 0 mod 2^64: it "ran" in microseconds before.
    m = relu_model(tmp_path / "wrap.onnx", [2**32, 2**32])
    refused(run("exec", f"--onnx={m}", *FAST), "overflows")


def test_threads_range(small):
    refused(run("exec", f"--onnx={small}", "--threads=1000000", *FAST), "--threads")
    refused(run("exec", f"--onnx={small}", "--threads=-1", *FAST), "--threads")


def test_shapes_and_input_flags(tmp_path):
    m = relu_model(tmp_path / "dyn.onnx", ["N", 3])
    refused(run("exec", f"--onnx={m}", "--shapes=x:1x3x", *FAST), "empty dimension")
    refused(run("exec", f"--onnx={m}", "--shapes=x:x3", *FAST), "empty dimension")
    refused(run("exec", f"--onnx={m}", "--shapes=x:2x3,x:4x3", *FAST), "given twice")
    refused(run("exec", f"--onnx={m}", "--shapes=x:4294967296x4294967296x3", *FAST), "overflows")
    x = tmp_path / "x.npy"
    np.save(x, np.ones((2, 3), np.float32))
    refused(run("exec", f"--onnx={m}", "--shapes=x:2x3", f"--loadInputs=x:{x},x:{x}", *FAST), "given twice")


def test_npy_claiming_a_billion_floats(small, tmp_path):
    # 128 bytes that claim 4 GB: refused from the header and the file length, before any allocation.
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }"
    header += " " * (117 - len(header)) + "\n"
    f = tmp_path / "huge.npy"
    f.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    line = refused(run("exec", f"--onnx={small}", f"--loadInputs=x:{f}", *FAST, timeout=20), "huge.npy")
    assert "truncated" in line


def test_max_memory(tmp_path):
    m = relu_model(tmp_path / "mid.onnx", [1024, 1024])  # 4 MiB per activation
    refused(run("exec", f"--onnx={m}", "--maxMemory=1M", *FAST), "memory limit", "--maxMemory")
    refused(run("exec", f"--onnx={m}", "--maxMemory=lots", *FAST), "--maxMemory")
    ok = run("exec", f"--onnx={m}", "--maxMemory=64MiB", *FAST)
    assert ok.returncode == 0, ok.stderr


def engine_with_meta(tmp_path, small, edit):
    """Builds an engine, rewrites its JSON metadata with `edit`, and fixes up the lengths and checksum so only
    the field under test is wrong."""
    path = tmp_path / "e.kiln"
    assert run("exec", f"--onnx={small}", f"--saveEngine={path}", *FAST).returncode == 0
    b = path.read_bytes()
    meta_len, model_len = struct.unpack_from("<QQ", b, 16)
    meta = json.loads(b[40:40 + meta_len])
    model = b[40 + meta_len:]
    edit(meta)
    meta_bytes = json.dumps(meta).encode()
    h = 1469598103934665603
    for c in meta_bytes + model:
        h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    path.write_bytes(b[:16] + struct.pack("<QQQ", len(meta_bytes), len(model), h) + meta_bytes + model)
    return path


@pytest.mark.parametrize("field,value,needle", [
    ("threads", 1000000, "out of range"),
    ("threads", -3, "out of range"),
    ("threads", "many", "not an integer"),
    ("precision", "int4", "int4"),
    ("device", 5, "not a string"),
    ("tf32", "yes", "not true or false"),
    ("layers", {"a": 1}, "not a list"),
])
def test_engine_file_fields(tmp_path, small, field, value, needle):
    e = engine_with_meta(tmp_path, small, lambda m: m.__setitem__(field, value))
    refused(run("exec", f"--loadEngine={e}", *FAST), "e.kiln", field, needle)


def test_engine_file_layer_fields(tmp_path, small):
    e = engine_with_meta(tmp_path, small, lambda m: m["layers"][0].__setitem__("kernel", ["x"]))
    refused(run("exec", f"--loadEngine={e}", *FAST), "kernel", "not a string")
    # A 5 MB kernel name: the message quotes at most a couple of hundred bytes of it.
    e = engine_with_meta(tmp_path, small, lambda m: m["layers"][0].__setitem__("kernel", "k" * (5 << 20)))
    line = refused(run("exec", f"--loadEngine={e}", *FAST), "more bytes")
    assert len(line) < 600


def test_non_utf8_names_are_escaped(tmp_path):
    # An unknown op on a node whose name holds raw bytes (ESC, 0xff): the terminal never receives them.
    m = save(tmp_path / "bytes.onnx", [helper.make_node("NoSuchOp", ["x"], ["y"], name="NAMEXX")],
             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    data = open(m, "rb").read()
    assert data.count(b"NAMEXX") == 1
    open(m, "wb").write(data.replace(b"NAMEXX", b"NA\x1b[\xffX"))
    proc = run("inspect", m)
    assert proc.returncode != 0 and b"\x1b" not in proc.stderr and b"\xff" not in proc.stderr, proc.stderr
    refused(proc)


def test_empty_input_name_for_a_required_input(tmp_path):
    m = save(tmp_path / "add.onnx", [helper.make_node("Add", ["x", ""], ["y"], name="add")],
             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    line = refused(run("inspect", m), "'add'", "required input 1 is empty")
    assert "got 2" not in line


@pytest.mark.parametrize("content", ['{"format": 5, "entries": {}}', '[1, 2]', '{"format": "kiln-timing-cache-1"}',
                                     "\x00\xff garbage"])
def test_corrupt_timing_cache(small, tmp_path, content):
    cache = tmp_path / "t.cache"
    cache.write_text(content, errors="surrogateescape")
    refused(run("exec", f"--onnx={small}", f"--timingCacheFile={cache}", *FAST), "t.cache", "not a kiln timing cache")


def test_non_utf8_names_in_json_and_engine_files(tmp_path):
    # ONNX does not enforce UTF-8 in names; JSON output and engine metadata replace bad bytes instead of failing.
    m = relu_model(tmp_path / "name.onnx", [2, 3])
    data = open(m, "rb").read()
    open(m, "wb").write(data.replace(b"relu", b"r\xffl\x1b", 1))
    proc = run("inspect", m, "--json")
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout.decode("utf-8"))
    e = tmp_path / "name.kiln"
    proc = run("exec", f"--onnx={m}", f"--saveEngine={e}", f"--exportProfile={tmp_path / 'p.json'}", *FAST)
    assert proc.returncode == 0, proc.stderr
    json.loads((tmp_path / "p.json").read_text())
    proc = run("exec", f"--loadEngine={e}", *FAST)
    assert proc.returncode == 0, proc.stderr


def test_engine_file_never_reads_external_data(tmp_path, small):
    # Swap the embedded model for one whose weight points at a file next to the engine: refused, not read.
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(6, dtype=np.float32).tobytes())
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3])
    w.data_location = TensorProto.EXTERNAL
    for k, v in {"location": "secret.bin", "offset": "0", "length": "24"}.items():
        w.external_data.add(key=k, value=v)
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"], name="add")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    path = tmp_path / "e.kiln"
    assert run("exec", f"--onnx={small}", f"--saveEngine={path}", *FAST).returncode == 0
    b = path.read_bytes()
    meta_len, _ = struct.unpack_from("<QQ", b, 16)
    meta = b[40:40 + meta_len]
    h = 1469598103934665603
    for c in meta + model:
        h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    path.write_bytes(b[:16] + struct.pack("<QQQ", meta_len, len(model), h) + meta + model)
    refused(run("exec", f"--loadEngine={path}", *FAST), "e.kiln", "external data is not allowed")
