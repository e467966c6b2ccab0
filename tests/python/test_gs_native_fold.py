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
    calls, models, reads = [], [], []
    try:
        from kiln import _kiln as ext
    except ImportError:
        ext = None
    real = getattr(ext, "fold_onnx", None)

    def fold_onnx(model, read_external=None, fold_shapes=True, size_threshold=None, error_ok=True):
        calls.append((fold_shapes, size_threshold, error_ok))
        models.append(onnx.load_from_string(model))

        def recording_reader(location, offset, length):
            reads.append(location)
            return read_external(location, offset, length)

        if real is not None:
            return real(model, recording_reader if read_external else None, fold_shapes=fold_shapes,
                        size_threshold=size_threshold, error_ok=error_ok)
        return _stand_in(gs, model, recording_reader, fold_shapes, size_threshold, error_ok)

    if ext is not None:
        monkeypatch.setattr(ext, "fold_onnx", fold_onnx)
    else:
        fake = types.ModuleType("kiln._kiln")
        fake.fold_onnx = fold_onnx
        monkeypatch.setitem(sys.modules, "kiln._kiln", fake)
        monkeypatch.setattr(sys.modules["kiln"], "_kiln", fake, raising=False)
    gs.calls, gs.models, gs.reads = calls, models, reads
    return gs


def _stand_in(gs, model, read_external, fold_shapes, size_threshold, error_ok):
    """fold_onnx's contract, folded by the ONNX Runtime path: {name: (type name, dims, bytes)} of what folded."""
    proto = onnx.load_from_string(model)
    for init in proto.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            location = {e.key: e.value for e in init.external_data}["location"]
            itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
            init.raw_data = bytes(read_external(location, 0, int(np.prod(init.dims, dtype=np.int64)) * itemsize))
            init.data_location = onnx.TensorProto.DEFAULT
            del init.external_data[:]
    g = gs.import_onnx(proto)
    given = {name for name, t in g.tensors().items() if isinstance(t, gs.Constant)}
    from kiln.gs import fold as fold_mod

    fold_mod._fold_python(g, fold_shapes, None, error_ok, size_threshold, lambda n: False, True)
    folded = {}
    for name, t in g.tensors().items():
        if isinstance(t, gs.Constant) and name not in given:
            element = onnx.TensorProto.DataType.Name(onnx.helper.np_dtype_to_tensor_dtype(t.values.dtype)).lower()
            folded[name] = (f"tensor({element})", list(t.shape), t.values.tobytes())
    return folded


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


def test_large_constants_go_by_reference_and_are_read_only_when_folded(kgs):
    # A weight that only a graph-input-fed node reads is never read (nor copied) by the folder; one that a
    # foldable node reads is read once, through read_external, and its fold is exact.
    rng = np.random.default_rng(0)
    x = kgs.Variable("x", np.float32, [4, 512])
    g = kgs.Graph(opset=13, inputs=[x])
    w = rng.standard_normal((512, 512)).astype(np.float32)  # 1 MiB: by reference
    folded_weight = rng.standard_normal((512, 64)).astype(np.float32)
    wt = g.layer(op="Transpose", inputs=[folded_weight], outputs=["wt"], attrs={"perm": [1, 0]})[0]
    y = g.layer(op="MatMul", inputs=[x, w], outputs=["y"])[0]
    y.dtype = wt.dtype = np.float32
    g.outputs = [y, wt]
    g.fold_constants()
    sent = {i.name: i for i in kgs.models[-1].graph.initializer}
    assert all(i.data_location == onnx.TensorProto.EXTERNAL and not i.raw_data for i in sent.values())
    assert len(sent) == 2 and len(kgs.reads) == 1, "only the Transpose's input is read"
    assert isinstance(wt, kgs.Constant) and wt.values.flags.writeable
    np.testing.assert_array_equal(wt.values, folded_weight.T)


def test_lazy_weights_of_an_imported_model_fold_by_reference(kgs, tmp_path):
    # Lazy (never loaded) initializers of an imported model are passed as their stored bytes; external-data
    # initializers too. The folded result equals numpy's.
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 5)).astype(np.float32)
    b = rng.standard_normal((300, 5)).astype(np.float32)
    node = onnx.helper.make_node("Add", ["a", "b"], ["c"])
    out = onnx.helper.make_tensor_value_info("c", onnx.TensorProto.FLOAT, [300, 5])
    graph = onnx.helper.make_graph([node], "g", [], [out], initializer=[
        onnx.numpy_helper.from_array(a, "a"), onnx.numpy_helper.from_array(b, "b")])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="m.data", size_threshold=0)
    g = kgs.import_onnx(str(path))  # a path: its external data is read lazily, next to it
    g.fold_constants()
    c = g.outputs[0]
    assert isinstance(c, kgs.Constant) and sorted(kgs.reads) == ["a", "b"]
    np.testing.assert_array_equal(c.values, a + b)


def test_bfloat16_weight_by_reference_folds(kgs):
    # ml_dtypes arrays have no buffer protocol; their bytes still reach the folder.
    ml_dtypes = pytest.importorskip("ml_dtypes")
    w = np.random.default_rng(2).standard_normal(2048).astype(ml_dtypes.bfloat16)  # 4 KiB: by reference
    g = kgs.Graph(opset=13)
    f = g.layer(op="Cast", inputs=[w], outputs=["f"], attrs={"to": onnx.TensorProto.FLOAT})[0]
    f.dtype = np.float32
    g.outputs = [f]
    g.fold_constants()
    assert kgs.reads and isinstance(f, kgs.Constant)
    np.testing.assert_array_equal(f.values, w.astype(np.float32))
