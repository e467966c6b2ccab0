"""Plugins end to end: an out-of-tree plugin built against the installed kiln (find_package) and loaded with
`kiln exec --plugins`; PackNet's GroupNorm surgery (examples/packnet/packnet_surgery and `kiln surgeon fuse`)
on the small variant, run in kiln and checked against PyTorch's output."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILN = os.environ.get("KILN_BIN", os.path.join(ROOT, "build", "kiln"))
BUILD = os.path.dirname(KILN)
if not os.path.exists(KILN):
    pytest.skip(f"{KILN} not built", allow_module_level=True)
onnx = pytest.importorskip("onnx")


def run(*args, check=True, **kw):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900, **kw)
    if check:
        assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def rel_l2(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def plugin_lib(tmp_path_factory):
    """cmake --install, then build examples/plugins against the installed package."""
    tmp = tmp_path_factory.mktemp("oot")
    prefix, build = tmp / "prefix", tmp / "build"
    run("cmake", "--install", BUILD, "--prefix", prefix)
    assert (prefix / "lib" / "cmake" / "kiln" / "kilnConfig.cmake").exists()
    run("cmake", "-S", os.path.join(ROOT, "examples", "plugins"), "-B", build, f"-DCMAKE_PREFIX_PATH={prefix}",
        "-DCMAKE_BUILD_TYPE=Release")
    run("cmake", "--build", build)
    lib = build / "libscaled_tanh_plugin.so"
    assert lib.exists()
    run(sys.executable, os.path.join(ROOT, "examples", "plugins", "make_model.py"), tmp)
    return lib, tmp


def test_out_of_tree_plugin_runs_and_round_trips(plugin_lib, tmp_path):
    lib, d = plugin_lib
    x = np.load(d / "x.npy")
    want = 1.5 * np.tanh(0.75 * np.maximum(x, 0))
    engine = tmp_path / "st.kiln"
    proc = run(KILN, "exec", f"--plugins={lib}", f"--onnx={d / 'scaled_tanh.onnx'}", f"--loadInputs=x:{d / 'x.npy'}",
               f"--saveOutputs={tmp_path / 'a'}", f"--saveEngine={engine}", "--iterations=1", "--duration=0",
               "--warmUp=0", "--verbose")
    assert "plugin" in proc.stdout
    assert rel_l2(np.load(tmp_path / "a" / "y.npy"), want) < 1e-6
    run(KILN, "exec", f"--plugins={lib}", f"--loadEngine={engine}", f"--loadInputs=x:{d / 'x.npy'}",
        f"--saveOutputs={tmp_path / 'b'}", "--iterations=1", "--duration=0", "--warmUp=0")
    assert np.array_equal(np.load(tmp_path / "b" / "y.npy"), np.load(tmp_path / "a" / "y.npy"))
    # Without the library the op is unknown: one line naming the node's op and how to add a plugin.
    proc = run(KILN, "exec", f"--onnx={d / 'scaled_tanh.onnx'}", "--iterations=1", "--duration=0", check=False)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and "ScaledTanh" in proc.stderr and "--plugins" in proc.stderr


def test_bad_plugin_library_is_refused(tmp_path):
    bad = os.path.join(BUILD, "libkiln_bad_abi_plugin.so")
    if not os.path.exists(bad):
        pytest.skip("test plugin not built")
    proc = run(KILN, "exec", f"--plugins={bad}", "--onnx=whatever.onnx", check=False)
    assert proc.returncode != 0 and "ABI version" in proc.stderr and bad in proc.stderr


@pytest.fixture(scope="module")
def small_packnet(tmp_path_factory):
    out = tmp_path_factory.mktemp("packnet_plugins")
    run(sys.executable, os.path.join(ROOT, "examples", "packnet", "export.py"), "--out", out, "--width", "0.25",
        "--height", "64", "--width-px", "96")
    return out


def histogram(model):
    return json.loads(run(KILN, "inspect", model, "--json").stdout)["op_histogram"]


def run_kiln(model, d, tmp_path, *extra):
    run(KILN, "exec", f"--onnx={model}", f"--loadInputs=input:{d / 'input.npy'}", f"--saveOutputs={tmp_path}",
        "--iterations=1", "--duration=0", "--warmUp=0", *extra)
    return np.load(tmp_path / "disp.npy")


def test_packnet_surgery_example(small_packnet, tmp_path):
    d = small_packnet
    out = tmp_path / "packnet01_gn.onnx"
    proc = run(os.path.join(BUILD, "packnet_surgery"), d / "packnet01.onnx", out)
    assert "collapsed 47 GroupNorm" in proc.stdout and "41 Pads" in proc.stdout
    hist = histogram(out)
    assert hist["GroupNormalizationPlugin"] == 47 and "InstanceNormalization" not in hist
    assert rel_l2(run_kiln(out, d, tmp_path / "o"), np.load(d / "output.npy")) < 1e-4


@pytest.mark.parametrize("mode", ["plugin", "native"])
def test_surgeon_fuse(small_packnet, tmp_path, mode):
    d = small_packnet
    out = tmp_path / f"fused_{mode}.onnx"
    proc = run(KILN, "surgeon", "fuse", d / "packnet01.onnx", "-o", out, f"--groupnorm={mode}")
    assert f"GroupNorm subgraphs fused ({mode}): 47" in proc.stderr
    assert "pads made constant: 41" in proc.stderr and "Pad folded into Conv: 41" in proc.stderr
    hist = histogram(out)
    assert "InstanceNormalization" not in hist and "Pad" not in hist
    assert hist["GroupNormalizationPlugin" if mode == "plugin" else "kiln.GroupNorm"] == 47
    # ONNX tooling reads it; standard nodes carry no kiln-internal attributes (the checker rejects only the
    # plugin op itself, which it cannot know, as it does for TensorRT's plugin nodes).
    model = onnx.load(str(out))
    for node in model.graph.node:
        if node.domain in ("", "ai.onnx"):
            assert not [a.name for a in node.attribute if a.name.startswith("kiln_")], node.name
    assert rel_l2(run_kiln(out, d, tmp_path / "o"), np.load(d / "output.npy")) < 1e-4


def test_unfused_and_fused_builds_agree(small_packnet, tmp_path):
    d = small_packnet
    fused = run_kiln(d / "packnet01.onnx", d, tmp_path / "f")
    unfused = run_kiln(d / "packnet01.onnx", d, tmp_path / "u", "--skipRewrites=groupnorm,pad_into_conv,conv_activation")
    assert rel_l2(fused, unfused) < 1e-5
    proc = run(KILN, "exec", f"--onnx={d / 'packnet01.onnx'}", "--skipRewrites=nonsense", "--iterations=1",
               "--duration=0", check=False)
    assert proc.returncode != 0 and "nonsense" in proc.stderr
