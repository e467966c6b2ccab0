"""kiln.gs only: the path through kiln._kiln.fold_onnx, with a stand-in extension when it isn't built."""

import sys
import types

import numpy as np
import onnx
import pytest

from gs_impls import load


@pytest.fixture
def kgs(monkeypatch):
    """kiln.gs with kiln._kiln.fold_onnx wrapped to record its calls: the real C++ folder when the extension is
    built, else a stand-in folding with the ONNX Runtime path on a separate graph."""
    gs = load("kiln.gs")
    calls, models = [], []
    try:
        from kiln import _kiln as ext
    except ImportError:
        ext = None
    real = getattr(ext, "fold_onnx", None)

    def fold_onnx(model, fold_shapes=True, size_threshold=None, error_ok=True):
        calls.append((fold_shapes, size_threshold, error_ok))
        models.append(onnx.load_from_string(model))
        if real is not None:
            return real(model, fold_shapes=fold_shapes, size_threshold=size_threshold, error_ok=error_ok)
        g = gs.import_onnx(onnx.load_from_string(model))
        from kiln.gs import fold as fold_mod

        fold_mod._fold_python(g, fold_shapes, None, error_ok, size_threshold, lambda n: False, True)
        return gs.export_onnx(g, do_type_check=False).SerializeToString()

    if ext is not None:
        monkeypatch.setattr(ext, "fold_onnx", fold_onnx)
    else:
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


def test_native_fold_marks_constants_in_place(kgs):
    # As under onnx_graphsurgeon: the folded tensors become Constants (the same objects), the nodes stay until
    # cleanup().
    g, x, a, s, y = _graph(kgs)
    add = g.nodes[-1]
    g.fold_constants()
    assert kgs.calls, "the C++ folder (or its stand-in) ran"
    assert g.inputs[0] is x and g.outputs[0] is y and g.outputs[1] is s
    assert isinstance(a, kgs.Constant) and a.values.tolist() == [2, 2, 2]
    assert isinstance(s, kgs.Constant) and s.values.tolist() == [2, 3]
    assert len(g.nodes) == 3
    g.cleanup()
    assert g.nodes == [add] and add.inputs[0] is x and add.inputs[1] is a and y.inputs[0] is add


def test_should_exclude_node_selects_python_path(kgs):
    g, x, a, s, y = _graph(kgs)
    g.fold_constants(should_exclude_node=lambda n: False)
    assert kgs.calls == [] and isinstance(a, kgs.Constant)


def test_native_path_drops_nodes_without_outputs(kgs):
    # `node.outputs.clear()` then cleanup() later is the usual surgery idiom; kiln's importer rejects a node
    # without outputs, so the copy fold_onnx gets goes without them; cleanup() removes them as usual.
    g, x, a, s, y = _graph(kgs)
    g.layer(op="Neg", inputs=[x], outputs=["n"])
    g.nodes[-1].outputs.clear()
    g.fold_constants()
    assert kgs.models and all(len(n.output) for n in kgs.models[-1].graph.node)
    assert isinstance(a, kgs.Constant)  # folding went on around the dead node
    g.cleanup()
    assert all(n.op != "Neg" for n in g.nodes) and all(n.op != "Neg" for n in x.outputs)
