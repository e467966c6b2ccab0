"""kiln.gs vs onnx_graphsurgeon: import/export, external data, lazy constants, folding, functions."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from gs_impls import gs, is_kiln  # noqa: F401  (fixture)
from onnx import TensorProto as TP
from onnx import helper as h
from onnx import numpy_helper as nh


def _model():
    X = h.make_tensor_value_info("X", TP.FLOAT, ["N", 3])
    Y = h.make_tensor_value_info("Y", TP.FLOAT, ["N", 3])
    W = nh.from_array(np.arange(3, dtype=np.float32), "W")
    nodes = [
        h.make_node("Constant", [], ["k"], value=nh.from_array(np.array([2.0], np.float32))),
        h.make_node("Add", ["X", "W"], ["a"], name="add"),
        h.make_node("Mul", ["a", "k"], ["Y"], name="mul", alpha=1.5, s="hi", ints=[1, 2]),
    ]
    vi = [h.make_tensor_value_info("a", TP.FLOAT, ["N", 3])]
    graph = h.make_graph(nodes, "g", [X], [Y], [W], value_info=vi, doc_string="doc")
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 13), h.make_opsetid("com.x", 1)], producer_name="t")


def _run(model, feed):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


def test_import_fields(gs):
    g = gs.import_onnx(_model())
    assert g.opset == 13 and g.name == "g" and g.doc_string == "doc" and g.producer_name == "t"
    assert [o.domain for o in g.import_domains] == ["", "com.x"]
    assert [n.name for n in g.nodes] == ["", "add", "mul"]


def test_import_shapes_and_dtypes(gs):
    g = gs.import_onnx(_model())
    assert g.inputs[0].shape == ["N", 3] and g.inputs[0].dtype == np.float32
    assert g.tensors()["a"].shape == ["N", 3]


def test_import_unknown_dim_is_none(gs):
    m = _model()
    m.graph.input[0].type.tensor_type.shape.dim[0].Clear()
    assert gs.import_onnx(m).inputs[0].shape == [None, 3]


def test_import_attrs(gs):
    g = gs.import_onnx(_model())
    assert dict(g.nodes[2].attrs) == {"alpha": 1.5, "s": "hi", "ints": [1, 2]}
    value = g.nodes[0].attrs["value"]
    assert isinstance(value, gs.Constant) and value.values.tolist() == [2.0]


def test_import_initializer_is_constant(gs):
    w = gs.import_onnx(_model()).tensors()["W"]
    assert isinstance(w, gs.Constant) and w.values.tolist() == [0, 1, 2]


def test_lazy_values_until_read(gs):
    w = gs.import_onnx(_model()).tensors()["W"]
    assert type(w._values).__name__ == "LazyValues"
    assert list(w.shape) == [3] and w.dtype == np.float32
    w.values
    assert isinstance(w._values, np.ndarray)


def test_imported_values_writable(gs):
    w = gs.import_onnx(_model()).tensors()["W"]
    w.values[0] = 7
    assert w.values[0] == 7


def test_links_after_import(gs):
    g = gs.import_onnx(_model())
    assert g.nodes[2].i() is g.nodes[1] and g.nodes[1].o() is g.nodes[2]
    assert g.inputs[0].outputs[0] is g.nodes[1]


def test_roundtrip_runs_equal(gs):
    m = _model()
    del m.graph.node[2].attribute[:]  # the attribute test's extra attributes are not valid on Mul
    out = gs.export_onnx(gs.import_onnx(m))
    assert isinstance(out, onnx.ModelProto)
    feed = {"X": np.random.rand(2, 3).astype(np.float32)}
    np.testing.assert_array_equal(_run(m, feed)[0], _run(out, feed)[0])


def test_export_metadata(gs):
    out = gs.export_onnx(gs.import_onnx(_model()))
    assert [(o.domain, o.version) for o in out.opset_import] == [("", 13), ("com.x", 1)]
    assert out.producer_name == "t" and [i.name for i in out.graph.initializer] == ["W"]
    assert [v.name for v in out.graph.value_info] == ["a"]


def test_export_modified_values(gs):
    g = gs.import_onnx(_model())
    g.tensors()["W"].values[:] = 5
    out = gs.export_onnx(g)
    assert nh.to_array(out.graph.initializer[0]).tolist() == [5, 5, 5]


def test_export_renamed_lazy_constant(gs):
    g = gs.import_onnx(_model())
    g.tensors()["W"].name = "W2"
    out = gs.export_onnx(g)
    assert out.graph.initializer[0].name == "W2" and out.graph.node[1].input[1] == "W2"


def test_export_type_check(gs):
    g = gs.import_onnx(_model())
    g.outputs[0].dtype = None
    with pytest.raises(Exception):
        gs.export_onnx(g)
    gs.export_onnx(g, do_type_check=False)


def test_export_kwargs(gs):
    out = gs.export_onnx(gs.import_onnx(_model()), producer_name="me", doc_string="kw")
    assert out.producer_name == "t" and out.doc_string == "kw"  # the graph's producer_name wins


def test_built_graph_runs(gs):
    x = gs.Variable("x", np.float32, [2, 2])
    y = gs.Variable("y", np.float32, [2, 2])
    g = gs.Graph(nodes=[gs.Node("Add", inputs=[x, gs.Constant("c", np.ones((2, 2), np.float32))], outputs=[y])],
                 inputs=[x], outputs=[y], opset=13)
    res = _run(gs.export_onnx(g), {"x": np.zeros((2, 2), np.float32)})[0]
    np.testing.assert_array_equal(res, np.ones((2, 2)))


def test_export_dtype_fp16(gs, request):
    if not is_kiln(gs):
        request.applymarker(pytest.mark.xfail(reason="onnx_graphsurgeon 0.6.1 converts export_dtype only from float32 "
                                              "to bf16/fp8; kiln.gs casts to any type", strict=True))
    x = gs.Variable("x", np.float16, [2])
    y = gs.Variable("y", np.float16, [2])
    c = gs.Constant("c", np.array([1.5, 2.5], np.float32), export_dtype=np.float16)
    g = gs.Graph(nodes=[gs.Node("Add", inputs=[x, c], outputs=[y])], inputs=[x], outputs=[y], opset=13)
    init = gs.export_onnx(g).graph.initializer[0]
    assert init.data_type == TP.FLOAT16 and nh.to_array(init).tolist() == [1.5, 2.5]


def test_bf16_export_dtype(gs):
    c = gs.Constant("c", np.array([1.0, 2.0], np.float32), export_dtype=TP.BFLOAT16)
    y = gs.Variable("y", np.float32, [2])
    n = gs.Node("Cast", inputs=[c], outputs=[y], attrs={"to": TP.FLOAT})
    init = gs.export_onnx(gs.Graph(nodes=[n], outputs=[y], opset=13)).graph.initializer[0]
    assert init.data_type == TP.BFLOAT16


@pytest.mark.parametrize("name,onnx_type", [("bfloat16", "BFLOAT16"), ("float8_e4m3fn", "FLOAT8E4M3FN"),
                                             ("float8_e5m2", "FLOAT8E5M2")])
def test_ml_dtypes_constant(gs, request, name, onnx_type):
    import ml_dtypes

    if not is_kiln(gs):
        request.applymarker(pytest.mark.xfail(reason="onnx_graphsurgeon 0.6.1 cannot export ml_dtypes tensors "
                                              "(np_dtype_to_tensor_dtype raises)", strict=True))
    dtype = getattr(ml_dtypes, name)
    c = gs.Constant("c", np.array([1.0, -2.0, 0.5], dtype))
    y = gs.Variable("y", dtype, [3])
    g = gs.Graph(nodes=[gs.Node("Identity", inputs=[c], outputs=[y])], outputs=[y], opset=19)
    m = gs.export_onnx(g)
    assert m.graph.initializer[0].data_type == getattr(TP, onnx_type)
    assert m.graph.output[0].type.tensor_type.elem_type == getattr(TP, onnx_type)
    back = gs.import_onnx(m).tensors()["c"]
    assert back.values.dtype == dtype and back.values.astype(np.float32).tolist() == [1.0, -2.0, 0.5]
    back.values[0] = 4.0  # values arrays are writable


def test_external_data_roundtrip(gs, tmp_path):
    big = nh.from_array(np.random.rand(64, 64).astype(np.float32), "big")
    X = h.make_tensor_value_info("X", TP.FLOAT, [64, 64])
    Y = h.make_tensor_value_info("Y", TP.FLOAT, [64, 64])
    m = h.make_model(h.make_graph([h.make_node("Add", ["X", "big"], ["Y"])], "g", [X], [Y], [big]),
                     opset_imports=[h.make_opsetid("", 13)])
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path), save_as_external_data=True, location="m.data", size_threshold=0)
    g = gs.import_onnx(onnx.load(str(path)))
    out = gs.export_onnx(g)
    out_path = tmp_path / "out" / "o.onnx"
    out_path.parent.mkdir()
    onnx.save(out, str(out_path), save_as_external_data=True, location="o.data", size_threshold=0)
    feed = {"X": np.ones((64, 64), np.float32)}
    np.testing.assert_array_equal(_run(m if False else onnx.load(str(path)), feed)[0],
                                  _run(onnx.load(str(out_path)), feed)[0])


def test_kiln_imports_path_with_external_data(tmp_path):
    import kiln.gs as kgs

    big = nh.from_array(np.arange(16, dtype=np.float32), "big")
    Y = h.make_tensor_value_info("Y", TP.FLOAT, [16])
    m = h.make_model(h.make_graph([h.make_node("Identity", ["big"], ["Y"])], "g", [], [Y], [big]),
                     opset_imports=[h.make_opsetid("", 13)])
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path), save_as_external_data=True, location="m.data", size_threshold=0)
    g = kgs.import_onnx(str(path))
    assert g.tensors()["big"].values.tolist() == list(range(16))
    assert nh.to_array(kgs.export_onnx(g).graph.initializer[0]).tolist() == list(range(16))


def _fold_graph(gs):
    x = gs.Variable("x", np.float32, [2, 3])
    g = gs.Graph(opset=13, inputs=[x])
    a = g.layer(op="Add", inputs=[np.ones(3, np.float32), np.ones(3, np.float32)], outputs=["a"])[0]
    k = g.layer(op="Constant", outputs=["k"], attrs={"value": gs.Constant("", np.array([2.0], np.float32))})[0]
    b = g.layer(op="Mul", inputs=[a, k], outputs=["b"])[0]
    s = g.layer(op="Shape", inputs=[x], outputs=["s"])[0]
    c = g.layer(op="Cast", inputs=[s], outputs=["c"], attrs={"to": TP.FLOAT})[0]
    y = g.layer(op="Add", inputs=[x, b], outputs=["y"])[0]
    y.dtype, c.dtype = np.float32, np.float32
    g.outputs = [y, c]
    return g, (a, k, b, s, c, y)


def test_fold_marks_constants(gs):
    g, (a, k, b, s, c, y) = _fold_graph(gs)
    assert g.fold_constants() is g
    assert all(isinstance(t, gs.Constant) for t in (a, k, b, s, c))
    assert b.values.tolist() == [4, 4, 4] and c.values.tolist() == [2, 3]
    assert isinstance(y, gs.Variable)


def test_fold_keeps_nodes_until_cleanup(gs):
    g, (a, *_r) = _fold_graph(gs)
    g.fold_constants()
    assert len(g.nodes) == 6 and list(a.inputs) == []
    g.cleanup()
    assert [n.op for n in g.nodes] == ["Add"]


def test_fold_without_shapes(gs):
    g, (a, k, b, s, c, y) = _fold_graph(gs)
    g.fold_constants(fold_shapes=False)
    assert isinstance(b, gs.Constant) and isinstance(s, gs.Variable) and isinstance(c, gs.Variable)


def test_fold_size_threshold(gs):
    g, (a, k, b, s, c, y) = _fold_graph(gs)
    g.fold_constants(size_threshold=8)
    assert isinstance(c, gs.Constant) and isinstance(b, gs.Variable)


def test_fold_should_exclude_node(gs):
    g, (a, k, b, s, c, y) = _fold_graph(gs)
    g.fold_constants(should_exclude_node=lambda n: n.op == "Mul")
    assert isinstance(a, gs.Constant) and isinstance(b, gs.Variable)


@pytest.mark.parametrize("partitioning", [None, "basic", "recursive"])
def test_fold_partitioning_runs(gs, partitioning):
    g, (a, k, b, s, c, y) = _fold_graph(gs)
    g.fold_constants(partitioning=partitioning).cleanup()
    assert isinstance(b, gs.Constant)


def _failing_fold_graph(gs):
    g = gs.Graph(opset=13)
    good = g.layer(op="Add", inputs=[np.ones(2, np.float32), np.ones(2, np.float32)], outputs=["good"])[0]
    bad = g.layer(op="Reshape", inputs=[np.ones(3, np.float32), np.array([2], np.int64)], outputs=["bad"])[0]
    good.dtype = bad.dtype = np.float32
    g.outputs = [good, bad]
    return g, good, bad


def test_fold_error_ok_no_partition(gs):
    g, good, bad = _failing_fold_graph(gs)
    g.fold_constants(partitioning=None)
    assert isinstance(bad, gs.Variable)


def test_fold_basic_partitioning_keeps_failure(gs):
    if not is_kiln(gs):
        pytest.xfail("onnx_graphsurgeon 0.6.1 re-raises the ORT error under partitioning='basic' even with "
                     "error_ok=True (after ~40 s of retries); kiln.gs folds `good` and keeps `bad`")
    g, good, bad = _failing_fold_graph(gs)
    g.fold_constants(partitioning="basic")
    assert isinstance(bad, gs.Variable)


def test_fold_recursive_partitioning_isolates_failures(gs):
    g, good, bad = _failing_fold_graph(gs)
    g.fold_constants(partitioning="recursive")
    assert isinstance(good, gs.Constant) and isinstance(bad, gs.Variable)


def test_fold_error_not_ok_raises(gs):
    g, good, bad = _failing_fold_graph(gs)
    with pytest.raises(Exception):
        g.fold_constants(error_ok=False)


def test_fold_output_runs(gs):
    g, _ = _fold_graph(gs)
    g.fold_constants().cleanup().toposort()
    y, c = _run(gs.export_onnx(g), {"x": np.zeros((2, 3), np.float32)})
    np.testing.assert_array_equal(y, np.full((2, 3), 4.0))
    assert c.tolist() == [2, 3]


def test_fold_imported_model(gs):
    g = gs.import_onnx(_model())
    g.fold_constants().cleanup()
    assert [n.op for n in g.nodes] == ["Add", "Mul"]
    assert isinstance(g.nodes[1].inputs[1], gs.Constant)


def _function_graph(gs):
    a, b = gs.Variable("a", np.float32), gs.Variable("b", np.float32)
    f = gs.Function("F", inputs=[a], outputs=[b], opset=13)
    f.nodes = [gs.Node("Relu", inputs=[a], outputs=[b])]
    g = gs.Graph(functions=[f], opset=13)
    x = gs.Variable("x", np.float32, [2])
    g.inputs = [x]
    g.outputs = f(g, inputs=[x])
    g.outputs[0].dtype = np.float32
    return g, f


def test_function_fields(gs):
    f = gs.Function("F")
    assert f.domain == "onnx_graphsurgeon" and f.unique_id == ("onnx_graphsurgeon", "F") and dict(f.attrs) == {}


def test_function_call_creates_node(gs):
    g, f = _function_graph(gs)
    node = g.nodes[0]
    assert node.op == "F" and node.domain == "onnx_graphsurgeon" and g.outputs[0].name == "b_0"
    assert g.outputs[0].dtype == np.float32


def test_function_export_runs(gs):
    g, f = _function_graph(gs)
    m = gs.export_onnx(g)
    assert [fn.name for fn in m.functions] == ["F"]
    assert ("onnx_graphsurgeon", 1) in [(o.domain, o.version) for o in m.opset_import]
    res = _run(m, {"x": np.array([-1.0, 2.0], np.float32)})[0]
    assert res.tolist() == [0.0, 2.0]


def test_function_roundtrip(gs):
    g, f = _function_graph(gs)
    back = gs.import_onnx(gs.export_onnx(g))
    assert [fn.name for fn in back.functions] == ["F"] and back.functions[0].opset == 13
    assert back.functions[0].nodes[0].op == "Relu"


def test_function_cleanup_and_toposort(gs):
    g, f = _function_graph(gs)
    f.nodes.append(gs.Node("Relu", inputs=[f.inputs[0]], outputs=[gs.Variable("dead")]))
    g.cleanup()
    assert len(f.nodes) == 1
    g.toposort()
    assert g.functions[0] is f


def test_function_attribute_ref(gs):
    a, b = gs.Variable("a", np.float32), gs.Variable("b", np.float32)
    f = gs.Function("LR", inputs=[a], outputs=[b], attrs={"alpha": 0.5}, opset=13)
    f.nodes = [gs.Node("LeakyRelu", inputs=[a], outputs=[b], attrs={"alpha": gs.Node.AttributeRef("alpha", float)})]
    g = gs.Graph(functions=[f], opset=13)
    x = gs.Variable("x", np.float32, [1])
    g.inputs = [x]
    g.outputs = f(g, inputs=[x], attrs={"alpha": 0.25})
    g.outputs[0].dtype = np.float32
    res = _run(gs.export_onnx(g), {"x": np.array([-4.0], np.float32)})[0]
    assert res.tolist() == [-1.0]


def _if_model():
    then_out = h.make_tensor_value_info("t", TP.FLOAT, [2])
    else_out = h.make_tensor_value_info("e", TP.FLOAT, [2])
    then_g = h.make_graph([h.make_node("Relu", ["X"], ["t"])], "then", [], [then_out])
    else_g = h.make_graph([h.make_node("Neg", ["X"], ["e"])], "else", [], [else_out])
    cond = h.make_tensor_value_info("cond", TP.BOOL, [])
    X = h.make_tensor_value_info("X", TP.FLOAT, [2])
    Y = h.make_tensor_value_info("Y", TP.FLOAT, [2])
    node = h.make_node("If", ["cond"], ["Y"], then_branch=then_g, else_branch=else_g)
    return h.make_model(h.make_graph([node], "g", [cond, X], [Y]), opset_imports=[h.make_opsetid("", 13)])


def test_subgraph_import_shares_outer_tensor(gs):
    g = gs.import_onnx(_if_model())
    then_g = g.nodes[0].attrs["then_branch"]
    assert isinstance(then_g, gs.Graph) and then_g.nodes[0].inputs[0] is g.inputs[1]


def test_subgraph_roundtrip_runs(gs):
    m = _if_model()
    out = gs.export_onnx(gs.import_onnx(m))
    for c in (True, False):
        feed = {"cond": np.array(c), "X": np.array([-1.0, 2.0], np.float32)}
        np.testing.assert_array_equal(_run(m, feed)[0], _run(out, feed)[0])


def test_subgraph_cleanup_keeps_outer_input(gs):
    g = gs.import_onnx(_if_model())
    g.cleanup(remove_unused_graph_inputs=True)
    assert [t.name for t in g.inputs] == ["cond", "X"]


def test_subgraph_toposort_with_outer_producer(gs):
    g = gs.import_onnx(_if_model())
    x = g.inputs[1]
    relu_out = gs.Variable("r", np.float32, [2])
    then_g = g.nodes[0].attrs["then_branch"]
    then_g.nodes[0].inputs[0] = relu_out
    g.nodes.insert(1, gs.Node("Relu", "outer", inputs=[x], outputs=[relu_out]))
    g.toposort()
    assert [n.op for n in g.nodes] == ["Relu", "If"]
