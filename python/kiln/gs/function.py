"""Function: an ONNX local function, a Graph with a domain and default attributes."""

import copy as _copy

from .graph import Graph
from .tensor import Variable


class Function(Graph):
    """A model-local function; instantiate it as a node with ``func(graph, inputs, outputs)``."""

    DEFAULT_DOMAIN = "onnx_graphsurgeon"

    def __init__(
        self,
        name,
        domain=None,
        nodes=None,
        inputs=None,
        outputs=None,
        doc_string=None,
        opset=None,
        import_domains=None,
        functions=None,
        attrs=None,
        ir_version=None,
    ):
        self.domain = domain if domain is not None else Function.DEFAULT_DOMAIN
        self.attrs = dict(attrs) if attrs is not None else {}
        super().__init__(
            nodes,
            inputs,
            outputs,
            name=name,
            doc_string=doc_string,
            opset=opset,
            import_domains=import_domains,
            functions=functions,
            ir_version=ir_version,
        )
        # Functions carry no producer fields in ONNX.
        self.__dict__.pop("producer_name", None)
        self.__dict__.pop("producer_version", None)

    @property
    def unique_id(self):
        """(domain, name): what identifies a function in a model."""
        return (self.domain, self.name)

    def cleanup(self, remove_unused_node_outputs=False, recurse_subgraphs=True, remove_unused_graph_inputs=False, recurse_functions=False):
        """Graph.cleanup, but only this function by default."""
        return super().cleanup(remove_unused_node_outputs, recurse_subgraphs, remove_unused_graph_inputs, recurse_functions)

    def fold_constants(self, recurse_functions=False, **kwargs):
        """Graph.fold_constants, but only this function by default."""
        return super().fold_constants(recurse_functions=recurse_functions, **kwargs)

    def toposort(self, recurse_subgraphs=True, recurse_functions=False, mode="nodes"):
        """Graph.toposort, sorting only this function's nodes by default."""
        return super().toposort(recurse_subgraphs=recurse_subgraphs, recurse_functions=recurse_functions, mode=mode)

    def copy(self):
        """A copy of the function's nodes and tensors (weights and attributes shared)."""
        graph_copy = super().copy()
        func = Function(
            self.name,
            self.domain,
            nodes=graph_copy.nodes,
            inputs=graph_copy.inputs,
            outputs=graph_copy.outputs,
            doc_string=self.doc_string,
            opset=self.opset,
            import_domains=self.import_domains,
            functions=self.functions,
            attrs=_copy.copy(self.attrs),
            ir_version=self.ir_version,
        )
        func.name_idx = self.name_idx
        return func

    def __call__(self, graph, inputs=None, outputs=None, *args, **kwargs):
        """Add a node calling this function to ``graph``; returns the node's outputs."""
        if outputs is None:
            outputs = [out.name for out in self.outputs]
        generated = [not hasattr(o, "name") for o in outputs]
        kwargs.setdefault("domain", self.domain)
        made = graph.layer(*args, inputs=inputs, outputs=outputs, op=self.name, **kwargs)
        for tensor, template, fresh in zip(made, self.outputs, generated):
            if fresh and isinstance(tensor, Variable):
                tensor.dtype = getattr(template, "dtype", None)
                tensor.shape = getattr(template, "shape", None)
        return made

    def __eq__(self, other):
        return isinstance(other, Function) and self.unique_id == other.unique_id and super().__eq__(other)

    __hash__ = None

    def __str__(self):
        nodes = "\n".join(str(n) for n in self.nodes)
        return (
            f"Function {self.name}, Domain {self.domain}, Opset {self.opset}\n"
            f"Inputs: {self.inputs}\nNodes: {nodes}\nOutputs: {self.outputs}"
        )
