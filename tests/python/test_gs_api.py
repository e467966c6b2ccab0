"""kiln.gs vs onnx_graphsurgeon: building graphs, navigation, list synchronization, tensors.

Each test runs on both implementations (fixture ``gs``); behaviour comes from
onnx_graphsurgeon's documentation and examples.
"""

import numpy as np
import pytest
from gs_impls import gs  # noqa: F401  (fixture)


def V(gs, name, shape=(2,)):
    return gs.Variable(name, dtype=np.float32, shape=list(shape))


def test_variable_fields(gs):
    v = gs.Variable("x", dtype=np.float32, shape=[1, "N", 3])
    assert (v.name, v.dtype, v.shape) == ("x", np.float32, [1, "N", 3])
    assert v.inputs == [] and v.outputs == []


def test_variable_defaults(gs):
    v = gs.Variable("v")
    assert v.dtype is None and v.shape is None


def test_shape_is_mutable_list(gs):
    v = gs.Variable("x", dtype=np.float32, shape=[1, 3])
    v.shape[0] = "batch"
    assert v.shape == ["batch", 3]


def test_empty_variable(gs):
    e = gs.Variable.empty()
    assert e.name == "" and e.is_empty()
    assert not gs.Variable("a").is_empty()


def test_constant_fields(gs):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    c = gs.Constant("c", arr)
    assert c.shape == (2, 3) and c.dtype == np.float32
    assert c.values is arr


def test_constant_values_writable(gs):
    c = gs.Constant("c", np.zeros(3, np.float32))
    c.values[1] = 5
    assert c.values[1] == 5


def test_constant_rejects_non_arrays(gs):
    with pytest.raises(Exception):
        gs.Constant("c", [1, 2, 3])


def test_constant_export_dtype(gs):
    c = gs.Constant("c", np.ones(2, np.float32), export_dtype=np.float16)
    assert c.dtype == np.float32 and c.export_dtype == np.float16
    c2 = gs.Constant("d", np.ones(2, np.float32))
    assert c2.export_dtype == np.float32


def test_tensor_is_abstract(gs):
    with pytest.raises(Exception):
        gs.Tensor()


def test_tensor_equality_by_name(gs):
    assert gs.Variable("a") == gs.Variable("a")
    assert gs.Variable("a") != gs.Variable("b")


def test_tensor_str(gs):
    v = gs.Variable("x", dtype=np.float32, shape=[1, 3])
    assert str(v).startswith("Variable (x): (shape=[1, 3], dtype=")
    assert str(gs.Constant("c", np.ones((2, 2), np.float32))) == "Constant (c): (shape=(2, 2), dtype=float32)"


def test_node_defaults(gs):
    n = gs.Node("Relu")
    assert n.op == "Relu" and n.name == "" and dict(n.attrs) == {}
    assert list(n.inputs) == [] and list(n.outputs) == []


def test_node_attrs_preserve_order(gs):
    n = gs.Node("Conv", attrs={"b": 1, "a": [1, 2], "c": "s"})
    assert list(n.attrs.keys()) == ["b", "a", "c"]


def test_node_domain(gs):
    assert gs.Node("Plugin", domain="com.x").domain == "com.x"


def test_node_str(gs):
    x = V(gs, "x")
    n = gs.Node("Relu", name="r", inputs=[x], attrs={"a": 1})
    text = str(n)
    assert text.startswith("r (Relu)\n\tInputs: [\n\t\tVariable (x)")
    assert "Attributes: {'a': 1}" in text


def test_node_inputs_link_tensor_outputs(gs):
    x, y = V(gs, "x"), V(gs, "y")
    n = gs.Node("Relu", inputs=[x], outputs=[y])
    assert x.outputs[0] is n and y.inputs[0] is n


def test_append_to_node_inputs(gs):
    x, w = V(gs, "x"), V(gs, "w")
    n = gs.Node("Add", inputs=[x])
    n.inputs.append(w)
    assert w.outputs[0] is n


def test_extend_and_insert(gs):
    a, b, c = V(gs, "a"), V(gs, "b"), V(gs, "c")
    n = gs.Node("Concat")
    n.inputs.extend([a, b])
    n.inputs.insert(0, c)
    assert [t.name for t in n.inputs] == ["c", "a", "b"]
    assert all(t.outputs[0] is n for t in (a, b, c))


def test_tensor_outputs_clear_updates_nodes(gs):
    x = V(gs, "x")
    n1 = gs.Node("Relu", inputs=[x])
    n2 = gs.Node("Sigmoid", inputs=[x])
    x.outputs.clear()
    assert list(n1.inputs) == [] and list(n2.inputs) == []


def test_tensor_inputs_clear_updates_producer(gs):
    y = V(gs, "y")
    n = gs.Node("Relu", outputs=[y])
    y.inputs.clear()
    assert list(n.outputs) == []


def test_node_outputs_clear(gs):
    y, z = V(gs, "y"), V(gs, "z")
    n = gs.Node("Split", outputs=[y, z])
    n.outputs.clear()
    assert list(y.inputs) == [] and list(z.inputs) == []


def test_setitem_relinks(gs):
    x, c = V(gs, "x"), gs.Constant("c", np.ones(2, np.float32))
    n = gs.Node("Relu", inputs=[x])
    n.inputs[0] = c
    assert list(x.outputs) == [] and c.outputs[0] is n


def test_remove_and_pop(gs):
    a, b = V(gs, "a"), V(gs, "b")
    n = gs.Node("Add", inputs=[a, b, a])
    n.inputs.remove(a)
    assert [t.name for t in n.inputs] == ["b", "a"] and len(a.outputs) == 1
    n.inputs.pop()
    assert list(a.outputs) == []


def test_del_item(gs):
    a, b = V(gs, "a"), V(gs, "b")
    n = gs.Node("Add", inputs=[a, b])
    del n.inputs[0]
    assert list(a.outputs) == [] and [t.name for t in n.inputs] == ["b"]


def test_iadd(gs):
    a = V(gs, "a")
    n = gs.Node("Add")
    n.inputs += [a]
    assert a.outputs[0] is n


def test_assign_list_replaces_links(gs):
    a, b = V(gs, "a"), V(gs, "b")
    n = gs.Node("Relu", inputs=[a])
    n.inputs = [b]
    assert list(a.outputs) == [] and b.outputs[0] is n


def test_assign_tensor_outputs(gs):
    a = V(gs, "a")
    n = gs.Node("Relu")
    a.outputs = [n]
    assert n.inputs[0] is a


def test_duplicate_input_counts_twice(gs):
    a = V(gs, "a")
    n = gs.Node("Mul", inputs=[a, a])
    assert len(a.outputs) == 2


def test_list_copy_is_plain(gs):
    a = V(gs, "a")
    n = gs.Node("Relu", inputs=[a])
    copied = n.inputs.copy()
    copied.clear()
    assert a.outputs[0] is n and len(n.inputs) == 1


def test_two_producers(gs):
    y = V(gs, "y")
    n1 = gs.Node("Relu", outputs=[y])
    n2 = gs.Node("Relu", outputs=[y])
    assert y.inputs[0] is n1 and y.inputs[1] is n2


def _chain(gs):
    x, a, b, c = V(gs, "x"), V(gs, "a"), V(gs, "b"), V(gs, "c")
    n0 = gs.Node("Split", "split", inputs=[x], outputs=[a, b])
    n1 = gs.Node("Relu", "r1", inputs=[a], outputs=[c])
    n2 = gs.Node("Add", "add", inputs=[c, b], outputs=[V(gs, "y")])
    n3 = gs.Node("Identity", "id", inputs=[b], outputs=[V(gs, "z")])
    return x, (a, b, c), (n0, n1, n2, n3)


def test_node_i(gs):
    _, _, (n0, n1, n2, _) = _chain(gs)
    assert n1.i() is n0 and n2.i() is n1 and n2.i(1) is n0
    assert n2.i(1, 0) is n2.inputs[1].inputs[0]


def test_node_o(gs):
    _, _, (n0, n1, n2, n3) = _chain(gs)
    assert n0.o() is n1 and n0.o(0, 1) is n2 and n0.o(1, 1) is n3


def test_tensor_i_o(gs):
    x, (a, b, c), (n0, n1, n2, _) = _chain(gs)
    assert c.i() is a
    assert a.o() is c
    assert b.o(1) is n2.outputs[0] or b.o(1).name == "z"


def test_i_out_of_range(gs):
    x, _, (n0, *_rest) = _chain(gs)
    with pytest.raises(IndexError):
        n0.i()


def test_to_constant_in_place(gs):
    x = V(gs, "x")
    n = gs.Node("Relu", inputs=[x])
    same = x.to_constant(np.ones(2, np.float32))
    assert same is x and isinstance(x, gs.Constant) and n.inputs[0] is x
    assert x.values.shape == (2,)


def test_to_variable_in_place(gs):
    c = gs.Constant("c", np.ones((2, 2), np.float32))
    n = gs.Node("Relu", inputs=[c])
    c.to_variable(dtype=np.float16, shape=[2, 2])
    assert isinstance(c, gs.Variable) and c.dtype == np.float16 and c.shape == [2, 2]
    assert n.inputs[0] is c


def test_to_variable_defaults(gs):
    c = gs.Constant("c", np.ones((2, 2), np.float32))
    c.to_variable()
    assert c.dtype == np.float32 and c.shape == []


def test_variable_copy_drops_links(gs):
    x = V(gs, "x")
    gs.Node("Relu", inputs=[x])
    y = x.copy()
    assert y.name == "x" and list(y.outputs) == [] and y.dtype == np.float32


def test_constant_copy_shares_values(gs):
    arr = np.ones(3, np.float32)
    c = gs.Constant("c", arr).copy()
    assert c.values is arr


def test_node_eq(gs):
    a = V(gs, "a")
    assert gs.Node("Relu", "n", inputs=[a]) == gs.Node("Relu", "n", inputs=[V(gs, "a")])
    assert gs.Node("Relu", "n") != gs.Node("Sigmoid", "n")


def test_graph_defaults(gs):
    g = gs.Graph()
    assert g.name == "onnx_graphsurgeon_graph" and g.doc_string == ""
    assert g.opset == 11 and g.nodes == [] and g.inputs == [] and g.outputs == []
    assert g.producer_name == "" and g.functions == []


def test_graph_fields(gs):
    x = V(gs, "x")
    g = gs.Graph(inputs=[x], outputs=[x], name="m", doc_string="d", opset=17, producer_name="p", producer_version="1")
    assert (g.name, g.doc_string, g.opset, g.producer_name, g.producer_version) == ("m", "d", 17, "p", "1")


def test_graph_str_header(gs):
    assert str(gs.Graph(opset=13)).startswith("Graph onnx_graphsurgeon_graph (Opset 13)")


def test_tensors_map_order(gs):
    x, _, (n0, n1, n2, n3) = _chain(gs)
    g = gs.Graph(nodes=[n0, n1, n2, n3], inputs=[x], outputs=[n2.outputs[0]])
    assert list(g.tensors().keys()) == ["x", "a", "b", "c", "y", "z"]


def test_tensors_omits_empty(gs):
    x = V(gs, "x")
    n = gs.Node("Clip", inputs=[x, gs.Variable.empty(), gs.Constant("hi", np.ones((), np.float32))], outputs=[V(gs, "y")])
    assert list(gs.Graph(nodes=[n]).tensors().keys()) == ["x", "hi", "y"]


def test_tensors_check_duplicates(gs):
    n1 = gs.Node("Relu", inputs=[V(gs, "x")], outputs=[V(gs, "dup")])
    n2 = gs.Node("Relu", inputs=[V(gs, "x")], outputs=[V(gs, "dup")])
    g = gs.Graph(nodes=[n1, n2])
    g.tensors()
    with pytest.raises(Exception):
        g.tensors(check_duplicates=True)


def test_graph_node_ids(gs):
    g = gs.Graph(nodes=[gs.Node("Relu"), gs.Node("Relu")])
    with g.node_ids():
        assert g.nodes[0].id != g.nodes[1].id


def test_graph_eq(gs):
    assert gs.Graph(opset=13) == gs.Graph(opset=13)
    assert not (gs.Graph(opset=13) == gs.Graph(opset=12))


def test_graph_setters_take_lists(gs):
    g = gs.Graph()
    x = V(gs, "x")
    g.inputs = [x]
    g.outputs.append(x)
    assert g.inputs[0] is x and g.outputs[0] is x


def test_subgraph_iteration(gs):
    body = gs.Graph(name="body")
    n = gs.Node("If", attrs={"then_branch": body, "else_branch": gs.Graph(name="else")})
    g = gs.Graph(nodes=[n])
    assert [s.name for s in g.subgraphs()] == ["body", "else"]
    assert [s.name for s in n.subgraphs()] == ["body", "else"]


def test_subgraph_recursive(gs):
    inner = gs.Graph(name="inner")
    mid = gs.Graph(name="mid", nodes=[gs.Node("Loop", attrs={"body": inner})])
    g = gs.Graph(nodes=[gs.Node("If", attrs={"then_branch": mid, "else_branch": gs.Graph(name="e")})])
    assert [s.name for s in g.subgraphs(recursive=True)] == ["mid", "e", "inner"]


def test_node_copy(gs):
    a = V(gs, "a")
    n = gs.Node("Relu", "n", attrs={"k": 1}, inputs=[a])
    m = n.copy(inputs=[V(gs, "b")])
    assert m.op == "Relu" and m.name == "n" and dict(m.attrs) == {"k": 1} and m.inputs[0].name == "b"
    assert a.outputs[0] is n and len(a.outputs) == 1


def test_layer_attrs_and_domain(gs):
    g = gs.Graph()
    out = g.layer(op="Plugin", name="p", inputs=[V(gs, "x")], outputs=["y"], attrs={"k": 2}, domain="d")
    assert g.nodes[0].name == "p" and g.nodes[0].attrs["k"] == 2 and g.nodes[0].domain == "d"
    assert out[0].name == "y_0"


def test_logger_severity_and_critical(gs):
    # Scripts written for GraphSurgeon quiet or raise its logger: `G_LOGGER.severity = G_LOGGER.ERROR`, and
    # G_LOGGER.critical raises OnnxGraphSurgeonException.
    from_logger = gs.logger.G_LOGGER
    old = from_logger.severity
    try:
        for level in (from_logger.ERROR, from_logger.WARNING, from_logger.DEBUG, from_logger.VERBOSE):
            from_logger.severity = level
            assert from_logger.severity == level
        with pytest.raises(gs.OnnxGraphSurgeonException, match="stop here"):
            from_logger.critical("stop here")
        with from_logger.indent():
            from_logger.info("indented")
    finally:
        from_logger.severity = old


def test_logger_goes_to_python_logging(caplog):
    from gs_impls import load

    G = load("kiln.gs").logger.G_LOGGER
    with caplog.at_level("DEBUG", logger="kiln.gs"):
        G.warning("twice", mode=1)
        G.warning("twice", mode=1)  # LogMode.ONCE
        G.debug(lambda: "lazy message")
        with G.suppress(G.ERROR):
            G.warning("suppressed")
    texts = [r.getMessage() for r in caplog.records if r.name == "kiln.gs"]
    assert texts == ["twice", "lazy message"]
