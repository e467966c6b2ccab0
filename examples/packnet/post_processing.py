"""PackNet01 post-processing as an ONNX-GraphSurgeon script: every exported GroupNorm becomes one
GroupNormalizationPlugin node, the pad and upsample constant subgraphs are folded, the graph is cleaned up,
sorted and saved.

The script only uses onnx_graphsurgeon's public API, so it runs unchanged on either implementation:

    .venv/bin/python examples/packnet/post_processing.py packnet01.onnx packnet01_gn.onnx --gs kiln
    .venv/bin/python examples/packnet/post_processing.py packnet01.onnx packnet01_gn.onnx --gs onnx_graphsurgeon

PyTorch exports GroupNorm(G groups, eps) on X [N, C, H, W] as

    X -> Reshape(X, [0, G, -1]) -> InstanceNormalization(scale = 1, B = 0, epsilon = eps)
      -> Reshape(., Shape(X)) -> Mul(., gamma [C, 1, 1]) -> Add(., beta [C, 1, 1]) -> Y

which is replaced by GroupNormalizationPlugin(X, scale = gamma as [C], bias = beta as [C]) -> Y with the
fields kiln's built-in plugin (and TensorRT's) reads: eps and num_groups. The Shape(X) chain and the old nodes
are left dangling and removed by cleanup(). Anything that does not match the pattern exactly is left alone
and reported.
"""

import argparse
import importlib
import os
import sys
import time

import numpy as np
import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_gs(which):
    """The graph-surgery module: kiln.gs (from an installed kiln, else this checkout) or onnx_graphsurgeon."""
    name = "kiln.gs" if which == "kiln" else "onnx_graphsurgeon"
    try:
        return importlib.import_module(name)
    except ImportError:
        if which != "kiln":
            raise
    sys.path.append(os.path.join(ROOT, "python"))
    return importlib.import_module(name)


def constant_value(gs, tensor):
    """The value of a tensor that is an initializer or the output of a Constant node; None otherwise."""
    if isinstance(tensor, gs.Constant):
        return tensor.values
    if len(tensor.inputs) == 1 and tensor.inputs[0].op == "Constant":
        value = tensor.inputs[0].attrs.get("value")
        if isinstance(value, gs.Constant):
            return value.values
    return None


def affine_operand(gs, node):
    """The [C, 1, 1] constant operand of the Mul (gamma) or Add (beta) after a GroupNorm; None if absent."""
    for tensor in node.inputs:
        value = constant_value(gs, tensor)
        if value is not None:
            return value
    return None


def only_consumer(node, op):
    """The single node reading node's single output, if it is an `op`; None otherwise."""
    if len(node.outputs) != 1 or len(node.outputs[0].outputs) != 1:
        return None
    consumer = node.o()
    return consumer if consumer.op == op else None


def match_group_norm(gs, norm):
    """The exported GroupNorm around one InstanceNormalization, as a dict; or a string saying why not."""
    if not norm.inputs or not norm.inputs[0].inputs:
        return "its input has no producer"
    reshape_in = norm.i()
    if reshape_in.op != "Reshape":
        return f"its input comes from {reshape_in.op}, not Reshape"
    reshape_out = only_consumer(norm, "Reshape")
    mul = reshape_out and only_consumer(reshape_out, "Mul")
    add = mul and only_consumer(mul, "Add")
    if add is None:
        return "it is not followed by Reshape -> Mul -> Add"

    group_shape = constant_value(gs, reshape_in.inputs[1])
    if group_shape is None or group_shape.shape != (3,):
        return "the group reshape's shape is not a constant [0, G, -1]"
    groups = int(group_shape[1])
    scale, bias = constant_value(gs, norm.inputs[1]), constant_value(gs, norm.inputs[2])
    if scale is None or bias is None or not np.all(scale == 1) or not np.all(bias == 0):
        return "InstanceNormalization's scale/B are not constant 1/0"
    gamma, beta = affine_operand(gs, mul), affine_operand(gs, add)
    if gamma is None or beta is None:
        return "gamma or beta is not constant"
    channels = gamma.size
    if gamma.shape != (channels, 1, 1) or beta.shape != (channels, 1, 1) or groups <= 0 or channels % groups:
        return f"gamma {gamma.shape} / beta {beta.shape} do not fit {groups} groups"
    return {
        "x": reshape_in.inputs[0],
        "y": add.outputs[0],
        "add": add,
        "groups": groups,
        "eps": float(norm.attrs.get("epsilon", 1e-5)),
        "gamma": gamma.reshape(channels),
        "beta": beta.reshape(channels),
    }


def collapse_group_norms(gs, graph):
    """Replace every exported GroupNorm by a GroupNormalizationPlugin node; returns how many."""
    collapsed = 0
    for norm in [n for n in graph.nodes if n.op == "InstanceNormalization"]:
        match = match_group_norm(gs, norm)
        if isinstance(match, str):
            print(f"  left {norm.name} alone: {match}")
            continue
        # The plugin takes over Add's output; the old chain stays behind, unused, until cleanup().
        match["add"].outputs.clear()
        scale = gs.Constant(f"{norm.name}_gn_scale", np.ascontiguousarray(match["gamma"]))
        bias = gs.Constant(f"{norm.name}_gn_bias", np.ascontiguousarray(match["beta"]))
        plugin = gs.Node(
            op="GroupNormalizationPlugin",
            name=f"{norm.name}_GroupNormalizationPlugin",
            attrs={"eps": match["eps"], "num_groups": match["groups"], "plugin_version": "1", "plugin_namespace": ""},
            inputs=[match["x"], scale, bias],
            outputs=[match["y"]],
        )
        graph.nodes.append(plugin)
        collapsed += 1
    return collapsed


def histogram(graph):
    counts = {}
    for node in graph.nodes:
        counts[node.op] = counts.get(node.op, 0) + 1
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="PackNet01 ONNX export (examples/packnet/export.py)")
    parser.add_argument("out", help="where to write the post-processed model")
    parser.add_argument("--gs", choices=["kiln", "onnx_graphsurgeon"], default="kiln",
                        help="graph-surgery implementation (default: kiln)")
    args = parser.parse_args(argv)

    gs = load_gs(args.gs)
    start = time.perf_counter()
    graph = gs.import_onnx(onnx.load(args.model))
    before = len(graph.nodes)

    collapsed = collapse_group_norms(gs, graph)
    graph.fold_constants()  # Pad's pads and Resize's scales come from constant-only chains
    graph.cleanup().toposort()

    pads_constant = sum(1 for n in graph.nodes if n.op == "Pad" and isinstance(n.inputs[1], gs.Constant))
    resizes_constant = sum(1 for n in graph.nodes if n.op == "Resize" and isinstance(n.inputs[-1], gs.Constant))
    onnx.save(gs.export_onnx(graph), args.out)
    ops = histogram(graph)
    print(f"{args.gs}: collapsed {collapsed} GroupNorm subgraphs into GroupNormalizationPlugin; "
          f"{pads_constant} Pads and {resizes_constant} Resizes have constant inputs")
    print(f"{args.gs}: {before} -> {len(graph.nodes)} nodes in {time.perf_counter() - start:.2f} s; "
          + ", ".join(f"{op} {n}" for op, n in sorted(ops.items())))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
