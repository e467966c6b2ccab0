"""Node: one operation; its input/output lists stay in sync with the tensors' lists."""

from collections import OrderedDict
from dataclasses import dataclass

from ._synclist import set_links


class Node:
    """An operation that consumes and produces Tensors."""

    @dataclass
    class AttributeRef:
        """An attribute whose value is the parent Function's attribute ``name``."""

        name: str
        type: type

    def __init__(self, op, name=None, attrs=None, inputs=None, outputs=None, domain=None):
        self.op = op
        self.name = name if name is not None else ""
        self.attrs = OrderedDict(attrs) if attrs is not None else OrderedDict()
        self.inputs = inputs if inputs is not None else []
        self.outputs = outputs if outputs is not None else []
        self.domain = domain

    def __setattr__(self, name, value):
        if name in ("inputs", "outputs"):
            set_links(self, name, value)
        else:
            object.__setattr__(self, name, value)

    def i(self, tensor_idx=0, producer_idx=0):
        """Producer of an input: ``self.inputs[tensor_idx].inputs[producer_idx]``."""
        return self.inputs[tensor_idx].inputs[producer_idx]

    def o(self, consumer_idx=0, tensor_idx=0):
        """Consumer of an output: ``self.outputs[tensor_idx].outputs[consumer_idx]``."""
        return self.outputs[tensor_idx].outputs[consumer_idx]

    def subgraphs(self, recursive=False):
        """Graphs held in this node's attributes (If/Loop/Scan bodies)."""
        from .graph import Graph

        direct = []
        for value in self.attrs.values():
            graphs = value if isinstance(value, (list, tuple)) else [value]
            direct.extend(g for g in graphs if isinstance(g, Graph))
        yield from direct
        if recursive:
            for g in direct:
                yield from g.subgraphs(recursive=True)

    def copy(self, inputs=None, outputs=None, tensor_map=None):
        """A shallow copy with new input/output lists; Graph attributes are copied too."""
        from .graph import Graph

        attrs = OrderedDict()
        for key, value in self.attrs.items():
            if isinstance(value, Graph):
                attrs[key] = value.copy(tensor_map)
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Graph) for v in value):
                attrs[key] = [v.copy(tensor_map) for v in value]
            else:
                attrs[key] = value
        return Node(self.op, self.name, attrs, inputs=inputs, outputs=outputs, domain=self.domain)

    def __str__(self):
        text = f"{self.name} ({self.op})"

        def listing(tensors):
            return "".join(f"\n\t\t{t}" for t in tensors)

        text += f"\n\tInputs: [{listing(self.inputs)}\n\t]"
        text += f"\n\tOutputs: [{listing(self.outputs)}\n\t]"
        if self.attrs:
            text += f"\nAttributes: {dict(self.attrs)}"
        if self.domain:
            text += f"\nDomain: {self.domain}"
        return text

    def __repr__(self):
        return self.__str__()

    def __eq__(self, other):
        """Nodes are equal when name, op, domain, attributes and tensor lists are."""
        if not isinstance(other, Node):
            return False
        return (
            self.name == other.name
            and self.op == other.op
            and self.domain == other.domain
            and self.attrs == other.attrs
            and list(self.inputs) == list(other.inputs)
            and list(self.outputs) == list(other.outputs)
        )

    __hash__ = None
