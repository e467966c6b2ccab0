"""import_onnx: ONNX ModelProto (or a path) -> Graph, with initializers left lazy."""

import os
from collections import OrderedDict

import onnx

from . import dtypes
from .function import Function
from .graph import Graph
from .node import Node
from .tensor import Constant, LazyValues, Variable


def _shape_of(type_proto):
    kind = type_proto.WhichOneof("value")
    inner = getattr(type_proto, kind) if kind else None
    if kind == "sequence_type" or kind == "optional_type":
        return _shape_of(inner.elem_type)
    if inner is None or not inner.HasField("shape"):
        return None
    dims = []
    for d in inner.shape.dim:
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


def _dtype_of(type_proto):
    kind = type_proto.WhichOneof("value")
    if kind in ("sequence_type", "optional_type"):
        return _dtype_of(getattr(type_proto, kind).elem_type)
    if kind in ("tensor_type", "sparse_tensor_type"):
        elem = getattr(type_proto, kind).elem_type
        return dtypes.to_numpy(elem) if elem != onnx.TensorProto.UNDEFINED else None
    return None


def _variable(value_info, existing=None):
    t = existing if existing is not None else Variable(value_info.name)
    t.dtype = _dtype_of(value_info.type)
    t.shape = _shape_of(value_info.type)
    kind = value_info.type.WhichOneof("value")
    t.type = kind if kind else "tensor_type"
    return t


class _Importer:
    def __init__(self, base_dir, opset, functions):
        self.base_dir = base_dir
        self.opset = opset
        self.functions = functions

    def attr(self, a, tensor_map):
        A = onnx.AttributeProto
        if a.ref_attr_name:
            return Node.AttributeRef(a.ref_attr_name, _ATTR_PY_TYPES.get(a.type, object))
        if a.type == A.FLOAT:
            return a.f
        if a.type == A.INT:
            return a.i
        if a.type == A.STRING:
            return a.s.decode("utf-8", errors="surrogateescape")
        if a.type == A.TENSOR:
            return Constant(a.t.name, LazyValues(a.t, self.base_dir))
        if a.type == A.GRAPH:
            return self.graph(a.g, tensor_map)
        if a.type == A.FLOATS:
            return list(a.floats)
        if a.type == A.INTS:
            return list(a.ints)
        if a.type == A.STRINGS:
            return [s.decode("utf-8", errors="surrogateescape") for s in a.strings]
        if a.type == A.TENSORS:
            return [Constant(t.name, LazyValues(t, self.base_dir)) for t in a.tensors]
        if a.type == A.GRAPHS:
            return [self.graph(g, tensor_map) for g in a.graphs]
        if a.type == A.TYPE_PROTO:
            return _dtype_of(a.tp)
        return onnx.helper.get_attribute_value(a)

    def nodes(self, node_protos, tensors, tensor_map):
        """Build nodes; ``tensors`` is this scope's name->tensor map, ``tensor_map`` the outer one."""

        def lookup(name):
            if name == "":
                return Variable.empty()
            if name not in tensors:
                tensors[name] = tensor_map[name] if name in tensor_map else Variable(name)
            return tensors[name]

        built = []
        for proto in node_protos:
            scope = OrderedDict(tensor_map)
            scope.update(tensors)
            attrs = OrderedDict((a.name, self.attr(a, scope)) for a in proto.attribute)
            inputs = [lookup(n) for n in proto.input]
            outputs = []
            for name in proto.output:
                # A node output always belongs to this scope, even if an outer tensor shares its name.
                if name and name not in tensors:
                    tensors[name] = Variable(name)
                outputs.append(lookup(name))
            built.append(
                Node(proto.op_type, proto.name, attrs, inputs, outputs, domain=proto.domain if proto.domain else None)
            )
        return built

    def scope_tensors(self, graph_proto):
        tensors = OrderedDict()
        for init in graph_proto.initializer:
            tensors[init.name] = Constant(init.name, LazyValues(init, self.base_dir), data_location=init.data_location)
        for vi in graph_proto.value_info:
            tensors[vi.name] = _variable(vi)
        return tensors

    def graph(self, graph_proto, tensor_map=None):
        tensor_map = tensor_map if tensor_map is not None else OrderedDict()
        tensors = self.scope_tensors(graph_proto)
        inputs = []
        for vi in graph_proto.input:
            t = tensors.get(vi.name)
            if isinstance(t, Constant):
                inputs.append(t)  # an initializer listed as an input (old IR versions)
            else:
                tensors[vi.name] = _variable(vi, t)
                inputs.append(tensors[vi.name])
        # Output declarations override value_info for the same tensor.
        for vi in graph_proto.output:
            t = tensors.get(vi.name)
            if not isinstance(t, Constant):
                tensors[vi.name] = _variable(vi, t)
        nodes = self.nodes(graph_proto.node, tensors, tensor_map)
        outputs = []
        for vi in graph_proto.output:
            if vi.name not in tensors:
                tensors[vi.name] = tensor_map.get(vi.name) or _variable(vi)
            outputs.append(tensors[vi.name])
        return Graph(
            nodes=nodes,
            inputs=inputs,
            outputs=outputs,
            name=graph_proto.name,
            doc_string=graph_proto.doc_string,
            opset=self.opset,
            functions=self.functions,
        )

    def function(self, proto):
        opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
        tensors = OrderedDict()
        for vi in getattr(proto, "value_info", []):
            tensors[vi.name] = _variable(vi)
        inputs = [tensors.setdefault(n, Variable(n)) for n in proto.input]
        nodes = self.nodes(proto.node, tensors, OrderedDict())
        outputs = [tensors.setdefault(n, Variable(n)) for n in proto.output]
        attrs = OrderedDict((name, None) for name in proto.attribute)
        for a in proto.attribute_proto:
            attrs[a.name] = self.attr(a, OrderedDict())
        return Function(
            proto.name,
            domain=proto.domain,
            nodes=nodes,
            inputs=inputs,
            outputs=outputs,
            doc_string=proto.doc_string,
            opset=opset,
            import_domains=list(proto.opset_import),
            functions=self.functions,
            attrs=attrs,
        )


_ATTR_PY_TYPES = {
    onnx.AttributeProto.FLOAT: float,
    onnx.AttributeProto.INT: int,
    onnx.AttributeProto.STRING: str,
    onnx.AttributeProto.FLOATS: list,
    onnx.AttributeProto.INTS: list,
    onnx.AttributeProto.STRINGS: list,
}


def import_onnx(onnx_model):
    """Graph from an ``onnx.ModelProto`` or a path to a .onnx file (external data next to it is read)."""
    base_dir = None
    if isinstance(onnx_model, (str, os.PathLike)):
        base_dir = os.path.dirname(os.path.abspath(onnx_model))
        onnx_model = onnx.load(os.fspath(onnx_model), load_external_data=False)
    opset = next((o.version for o in onnx_model.opset_import if o.domain in ("", "ai.onnx")), None)
    functions = []
    importer = _Importer(base_dir, opset, functions)
    functions.extend(importer.function(f) for f in onnx_model.functions)
    graph = importer.graph(onnx_model.graph)
    graph.import_domains = list(onnx_model.opset_import)
    graph.producer_name = onnx_model.producer_name
    graph.producer_version = onnx_model.producer_version
    graph.ir_version = onnx_model.ir_version
    return graph
