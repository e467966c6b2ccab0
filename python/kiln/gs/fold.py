"""fold_constants: kiln's C++ folding when the extension is built, ONNX Runtime otherwise.

With ``kiln._kiln`` importable, a copy of the graph is folded by ``kiln._kiln.fold_onnx``
(which also folds shape chains onnx_graphsurgeon cannot) and every tensor it folded becomes
a Constant in place, as under onnx_graphsurgeon: nodes stay until ``cleanup()``. Should kiln
refuse the model, the ONNX Runtime path below runs instead (or the error is raised when
``error_ok`` is False).
Keywords the C++ folder has no notion of are treated as follows:

- ``partitioning``: used only on the ONNX Runtime path. kiln's folder skips ops it does not know;
  a node that fails to evaluate (a Reshape to an impossible shape) makes it give up, and the
  ONNX Runtime path then folds with the caller's partitioning (so "basic"/"recursive" still
  fold around the failure).
- ``recurse_subgraphs`` / ``flatten_subgraphs`` / ``recurse_functions``: kiln decides
  per node; passing False for any of them, or a ``should_exclude_node`` callable,
  selects the ONNX Runtime path below, which honours them.

The ONNX Runtime path (no extension, or the cases above) folds like onnx_graphsurgeon:
Constant nodes, static Shape (and Gather/Slice of it), then every deterministic
default-domain node whose inputs are all constant, evaluated by onnxruntime.
"""

import logging

import numpy as np
import onnx

from . import dtypes
from .exporter import constant_to_proto, export_model, export_node
from .tensor import Constant, LazyValues, Variable

log = logging.getLogger("kiln.gs")

_NONDETERMINISTIC = {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial", "Bernoulli"}


def fold_constants(graph, fold_shapes=True, recurse_subgraphs=True, partitioning=None, error_ok=True,
                   flatten_subgraphs=True, size_threshold=None, should_exclude_node=None, recurse_functions=True):
    from .function import Function

    if partitioning not in (None, "basic", "recursive"):
        raise ValueError(f"fold_constants: unknown partitioning {partitioning!r} (None, 'basic' or 'recursive')")
    native = _native_folder()
    needs_python = (
        should_exclude_node is not None
        or not recurse_subgraphs
        or not flatten_subgraphs
        or (not recurse_functions and graph.functions)
        or isinstance(graph, Function)
    )
    if native is not None and not needs_python:
        log.debug("fold_constants: kiln C++ folding (kiln._kiln.fold_onnx)")
        if _fold_native(graph, native, fold_shapes, size_threshold, error_ok):
            return graph
    log.debug("fold_constants: ONNX Runtime folding (%s)", "kiln._kiln not importable" if native is None else "keywords need it")
    exclude = should_exclude_node or (lambda node: False)
    _fold_python(graph, fold_shapes, partitioning, error_ok, size_threshold, exclude, recurse_subgraphs)
    if recurse_functions and not isinstance(graph, Function):
        for func in graph.functions:
            _fold_python(func, fold_shapes, partitioning, error_ok, size_threshold, exclude, recurse_subgraphs)
    return graph


def _native_folder():
    try:
        from kiln import _kiln
    except ImportError:
        return None
    return getattr(_kiln, "fold_onnx", None)


# ---- C++ path ----------------------------------------------------------------------------------


def _fold_native(graph, fold_onnx, fold_shapes, size_threshold, error_ok):
    """Values from kiln's folder, applied the way onnx_graphsurgeon applies its own: every tensor that folds
    becomes a Constant in place and the nodes stay until cleanup(). Each node output is made a graph output of
    the exported copy, so kiln keeps (and folds) it. Constants of at least _BY_REFERENCE bytes go as external
    data whose location is their name: kiln reads one (through read_external) only when folding needs its
    values, so the weights are neither serialized nor copied into C++."""
    by_name = {}

    def reference(tensor, slot):
        if _constant_nbytes(tensor) < _BY_REFERENCE:
            return constant_to_proto(tensor, slot)
        by_name[tensor.name] = tensor
        slot.name = tensor.name
        slot.data_type = dtypes.to_onnx(tensor.export_dtype)
        slot.dims.extend(tensor.shape)
        slot.data_location = onnx.TensorProto.EXTERNAL
        slot.external_data.add(key="location", value=tensor.name)
        return slot

    def read_external(name, offset, length):
        return _constant_bytes(by_name[name])

    model = export_model(graph, False, reference)
    # Nodes left without outputs (scripts `node.outputs.clear()` before cleanup) compute nothing; kiln's importer
    # refuses them, so the copy goes without.
    live = [n for n in model.graph.node if any(model_output for model_output in n.output)]
    del model.graph.node[:]
    model.graph.node.extend(live)
    outputs = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in outputs:
                outputs.add(name)
                model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    try:
        folded = fold_onnx(model.SerializeToString(), read_external, fold_shapes=fold_shapes,
                           size_threshold=size_threshold, error_ok=error_ok)
    except Exception as err:  # kiln refused the model: onnx_graphsurgeon's own way, with its error handling
        if not error_ok:
            raise
        log.warning("fold_constants: kiln's folder failed (%s); folding with ONNX Runtime", err)
        return False
    tensors = graph.tensors()
    for name, (type_name, dims, data) in folded.items():
        t = tensors.get(name)
        if t is None or isinstance(t, Constant) or t.is_empty() or not t.inputs:
            continue
        arr = _to_array(type_name, dims, data)
        if size_threshold is not None and arr.nbytes > size_threshold:
            continue
        _set_constant(t, arr)
    return True


# Constants this large reach kiln's folder by reference (read only if folding needs them).
_BY_REFERENCE = 1024


def _constant_nbytes(tensor):
    """Bytes of a numeric Constant, without loading lazy values; 0 for strings (never passed by reference)."""
    lazy = tensor._values
    if isinstance(lazy, LazyValues):
        return 0 if lazy.tensor.data_type == onnx.TensorProto.STRING else lazy.nbytes
    values = tensor.values
    return values.nbytes if isinstance(values, np.ndarray) and values.dtype.kind not in "OUS" else 0


def _constant_bytes(tensor):
    """A buffer of the Constant's bytes as ONNX stores them (little-endian, export dtype)."""
    lazy = tensor._values
    if (isinstance(lazy, LazyValues) and lazy.tensor.HasField("raw_data")
            and lazy.tensor.data_type == dtypes.to_onnx(tensor.export_dtype)):
        return lazy.tensor.raw_data
    values = np.asarray(tensor.values)
    if tensor._export_dtype is not None and dtypes.to_onnx(tensor._export_dtype) in dtypes.ONNX_TO_NUMPY:
        values = values.astype(dtypes.ONNX_TO_NUMPY[dtypes.to_onnx(tensor._export_dtype)])
    # Bytes, not the typed array: ml_dtypes' bfloat16/float8 arrays refuse the buffer protocol. (numpy holds
    # little-endian values on every platform kiln runs on, as ONNX stores them.)
    return np.ascontiguousarray(values).reshape(-1).view(np.uint8)


def _to_array(type_name, dims, data):
    """A writable numpy array from fold_onnx's (ONNX Runtime type name, dims, bytes | list of str)."""
    element = type_name[len("tensor("):-1]
    proto = onnx.TensorProto()
    proto.data_type = getattr(onnx.TensorProto, element.upper())  # tensor(float) -> FLOAT, tensor(int64) -> INT64
    proto.dims.extend(dims)
    if isinstance(data, list):
        proto.string_data.extend(s.encode() for s in data)
    else:
        proto.raw_data = data
    return LazyValues(proto).load()


# ---- ONNX Runtime path -------------------------------------------------------------------------


def _is_const(t):
    return t.is_empty() or isinstance(t, Constant)


def _set_constant(tensor, values):
    tensor.to_constant(values)
    tensor.inputs.clear()


def _static_shape(t):
    if isinstance(t, Constant):
        return list(t.shape)
    shape = t.shape
    if shape is None or any(not isinstance(d, (int, np.integer)) or d < 0 for d in shape):
        return None
    return [int(d) for d in shape]


def _fold_shape_nodes(graph):
    for node in graph.nodes:
        if node.op != "Shape" or not node.inputs or not node.outputs or isinstance(node.outputs[0], Constant):
            continue
        shape = _static_shape(node.inputs[0])
        if shape is None:
            continue
        start, end = node.attrs.get("start", 0), node.attrs.get("end", None)
        _set_constant(node.outputs[0], np.array(shape[start:end], dtype=np.int64))


def _run(graph, nodes):
    """Evaluate ``nodes`` (all-constant inputs) with onnxruntime; {tensor name: array}."""
    import onnxruntime as ort

    produced = {t.name for n in nodes for t in n.outputs}
    inits, seen = [], set()
    for n in nodes:
        for t in n.inputs:
            if isinstance(t, Constant) and t.name not in produced and t.name not in seen:
                seen.add(t.name)
                inits.append(constant_to_proto(t))
    outputs = [onnx.helper.make_empty_tensor_value_info(t.name) for n in nodes for t in n.outputs if not t.is_empty()]
    opsets = [onnx.helper.make_opsetid("", graph.opset)]
    g = onnx.helper.make_graph([export_node(n) for n in nodes], "fold", [], outputs, initializer=inits)
    model = onnx.helper.make_model(g, opset_imports=opsets)
    model.ir_version = min(model.ir_version, 10)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in outputs]
    return dict(zip(names, sess.run(names, {})))


def _fold_python(graph, fold_shapes, partitioning, error_ok, size_threshold, exclude, recurse_subgraphs):
    if recurse_subgraphs:
        for sub in graph.subgraphs():
            _fold_python(sub, fold_shapes, partitioning, error_ok, size_threshold, exclude, True)
    for node in graph.nodes:
        if node.op == "Constant" and node.outputs and not isinstance(node.outputs[0], Constant) and "value" in node.attrs:
            value = node.attrs["value"]
            if isinstance(value, Constant):
                _set_constant(node.outputs[0], value.values)
    if fold_shapes:
        _fold_shape_nodes(graph)

    values = {}
    pending = []
    for node in graph.nodes:
        if all(_is_const(t) or t.name in values for t in node.inputs) and _foldable_given(node, exclude, values):
            pending.append(node)
            for t in node.outputs:
                values[t.name] = None
    pending = [n for n in pending if not all(isinstance(t, Constant) or t.is_empty() for t in n.outputs)]
    if not pending:
        return
    results = _evaluate(graph, pending, partitioning, error_ok)
    for node in pending:
        for t in node.outputs:
            if t.name not in results or t.is_empty():
                continue
            arr = results[t.name]
            if size_threshold is not None and arr.nbytes > size_threshold:
                log.debug("fold_constants: not folding %s (%d bytes > size_threshold)", t.name, arr.nbytes)
                continue
            _set_constant(t, arr)


def _foldable_given(node, exclude, values):
    """A node folds when deterministic, in the default domain, without subgraphs, and not excluded."""
    if node.op in _NONDETERMINISTIC or node.domain not in (None, "", "ai.onnx") or not node.outputs:
        return False
    if any(True for _ in node.subgraphs()):
        return False
    return not exclude(node)


def _evaluate(graph, nodes, partitioning, error_ok):
    try:
        return _run(graph, nodes)
    except Exception as err:
        if partitioning is None:
            if not error_ok:
                raise
            log.warning("fold_constants: inference failed, nothing folded: %s", err)
            return {}
        log.debug("fold_constants: inference failed (%s); folding node by node", err)
    results = {}
    failed = set()
    for node in nodes:
        if any(t.name in failed for t in node.inputs):
            failed.update(t.name for t in node.outputs)
            continue
        try:
            results.update(_run_single(graph, node, results))
        except Exception as err:
            if not error_ok:
                raise
            log.debug("fold_constants: %s (%s) not folded: %s", node.name, node.op, err)
            failed.update(t.name for t in node.outputs)
    return results


def _run_single(graph, node, results):
    """Evaluate one node, feeding values computed earlier in this pass as constants."""
    from .node import Node

    inputs = []
    for t in node.inputs:
        if t.name in results:
            inputs.append(Constant(t.name, results[t.name]))
        else:
            inputs.append(t)
    clone = Node(node.op, node.name, node.attrs, inputs=inputs, outputs=[Variable(t.name) for t in node.outputs], domain=node.domain)
    try:
        return _run(graph, [clone])
    finally:
        clone.inputs.clear()
        clone.outputs.clear()
