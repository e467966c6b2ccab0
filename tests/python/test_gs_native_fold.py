"""kiln.gs only: the path through kiln._kiln.fold_onnx, with a stand-in extension when it isn't built."""

import sys
import types

import numpy as np
import onnx
import pytest

from gs_impls import load


@pytest.fixture
def kgs(monkeypatch):
    gs = load("kiln.gs")
    calls, models = [], []

    def fold_onnx(model, fold_shapes=True, size_threshold=None, error_ok=True):
        # Stand-in for the C++ folder: fold with the ONNX Runtime path on a separate graph.
        calls.append((fold_shapes, size_threshold, error_ok))
        models.append(onnx.load_from_string(model))
        g = gs.import_onnx(onnx.load_from_string(model))
        from kiln.gs import fold as fold_mod

        fold_mod._fold_python(g, fold_shapes, None, error_ok, size_threshold, lambda n: False, True)
        return gs.export_onnx(g.cleanup(), do_type_check=False).SerializeToString()

    if "kiln._kiln" not in sys.modules or not hasattr(sys.modules["kiln._kiln"], "fold_onnx"):
        fake = types.ModuleType("kiln._kiln")
        fake.fold_onnx = fold_onnx
        monkeypatch.setitem(sys.modules, "kiln._kiln", fake)
        monkeypatch.setattr(sys.modules["kiln"], "_kiln", fake, raising=False)
    gs.calls, gs.models = calls, models
    return gs


def _graph(gs):
    x = gs.Variable("x", np.float32, [2, 3])
    g = gs.Graph(opset=13, inputs=[x])
    a = g.layer(op="Add", inputs=[np.ones(3, np.float32), np.ones(3, np.float32)], outputs=["a"])[0]
    s = g.layer(op="Shape", inputs=[x], outputs=["s"])[0]
    y = g.layer(op="Add", inputs=[x, a], outputs=["y"])[0]
    y.dtype = np.float32
    g.outputs = [y, s]
    s.dtype = np.int64
    return g, x, a, s, y


def test_native_path_used_and_keywords_passed(kgs):
    g, *_ = _graph(kgs)
    g.fold_constants(fold_shapes=False, size_threshold=64, error_ok=False)
    assert kgs.calls and kgs.calls[-1] == (False, 64, False)


def test_native_rebuild_keeps_identity(kgs):
    g, x, a, s, y = _graph(kgs)
    add = g.nodes[-1]
    g.fold_constants()
    assert g.inputs[0] is x and g.outputs[0] is y and g.outputs[1] is s
    assert isinstance(a, kgs.Constant) and a.values.tolist() == [2, 2, 2]
    assert isinstance(s, kgs.Constant) and s.values.tolist() == [2, 3]
    assert g.nodes == [add] and add.inputs[0] is x and add.inputs[1] is a and y.inputs[0] is add


def test_should_exclude_node_selects_python_path(kgs):
    g, x, a, s, y = _graph(kgs)
    g.fold_constants(should_exclude_node=lambda n: False)
    assert kgs.calls == [] and isinstance(a, kgs.Constant)


def test_native_path_drops_nodes_without_outputs(kgs):
    # `node.outputs.clear()` then cleanup() later is the usual surgery idiom; kiln's importer rejects a node
    # without outputs, so such nodes must not reach fold_onnx (which removes dead nodes anyway).
    g, x, a, s, y = _graph(kgs)
    g.layer(op="Neg", inputs=[x], outputs=["n"])
    g.nodes[-1].outputs.clear()
    g.fold_constants()
    if kgs.models:  # the stand-in records what it was given; the real extension would have raised
        assert all(len(n.output) for n in kgs.models[-1].graph.node)
    assert all(n.outputs for n in g.nodes) and all(n.op != "Neg" for n in g.nodes)
    assert all(n.op != "Neg" for n in x.outputs)
