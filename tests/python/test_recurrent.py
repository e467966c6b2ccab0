"""LSTM, GRU and RNN through `kiln exec` against ONNX Runtime: every direction, sequence_lens, initial states,
peepholes, clip, input_forget, linear_before_reset, the spec's activations with alpha/beta, omitted outputs, and
layout=1 (ONNX Runtime only runs layout 0, so the batch-first model is checked against the transposed layout-0 run).
"""
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

S, N, I, H = 5, 3, 4, 6  # distinct sizes, so a mixed-up index cannot go unnoticed
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
OUTPUTS = {"LSTM": ["Y", "Y_h", "Y_c"], "GRU": ["Y", "Y_h"], "RNN": ["Y", "Y_h"]}


def make_inputs(op, directions, seed, seq_lens=False, initial=False, peepholes=False):
    """The operands in layout 0: X and initial states are graph inputs, the rest initializers."""
    rng = np.random.default_rng(seed)
    g = GATES[op]
    x = {"X": rng.uniform(-1, 1, (S, N, I)).astype(np.float32)}
    w = {"W": rng.uniform(-0.7, 0.7, (directions, g * H, I)).astype(np.float32),
         "R": rng.uniform(-0.7, 0.7, (directions, g * H, H)).astype(np.float32),
         "B": rng.uniform(-0.5, 0.5, (directions, 2 * g * H)).astype(np.float32)}
    if seq_lens:
        w["sequence_lens"] = np.array([S, 2, 4], np.int32)
    if initial:
        x["initial_h"] = rng.uniform(-1, 1, (directions, N, H)).astype(np.float32)
        if op == "LSTM":
            x["initial_c"] = rng.uniform(-1, 1, (directions, N, H)).astype(np.float32)
    if peepholes:
        w["P"] = rng.uniform(-0.5, 0.5, (directions, 3 * H)).astype(np.float32)
    return x, w


def build(op, feeds, weights, outputs, opset, **attrs):
    names = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    ins = [n if n in feeds or n in weights else "" for n in names]
    while ins[-1] == "":
        ins.pop()
    node = helper.make_node(op, ins, outputs, **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, v.shape) for n, v in feeds.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs if o],
        [numpy_helper.from_array(v, n) for n, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run_ort(model, feeds):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds)))


def run_kiln(model, feeds, tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    args = [KILN, "exec", f"--onnx={path}", f"--saveOutputs={tmp_path}/out", "--iterations=1", "--duration=0",
            "--warmUp=0"]
    for name, v in feeds.items():
        np.save(tmp_path / f"{name}.npy", v)
    args.append("--loadInputs=" + ",".join(f"{name}:{tmp_path}/{name}.npy" for name in feeds))
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {os.path.splitext(f)[0]: np.load(tmp_path / "out" / f) for f in os.listdir(tmp_path / "out")}


def rel_l2(got, want):
    return np.linalg.norm(got.astype(np.float64) - want) / max(np.linalg.norm(want.astype(np.float64)), 1e-30)


def compare(got, want):
    assert got.keys() == want.keys()
    for name, w in want.items():
        assert got[name].shape == w.shape, name
        assert rel_l2(got[name], w) < 1e-5, f"{name}: rel L2 {rel_l2(got[name], w):.2e}"


CASES = [
    # op, direction, inputs, attributes
    ("LSTM", "forward", {}, {}),
    ("LSTM", "reverse", dict(seq_lens=True, initial=True), {}),
    ("LSTM", "bidirectional", dict(seq_lens=True, initial=True, peepholes=True), {}),
    ("LSTM", "forward", dict(peepholes=True), dict(clip=0.6)),
    ("LSTM", "bidirectional", dict(initial=True), dict(input_forget=1)),
    ("LSTM", "forward", {}, dict(activations=["HardSigmoid", "ScaledTanh", "Affine"],
                                  activation_alpha=[0.3, 0.8, 0.7], activation_beta=[0.4, 1.2, 0.1])),
    ("LSTM", "bidirectional", {}, dict(activations=["Sigmoid", "Softsign", "LeakyRelu", "Sigmoid", "Elu", "Tanh"],
                                        activation_alpha=[0.2, 0.5])),
    ("GRU", "forward", {}, {}),
    ("GRU", "reverse", dict(seq_lens=True, initial=True), dict(linear_before_reset=1)),
    ("GRU", "bidirectional", dict(seq_lens=True), {}),
    ("GRU", "bidirectional", dict(initial=True), dict(linear_before_reset=1, clip=0.5)),
    ("GRU", "forward", {}, dict(activations=["HardSigmoid", "Softplus"], activation_alpha=[0.25],
                                 activation_beta=[0.45])),
    ("RNN", "forward", {}, {}),
    ("RNN", "bidirectional", dict(seq_lens=True, initial=True), dict(activations=["Relu", "ThresholdedRelu"],
                                                                     activation_alpha=[0.1])),
    ("RNN", "reverse", dict(seq_lens=True), dict(activations=["Softsign"], clip=0.3)),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{k}" for k, c in enumerate(CASES)])
def test_matches_onnxruntime(case, tmp_path):
    op, direction, opts, attrs = case
    nd = 2 if direction == "bidirectional" else 1
    feeds, weights = make_inputs(op, nd, seed=len(str(case)), **opts)
    model = build(op, feeds, weights, OUTPUTS[op], 14, hidden_size=H, direction=direction, **attrs)
    compare(run_kiln(model, feeds, tmp_path), run_ort(model, feeds))


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("keep", [["Y"], ["", "Y_h"]])
def test_omitted_outputs(op, keep, tmp_path):
    feeds, weights = make_inputs(op, 2, seed=7, seq_lens=True)
    model = build(op, feeds, weights, keep, 13, direction="bidirectional")  # kiln takes hidden_size from R
    want = run_ort(build(op, feeds, weights, keep, 13, direction="bidirectional", hidden_size=H), feeds)
    compare(run_kiln(model, feeds, tmp_path), want)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_layout_1_is_layout_0_transposed(op, tmp_path):
    feeds, weights = make_inputs(op, 2, seed=11, seq_lens=True, initial=True, peepholes=op == "LSTM")
    want = run_ort(build(op, feeds, weights, OUTPUTS[op], 14, direction="bidirectional", hidden_size=H), feeds)
    batch_first = {n: v.transpose(1, 0, 2).copy() for n, v in feeds.items()}  # X [N,S,I], states [N,dirs,H]
    got = run_kiln(build(op, batch_first, weights, OUTPUTS[op], 14, direction="bidirectional", hidden_size=H, layout=1),
                   batch_first, tmp_path)
    want = {n: v.transpose(2, 0, 1, 3) if n == "Y" else v.transpose(1, 0, 2) for n, v in want.items()}
    compare(got, want)


def test_bad_sequence_length_is_an_error(tmp_path):
    feeds, weights = make_inputs("GRU", 1, seed=3, seq_lens=True)
    weights["sequence_lens"] = np.array([S, S + 1, 1], np.int32)
    onnx.save(build("GRU", {}, {**feeds, **weights}, ["Y"], 14), str(tmp_path / "m.onnx"))
    proc = subprocess.run([KILN, "exec", f"--onnx={tmp_path / 'm.onnx'}", "--iterations=1", "--duration=0",
                           "--warmUp=0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "sequence_lens[1] = 6 is outside [0, 5]" in proc.stderr
