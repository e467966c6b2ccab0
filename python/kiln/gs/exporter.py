"""export_onnx: Graph -> onnx.ModelProto."""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from . import dtypes
from .errors import OnnxGraphSurgeonException
from .graph import Graph
from .node import Node
from .tensor import Constant, LazyValues, Tensor


def _array_to_proto(name, values, export_dtype):
    target = dtypes.to_onnx(export_dtype) if export_dtype is not None else dtypes.to_onnx(values.dtype)
    src = dtypes.to_onnx(values.dtype) if not dtypes.is_onnx_enum(values.dtype) else values.dtype
    if target != src and target in dtypes.ONNX_TO_NUMPY:
        values = np.asarray(values).astype(dtypes.ONNX_TO_NUMPY[target])
    elif target != src and values.dtype == np.uint16 and target == onnx.TensorProto.BFLOAT16:
        pass  # already bf16 bit patterns
    if target in (onnx.TensorProto.STRING,) or values.dtype.kind in ("U", "S", "O"):
        proto = numpy_helper.from_array(np.asarray(values, dtype=object), name)
        return proto
    proto = onnx.TensorProto()
    proto.name = name
    proto.data_type = target
    proto.dims.extend(values.shape)
    proto.raw_data = np.ascontiguousarray(values).tobytes()
    return proto


def constant_to_proto(tensor, proto=None):
    """TensorProto of a Constant, written into ``proto`` when given (an initializer slot of the model being
    built: the weights are then copied once); unread lazy values are copied as stored, never decoded."""
    proto = onnx.TensorProto() if proto is None else proto
    lazy = tensor._values
    if isinstance(lazy, LazyValues) and (
        tensor._export_dtype is None or dtypes.to_onnx(tensor._export_dtype) == lazy.tensor.data_type
    ):
        proto.CopyFrom(lazy.tensor)
        if proto.data_location == onnx.TensorProto.EXTERNAL and lazy.base_dir is not None:
            onnx.external_data_helper.load_external_data_for_tensor(proto, lazy.base_dir)
            proto.data_location = onnx.TensorProto.DEFAULT
            del proto.external_data[:]
        proto.name = tensor.name
        return proto
    proto.CopyFrom(_array_to_proto(tensor.name, tensor.values, tensor._export_dtype))
    return proto


def _value_info(tensor, do_type_check):
    if isinstance(tensor, Constant):
        return helper.make_tensor_value_info(tensor.name, dtypes.to_onnx(tensor.export_dtype), list(tensor.shape))
    if do_type_check and tensor.dtype is None:
        raise OnnxGraphSurgeonException(
            "Graph input and output tensors must include dtype information. "
            f"Please set the dtype attribute for: {tensor}"
        )
    elem = dtypes.to_onnx(tensor.dtype) if tensor.dtype is not None else onnx.TensorProto.UNDEFINED
    shape = tensor.shape
    kind = getattr(tensor, "type", "tensor_type")
    if kind == "sequence_type":
        return helper.make_tensor_sequence_value_info(tensor.name, elem, shape)
    if kind == "optional_type":
        inner = helper.make_tensor_type_proto(elem, shape)
        return helper.make_value_info(tensor.name, helper.make_optional_type_proto(inner))
    if kind == "sparse_tensor_type":
        return helper.make_sparse_tensor_value_info(tensor.name, elem, shape)
    if shape is not None:
        shape = [d if d is None or isinstance(d, str) else int(d) for d in shape]
    return helper.make_tensor_value_info(tensor.name, elem, shape)


def _attribute(name, value, outer_names, constant_proto=constant_to_proto):
    if isinstance(value, Node.AttributeRef):
        a = onnx.AttributeProto()
        a.name = name
        a.ref_attr_name = value.name
        a.type = {float: 1, int: 2, str: 3, Tensor: 4, Graph: 5}.get(value.type, onnx.AttributeProto.UNDEFINED)
        return a
    if isinstance(value, Constant):
        return helper.make_attribute(name, constant_to_proto(value))  # attribute tensors stay inline
    if isinstance(value, Graph):
        return helper.make_attribute(name, export_graph(value, False, outer_names, constant_proto=constant_proto))
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Graph) for v in value):
        return helper.make_attribute(
            name, [export_graph(v, False, outer_names, constant_proto=constant_proto) for v in value])
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Constant) for v in value):
        return helper.make_attribute(name, [constant_to_proto(v) for v in value])
    if isinstance(value, type) or isinstance(value, np.dtype):
        return helper.make_attribute(name, helper.make_tensor_type_proto(dtypes.to_onnx(value), None))
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    return helper.make_attribute(name, value)


def export_node(node, outer_names=frozenset(), constant_proto=constant_to_proto):
    proto = helper.make_node(
        node.op,
        [t.name for t in node.inputs],
        [t.name for t in node.outputs],
        name=node.name,
        domain=node.domain,
    )
    proto.attribute.extend(_attribute(k, v, outer_names, constant_proto) for k, v in node.attrs.items())
    return proto


def export_graph(graph, do_type_check=True, outer_names=frozenset(), into=None, constant_proto=constant_to_proto):
    """GraphProto of a graph, filled into ``into`` when given; ``outer_names`` are tensors an enclosing graph
    defines. ``constant_proto(tensor, slot)`` writes each initializer into its slot."""
    proto = onnx.GraphProto() if into is None else into
    tensors = graph.tensors()
    scope_names = frozenset(outer_names) | frozenset(tensors.keys())
    proto.name = graph.name or ""
    if graph.doc_string:
        proto.doc_string = graph.doc_string
    proto.node.extend(export_node(n, scope_names, constant_proto) for n in graph.nodes)
    proto.input.extend(_value_info(t, do_type_check) for t in graph.inputs)
    proto.output.extend(_value_info(t, do_type_check) for t in graph.outputs)
    io_names = {t.name for t in graph.inputs} | {t.name for t in graph.outputs}
    for name, t in tensors.items():
        if isinstance(t, Constant) and name not in outer_names:
            constant_proto(t, proto.initializer.add())
    proto.value_info.extend(
        _value_info(t, False)
        for name, t in tensors.items()
        if not isinstance(t, Constant)
        and name not in io_names
        and name not in outer_names
        and (t.dtype is not None or t.shape is not None)
    )
    return proto


def export_function(func, constant_proto=constant_to_proto):
    opsets = [helper.make_opsetid("", func.opset)]
    for o in func.import_domains or []:
        if o.domain not in ("", "ai.onnx"):
            opsets.append(o)
    attrs = [k for k, v in func.attrs.items() if v is None]
    defaults = [_attribute(k, v, frozenset(), constant_proto) for k, v in func.attrs.items() if v is not None]
    proto = helper.make_function(
        func.domain,
        func.name,
        [t.name for t in func.inputs],
        [t.name for t in func.outputs],
        [export_node(n, constant_proto=constant_proto) for n in func.nodes],
        opsets,
        attributes=attrs,
        attribute_protos=defaults,
        doc_string=func.doc_string,
    )
    return proto


def export_onnx(graph, do_type_check=True, **kwargs):
    """ModelProto of a graph; ``kwargs`` go to ``onnx.helper.make_model``."""
    return export_model(graph, do_type_check, constant_to_proto, **kwargs)


def export_model(graph, do_type_check, constant_proto, **kwargs):
    """export_onnx with the initializers written by ``constant_proto(tensor, slot)``. The graph is filled into
    the new model in place (onnx.helper.make_model would copy a finished GraphProto, weights included)."""
    opsets = []
    for o in graph.import_domains or []:
        if o.domain in ("", "ai.onnx"):
            continue
        opsets.append(o)
    opsets.insert(0, helper.make_opsetid("", graph.opset))
    for func in graph.functions:
        if func.domain not in {o.domain for o in opsets}:
            opsets.append(helper.make_opsetid(func.domain, 1))
    kwargs.setdefault("opset_imports", opsets)
    kwargs.setdefault("functions", [export_function(f, constant_proto) for f in graph.functions])
    kwargs.setdefault("producer_name", graph.producer_name)
    kwargs.setdefault("producer_version", graph.producer_version)
    model = helper.make_model(onnx.GraphProto(), **kwargs)
    export_graph(graph, do_type_check, into=model.graph, constant_proto=constant_proto)
    # As in onnx_graphsurgeon, the graph's own producer fields win over keyword arguments.
    if graph.producer_name:
        model.producer_name = graph.producer_name
    if graph.producer_version:
        model.producer_version = graph.producer_version
    if graph.ir_version is not None and "ir_version" not in kwargs:
        model.ir_version = graph.ir_version
    return model
