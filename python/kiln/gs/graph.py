"""Graph: nodes, graph inputs/outputs and model metadata, plus the graph-wide passes."""

from collections import OrderedDict, defaultdict
from contextlib import contextmanager
from numbers import Number

import numpy as np

from .errors import OnnxGraphSurgeonException
from .node import Node
from .tensor import Constant, Tensor, Variable


class Graph:
    """A graph of Nodes and Tensors; registered functions are callable as methods."""

    DEFAULT_OPSET = 11
    OPSET_FUNC_MAP = defaultdict(dict)  # opset -> {name: function}
    GLOBAL_FUNC_MAP = dict()  # name -> function registered for every opset

    @staticmethod
    def register(opsets=None):
        """Decorator making a function callable as ``graph.<name>(...)`` (for ``opsets``, or all)."""

        def register_func(func):
            if opsets is None:
                Graph.GLOBAL_FUNC_MAP[func.__name__] = func
            else:
                for opset in opsets:
                    Graph.OPSET_FUNC_MAP[opset][func.__name__] = func
            return func

        return register_func

    def __init__(
        self,
        nodes=None,
        inputs=None,
        outputs=None,
        name=None,
        doc_string=None,
        opset=None,
        import_domains=None,
        producer_name=None,
        producer_version=None,
        functions=None,
        ir_version=None,
    ):
        self.nodes = list(nodes) if nodes is not None else []
        self.inputs = list(inputs) if inputs is not None else []
        self.outputs = list(outputs) if outputs is not None else []
        self.name = name if name is not None else "onnx_graphsurgeon_graph"
        self.__name__ = self.name
        self.doc_string = doc_string if doc_string is not None else ""
        self.opset = opset if opset is not None else Graph.DEFAULT_OPSET
        self.producer_name = producer_name if producer_name is not None else ""
        self.producer_version = producer_version if producer_version is not None else ""
        self.import_domains = import_domains
        self.ir_version = ir_version
        self.name_idx = 0  # counter behind generated names (see _generate_name)
        self._functions = list(functions) if functions is not None else []

    def __getattr__(self, name):
        if name.startswith("__") or name in ("opset", "_functions"):
            raise AttributeError(name)
        opset = self.__dict__.get("opset")
        funcs = Graph.OPSET_FUNC_MAP.get(opset, {})
        func = funcs.get(name, Graph.GLOBAL_FUNC_MAP.get(name))
        if func is None:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '{name}' "
                f"(and no function '{name}' is registered for opset {opset})"
            )
        return lambda *args, **kwargs: func(self, *args, **kwargs)

    def __setattr__(self, name, value):
        if name in ("inputs", "outputs", "nodes") and not isinstance(value, list):
            value = list(value)
        object.__setattr__(self, name, value)

    @property
    def functions(self):
        return self._functions

    @functions.setter
    def functions(self, functions):
        self._functions = list(functions)

    def __eq__(self, other):
        if not isinstance(other, Graph):
            return False
        return (
            self.opset == other.opset
            and self.nodes == other.nodes
            and self.inputs == other.inputs
            and self.outputs == other.outputs
            and self.functions == other.functions
        )

    __hash__ = None

    @contextmanager
    def node_ids(self):
        """Context manager giving every node a unique integer ``id`` for its duration."""
        for index, node in enumerate(self.nodes):
            node.id = index
        try:
            yield
        finally:
            for node in self.nodes:
                node.__dict__.pop("id", None)

    def subgraphs(self, recursive=False):
        """Subgraphs held by this graph's nodes (If/Loop/Scan attributes)."""
        for node in self.nodes:
            yield from node.subgraphs(recursive=recursive)

    # ---- tensors -------------------------------------------------------------------------

    def tensors(self, check_duplicates=False):
        """OrderedDict name -> tensor of every tensor in this graph, in node order; empty ones omitted."""
        found = OrderedDict()

        def add(tensor):
            if tensor.is_empty():
                return
            seen = found.get(tensor.name)
            if seen is None:
                found[tensor.name] = tensor
            elif check_duplicates and seen is not tensor:
                raise OnnxGraphSurgeonException(
                    f"Found distinct tensors that share the same name:\n[id: {id(seen)}] {seen}\n"
                    f"[id: {id(tensor)}] {tensor}\nNote: Producer node(s) of first tensor:\n{seen.inputs}\n"
                    f"Producer node(s) of second tensor:\n{tensor.inputs}"
                )

        for t in self.inputs:
            add(t)
        for node in self.nodes:
            for t in node.inputs:
                add(t)
            for t in node.outputs:
                add(t)
        for t in self.outputs:
            add(t)
        return found

    def _local_names(self):
        """Names defined inside this graph: its inputs and everything its nodes produce (recursively)."""
        names = {t.name for t in self.inputs}
        for node in self.nodes:
            names.update(t.name for t in node.outputs)
            for sub in node.subgraphs():
                names.update(sub._local_names())
        return names

    def _foreign_tensors(self):
        """Tensors this graph's nodes use but that are defined in an enclosing graph (by name)."""
        local = self._local_names()
        foreign = OrderedDict()
        for node in self.nodes:
            for t in node.inputs:
                if not t.is_empty() and t.name not in local and not isinstance(t, Constant):
                    foreign.setdefault(t.name, t)
            for sub in node.subgraphs():
                for name, t in sub._foreign_tensors().items():
                    if name not in local:
                        foreign.setdefault(name, t)
        for t in self.outputs:
            if t.name not in local and not isinstance(t, Constant):
                foreign.setdefault(t.name, t)
        return foreign

    @staticmethod
    def _node_uses(node):
        """Input tensors of a node, including outer tensors its subgraphs reference implicitly."""
        uses = [t for t in node.inputs if not t.is_empty()]
        for sub in node.subgraphs():
            uses.extend(sub._foreign_tensors().values())
        return uses

    # ---- passes ----------------------------------------------------------------------------

    def cleanup(
        self, remove_unused_node_outputs=False, recurse_subgraphs=True, remove_unused_graph_inputs=False, recurse_functions=True
    ):
        """Remove nodes and tensors that do not contribute to the graph outputs. Returns self."""
        from .cleanup import cleanup_graph

        cleanup_graph(self, remove_unused_node_outputs, recurse_subgraphs, remove_unused_graph_inputs, recurse_functions)
        return self

    def toposort(self, recurse_subgraphs=True, recurse_functions=True, mode="full"):
        """Sort nodes (and/or functions, see ``mode``) topologically, in place. Returns self."""
        from .cleanup import toposort_functions, toposort_nodes

        if mode not in ("full", "nodes", "functions"):
            raise OnnxGraphSurgeonException(f"toposort: unknown mode {mode!r} (use 'full', 'nodes' or 'functions')")
        if mode in ("full", "nodes"):
            if recurse_functions:
                for func in self.functions:
                    func.toposort(recurse_subgraphs=recurse_subgraphs, recurse_functions=False, mode="nodes")
            if recurse_subgraphs:
                for sub in self.subgraphs():
                    sub.toposort(recurse_subgraphs=True, recurse_functions=False, mode="nodes")
            self.nodes = toposort_nodes(self.nodes, self._node_uses)
        if mode in ("full", "functions"):
            self._functions[:] = toposort_functions(self._functions)
        return self

    def fold_constants(
        self,
        fold_shapes=True,
        recurse_subgraphs=True,
        partitioning=None,
        error_ok=True,
        flatten_subgraphs=True,
        size_threshold=None,
        should_exclude_node=None,
        recurse_functions=True,
    ):
        """Fold constant subgraphs in place (kiln's C++ folding, or ONNX Runtime without it). Returns self."""
        from .fold import fold_constants

        return fold_constants(
            self,
            fold_shapes=fold_shapes,
            recurse_subgraphs=recurse_subgraphs,
            partitioning=partitioning,
            error_ok=error_ok,
            flatten_subgraphs=flatten_subgraphs,
            size_threshold=size_threshold,
            should_exclude_node=should_exclude_node,
            recurse_functions=recurse_functions,
        )

    # ---- building --------------------------------------------------------------------------

    def _generate_name(self, prefix, existing_names):
        """``prefix_<n>`` with the graph's counter n, skipping names already taken."""
        while True:
            name = f"{prefix}_{self.name_idx}"
            self.name_idx += 1
            if name not in existing_names:
                existing_names.add(name)
                return name

    def layer(self, inputs=None, outputs=None, *args, **kwargs):
        """Create a node, append it, and create tensors for str/array/list entries. Returns its outputs."""
        inputs = [] if inputs is None else inputs
        outputs = [] if outputs is None else outputs
        existing = set(self.tensors().keys())

        def as_tensors(entries):
            made = []
            for entry in entries:
                if isinstance(entry, Tensor):
                    made.append(entry)
                elif isinstance(entry, str):
                    made.append(Variable(self._generate_name(entry, existing)))
                elif isinstance(entry, np.ndarray):
                    made.append(Constant(self._generate_name("onnx_graphsurgeon_constant", existing), entry))
                elif isinstance(entry, (list, tuple)) and all(isinstance(v, Number) for v in entry):
                    is_float = any(isinstance(v, float) for v in entry)
                    values = np.array(entry, dtype=np.float32 if is_float else np.int64)
                    made.append(Constant(self._generate_name("onnx_graphsurgeon_lst_constant", existing), values))
                else:
                    raise OnnxGraphSurgeonException(
                        f"Unrecognized type passed to Graph.layer: {entry}.\n"
                        "\tHint: Did you forget to unpack a list with `*`?\n"
                        "\tPlease use Tensors, strings, or NumPy arrays."
                    )
            return made

        inputs = as_tensors(inputs)
        outputs = as_tensors(outputs)
        if "name" not in kwargs:
            node_names = {n.name for n in self.nodes}
            kwargs["name"] = self._generate_name("onnx_graphsurgeon_node", node_names)
        node = Node(*args, **kwargs, inputs=inputs, outputs=outputs)
        self.nodes.append(node)
        return node.outputs

    def copy(self, tensor_map=None):
        """Copy nodes and tensors (not weights or attribute values, except Graph attributes)."""
        outer = OrderedDict(tensor_map) if tensor_map else OrderedDict()
        local = OrderedDict()
        local_names = self._local_names()
        for name, t in self.tensors().items():
            if name in outer and name not in local_names and not isinstance(t, Constant):
                local[name] = outer[name]
            else:
                local[name] = t.copy()
        merged = OrderedDict(outer)
        merged.update(local)

        def mapped(tensors):
            return [merged[t.name] if not t.is_empty() else t.copy() for t in tensors]

        nodes = [n.copy(inputs=mapped(n.inputs), outputs=mapped(n.outputs), tensor_map=merged) for n in self.nodes]
        copied = Graph(
            nodes=nodes,
            inputs=mapped(self.inputs),
            outputs=mapped(self.outputs),
            name=self.name,
            doc_string=self.doc_string,
            opset=self.opset,
            import_domains=self.import_domains,
            producer_name=self.producer_name,
            producer_version=self.producer_version,
            functions=[f.copy() for f in self.functions],
            ir_version=self.ir_version,
        )
        copied.name_idx = self.name_idx
        return copied

    def __str__(self):
        nodes = "\n".join(str(n) for n in self.nodes)
        funcs = [f.name for f in self.functions]
        return (
            f"Graph {self.name} (Opset {self.opset})\nLocal Functions: {funcs}\n"
            f"Inputs: {self.inputs}\nNodes: {nodes}\nOutputs: {self.outputs}"
        )

    def __repr__(self):
        return self.__str__()
