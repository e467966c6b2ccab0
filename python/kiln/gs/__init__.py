"""kiln.gs: a drop-in for onnx_graphsurgeon's public API, folding constants with kiln.

``import kiln.gs as gs`` and the usual script works: ``gs.import_onnx``, ``node.i()``,
``gs.Node(...)``, ``graph.fold_constants().cleanup().toposort()``, ``gs.export_onnx``.
See docs/python_gs.md for where behaviour differs (kiln folds more).
"""

from . import logger
from .errors import OnnxGraphSurgeonException
from .exporter import export_onnx
from .function import Function
from .graph import Graph
from .importer import import_onnx
from .node import Node
from .tensor import Constant, LazyValues, Tensor, Variable

__all__ = [
    "Constant",
    "Function",
    "Graph",
    "LazyValues",
    "Node",
    "OnnxGraphSurgeonException",
    "Tensor",
    "Variable",
    "export_onnx",
    "import_onnx",
    "logger",
]
