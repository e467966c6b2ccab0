#!/usr/bin/env python3
"""Print and verify the structure of an exported PackNet01 ONNX model (see /work/shared/packnet01.md).

usage: check_structure.py MODEL.onnx [--expect] [--expect-full] [--json]

Always prints the node count, op histogram and the spec's structural counts. --expect verifies the
width- and resolution-independent structure (node counts, 47 GroupNorm subgraphs, 41 Pad chains, 3 Resize,
5 DepthToSpace, 10 Conv3d, ...); --expect-full also verifies the full model's 128,294,020 parameters.
Exits 1 on any mismatch.
"""
import argparse
import collections
import json
import sys

import numpy as np
import onnx
from onnx import numpy_helper

FULL_PARAMS = 128_294_020
# The total depends on the opset: 1684 is the spec's opset-11 number; at opset 13 torch 1.13 emits 1771, as the
# 90 Unsqueeze take their axes from Constant inputs (+90) and Resize drops its Constant roi input (-3).
EXPECTED_NODES = {11: 1684, 13: 1771}
EXPECTED = {
    "non_constant_nodes": 1069,
    "groupnorm": 47,
    "groupnorm_after_conv": 37,
    "groupnorm_after_add": 10,
    "pad": 41,
    "pad_chains_constant": 41,
    "pad_into_conv": 41,
    "resize": 3,
    "depth_to_space": 5,
    "conv": 61,
    "conv3d": 10,
    "space_to_depth_transpose": 5,
    "sigmoid": 4,
}
# Ops the pad chains are built from (all inputs ultimately Constant).
PAD_CHAIN_OPS = {"Constant", "ConstantOfShape", "Concat", "Reshape", "Slice", "Transpose", "Cast"}


def np_dtype(onnx_type):
    if hasattr(onnx.helper, "tensor_dtype_to_np_dtype"):  # onnx >= 1.13
        return onnx.helper.tensor_dtype_to_np_dtype(onnx_type)
    return onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[onnx_type]  # Debian's onnx 1.12


def as_list(value):
    return [] if value is None else np.asarray(value).reshape(-1).tolist()


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class Graph:
    def __init__(self, model):
        self.g = model.graph
        self.init = {t.name: t for t in self.g.initializer}
        self.producer = {o: n for n in self.g.node for o in n.output}
        self.consumers = collections.defaultdict(list)
        for n in self.g.node:
            for i in n.input:
                self.consumers[i].append(n)

    def const_value(self, name):
        """Value of a tensor computed only from Constants/initializers via the pad-chain ops, else None."""
        if name in self.init:
            return numpy_helper.to_array(self.init[name])
        n = self.producer.get(name)
        if n is None or n.op_type not in PAD_CHAIN_OPS:
            return None
        a = attrs(n)
        if n.op_type == "Constant":
            return numpy_helper.to_array(a["value"]) if "value" in a else None
        ins = [self.const_value(i) if i else None for i in n.input]
        if any(v is None for i, v in zip(n.input, ins) if i):
            return None
        if n.op_type == "ConstantOfShape":
            fill = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
            return np.full(tuple(int(d) for d in ins[0]), fill.reshape(-1)[0], dtype=fill.dtype)
        if n.op_type == "Concat":
            return np.concatenate(ins, axis=a["axis"])
        if n.op_type == "Reshape":
            shape = [int(d) for d in ins[1]]
            shape = [ins[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
            return ins[0].reshape(shape)
        if n.op_type == "Transpose":
            return np.transpose(ins[0], a.get("perm"))
        if n.op_type == "Cast":
            return ins[0].astype(np_dtype(a["to"]))
        if n.op_type == "Slice":
            data, starts, ends = ins[0], ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
            steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
            sl = [slice(None)] * data.ndim
            for s, e, ax, st in zip(starts, ends, axes, steps):
                dim = data.shape[int(ax)]
                s, e, st = int(s), int(e), int(st)
                # ONNX clamps huge sentinels (INT64_MIN/MAX); Python slicing needs None for "to the end".
                sl[int(ax)] = slice(s if -dim <= s < dim else None, e if -dim - 1 <= e <= dim else None, st)
            return data[tuple(sl)]
        return None

    def only_consumer(self, name, op_type):
        c = self.consumers.get(name, [])
        return c[0] if len(c) == 1 and c[0].op_type == op_type else None


def analyze(model):
    G = Graph(model)
    nodes = G.g.node
    hist = collections.Counter(n.op_type for n in nodes)
    r = {"nodes": len(nodes), "non_constant_nodes": len(nodes) - hist["Constant"]}
    problems = []

    # GroupNorm: Reshape(X,[0,16,-1]) → InstanceNorm(1s, 0s, 1e-5) → Reshape(·, Shape(X)) → Mul(γ) → Add(β) → Elu.
    gn_src = collections.Counter()
    for n in nodes:
        if n.op_type != "InstanceNormalization":
            continue
        where = f"InstanceNormalization {n.name}"
        pre = G.producer.get(n.input[0])
        if pre is None or pre.op_type != "Reshape" or as_list(G.const_value(pre.input[1])) != [0, 16, -1]:
            problems.append(f"{where}: input is not Reshape(X, [0,16,-1])")
            continue
        scale, bias = G.const_value(n.input[1]), G.const_value(n.input[2])
        if scale is None or bias is None or not np.all(scale == 1) or not np.all(bias == 0):
            problems.append(f"{where}: scale/B are not constant ones/zeros")
        if abs(attrs(n).get("epsilon", 1e-5) - 1e-5) > 1e-9:
            problems.append(f"{where}: epsilon {attrs(n).get('epsilon')}")
        post = G.only_consumer(n.output[0], "Reshape")
        shape_src = G.producer.get(post.input[1]) if post else None
        if post is None or shape_src is None or shape_src.op_type != "Shape" or shape_src.input[0] != pre.input[0]:
            problems.append(f"{where}: not followed by Reshape(., Shape(X))")
            continue
        mul = G.only_consumer(post.output[0], "Mul")
        add = G.only_consumer(mul.output[0], "Add") if mul else None
        elu = G.only_consumer(add.output[0], "Elu") if add else None
        if elu is None:
            problems.append(f"{where}: not followed by Mul → Add → Elu")
            continue
        for op, what in ((mul, "gamma"), (add, "beta")):
            p = [i for i in op.input if i in G.init]
            if len(p) != 1 or len(G.init[p[0]].dims) != 3 or list(G.init[p[0]].dims[1:]) != [1, 1]:
                problems.append(f"{where}: {what} is not a [C,1,1] initializer")
        src = G.producer.get(pre.input[0])
        gn_src[src.op_type if src else "graph input"] += 1
    r["groupnorm"] = hist["InstanceNormalization"]
    r["groupnorm_after_conv"] = gn_src["Conv"]
    r["groupnorm_after_add"] = gn_src["Add"]

    # Pads: pads computed only from constants, folding to [0,0,p,p,0,0,p,p]; each feeds Convs with zero pads.
    r["pad"] = hist["Pad"]
    r["pad_chains_constant"] = r["pad_into_conv"] = 0
    pad_sizes = collections.Counter()
    for n in (n for n in nodes if n.op_type == "Pad"):
        pads = G.const_value(n.input[1]) if len(n.input) > 1 else None
        p = int(pads.reshape(-1)[2]) if pads is not None and pads.size == 8 else None
        if pads is None:
            problems.append(f"Pad {n.name}: pads are not computed from constants only")
        elif p is None or list(pads) != [0, 0, p, p, 0, 0, p, p]:
            problems.append(f"Pad {n.name}: pads fold to {list(pads)}")
        else:
            r["pad_chains_constant"] += 1
            pad_sizes[p] += 1
        mode = attrs(n).get("mode", b"constant")
        value = G.const_value(n.input[2]) if len(n.input) > 2 and n.input[2] else np.zeros(1)
        cons = G.consumers.get(n.output[0], [])
        if (mode == b"constant" and value is not None and np.all(value == 0) and cons
                and all(c.op_type == "Conv" and not any(attrs(c).get("pads", [0])) for c in cons)):
            r["pad_into_conv"] += 1
        else:
            problems.append(f"Pad {n.name}: not a zero pad feeding only unpadded Convs")
    r["pad_sizes"] = dict(sorted(pad_sizes.items()))

    # Resize: nearest / asymmetric / floor, literal scales [1,1,2,2].
    r["resize"] = hist["Resize"]
    for n in (n for n in nodes if n.op_type == "Resize"):
        a = attrs(n)
        scales = G.const_value(n.input[2]) if len(n.input) > 2 else None
        if (a.get("mode"), a.get("coordinate_transformation_mode"), a.get("nearest_mode")) != \
                (b"nearest", b"asymmetric", b"floor") or as_list(scales) != [1, 1, 2, 2]:
            problems.append(f"Resize {n.name}: {a} scales {scales}")

    r["depth_to_space"] = hist["DepthToSpace"]
    for n in (n for n in nodes if n.op_type == "DepthToSpace"):
        a = attrs(n)
        if a.get("mode", b"DCR") != b"CRD" or a.get("blocksize") != 2:
            problems.append(f"DepthToSpace {n.name}: {a}")

    convs = [n for n in nodes if n.op_type == "Conv"]
    r["conv"] = len(convs)
    r["conv3d"] = sum(1 for n in convs if n.input[1] in G.init and len(G.init[n.input[1]].dims) == 5)
    r["space_to_depth_transpose"] = sum(
        1 for n in nodes if n.op_type == "Transpose" and list(attrs(n).get("perm", [])) == [0, 1, 3, 5, 2, 4])
    r["sigmoid"] = hist["Sigmoid"]
    r["params"] = int(sum(np.prod(t.dims, dtype=np.int64) for t in G.g.initializer))
    r["op_histogram"] = dict(sorted(hist.items()))
    return r, problems


def unknown_rank_count(model):
    """Node outputs that ONNX's own shape inference leaves without a rank (informational)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    typed = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    return sum(1 for n in inferred.graph.node for o in n.output
               if o not in typed or not typed[o].type.tensor_type.HasField("shape"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--expect", action="store_true", help="verify the structure (any width/resolution)")
    ap.add_argument("--expect-full", action="store_true", help="--expect plus the full model's parameter count")
    ap.add_argument("--json", action="store_true", help="print the counts as JSON")
    ap.add_argument("--no-shape-inference", action="store_true", help="skip the unknown-rank count")
    args = ap.parse_args()

    model = onnx.load(args.model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    r, problems = analyze(model)
    r["opset"] = opset
    if not args.no_shape_inference:
        r["unknown_rank_tensors"] = unknown_rank_count(model)

    if args.json:
        print(json.dumps(r, indent=1))
    else:
        print(f"{args.model}: opset {opset}, {r['nodes']} nodes ({r['non_constant_nodes']} not Constant), "
              f"{r['params']:,} parameters")
        print("ops: " + ", ".join(f"{k} {v}" for k, v in r["op_histogram"].items()))
        for k in list(EXPECTED) + ["pad_sizes", "unknown_rank_tensors"]:
            if k in r:
                print(f"  {k}: {r[k]}")

    if args.expect or args.expect_full:
        expected = dict(EXPECTED)
        if opset in EXPECTED_NODES:
            expected["nodes"] = EXPECTED_NODES[opset]
        else:
            problems.append(f"opset {opset}: no expected node count (11 or 13)")
        if args.expect_full:
            expected["params"] = FULL_PARAMS
        for k, v in expected.items():
            if r[k] != v:
                problems.append(f"{k}: got {r[k]}, expected {v}")
        for p in problems:
            print("MISMATCH " + p, file=sys.stderr)
        if problems:
            return 1
        print("structure OK" + (" (full model)" if args.expect_full else ""))
    elif problems:
        for p in problems:
            print("note: " + p, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
