#!/usr/bin/env python3
"""Exports the suite's torch models to ONNX with the system's torch / torchvision: out/models/torch/<file>.onnx.

Architectures from torchvision (and one nn.TransformerEncoder), weights random but seeded (weights=None after
torch.manual_seed), so nothing is downloaded and every run writes the same bytes. A file is reused when its stamp
(<file>.onnx.stamp) holds the hash of this script and the torch/torchvision versions; anything else re-exports it.

Besides the plain exports at opset 13 and 17, variants that real exports bring along (issue 11 item 5):
  resnet50_dynbatch_op17     batch dimension dynamic ("N"), for optimization profiles
  mobilenet_v3_large_initinputs_op13   every initializer also listed as a graph input (keep_initializers_as_inputs)
  regnet_y_400mf_extdata_op13          weights in an external data file (<file>.onnx.data)
  transformer_encoder_fp16_op17        inputs, outputs and weights in fp16 (onnxruntime's float16 converter)
  resample_op<N>             Upsample / Resize, Pad, Split, ReduceMean as opsets 9, 10, 11 and 13 write them

  python tests/models/export_torchvision.py [--out out/models/torch] [--only NAME ...] [--suite fast|all] [--list]
  NAME: a spec (resnet50) or one file (resnet50_op13); --suite: the files tests/models/suite.py runs (fast: the
  entries CI runs; all: every entry). Default: every file.
"""
import argparse
import hashlib
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED = 20261130


def _tv(name, **kw):
    def build():
        import torchvision
        return getattr(torchvision.models, name)(weights=None, **kw)
    return build


def _deeplab():
    import torchvision
    # aux_loss off and weights_backbone None: no download; the model returns {"out": ...}, wrapped to a tensor.
    m = torchvision.models.segmentation.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None)
    import torch

    class Out(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)["out"]
    return Out(m)


def _encoder():
    import torch
    layer = torch.nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, dropout=0.0,
                                             activation="gelu", batch_first=True)
    return torch.nn.TransformerEncoder(layer, num_layers=2)


def _resample():
    """Ops whose ONNX form changed across opsets: interpolate (Upsample-9 / Resize-10/11/13), Pad, Split, mean."""
    import torch
    import torch.nn.functional as F

    class Resample(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 8, 3)

        def forward(self, x):
            y = self.conv(F.pad(x, (1, 2, 1, 0), mode="reflect"))
            a, b = torch.split(y, [3, 5], dim=1)
            a = F.interpolate(a, scale_factor=2.0, mode="nearest")
            b = F.interpolate(b, scale_factor=2.0, mode="bilinear", align_corners=False)
            z = torch.cat([a, b], dim=1)
            return z - z.mean(dim=(2, 3), keepdim=True), F.pad(z, (2, 2, 0, 1), value=0.5)
    return Resample()


# name, builder, input shape, opsets, export options. Shapes are what the models need (224x224 classifiers).
SPECS = [
    ("resnet50", _tv("resnet50"), [1, 3, 224, 224], (13, 17), {}),
    ("mobilenet_v3_large", _tv("mobilenet_v3_large"), [1, 3, 224, 224], (13, 17), {}),
    ("efficientnet_b0", _tv("efficientnet_b0"), [1, 3, 224, 224], (13, 17), {}),
    ("regnet_y_400mf", _tv("regnet_y_400mf"), [1, 3, 224, 224], (13, 17), {}),
    ("convnext_tiny", _tv("convnext_tiny"), [1, 3, 224, 224], (13, 17), {}),
    ("vit_b_16", _tv("vit_b_16"), [1, 3, 224, 224], (13, 17), {}),
    ("swin_t", _tv("swin_t"), [1, 3, 224, 224], (13, 17), {}),
    ("deeplabv3_mobilenet_v3_large", _deeplab, [1, 3, 256, 256], (13, 17), {}),
    ("transformer_encoder", _encoder, [2, 16, 64], (13, 17), {}),
    ("resnet50_dynbatch", _tv("resnet50"), [1, 3, 224, 224], (17,), {"dynamic_batch": True}),
    ("mobilenet_v3_large_initinputs", _tv("mobilenet_v3_large"), [1, 3, 224, 224], (13,),
     {"keep_initializers_as_inputs": True}),
    ("regnet_y_400mf_extdata", _tv("regnet_y_400mf"), [1, 3, 224, 224], (13,), {"external_data": True}),
    ("transformer_encoder_fp16", _encoder, [2, 16, 64], (17,), {"fp16": True}),
    ("resample", _resample, [1, 4, 10, 12], (9, 10, 11, 13), {}),
]


def file_name(name, opset):
    return f"{name}_op{opset}.onnx"


def stamp_text():
    import torch
    import torchvision
    with open(os.path.abspath(__file__), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return f"{digest} torch {torch.__version__} torchvision {torchvision.__version__}\n"


def seeded_model(build):
    """The module an export writes: built after torch.manual_seed(SEED), eval mode, weights made checkable.

    bench/bench_models_cuda.py times this same module in PyTorch, so kiln and PyTorch run the same weights.
    """
    import torch
    torch.manual_seed(SEED)
    model = build().eval()
    with torch.no_grad():
        # Some initializers zero a layer (ViT's classification head): its output would be all zeros and match
        # any all-zero answer. Such weights get small random values instead.
        for p in model.parameters():
            if p.dim() >= 2 and not p.any():
                p.normal_(0.0, 0.02)
        # Fresh norms are identities (scale 1, shift 0, BatchNorm mean 0 / var 1), which would let a wrong
        # BatchNorm fold or a LayerNormalization that drops its scale pass unnoticed.
        for mod in model.modules():
            if isinstance(mod, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm, torch.nn.GroupNorm)):
                if getattr(mod, "weight", None) is not None:
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.normal_(0.0, 0.1)
                if getattr(mod, "running_mean", None) is not None:
                    mod.running_mean.normal_(0.0, 0.1)
                    mod.running_var.uniform_(0.5, 1.5)
    return model


def _sdpa_as_ops(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **_):
    """scaled_dot_product_attention as MatMul / Softmax / MatMul, the form torch 1.13's exporter writes.

    torch >= 2.0's nn.MultiheadAttention calls F.scaled_dot_product_attention, which the TorchScript exporter
    writes only from opset 14; exported through this function, every opset gets the same plain graph.
    """
    import torch
    scores = torch.matmul(q, k.transpose(-2, -1)) * (scale if scale is not None else q.size(-1) ** -0.5)
    if is_causal:
        n, s = q.size(-2), k.size(-2)
        attn_mask = torch.ones(n, s, dtype=torch.bool, device=q.device).tril()
    if attn_mask is not None:
        scores = (scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool
                  else scores + attn_mask)
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def onnx_export(model, args, path, **kw):
    """torch.onnx.export with the TorchScript exporter on every torch this runs with.

    torch >= 2.9 defaults to the dynamo exporter (dynamo=True): it is turned off where the argument exists, and
    F.scaled_dot_product_attention is exported as plain ops (_sdpa_as_ops). torch 1.13 has neither: unchanged.
    """
    import inspect

    import torch
    import torch.nn.functional as F
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False
    sdpa = getattr(F, "scaled_dot_product_attention", None)
    if sdpa is not None:
        F.scaled_dot_product_attention = _sdpa_as_ops
    try:
        torch.onnx.export(model, args, path, **kw)
    finally:
        if sdpa is not None:
            F.scaled_dot_product_attention = sdpa


def export_one(name, build, shape, opset, opts, path):
    import onnx
    import torch
    model = seeded_model(build)
    x = torch.randn(*shape)
    dynamic = {"input": {0: "N"}, "output": {0: "N"}} if opts.get("dynamic_batch") else None
    tmp = path + ".tmp"
    # Not under no_grad: there nn.MultiheadAttention takes its fused fast path (aten::_native_multi_head_attention),
    # which the exporter cannot write; with gradients on it traces the plain MatMul / Softmax form.
    onnx_export(model, (x,), tmp, opset_version=opset, input_names=["input"],
                output_names=["output"] if name != "resample" else ["centered", "padded"],
                dynamic_axes=dynamic, do_constant_folding=True,
                keep_initializers_as_inputs=bool(opts.get("keep_initializers_as_inputs")))
    m = onnx.load(tmp)
    os.remove(tmp)
    m.producer_name, m.producer_version = "kiln tests/models/export_torchvision.py", torch.__version__
    if opts.get("fp16"):
        from onnxruntime.transformers.float16 import convert_float_to_float16
        m = convert_float_to_float16(m, keep_io_types=False, disable_shape_infer=True)
    if opts.get("external_data"):
        data = os.path.basename(path) + ".data"
        if os.path.exists(path + ".data"):
            os.remove(path + ".data")
        onnx.save(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location=data,
                  size_threshold=1024)
    else:
        onnx.save(m, path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(ROOT, "out", "models", "torch"))
    p.add_argument("--only", nargs="*", help="specs or files (without .onnx) to export")
    p.add_argument("--suite", choices=("fast", "all"), help="the files the suite's (fast) entries use")
    p.add_argument("--list", action="store_true", help="print the files this script writes and exit")
    a = p.parse_args()
    wanted = set(a.only or [])
    if a.suite:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import suite
        wanted |= {os.path.basename(m["path"])[:-len(".onnx")] for m in suite.MODELS
                   if m["path"].startswith("torch/") and (a.suite == "all" or not m["slow"])}
    jobs = [(n, b, s, o, opts) for n, b, s, opsets, opts in SPECS for o in opsets
            if not wanted or n in wanted or file_name(n, o)[:-len(".onnx")] in wanted]
    if a.list:
        print("\n".join(file_name(n, o) for n, _, _, o, _ in jobs))
        return 0
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(a.out, exist_ok=True)
    stamp = stamp_text()
    t_all, done, failed = time.perf_counter(), 0, []
    for name, build, shape, opset, opts in jobs:
        path = os.path.join(a.out, file_name(name, opset))
        stamp_path = path + ".stamp"
        if os.path.exists(path) and os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
            continue
        t0 = time.perf_counter()
        try:
            export_one(name, build, shape, opset, opts, path)
        except Exception as e:  # one exporter failure must not stop the others; the exit status says so
            failed.append(file_name(name, opset))
            print(f"export_torchvision: {file_name(name, opset)} FAILED: {type(e).__name__}: {e}", flush=True)
            continue
        with open(stamp_path, "w") as f:
            f.write(stamp)
        done += 1
        print(f"export_torchvision: {file_name(name, opset)} in {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"export_torchvision: {done} exported, {len(jobs) - done} cached, {time.perf_counter() - t_all:.1f} s "
          f"in {a.out}" + (f"; FAILED: {' '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
