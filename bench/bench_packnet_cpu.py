#!/usr/bin/env python3
"""PackNet01 on CPU, side by side in one run: kiln (`kiln exec`), ONNX Runtime, PyTorch 1.13.

Prints each runtime's median latency and kiln's ratio against the others, and appends the figures to
bench/RESULTS.md with the date and the command. The same input (input.npy next to the model) feeds all
three; kiln's and ONNX Runtime's outputs are checked against PyTorch's saved output.npy.

usage: .venv/bin/python bench/bench_packnet_cpu.py [--model out/packnet/opset11/packnet01.onnx]
                                                  [--threads 2] [--runs 10] [--no-torch] [--no-record]
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rel_l2(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


def bench_kiln(model, x_path, threads, runs, tmp, *extra, binary=os.path.join(ROOT, "build", "kiln")):
    times = os.path.join(tmp, "times.json")
    outdir = os.path.join(tmp, "kiln_out")
    cmd = [binary, "exec", f"--onnx={model}", f"--loadInputs=input:{x_path}",
           f"--saveOutputs={outdir}", f"--threads={threads}", f"--iterations={runs}", "--duration=0",
           "--warmUp=0", f"--exportTimes={times}", *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    lat = [t["latencyMs"] for t in json.load(open(times))]
    y = np.load(os.path.join(outdir, "disp.npy"))
    return statistics.median(lat), y


def bench_ort(model, x, threads, runs):
    import onnxruntime as ort
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    s = ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])
    y = s.run(None, {"input": x})[0]  # warm-up
    lat = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(None, {"input": x})
        lat.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(lat), y, ort.__version__


def bench_torch(x, threads, runs, width):
    import torch
    sys.path.insert(0, os.path.join(ROOT, "examples", "packnet"))
    from packnet01 import PackNet01
    torch.set_num_threads(threads)
    m = PackNet01(width=width).eval()
    xt = torch.from_numpy(x)
    with torch.no_grad():
        m(xt)
        lat = []
        for _ in range(runs):
            t0 = time.perf_counter()
            m(xt)
            lat.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(lat), torch.__version__


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=os.path.join(ROOT, "out", "packnet", "opset11", "packnet01.onnx"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--width", type=float, default=1.0, help="PackNet width of the model (for the PyTorch run)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-record", action="store_true")
    p.add_argument("--baseline", help="another kiln binary (e.g. a build of the previous commit) timed in the same "
                   "run: before/after figures for a refactor")
    a = p.parse_args()
    d = os.path.dirname(os.path.abspath(a.model))
    x_path = os.path.join(d, "input.npy")
    x, ref = np.load(x_path), np.load(os.path.join(d, "output.npy"))
    with tempfile.TemporaryDirectory() as tmp:
        k_ms, k_y = bench_kiln(a.model, x_path, a.threads, a.runs, tmp)
        u_ms, u_y = bench_kiln(a.model, x_path, a.threads, a.runs, tmp, "--skipRewrites=groupnorm")
        if a.baseline:
            b_ms, b_y = bench_kiln(a.model, x_path, a.threads, a.runs, tmp, binary=a.baseline)
    o_ms, o_y, ort_version = bench_ort(a.model, x, a.threads, a.runs)
    rows = [("kiln", k_ms, rel_l2(k_y, ref)), ("kiln, GroupNorm unfused", u_ms, rel_l2(u_y, ref)),
            (f"onnxruntime {ort_version}", o_ms, rel_l2(o_y, ref))]
    if a.baseline:
        rows.insert(1, (f"kiln baseline ({a.baseline})", b_ms, rel_l2(b_y, ref)))
    if not a.no_torch:
        t_ms, torch_version = bench_torch(x, a.threads, a.runs, a.width)
        rows.append((f"pytorch {torch_version} eager", t_ms, 0.0))
    print(f"PackNet01 {x.shape}, {a.threads} threads, median of {a.runs} runs")
    for name, ms, err in rows:
        print(f"  {name:28s} {ms:10.1f} ms   rel L2 vs PyTorch {err:.2e}   kiln speedup x{ms / k_ms:.2f}")
    if not a.no_record:
        date = datetime.date.today().isoformat()
        cmd = "python bench/bench_packnet_cpu.py " + " ".join(sys.argv[1:])
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
            f.write(f"\n### {date} — PackNet01 CPU {x.shape}, {a.threads} threads, {os.uname().nodename}\n")
            f.write(f"`{cmd}`\n\n| runtime | median ms | kiln speedup | rel L2 vs PyTorch |\n|---|---|---|---|\n")
            for name, ms, err in rows:
                f.write(f"| {name} | {ms:.1f} | {ms / k_ms:.2f} | {err:.2e} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
