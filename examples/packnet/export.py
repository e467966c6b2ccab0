#!/usr/bin/env python3
"""Export PackNet01 to ONNX with deterministic random weights, plus a fixed input and PyTorch's output.

usage: export.py --out DIR [--opset 11|13] [--width 1.0] [--height 192 --width-px 640] [--seed 0]

Writes DIR/packnet01.onnx, DIR/input.npy (float32 [1,3,H,W]) and DIR/output.npy (PyTorch's eval output,
float32 [1,1,H,W]), each atomically (temp file in DIR, then os.replace). Meant for Debian's torch 1.13
(/usr/bin/python3), whose exporter produces the graph described in /work/shared/packnet01.md. On torch >= 2.5
(written against the 2.9+ API, where the dynamo exporter is the default; not run here) it asks for that same
TorchScript exporter (dynamo=False), which needs neither the onnx nor the onnxscript package.

build_model(), make_input() and export_onnx() are importable (bench/bench_packnet_cuda.py builds the same
seeded model from them).
"""
import argparse
import inspect
import math
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from packnet01 import PackNet01, count_parameters  # noqa: E402

FULL_PARAMS = 128_294_020
MODEL_NAME = "packnet01.onnx"


def log(msg):
    print(msg, flush=True)


def init_weights(model, seed):
    """Seed every parameter deterministically with non-trivial values.

    Conv weights: N(0, 1/fan_in) keeps pre-activations O(1) (GroupNorm re-normalizes most of them anyway, but
    the heads' sigmoid must not saturate). Biases, GroupNorm gamma and beta are random and clearly away from
    their defaults (0, 1, 0) so a converter that drops or misplaces any of them changes the output.
    """
    gen = torch.Generator().manual_seed(seed)

    def randn(t):
        return torch.randn(t.shape, generator=gen, dtype=t.dtype)

    with torch.no_grad():
        for module in model.modules():  # registration order: deterministic
            if isinstance(module, (nn.Conv2d, nn.Conv3d)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(randn(module.weight) / math.sqrt(fan_in))
                module.bias.copy_(0.1 * randn(module.bias))
            elif isinstance(module, nn.GroupNorm):
                module.weight.copy_(1.0 + 0.1 * randn(module.weight))
                module.bias.copy_(0.1 * randn(module.bias))


def build_model(width=1.0, seed=0):
    """The seeded PackNet01 in eval mode, on the CPU in fp32: the weights every export and benchmark uses."""
    torch.manual_seed(seed)
    model = PackNet01(width=width)
    init_weights(model, seed)
    return model.eval()


def make_input(seed=0, height=192, width_px=640):
    """The fixed input: float32 [1,3,H,W], RGB-like values in [0, 1)."""
    rng = np.random.default_rng(seed)
    return rng.random((1, 3, height, width_px), dtype=np.float32)


def _accepts_dynamo_kwarg():
    """True when torch.onnx.export has a `dynamo` parameter (torch >= 2.5; its default became True in 2.9)."""
    try:
        return "dynamo" in inspect.signature(torch.onnx.export).parameters
    except (TypeError, ValueError):  # no introspectable signature: assume the modern API
        return True


def export_onnx(model, x, f, opset):
    """Export `model` at input `x` to `f` (path or binary file object) with the TorchScript exporter."""
    kwargs = {}
    if _accepts_dynamo_kwarg():
        kwargs["dynamo"] = False  # the exporter whose graph /work/shared/packnet01.md describes
    with warnings.catch_warnings():
        # Expected and harmless: the pad chains' Slice(step -1) stays unfolded, as in the spec's graph.
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        warnings.filterwarnings("ignore", message="The shape inference of prim::Constant type is missing")  # opset 13
        # torch >= 2.9 announces the legacy exporter's deprecation on every call; we want that exporter.
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export")
        # do_constant_folding=True (the default) is what reproduces the spec's graph: pads come from a chain
        # of constants starting at Constant/ConstantOfShape, GroupNorm's gamma/beta are [C,1,1] initializers.
        torch.onnx.export(model, (x,), f, opset_version=opset, do_constant_folding=True,
                          input_names=["input"], output_names=["disp"], export_params=True, **kwargs)


def atomic_write(path, write):
    """Call write(file_object) on a temp file next to path, then rename it over path."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (created if missing)")
    ap.add_argument("--opset", type=int, default=11, choices=(11, 13))
    ap.add_argument("--width", type=float, default=1.0, help="channel multiplier (1.0 = full model)")
    ap.add_argument("--height", type=int, default=192, help="input height in pixels (multiple of 32)")
    ap.add_argument("--width-px", type=int, default=640, help="input width in pixels (multiple of 32)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    if args.height % 32 or args.width_px % 32 or args.height <= 0 or args.width_px <= 0:
        ap.error("--height and --width-px must be positive multiples of 32")
    if args.width <= 0:
        ap.error("--width must be positive")
    os.makedirs(args.out, exist_ok=True)
    t_start = time.time()

    model = build_model(args.width, args.seed)
    n_params = count_parameters(model)
    log(f"model: PackNet01 width={args.width} params={n_params:,} ({n_params * 4 / 2**20:.1f} MiB fp32)")
    if args.width == 1.0 and n_params != FULL_PARAMS:
        sys.exit(f"error: full model has {n_params:,} parameters, expected {FULL_PARAMS:,}")

    x_np = make_input(args.seed, args.height, args.width_px)
    x = torch.from_numpy(x_np)

    t0 = time.time()
    with torch.no_grad():
        y = model(x)
    y_np = y.numpy().astype(np.float32)
    log(f"pytorch forward {list(x.shape)} -> {list(y.shape)} in {time.time() - t0:.2f} s; "
        f"disp min {y_np.min():.4f} mean {y_np.mean():.4f} max {y_np.max():.4f} std {y_np.std():.4f}")
    # Inverse depth lies in (0, 2); a saturated sigmoid would make the reference useless for comparisons.
    if not (0.05 < y_np.mean() < 1.95 and y_np.std() > 1e-3):
        sys.exit("error: output is saturated or constant; check the weight initialization")

    model_path = os.path.join(args.out, MODEL_NAME)
    t0 = time.time()
    log(f"exporting opset {args.opset} with torch {torch.__version__} ...")
    atomic_write(model_path, lambda f: export_onnx(model, x, f, args.opset))
    log(f"wrote {model_path} ({os.path.getsize(model_path) / 2**20:.1f} MiB) in {time.time() - t0:.2f} s")

    for name, arr in (("input.npy", x_np), ("output.npy", y_np)):
        path = os.path.join(args.out, name)
        atomic_write(path, lambda f, a=arr: np.save(f, a))
        log(f"wrote {path} {arr.dtype} {list(arr.shape)}")
    log(f"done in {time.time() - t_start:.2f} s")


if __name__ == "__main__":
    main()
