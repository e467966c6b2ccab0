#!/usr/bin/env python3
"""The model suite on CUDA (issue 12 items 4-5), in one script with two jobs:

check  every suite model (tests/models/suite.py) that is available, run by kiln on the GPU in fp32 (--noTF32),
       TF32 (the default) and fp16 (--fp16) against ONNX Runtime CPU fp32 on the suite's seeded inputs
       (tests/models/runner.py). Bounds (rel L2): fp32 1e-4, TF32 2e-3, fp16 5e-3, or the entry's looser `tol`
       (or `tol_fp32` / `tol_tf32` / `tol_fp16` where a suite entry documents one). A model whose file has several
       shapes in the suite runs each through an optimization profile spanning them all (--minShapes/--optShapes/
       --maxShapes). Layers without a CUDA kernel run on the host (--allowHostFallback; the table lists them);
       a build that fails anyway reports its one-line error and the table goes on.
bench  kiln fp16 GPU time (median compute_ms of --exportTimes) against PyTorch fp16 eager, CUDA graph and
       torch.compile (default inductor, then captured as one CUDA graph) of the same torchvision module, same
       seed (export_torchvision.seeded_model), same card, same input; ResNet-50 at batch 1/32/128 (throughput in
       images/s at 32 and 128), MobileNetV3-Large, EfficientNet-B0, ViT-B/16, the suite's TransformerEncoder;
       PP-OCRv4 det/rec kiln only (Paddle models: no PyTorch module). PyTorch timing comes from
       bench/bench_packnet_cuda.py (CUDA events, medians, graph capture).

Files: light zoo and PP-OCR under --models-dir (scripts/gpu_pack.sh carries them as .devbin/models), torch exports
made on the spot into --workdir/torch (cached there by export_torchvision.py's stamps).

  python3 bench/bench_models_cuda.py [--check-only | --bench-only] [--models SUBSTRING ...] [--kiln K]
      [--models-dir DIR] [--workdir DIR] [--precisions fp32,tf32,fp16] [--iterations 50] [--budget-s 540]
      [--out R.md] [--json R.json]
  python3 bench/bench_models_cuda.py --dry-run      (here, no GPU: the same plumbing with --device cpu)

--models keeps the check cases (suite case ids) and bench rows whose name or file path contains one of the
substrings (light/, ppocr/, torch/, _op13, vit, ...; =NAME: exactly that case), so the work splits across calls of
the 10-minute GPU limit. --budget-s: no new case starts after that many seconds;
the cases left are listed as not run, with the --models line that runs them. The markdown is rewritten after
every case, so a run cut short still leaves its table.
"""
import argparse
import collections
import datetime
import gc
import json
import math
import os
import re
import shutil
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import bench_packnet_cuda as bp  # noqa: E402  (PyTorch timing, graph capture, --exportTimes parsing)
import runner  # noqa: E402
import suite  # noqa: E402

# precision -> (kiln exec flags, default rel L2 bound vs ONNX Runtime fp32)
PRECISIONS = {"fp32": (["--noTF32"], 1e-4), "tf32": ([], 2e-3), "fp16": (["--fp16"], 5e-3)}
HOST_LAYER_RE = re.compile(r"^\[build\] layer (.*) \((\S+)\) has no \S+ kernel: it runs on the host", re.M)
bp.TORCH_MODES.setdefault("torch-eager-fp16", ("fp16", True, "eager"))  # PackNet's table has no eager fp16
TORCH_BENCH_MODES = ["torch-eager-fp16", "torch-graph-fp16", "torch-compile-fp16"]

# The speed table. onnx: a suite file; spec: the export_torchvision.SPECS entry whose seeded module PyTorch times
# (None: kiln only); modes: the PyTorch modes to time (batch 128 is there for throughput against torch.compile).
BENCH = [
    dict(name="resnet50_b1", onnx="torch/resnet50_dynbatch_op17.onnx", spec="resnet50_dynbatch", input="input",
         shape=[1, 3, 224, 224], modes=TORCH_BENCH_MODES),
    dict(name="resnet50_b32", onnx="torch/resnet50_dynbatch_op17.onnx", spec="resnet50_dynbatch", input="input",
         shape=[32, 3, 224, 224], modes=TORCH_BENCH_MODES),
    dict(name="resnet50_b128", onnx="torch/resnet50_dynbatch_op17.onnx", spec="resnet50_dynbatch", input="input",
         shape=[128, 3, 224, 224], modes=["torch-compile-fp16"]),
    dict(name="mobilenet_v3_large", onnx="torch/mobilenet_v3_large_op17.onnx", spec="mobilenet_v3_large",
         input="input", shape=[1, 3, 224, 224], modes=TORCH_BENCH_MODES),
    dict(name="efficientnet_b0", onnx="torch/efficientnet_b0_op17.onnx", spec="efficientnet_b0", input="input",
         shape=[1, 3, 224, 224], modes=TORCH_BENCH_MODES),
    dict(name="vit_b_16", onnx="torch/vit_b_16_op17.onnx", spec="vit_b_16", input="input", shape=[1, 3, 224, 224],
         modes=TORCH_BENCH_MODES),
    dict(name="transformer_encoder", onnx="torch/transformer_encoder_op17.onnx", spec="transformer_encoder",
         input="input", shape=[2, 16, 64], modes=TORCH_BENCH_MODES),
    dict(name="ppocrv4_det", onnx="ppocr/ch_PP-OCRv4_det_infer.onnx", spec=None, input="x", shape=[1, 3, 640, 640],
         modes=[]),
    dict(name="ppocrv4_rec", onnx="ppocr/ch_PP-OCRv4_rec_infer.onnx", spec=None, input="x", shape=[1, 3, 48, 320],
         modes=[]),
]
# --dry-run's cases (small, one of each kind: light zoo, a profile, torch exports, LSTM/GRU) and bench rows
DRY_CHECK = ["=squeezenet", "=ppocrv4_rec@1x3x48x160", "=ppocrv4_rec@1x3x48x320", "=mobilenet_v3_large_op17",
             "=transformer_encoder_op17", "=resample_op13", "=seq_gru_op13"]
DRY_BENCH = ["=mobilenet_v3_large", "=transformer_encoder"]

log = bp.log


def dims(d):
    return "x".join(map(str, d))


def selected(name, patterns, path=""):
    """No patterns: everything. '=NAME': exactly NAME. Else a substring of the name or of the model's file path."""
    return not patterns or any(name == p[1:] if p.startswith("=") else p in name or p in path for p in patterns)


def one_line(text, limit=200):
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def host_layers(stdout):
    """'N (Op xK, ...)' for the layers a build put on the host, '' for none."""
    ops = collections.Counter(op for _, op in HOST_LAYER_RE.findall(stdout))
    if not ops:
        return ""
    return f"{sum(ops.values())} (" + ", ".join(f"{op} x{n}" if n > 1 else op for op, n in ops.most_common()) + ")"


# -------------------------------------------------------------------------------------------------- check

def profile_flags(m):
    """--minShapes/--optShapes/--maxShapes spanning every shape the suite runs this file at (opt: this case's),
    and --shapes for this case; [] when the suite has one shape for the file."""
    group = [x["shapes"] for x in suite.MODELS if x["path"] == m["path"] and x["shapes"]]
    if len({json.dumps(s, sort_keys=True) for s in group}) < 2:
        return []

    def spec(pick):
        return ",".join(f"{name}:{dims(pick(name))}" for name in m["shapes"])
    lo = lambda n: [min(s[n][k] for s in group) for k in range(len(m["shapes"][n]))]  # noqa: E731
    hi = lambda n: [max(s[n][k] for s in group) for k in range(len(m["shapes"][n]))]  # noqa: E731
    this = lambda n: m["shapes"][n]  # noqa: E731
    return [f"--minShapes={spec(lo)}", f"--optShapes={spec(this)}", f"--maxShapes={spec(hi)}", f"--shapes={spec(this)}"]


def bound(m, precision):
    return m.get(f"tol_{precision}") or max(PRECISIONS[precision][1], m["tol"])


def check_case(args, m):
    """One suite case in every precision: {'case', 'cells': {precision: (worst rel L2 | None, error | None)},
    'host', 'ok', 'seconds'}."""
    t0 = time.perf_counter()
    row = {"case": suite.case_id(m), "cells": {}, "host": "", "ok": False, "note": m["note"]}
    try:
        runner.ensure_model(m)
    except Exception as e:
        row["error"] = f"export failed: {one_line(e)}"
        return row
    if not os.path.exists(runner.model_path(m)):
        row["error"] = f"not available ({runner.model_path(m)} missing)"
        return row
    try:
        feeds, want = runner.reference(m, args.threads)
    except Exception as e:
        row["error"] = f"ONNX Runtime: {one_line(e)}"
        return row
    flags_common = profile_flags(m) + ([] if args.no_host_fallback else ["--allowHostFallback"])
    row["profile"] = bool(profile_flags(m))
    hosts, ok = [], True
    for p in args.precisions:
        cache = os.path.join(args.workdir, f"timing_{p}.cache")
        flags = PRECISIONS[p][0] + flags_common + [f"--timingCacheFile={cache}"]
        try:
            got, _, stdout = runner.exec_kiln(runner.model_path(m), feeds, list(want), args.threads, 1, args.device,
                                              flags, timeout=args.kiln_timeout)
            errors = runner.compare(got, want)
            worst = max(errors.values(), key=lambda e: (math.isnan(e), e))  # a NaN output is the worst
            row["cells"][p] = (worst, None)
            ok &= worst <= bound(m, p) or (p == "fp16" and bool(m.get("no_fp16")))  # it ran: all one can ask
            hosts.append((p, host_layers(stdout)))
        except Exception as e:
            row["cells"][p] = (None, one_line(str(e).replace(runner.model_path(m) + ": ", ""), 240))
            ok = False
    distinct = {h for _, h in hosts if h}
    row["host"] = (distinct.pop() if len(distinct) == 1 and all(h for _, h in hosts)
                   else "; ".join(f"{p}: {h}" for p, h in hosts if h))
    row["ok"] = ok
    row["seconds"] = time.perf_counter() - t0
    return row


def render_check(args, meta, rows, left):
    head = " | ".join(f"{p} (≤ {PRECISIONS[p][1]:g})" for p in args.precisions)
    lines = [f"## Model suite on {meta['gpu']} vs ONNX Runtime CPU fp32 — {meta['date']}", "",
             f"kiln {meta['kiln_rev']} · torch {meta['torch']} · onnxruntime {meta['ort']} · "
             f"`{meta['command']}`", "",
             "Worst rel L2 over the outputs; ✗ above the bound (the entry's looser bound in brackets). "
             "Host fallback: layers without a CUDA kernel, run on the host.", "",
             f"| model | {head} | host fallback | note |", "|---" * (len(args.precisions) + 3) + "|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['error']} |" + " |" * len(args.precisions) + f" {r['note']} |")
            continue
        cells = []
        for p in args.precisions:
            worst, err = r["cells"].get(p, (None, "not run"))
            if err:
                cells.append(f"fails: {err}")
                continue
            if p == "fp16" and r["m"].get("no_fp16"):
                cells.append(f"n/a, beyond fp16 (ran: {worst:.1e})")
                continue
            b = bound(r["m"], p)
            cells.append(f"{worst:.1e}" + ("" if worst <= b else " ✗")
                         + ("" if b == PRECISIONS[p][1] else f" (≤ {b:g})"))
        errs = [r["cells"].get(p, (None, None))[1] for p in args.precisions]
        if len(args.precisions) > 1 and errs[0] and all(e == errs[0] for e in errs):
            cells = [cells[0]] + ["same"] * (len(cells) - 1)  # one build error, said once
        note = "; ".join(filter(None, ["profile" if r.get("profile") else "", r["note"],
                                        r["m"].get("no_fp16", "") if "fp16" in args.precisions else ""]))
        lines.append(f"| {r['case']} | " + " | ".join(cells) + f" | {r['host'] or '-'} | {note} |")
    passed = sum(1 for r in rows if r.get("ok"))
    lines += ["", f"{passed} of {len(rows)} cases within every bound."]
    if left:
        lines += [f"Not run (time budget {args.budget_s:g} s): {' '.join(left)}",
                  f"Run them with: `--models {' '.join('=' + c for c in left)}`"]
    return "\n".join(lines) + "\n"


def run_check(args, meta, emit):
    cases = [m for m in suite.MODELS if selected(suite.case_id(m), args.check_models, m["path"])]
    log(f"check: {len(cases)} cases, precisions {','.join(args.precisions)}, device {args.device}")
    rows, left = [], []
    for k, m in enumerate(cases):
        if time.time() - bp.T_START > args.budget_s:
            left = [suite.case_id(x) for x in cases[k:]]
            log(f"check: time budget reached, {len(left)} cases left")
            break
        r = check_case(args, m)
        r["m"] = m
        rows.append(r)
        cells = ", ".join(f"{p} {c[0]:.1e}" if c[1] is None else f"{p} FAILS: {c[1]}" for p, c in r["cells"].items())
        log(f"check {k + 1}/{len(cases)} {r['case']}: {r.get('error') or cells}"
            + (f"; on host: {r['host']}" if r["host"] else "") + f" [{r.get('seconds', 0):.1f} s]")
        emit(render_check(args, meta, rows, left))
    emit(render_check(args, meta, rows, left))
    return rows, left


# -------------------------------------------------------------------------------------------------- bench

def torch_module(spec_name):
    """The seeded module export_torchvision.py writes for SPECS entry `spec_name` (on the CPU, fp32)."""
    import export_torchvision as ex
    build = next(b for n, b, *_ in ex.SPECS if n == spec_name)
    return ex.seeded_model(build)


def kiln_bench(args, b, onnx, x_path, tag):
    """kiln exec timed on `onnx` with the input file; {'gpu_ms', 'host', 'output' | 'error'}."""
    out_dir, times = os.path.join(args.workdir, f"out_{tag}"), os.path.join(args.workdir, f"times_{tag}.json")
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [args.kiln, "exec", f"--onnx={onnx}", f"--device={args.device}", *PRECISIONS[args.bench_precision][0],
           f"--loadInputs={b['input']}:{x_path}", f"--saveOutputs={out_dir}", f"--exportTimes={times}",
           f"--iterations={args.iterations}", "--warmUp=200", "--duration=0", "--allowHostFallback",
           f"--timingCacheFile={os.path.join(args.workdir, 'timing_bench.cache')}"]
    log(f"{b['name']}: kiln: {' '.join(cmd)}")
    rc, wall, text = bp.run_logged(cmd, os.path.join(args.workdir, f"kiln_{tag}.log"), args.kiln_timeout)
    if rc != 0:
        return {"error": one_line(runner.error_line(text, rc), 160)}
    try:
        compute = bp.parse_times(times)["compute"]
    except (OSError, ValueError) as e:
        return {"error": f"no times from --exportTimes: {one_line(e, 120)}"}
    outs = sorted(f for f in os.listdir(out_dir) if f.endswith(".npy")) if os.path.isdir(out_dir) else []
    return {"gpu_ms": float(np.median(compute)) if compute else None, "host": host_layers(text),
            "output": np.load(os.path.join(out_dir, outs[0])) if outs else None, "wall_s": wall}


def torch_cpu_eager(model, x, iterations):
    """Dry run (no GPU): eager fp32 on the CPU, wall-clock median, and the output."""
    import torch
    with torch.no_grad():
        xt = torch.from_numpy(x)
        y = model(xt).double().numpy()
        times = []
        for _ in range(iterations):
            t0 = time.perf_counter()
            model(xt)
            times.append((time.perf_counter() - t0) * 1e3)
    return {"gpu_ms": float(np.median(times)), "output": y}


def bench_row(args, b):
    """One speed row: kiln, then each PyTorch mode of the same module; rel L2 against PyTorch eager fp32."""
    row = {"name": b["name"], "shape": dims(b["shape"]), "torch": {}, "pytorch": b["spec"] is not None}
    m = {"path": b["onnx"]}
    try:
        onnx = runner.ensure_model(m)
    except Exception as e:
        row["error"] = f"export failed: {one_line(e)}"
        return row
    if not os.path.exists(onnx):
        row["error"] = f"not available ({onnx} missing)"
        return row
    x = np.random.default_rng(20261130).uniform(-1, 1, b["shape"]).astype(np.float32)
    x_path = os.path.join(args.workdir, f"input_{b['name']}.npy")
    np.save(x_path, x)
    row["kiln"] = kiln_bench(args, b, onnx, x_path, b["name"])
    k = row["kiln"]
    log(f"{b['name']}: kiln {args.bench_precision}: " + (k.get("error") or f"{bp.fmt(k.get('gpu_ms'), '.3f')} ms"))
    if b["spec"] is None:
        return row
    model = torch_module(b["spec"])
    if args.device == "cpu":
        ref = torch_cpu_eager(model, x, max(3, args.iterations // 10))
        row["torch"]["torch-eager-fp32 (cpu)"] = {"gpu_ms": ref["gpu_ms"]}
    else:
        torch = bp.torch_setup(args)
        ref = bp.run_torch_mode(torch, args, bp.REFERENCE, model, x, None, timed=False)
        for mode in b["modes"]:
            log(f"{b['name']}: {mode}")
            r = bp.run_torch_mode(torch, args, mode, model, x, ref.get("output"))
            row["torch"][mode] = {k: v for k, v in r.items() if k in ("gpu_ms", "error", "rel_l2", "compile_s", "note")}
            log(f"{b['name']}: {mode}: " + (r.get("error") or f"{bp.fmt(r.get('gpu_ms'), '.3f')} ms"))
    y = row["kiln"].get("output")
    if ref.get("output") is not None and y is not None and y.size == ref["output"].size:
        row["kiln"]["rel_l2"] = bp.rel_l2(y, ref["output"])
    del model
    gc.collect()
    return row


def render_bench(args, meta, rows, left):
    modes = ["torch-eager-fp32 (cpu)"] if args.device == "cpu" else TORCH_BENCH_MODES
    compile_mode = modes[-1]
    p = args.bench_precision
    lines = [f"## kiln {p} vs PyTorch on {meta['gpu']} — {meta['date']}", "",
             f"kiln {meta['kiln_rev']} · torch {meta['torch']} · CUDA {meta['cuda']} · cuDNN {meta['cudnn']} · "
             f"`{meta['command']}`", "",
             f"Median GPU time in ms over {args.iterations} runs (kiln: compute_ms of --exportTimes; PyTorch: CUDA "
             "events). Same seeded torchvision module and input on both sides. kiln/compile < 1: kiln faster.", "",
             f"| model | input | kiln {p} | " + " | ".join(modes) + " | kiln/compile | kiln rel L2 vs torch fp32 | "
             "notes |", "|---" * (len(modes) + 6) + "|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['name']} | {r['shape']} | {r['error']} |" + " |" * (len(modes) + 3))
            continue
        k = r["kiln"]
        cells = [k.get("error") or bp.fmt(k.get("gpu_ms"), ".3f")]
        for mode in modes:
            t = r["torch"].get(mode)
            cells.append("-" if t is None else one_line(t["error"], 80) if t.get("error")
                         else bp.fmt(t.get("gpu_ms"), ".3f"))
        comp = r["torch"].get(compile_mode, {}).get("gpu_ms")
        ratio = f"{k['gpu_ms'] / comp:.2f}" if comp and k.get("gpu_ms") else "-"
        notes = [] if r["pytorch"] else ["Paddle model: no PyTorch module, kiln only"]
        if k.get("host"):
            notes.append(f"on host: {k['host']}")
        rel = f"{k['rel_l2']:.1e}" if k.get("rel_l2") is not None else "-"
        lines.append(f"| {r['name']} | {r['shape']} | " + " | ".join(cells)
                     + f" | {ratio} | {rel} | {'; '.join(notes)} |")
    thr = [r for r in rows if r["name"].startswith("resnet50_b") and "error" not in r and r["name"] != "resnet50_b1"]
    if thr:
        lines += ["", "| ResNet-50 throughput | kiln images/s | torch.compile images/s | kiln / torch.compile |",
                  "|---|---|---|---|"]
        for r in thr:
            n = int(r["shape"].split("x")[0])
            kt = n * 1e3 / r["kiln"]["gpu_ms"] if r["kiln"].get("gpu_ms") else None
            ct = r["torch"].get(compile_mode, {}).get("gpu_ms")
            ct = n * 1e3 / ct if ct else None
            lines.append(f"| batch {n} | {bp.fmt(kt, '.0f')} | {bp.fmt(ct, '.0f')} | "
                         f"{'-' if not kt or not ct else f'{kt / ct:.2f}'} |")
    if left:
        lines += ["", f"Not run (time budget {args.budget_s:g} s): {' '.join(left)}; run them with `--models "
                  f"{' '.join('=' + c for c in left)}`"]
    return "\n".join(lines) + "\n"


def run_bench(args, meta, emit):
    todo = [b for b in BENCH if selected(b["name"], args.bench_models, b["onnx"])]
    log(f"bench: {', '.join(b['name'] for b in todo) or 'nothing selected'}")
    rows, left = [], []
    for k, b in enumerate(todo):
        if time.time() - bp.T_START > args.budget_s:
            left = [x["name"] for x in todo[k:]]
            log(f"bench: time budget reached, {len(left)} rows left")
            break
        rows.append(bench_row(args, b))
        emit(render_bench(args, meta, rows, left))
    emit(render_bench(args, meta, rows, left))
    return rows, left


# --------------------------------------------------------------------------------------------------- main

def collect_meta(args):
    gpu = bp.cmd_out(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "gpu": gpu.splitlines()[0] if args.device == "cuda" else "the CPU (--device cpu)",
            "torch": "-", "cuda": "-", "cudnn": "-",
            "kiln_rev": os.environ.get("KILN_REV") or bp.cmd_out(["git", "rev-parse", "--short", "HEAD"]),
            "command": "python3 " + " ".join([os.path.relpath(os.path.abspath(__file__), ROOT)] + sys.argv[1:])}
    try:
        import onnxruntime
        meta["ort"] = onnxruntime.__version__
    except ImportError:
        meta["ort"] = "-"
    try:
        import torch
        meta["torch"], meta["cuda"] = torch.__version__, torch.version.cuda or "-"
        if args.device == "cuda":
            meta["cudnn"] = str(torch.backends.cudnn.version())
    except ImportError:
        pass
    return meta


def self_test():
    """The parsers and the table code on made-up figures (run by --dry-run)."""
    text = ("[build] layer /a/LRN (LRN) has no cuda kernel: it runs on the host, its inputs and outputs copied\n"
            "[build] layer b (LRN) has no cuda kernel: it runs on the host, x\n"
            "[build] layer c (Mod) has no cuda kernel: it runs on the host, x\n")
    assert host_layers(text) == "3 (LRN x2, Mod)", host_layers(text)
    assert host_layers("[build] built in 3 ms") == ""
    m = next(x for x in suite.MODELS if x["name"] == "ppocrv4_rec" and x["shapes"]["x"][3] == 320)
    assert profile_flags(m) == ["--minShapes=x:1x3x48x160", "--optShapes=x:1x3x48x320", "--maxShapes=x:1x3x48x960",
                                "--shapes=x:1x3x48x320"], profile_flags(m)
    assert profile_flags(next(x for x in suite.MODELS if x["name"] == "ppocr_cls")) == []
    err = "kiln: error: m.onnx: 2 layers have no cuda kernel:\n  node a (LRN; inputs f32)\n  node b (LRN; inputs f32)\n"
    assert runner.error_line(err, 1) == ("kiln: error: m.onnx: 2 layers have no cuda kernel: node a (LRN; inputs "
                                         "f32); node b (LRN; inputs f32)"), runner.error_line(err, 1)
    assert runner.error_line("", -11) == "exit -11"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    job = ap.add_mutually_exclusive_group()
    job.add_argument("--check-only", action="store_true", help="only the correctness table")
    job.add_argument("--bench-only", action="store_true", help="only the speed table")
    ap.add_argument("--models", nargs="*", default=[], help="substrings of the suite case ids / bench rows or of "
                    "their file paths; =NAME: exactly NAME")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="kiln's device (cpu: plumbing only)")
    ap.add_argument("--kiln", default=runner.KILN, help="kiln CLI")
    ap.add_argument("--models-dir", default=None, help="light/ and ppocr/ (default .devbin/models, else out/models)")
    ap.add_argument("--workdir", default="/tmp/kiln_models_cuda", help="torch exports, timing caches, logs")
    ap.add_argument("--precisions", default="fp32,tf32,fp16", help="check: comma list of fp32, tf32, fp16")
    ap.add_argument("--bench-precision", default=None, choices=tuple(PRECISIONS), help="bench: kiln's precision "
                    "(default fp16; fp32 on --device cpu)")
    ap.add_argument("--iterations", type=int, default=50, help="bench: timed runs per mode")
    ap.add_argument("--warmup", type=int, default=10, help="bench: PyTorch warm-up runs per mode")
    ap.add_argument("--threads", type=int, default=0, help="kiln --threads and ONNX Runtime threads (0: all cores)")
    ap.add_argument("--budget-s", type=float, default=540, help="start no new case after this many seconds")
    ap.add_argument("--kiln-timeout", type=float, default=300, help="seconds per kiln process")
    ap.add_argument("--no-host-fallback", action="store_true", help="check: no --allowHostFallback (a missing "
                    "kernel fails the build)")
    ap.add_argument("--out", help="markdown report")
    ap.add_argument("--json", help="raw results")
    ap.add_argument("--dry-run", action="store_true", help="no GPU: --device cpu, a few small models")
    args = ap.parse_args()
    if args.dry_run:
        args.device = "cpu"
        args.iterations = min(args.iterations, 10)
        self_test()
    args.check_models = args.models or (DRY_CHECK if args.dry_run else [])
    args.bench_models = args.models or (DRY_BENCH if args.dry_run else [])
    args.precisions = [p for p in args.precisions.split(",") if p]
    if any(p not in PRECISIONS for p in args.precisions):
        ap.error(f"--precisions: choose from {', '.join(PRECISIONS)}")
    args.bench_precision = args.bench_precision or ("fp16" if args.device == "cuda" else "fp32")
    args.kiln, args.workdir = os.path.abspath(args.kiln), os.path.abspath(args.workdir)
    default_dir = os.path.join(ROOT, ".devbin", "models")
    args.models_dir = os.path.abspath(args.models_dir
                                      or (default_dir if os.path.isdir(default_dir) else runner.MODELS_DIR))
    os.makedirs(args.workdir, exist_ok=True)
    runner.KILN, runner.MODELS_DIR, runner.EXPORTS_DIR = args.kiln, args.models_dir, args.workdir
    # bench_packnet_cuda's PyTorch helpers read these
    args.compile_mode, args.no_cudnn_benchmark = "graph", False
    if not os.access(args.kiln, os.X_OK):
        sys.exit(f"error: {args.kiln} is not an executable kiln CLI (--kiln)")
    if args.device == "cuda" and not args.check_only:
        import torch
        if not torch.cuda.is_available():
            sys.exit("error: PyTorch sees no CUDA device (--dry-run runs the plumbing on the CPU)")
    meta = collect_meta(args)
    log(f"{meta['gpu']} · {meta['date']} · kiln {args.kiln} ({meta['kiln_rev']}) · models {args.models_dir} · "
        f"work {args.workdir}")

    sections = {}

    def emit(key):
        def write(text):
            sections[key] = text
            if args.out:
                os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
                with open(args.out, "w") as f:
                    f.write("\n".join(sections[k] for k in ("check", "bench") if k in sections))
        return write

    results = {"meta": meta}
    if not args.bench_only:
        rows, left = run_check(args, meta, emit("check"))
        results["check"] = [{k: v for k, v in r.items() if k != "m"} for r in rows]
        results["check_not_run"] = left
    if not args.check_only:
        rows, left = run_bench(args, meta, emit("bench"))
        results["bench"] = [{**r, "kiln": {k: v for k, v in r.get("kiln", {}).items() if k != "output"}}
                            for r in rows]
        results["bench_not_run"] = left
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    print("\n" + "\n".join(sections.values()), flush=True)
    failed = [r["case"] for r in results.get("check", []) if not r.get("ok")]
    left = results.get("check_not_run", []) + results.get("bench_not_run", [])
    log(f"done; {len(failed)} check cases outside a bound or failing" + (f": {' '.join(failed)}" if failed else "")
        + (f"; {len(left)} not run (time budget)" if left else ""))
    return 0 if not failed and not left else 1


if __name__ == "__main__":
    sys.exit(main())
