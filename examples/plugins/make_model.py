#!/usr/bin/env python3
"""Writes scaled_tanh.onnx (x → Relu → ScaledTanh(alpha, beta) → y) and a random input x.npy into DIR."""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

out = sys.argv[1] if len(sys.argv) > 1 else "."
nodes = [helper.make_node("Relu", ["x"], ["r"]),
         helper.make_node("ScaledTanh", ["r"], ["y"], alpha=1.5, beta=0.75, plugin_version="1")]
graph = helper.make_graph(nodes, "scaled_tanh", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])])
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), f"{out}/scaled_tanh.onnx")
np.save(f"{out}/x.npy", np.random.default_rng(3).standard_normal((2, 3, 4)).astype(np.float32))
