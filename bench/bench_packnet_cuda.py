#!/usr/bin/env python3
"""PackNet01 on one CUDA GPU, in one process and one run: kiln (`kiln exec --device=cuda`) against PyTorch.

PyTorch peers (same seeded weights as examples/packnet/export.py, built by its build_model()):
  torch-eager-fp32    eager, TF32 off (the accuracy reference for every mode)
  torch-eager-tf32    eager, TF32 on
  torch-graph-tf32    one CUDA graph of the eager model, TF32 on
  torch-graph-fp16    one CUDA graph of model.half()
  torch-compile-fp16  torch.compile (default inductor) of model.half(), then captured as one CUDA graph
kiln modes (subprocesses of the CLI): kiln-fp32 (--noTF32), kiln-tf32 (default), kiln-fp16 (--fp16).

For each mode: median GPU time (CUDA events; kiln: compute_ms of --exportTimes), median end-to-end latency
(pinned H2D of the input + inference + D2H of the output; kiln: latency_ms), build/compile time, peak device
memory, relative L2 error against torch-eager-fp32 (float64). Prints a markdown table last and writes it to
--out, the raw figures to --json. See bench/bench_packnet_cuda.md.

usage: python3 bench/bench_packnet_cuda.py [--onnx M.onnx] [--workdir out/packnet_cuda] [--kiln build/kiln]
           [--iterations 200] [--no-compile] [--modes torch,kiln-fp16,...] [--out R.md] [--json R.json]
       python3 bench/bench_packnet_cuda.py --dry-run     (CPU only: model, kiln command lines, report code)
"""
import argparse
import copy
import datetime
import gc
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT_PY = os.path.join(ROOT, "examples", "packnet", "export.py")
sys.path.insert(0, os.path.dirname(EXPORT_PY))

# name -> (precision, TF32, kind)
TORCH_MODES = {
    "torch-eager-fp32": ("fp32", False, "eager"),
    "torch-eager-tf32": ("fp32", True, "eager"),
    "torch-graph-tf32": ("fp32", True, "graph"),
    "torch-graph-fp16": ("fp16", True, "graph"),
    "torch-compile-fp16": ("fp16", True, "compile"),
}
# name -> extra `kiln exec` flags; peer: the PyTorch mode of the same precision it is compared with first
KILN_MODES = {"kiln-fp32": ["--noTF32"], "kiln-tf32": [], "kiln-fp16": ["--fp16"]}
PEER = {"kiln-fp32": "torch-eager-fp32", "kiln-tf32": "torch-graph-tf32", "kiln-fp16": "torch-graph-fp16"}
REFERENCE = "torch-eager-fp32"
COMPILE = "torch-compile-fp16"
ALL_MODES = list(TORCH_MODES) + list(KILN_MODES)
# Every `kiln exec` flag this script passes; checked against `kiln exec --help` before running.
KILN_FLAGS = ["--onnx", "--device", "--loadInputs", "--saveOutputs", "--exportTimes", "--timingCacheFile",
              "--iterations", "--warmUp", "--duration", "--fp16", "--noTF32"]
# Keys of one --exportTimes record, with the camelCase spellings the CPU path writes as fallbacks.
TIME_KEYS = {"h2d": ("h2d_ms", "h2dMs"), "compute": ("compute_ms", "computeMs"), "d2h": ("d2h_ms", "d2hMs"),
             "latency": ("latency_ms", "latencyMs")}
BUILT_IN_RE = re.compile(r"\[build\].*built in ([0-9.]+) ms")
ACTIVATION_RE = re.compile(r"Activation memory: (.+?) planned")

DEVICE = "cuda"  # a test on a machine without a GPU may point this elsewhere
T_START = time.time()


def log(msg):
    print(f"[{time.time() - T_START:7.1f}s] {msg}", flush=True)


def rel_l2(y, ref):
    """||y - ref|| / ||ref|| in float64."""
    y = np.asarray(y, dtype=np.float64).reshape(ref.shape)
    return float(np.linalg.norm(y - ref) / np.linalg.norm(ref))


def stats(values):
    """Summary of a list of times in ms (None when empty)."""
    if not values:
        return None
    v = sorted(values)
    return {"n": len(v), "median": statistics.median(v), "mean": statistics.fmean(v), "min": v[0],
            "p10": v[len(v) // 10], "p90": v[min(len(v) - 1, (len(v) * 9) // 10)], "max": v[-1]}


def parse_modes(text):
    """Comma list of mode names; 'torch', 'kiln' and 'all' expand to groups. Keeps the canonical order."""
    wanted = set()
    for item in filter(None, (s.strip() for s in text.split(","))):
        if item == "all":
            wanted |= set(ALL_MODES)
        elif item in ("torch", "kiln"):
            wanted |= {m for m in ALL_MODES if m.startswith(item + "-")}
        elif item in ALL_MODES:
            wanted.add(item)
        else:
            raise argparse.ArgumentTypeError(f"unknown mode '{item}' (modes: {', '.join(ALL_MODES)}, torch, kiln, all)")
    return [m for m in ALL_MODES if m in wanted]


# --------------------------------------------------------------------------------------------- kiln

def kiln_command(args, mode, onnx, x_path, workdir, timed, supported=None):
    """The `kiln exec` command line of one run: a build-only run (timed=False) or the timed run."""
    cache = os.path.join(workdir, f"timing_{mode}.cache")
    cmd = [args.kiln, "exec", f"--onnx={onnx}", "--device=cuda", *KILN_MODES[mode], f"--loadInputs=input:{x_path}"]
    if supported is None or "--timingCacheFile" in supported:
        cmd.append(f"--timingCacheFile={cache}")
    if timed:
        cmd += [f"--saveOutputs={os.path.join(workdir, 'out_' + mode)}",
                f"--exportTimes={os.path.join(workdir, 'times_' + mode + '.json')}",
                f"--iterations={args.iterations}", f"--warmUp={args.kiln_warmup_ms:g}", "--duration=0"]
    else:
        cmd += ["--iterations=1", "--warmUp=0", "--duration=0"]
    return cmd, cache


def kiln_supported_flags(kiln):
    """The subset of KILN_FLAGS that `kiln exec --help` lists (None when the help cannot be read)."""
    try:
        p = subprocess.run([kiln, "exec", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    text = p.stdout + p.stderr
    if p.returncode != 0 or "--onnx" not in text:
        return None
    return {f for f in KILN_FLAGS if re.search(re.escape(f) + r"\b", text)}


def parse_times(path):
    """Per-inference times from --exportTimes: {'h2d': [...], 'compute': [...], 'd2h': [...], 'latency': [...]}.

    Missing keys give empty lists; a record list wrapped in an object ({"times": [...]}) is accepted too.
    """
    with open(path) as f:
        data = json.load(f)
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), [])
    out = {k: [] for k in TIME_KEYS}
    for rec in data:
        if not isinstance(rec, dict):
            continue
        for k, names in TIME_KEYS.items():
            val = next((rec[n] for n in names if isinstance(rec.get(n), (int, float))), None)
            if val is not None:
                out[k].append(float(val))
    return out


def parse_build_ms(text):
    m = BUILT_IN_RE.findall(text)
    return float(m[-1]) if m else None


class MemPoller:
    """Peak device memory used (MiB, whole GPU, as NVML reports it) while the with-block runs.

    Samples NVML via pynvml when importable, else `nvidia-smi`; the value includes the sampled process's
    CUDA context. The caller subtracts the baseline taken at entry.
    """

    def __init__(self, period_s=0.1):
        self.period_s, self.peak, self.base, self._stop = period_s, None, None, threading.Event()
        self._index = self._gpu_index()
        self._handle = None
        try:
            import pynvml
            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(self._index)
        except Exception:  # no pynvml, or NVML unusable: fall back to nvidia-smi
            self._nvml = None
            self.period_s = max(period_s, 0.25)

    @staticmethod
    def _gpu_index():
        first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
        return int(first) if first.isdigit() else 0

    def sample(self):
        try:
            if self._handle is not None:
                return self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used / 2**20
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                                  "-i", str(self._index)], capture_output=True, text=True, timeout=10).stdout
            return float(out.strip().splitlines()[0])
        except Exception:
            return None

    def _loop(self):
        while not self._stop.wait(self.period_s):
            v = self.sample()
            if v is not None:
                self.peak = v if self.peak is None else max(self.peak, v)

    def __enter__(self):
        self.base = self.sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def delta_mib(self):
        return None if self.peak is None or self.base is None else max(0.0, self.peak - self.base)


def run_logged(cmd, log_path, timeout):
    """Run cmd with stdout+stderr to log_path; return (returncode, wall seconds, output text)."""
    t0 = time.perf_counter()
    with open(log_path, "w") as f:
        f.write(" ".join(cmd) + "\n\n")
        f.flush()
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    wall = time.perf_counter() - t0
    with open(log_path, errors="replace") as f:
        return rc, wall, f.read()


def fail_text(what, rc, text, log_path):
    tail = " | ".join(line.strip() for line in text.strip().splitlines()[-3:])
    return f"{what} exited with {rc} (log {log_path}): {tail[-400:]}"


def run_kiln_mode(args, mode, onnx, x_path, workdir, ref, supported):
    """Cold build (timing cache deleted), then the timed run with the warm cache. Returns a result dict."""
    res = {"mode": mode, "kind": "kiln"}
    missing = [f for f in KILN_MODES[mode] if supported is not None and f not in supported]
    if missing:
        res["error"] = f"kiln exec has no {' '.join(missing)}"
        return res
    if supported is not None and "--timingCacheFile" not in supported:
        res["note"] = "kiln exec has no --timingCacheFile: both builds are cold"

    cmd, cache = kiln_command(args, mode, onnx, x_path, workdir, timed=False, supported=supported)
    if os.path.exists(cache):
        os.remove(cache)
    log(f"{mode}: cold build: {' '.join(cmd)}")
    cold_log = os.path.join(workdir, f"kiln_{mode}_cold.log")
    with MemPoller() as mem_cold:
        rc, wall, text = run_logged(cmd, cold_log, args.kiln_timeout)
    if rc != 0:
        res["error"] = fail_text("cold build", rc, text, cold_log)
        return res
    res["build_cold_wall_s"] = wall
    cold_ms = parse_build_ms(text)
    res["build_cold_s"] = wall if cold_ms is None else cold_ms / 1e3
    res["build_cold_source"] = "wall time" if cold_ms is None else "[build] line"
    res["peak_mib_cold_build"] = mem_cold.delta_mib()

    cmd, _ = kiln_command(args, mode, onnx, x_path, workdir, timed=True, supported=supported)
    outdir = os.path.join(workdir, "out_" + mode)
    times_path = os.path.join(workdir, "times_" + mode + ".json")
    shutil.rmtree(outdir, ignore_errors=True)
    if os.path.exists(times_path):
        os.remove(times_path)
    log(f"{mode}: timed run (warm cache): {' '.join(cmd)}")
    timed_log = os.path.join(workdir, f"kiln_{mode}_timed.log")
    with MemPoller() as mem:
        rc, wall, text = run_logged(cmd, timed_log, args.kiln_timeout)
    if rc != 0:
        res["error"] = fail_text("timed run", rc, text, timed_log)
        return res
    res["timed_run_wall_s"] = wall
    res["peak_mib"] = mem.delta_mib()
    res["peak_mib_source"] = "NVML device memory.used delta (includes kiln's CUDA context)"
    m = ACTIVATION_RE.search(text)
    if m:
        res["activation_memory"] = m.group(1)
    warm_ms = parse_build_ms(text)
    if warm_ms is None:  # no [build] line: time a separate build-only run with the warm cache
        cmd, _ = kiln_command(args, mode, onnx, x_path, workdir, timed=False, supported=supported)
        rc2, wall2, text2 = run_logged(cmd, os.path.join(workdir, f"kiln_{mode}_warm.log"), args.kiln_timeout)
        if rc2 == 0:
            res["build_warm_s"], res["build_warm_source"] = wall2, "wall time"
    else:
        res["build_warm_s"], res["build_warm_source"] = warm_ms / 1e3, "[build] line"

    try:
        times = parse_times(times_path)
    except (OSError, ValueError) as e:
        res["error"] = f"cannot read {times_path}: {e}"
        return res
    res["times_keys"] = [k for k, v in times.items() if v]
    for k, v in times.items():
        res[f"{k}_ms"] = stats(v)
    if res["compute_ms"] is None and res["latency_ms"] is not None:
        res["note"] = (res.get("note", "") + "; " if res.get("note") else "") + "no compute_ms: GPU column is latency"
        res["compute_ms"] = res["latency_ms"]
    if res["latency_ms"] is None and times["compute"]:
        parts = [times[k] for k in ("h2d", "compute", "d2h") if times[k]]
        res["latency_ms"] = stats([sum(p) for p in zip(*parts)])
    res["gpu_ms"] = res["compute_ms"]["median"] if res["compute_ms"] else None
    res["e2e_ms"] = res["latency_ms"]["median"] if res["latency_ms"] else None

    outs = sorted(f for f in os.listdir(outdir) if f.endswith(".npy")) if os.path.isdir(outdir) else []
    if not outs:
        res["error"] = f"no .npy output in {outdir}"
        return res
    name = "disp.npy" if "disp.npy" in outs else outs[0]
    y = np.load(os.path.join(outdir, name))
    if y.size != ref.size:
        res["error"] = f"output {name} has shape {list(y.shape)}, expected {list(ref.shape)}"
        return res
    res["rel_l2"] = rel_l2(y, ref)
    res["output_file"] = name
    return res


# -------------------------------------------------------------------------------------------- torch

def torch_setup(args):
    import torch
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    return torch


def set_tf32(torch, on):
    """Allow or forbid TF32 in cuBLAS matmuls and cuDNN convolutions; returns the API used.

    torch >= 2.9 has per-backend fp32_precision ("tf32" / "ieee") and deprecates allow_tf32; mixing the two
    APIs can make later checks (inductor's among them) raise, so the new one is used wherever it exists.
    """
    def has(obj, name):  # hasattr that also survives torch's AssertionError for unknown attributes
        try:
            getattr(obj, name)
            return True
        except Exception:
            return False

    b = torch.backends
    if has(b.cuda.matmul, "fp32_precision") and has(getattr(b.cudnn, "conv", None), "fp32_precision"):
        value = "tf32" if on else "ieee"
        try:
            for obj in (b.cudnn, b.cudnn.conv, getattr(b.cudnn, "rnn", None), b.cuda.matmul):
                if obj is not None and has(obj, "fp32_precision"):
                    obj.fp32_precision = value
            return f"fp32_precision={value}"
        except (RuntimeError, ValueError, TypeError) as e:
            log(f"warning: fp32_precision={value} refused ({e}); using allow_tf32")
    b.cuda.matmul.allow_tf32 = on
    b.cudnn.allow_tf32 = on
    return f"allow_tf32={on}"


def make_io_module(torch, model, half):
    """fp32 in, fp32 out around `model`; casts to and from fp16 inside when half (counted in GPU time)."""

    class IO(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x.half()).float() if half else self.model(x)

    return IO().eval()


def capture_graph(torch, fn, warmup=3):
    """Warm fn up on a side stream (cuDNN benchmark, lazy init), then capture one call as a CUDA graph."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = fn()
    torch.cuda.synchronize()
    return g, out


def time_gpu(torch, fn, iters, warmup):
    """Per-call GPU time in ms (CUDA events around each call, synchronized after each)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
    for start, end in ev:
        start.record()
        fn()
        end.record()
        end.synchronize()
    return [start.elapsed_time(end) for start, end in ev]


def time_e2e(torch, fn, x_dev, x_host, out_host, iters, warmup):
    """Per-call host wall time in ms of: pinned H2D of the input, fn(), D2H of the output to pinned memory."""
    stream = torch.cuda.current_stream()

    def once():
        x_dev.copy_(x_host, non_blocking=True)
        out_host.copy_(fn(), non_blocking=True)
        stream.synchronize()

    for _ in range(warmup):
        once()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        once()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def run_torch_mode(torch, args, mode, cpu_model, x_np, ref, timed=True):
    """Build `mode` on the GPU, time it (unless not timed), check it; 'error' in the result when a step failed."""
    precision, tf32, kind = TORCH_MODES[mode]
    res = {"mode": mode, "kind": "torch", "precision": precision, "tf32": tf32}
    res["tf32_api"] = set_tf32(torch, tf32)
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    dev = torch.device(DEVICE)
    objs = {}
    try:
        with torch.no_grad():
            m = copy.deepcopy(cpu_model)
            if precision == "fp16":
                m = m.half()  # on the CPU: the GPU never holds the fp32 copy
            net = make_io_module(torch, m.to(dev), precision == "fp16")
            objs["net"] = net
            x_dev = torch.from_numpy(x_np).to(dev)
            x_host = torch.from_numpy(x_np).pin_memory()
            fn = lambda: net(x_dev)  # noqa: E731

            if kind == "graph":
                t0 = time.perf_counter()
                g, g_out = capture_graph(torch, fn)
                res["setup_s"], objs["graph"] = time.perf_counter() - t0, g
                fn = lambda: (g.replay(), g_out)[1]  # noqa: E731
            elif kind == "compile":
                fn = compile_fn(torch, args, net, x_dev, res, objs)

            if timed:
                out = fn()
                out_host = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
                log(f"{mode}: timing {args.iterations} runs")
                gpu = time_gpu(torch, fn, args.iterations, args.warmup)
                e2e = time_e2e(torch, fn, x_dev, x_host, out_host, args.iterations, args.warmup)
                res["gpu_ms_stats"], res["e2e_ms_stats"] = stats(gpu), stats(e2e)
                res["gpu_ms"], res["e2e_ms"] = res["gpu_ms_stats"]["median"], res["e2e_ms_stats"]["median"]
            x_dev.copy_(torch.from_numpy(x_np))
            y = fn().double().cpu().numpy()
            torch.cuda.synchronize()
        res["peak_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        res["peak_mib_source"] = "torch.cuda.max_memory_allocated delta"
        res["output"] = y
        res["rel_l2"] = rel_l2(y, ref) if ref is not None else None
    except Exception as e:  # report and carry on with the other modes
        res["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:400]
        res["traceback"] = traceback.format_exc()
    finally:
        objs.clear()
        if kind == "compile" and hasattr(torch, "_dynamo"):
            torch._dynamo.reset()
        gc.collect()
        torch.cuda.empty_cache()
    return res


def compile_fn(torch, args, net, x_dev, res, objs):
    """torch.compile(net) per --compile-mode; records compile time. Returns the callable to time."""
    if not hasattr(torch, "compile"):
        raise RuntimeError(f"torch {torch.__version__} has no torch.compile")
    mode = args.compile_mode
    compiled = torch.compile(net, mode="reduce-overhead") if mode == "reduce-overhead" else torch.compile(net)
    objs["compiled"] = compiled
    mark = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)

    def call():
        if mode == "reduce-overhead" and mark is not None:
            mark()  # each call is a new step: outputs of the last one may be overwritten
        return compiled(x_dev)

    log(f"{COMPILE}: compiling (mode {mode}) ...")
    t0 = time.perf_counter()
    call()
    torch.cuda.synchronize()
    res["compile_s"] = res["setup_s"] = time.perf_counter() - t0
    log(f"{COMPILE}: compiled in {res['compile_s']:.1f} s")
    res["compile_mode"] = mode
    if mode != "graph":
        return call
    try:
        t0 = time.perf_counter()
        g, g_out = capture_graph(torch, call)
        res["capture_s"], objs["graph"] = time.perf_counter() - t0, g
        return lambda: (g.replay(), g_out)[1]
    except Exception as e:  # keep the compiled function, timed without a graph
        res["note"] = f"CUDA graph capture of the compiled model failed ({type(e).__name__}: {e}); timed without"
        log(f"{COMPILE}: {res['note']}")
        torch.cuda.synchronize()
        return call


# ------------------------------------------------------------------------------------------- report

def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def build_cell(r):
    if r["kind"] == "kiln":
        cold, warm = r.get("build_cold_s"), r.get("build_warm_s")
        return f"{fmt(cold, '.1f')} cold / {fmt(warm, '.1f')} warm" if cold is not None else "-"
    if "compile_s" in r:
        return f"{r['compile_s']:.1f} compile"
    if "setup_s" in r:
        return f"{r['setup_s']:.1f} capture"
    return "-"


def ratio(num, den):
    return None if not num or not den else num / den


def render_markdown(meta, results, order):
    """The report: header, one row per mode, then each kiln mode against each PyTorch mode."""
    ok = {m: r for m, r in results.items() if "error" not in r and r.get("gpu_ms")}
    comp = ok.get(COMPILE, {}).get("gpu_ms")
    lines = [f"## PackNet01 {meta['shape']} on {meta['gpu']} — kiln vs PyTorch", "",
             f"{meta['date']} · host {meta['host']} · torch {meta['torch']} · CUDA {meta['cuda']} · "
             f"cuDNN {meta['cudnn']} · driver {meta['driver']} · kiln {meta['kiln_rev']}", "",
             f"`{meta['command']}`", "",
             f"{meta['iterations']} timed runs per mode (median). GPU = CUDA events (PyTorch) or kiln's compute_ms; "
             "e2e = pinned H2D + inference + D2H. Speedup = other's time ÷ this row's (>1: this row is faster).", "",
             "| mode | GPU ms | e2e ms | build / compile s | peak MiB | rel L2 vs fp32 | "
             "speedup vs torch.compile fp16 | speedup vs same-precision PyTorch |",
             "|---|---|---|---|---|---|---|---|"]
    for m in order:
        r = results.get(m)
        if r is None:
            continue
        if "error" in r:
            err = r["error"].replace("|", "/")
            lines.append(f"| {m} | failed: {err[:240] + ('…' if len(err) > 240 else '')} | | | | | | |")
            continue
        peer = PEER.get(m)
        peer_cell = "-"
        if peer and peer in ok:
            peer_cell = f"x{ratio(ok[peer]['gpu_ms'], r['gpu_ms']):.2f} vs {peer}"
        vs_comp = ratio(comp, r.get("gpu_ms"))
        peak = fmt(r.get("peak_mib"), ".0f") + ("†" if r["kind"] == "kiln" and r.get("peak_mib") is not None else "")
        lines.append(f"| {m} | {fmt(r.get('gpu_ms'), '.3f')} | {fmt(r.get('e2e_ms'), '.3f')} | {build_cell(r)} | "
                     f"{peak} | {fmt(r.get('rel_l2'), '.2e')} | {'-' if vs_comp is None else f'x{vs_comp:.2f}'} | "
                     f"{peer_cell} |")
    kiln_ok = [m for m in order if m in ok and ok[m]["kind"] == "kiln"]
    torch_ok = [m for m in order if m in ok and ok[m]["kind"] == "torch"]
    if kiln_ok and torch_ok:
        lines += ["", "kiln speedup (GPU time): PyTorch mode's median ÷ kiln's", "",
                  "| kiln \\ PyTorch | " + " | ".join(torch_ok) + " |", "|---" * (len(torch_ok) + 1) + "|"]
        for k in kiln_ok:
            lines.append(f"| {k} | " + " | ".join(f"x{ok[t]['gpu_ms'] / ok[k]['gpu_ms']:.2f}" for t in torch_ok) + " |")
    notes = [f"- {m}: {r['note']}" for m, r in results.items() if r.get("note")]
    if meta.get("reference_check"):
        notes.append(f"- reference check: {meta['reference_check']}")
    lines += ["", "† kiln peak = growth of the GPU's used memory (NVML) during the timed run, CUDA context included; "
              "PyTorch peak = torch.cuda.max_memory_allocated growth (tensors only, no context).",
              f"- cudnn.benchmark={meta['cudnn_benchmark']}; torch.compile mode: {meta['compile_mode']}"] + notes
    return "\n".join(lines) + "\n"


def json_ready(results):
    return {m: {k: v for k, v in r.items() if k != "output"} for m, r in results.items()}


def write_reports(args, meta, results, report):
    """--out (markdown), --json (raw figures), then the report on stdout, last."""
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(report)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": json_ready(results)}, f, indent=1)
    print("\n" + report, flush=True)


def cmd_out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


# --------------------------------------------------------------------------------------------- main

def ensure_model(args):
    """Path of the ONNX model and of its input: --onnx if it exists, else export.py into --workdir."""
    onnx = args.onnx
    if not onnx or not os.path.exists(onnx):
        onnx = os.path.join(args.workdir, "packnet01.onnx")
        if os.path.exists(onnx):
            log(f"reusing {onnx} (from an earlier export into --workdir)")
        else:
            cmd = [sys.executable, EXPORT_PY, "--out", args.workdir, "--opset", str(args.opset),
                   "--width", str(args.width), "--height", str(args.height), "--width-px", str(args.width_px),
                   "--seed", str(args.seed)]
            log("exporting: " + " ".join(cmd))
            subprocess.run(cmd, check=True)
    return os.path.abspath(onnx)


def input_for(args, onnx):
    """input.npy next to the model (written by export.py), else the same seeded input written to --workdir."""
    from export import make_input
    path = os.path.join(os.path.dirname(onnx), "input.npy")
    if not os.path.exists(path):
        path = os.path.join(args.workdir, "input.npy")
        np.save(path, make_input(args.seed, args.height, args.width_px))
    x = np.load(path)
    if x.shape != (1, 3, args.height, args.width_px) or x.dtype != np.float32:
        sys.exit(f"error: {path} is {x.dtype} {list(x.shape)}, expected float32 [1,3,{args.height},{args.width_px}]")
    return os.path.abspath(path), x


def dry_run(args):
    """No GPU: build the model on the CPU, run it, show the kiln command lines and exercise the report code."""
    import torch
    from export import build_model, make_input
    log(f"dry run: torch {torch.__version__}, PackNet01 width {args.width} at 1x3x{args.height}x{args.width_px}")
    model = build_model(args.width, args.seed)
    x = make_input(args.seed, args.height, args.width_px)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).double().numpy()
    log(f"CPU forward ok: output {list(y.shape)}, mean {y.mean():.4f}")
    if args.onnx and os.path.exists(args.onnx):
        ref_path = os.path.join(os.path.dirname(args.onnx), "output.npy")
        if os.path.exists(ref_path) and np.load(ref_path).shape == y.shape:
            log(f"rel L2 vs {ref_path}: {rel_l2(np.load(ref_path), y):.2e} (0 when weights/input match the export)")
    supported = kiln_supported_flags(args.kiln) if os.path.exists(args.kiln) else None
    if supported is None:
        log(f"{args.kiln}: not found or no help output; assuming every flag")
    else:
        log(f"{args.kiln}: flags not in `kiln exec --help`: {sorted(set(KILN_FLAGS) - supported) or 'none'}")
    onnx = os.path.abspath(args.onnx or os.path.join(args.workdir, "packnet01.onnx"))
    x_path = os.path.join(os.path.dirname(onnx), "input.npy")
    for mode in [m for m in args.modes if m in KILN_MODES]:
        for timed in (False, True):
            cmd, _ = kiln_command(args, mode, onnx, x_path, args.workdir, timed)
            print(f"  {mode} {'timed' if timed else 'cold '}: {' '.join(cmd)}", flush=True)
    # Exercise the parsers and the report on synthetic figures.
    os.makedirs(args.workdir, exist_ok=True)
    sample = os.path.join(args.workdir, "dry_times.json")
    with open(sample, "w") as f:
        json.dump([{"h2d_ms": 0.2, "compute_ms": 4.0 + i / 100, "d2h_ms": 0.1, "latency_ms": 4.4} for i in range(5)]
                  + [{"h2dMs": 0.2, "computeMs": 4.05 + i / 100, "d2hMs": 0.1, "latencyMs": 4.4} for i in range(4)]
                  + [{"latencyMs": 5.0}], f)
    t = parse_times(sample)
    assert len(t["compute"]) == 9 and len(t["latency"]) == 10 and stats(t["compute"])["median"] == 4.04, t
    line = "[build] 450 layers, activation memory 1 bytes planned (2 without reuse), built in 1234 ms"
    assert parse_build_ms(line) == 1234
    fake = {m: {"mode": m, "kind": "kiln" if m in KILN_MODES else "torch", "gpu_ms": 1.0 + i, "e2e_ms": 1.5 + i,
                "rel_l2": 1e-4 * i, "peak_mib": 100.0 * i, "build_cold_s": 10.0, "build_warm_s": 1.0}
            for i, m in enumerate(ALL_MODES)}
    fake["kiln-fp32"] = {"mode": "kiln-fp32", "kind": "kiln", "error": "kiln exec has no --noTF32"}
    meta = collect_meta(args, gpu="(dry run)", torch_version=torch.__version__)
    write_reports(args, meta, fake, render_markdown(meta, fake, ALL_MODES))
    log("dry run ok")
    return 0


def collect_meta(args, gpu, torch_version, cuda="-", cudnn="-"):
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "host": socket.gethostname(),
            "gpu": gpu, "torch": torch_version, "cuda": cuda, "cudnn": cudnn, "python": platform.python_version(),
            "driver": cmd_out(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]).splitlines()[0],
            "kiln_rev": os.environ.get("KILN_REV") or cmd_out(["git", "rev-parse", "--short", "HEAD"]),
            "shape": f"1x3x{args.height}x{args.width_px}", "width": args.width, "seed": args.seed,
            "iterations": args.iterations, "cudnn_benchmark": not args.no_cudnn_benchmark,
            "compile_mode": "off" if args.no_compile else args.compile_mode,
            "command": "python3 " + " ".join([os.path.relpath(os.path.abspath(__file__), ROOT)] + sys.argv[1:])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--onnx", help="pre-exported PackNet01 model (input.npy beside it is used); "
                                   "if missing, export.py writes one into --workdir")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "out", "packnet_cuda"),
                    help="export, timing caches, kiln outputs and logs")
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "kiln"), help="kiln CLI binary")
    ap.add_argument("--iterations", type=int, default=200, help="timed runs per mode (kiln: --iterations)")
    ap.add_argument("--warmup", type=int, default=20, help="PyTorch warm-up runs per mode")
    ap.add_argument("--kiln-warmup-ms", type=float, default=500, help="kiln --warmUp")
    ap.add_argument("--kiln-timeout", type=float, default=600, help="seconds per kiln subprocess")
    ap.add_argument("--modes", type=parse_modes, default="all",
                    help=f"comma list of {', '.join(ALL_MODES)}; or torch, kiln, all")
    ap.add_argument("--no-compile", action="store_true", help=f"skip {COMPILE}")
    ap.add_argument("--compile-mode", default="graph", choices=("graph", "reduce-overhead", "default"),
                    help="graph: default inductor, then one manual CUDA graph capture; reduce-overhead: "
                         "inductor's CUDA graphs; default: no CUDA graph")
    ap.add_argument("--no-cudnn-benchmark", action="store_true", help="leave torch.backends.cudnn.benchmark off")
    ap.add_argument("--width", type=float, default=None, help="PackNet width; None: 1.0, dry run 0.25")
    ap.add_argument("--height", type=int, default=None, help="input height; None: 192, dry run 64")
    ap.add_argument("--width-px", type=int, default=None, help="input width; None: 640, dry run 128")
    ap.add_argument("--seed", type=int, default=0, help="weights and input seed (as export.py)")
    ap.add_argument("--opset", type=int, default=11, choices=(11, 13), help="opset when exporting")
    ap.add_argument("--out", help="write the markdown report here")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--dry-run", action="store_true", help="CPU only: model, kiln command lines, report code")
    args = ap.parse_args()
    small = args.dry_run
    args.width = args.width if args.width is not None else (0.25 if small else 1.0)
    args.height = args.height if args.height is not None else (64 if small else 192)
    args.width_px = args.width_px if args.width_px is not None else (128 if small else 640)
    if args.iterations < 1:
        ap.error("--iterations must be positive")
    if args.no_compile:
        args.modes = [m for m in args.modes if m != COMPILE]
    args.kiln = os.path.abspath(args.kiln)
    args.workdir = os.path.abspath(args.workdir)
    os.makedirs(args.workdir, exist_ok=True)
    if args.dry_run:
        return dry_run(args)

    torch = torch_setup(args)
    if not torch.cuda.is_available():
        sys.exit("error: no CUDA device visible to PyTorch (use --dry-run on a machine without one)")
    from export import build_model
    meta = collect_meta(args, torch.cuda.get_device_name(0), torch.__version__, torch.version.cuda or "-",
                        str(torch.backends.cudnn.version()))
    log(f"GPU {meta['gpu']} · torch {meta['torch']} · CUDA {meta['cuda']} · cuDNN {meta['cudnn']} · "
        f"driver {meta['driver']} · {meta['date']}")
    log(f"modes: {', '.join(args.modes)}")

    onnx = ensure_model(args)
    x_path, x = input_for(args, onnx)
    log(f"model {onnx} ({os.path.getsize(onnx) / 2**20:.0f} MiB), input {x_path}")
    cpu_model = build_model(args.width, args.seed)
    results = {}

    # The reference: eager fp32, TF32 off. Timed as a mode when selected, else run once for its output.
    ref_modes = [REFERENCE] + [m for m in args.modes if m in TORCH_MODES and m != REFERENCE]
    ref = None
    for mode in ref_modes:
        log(f"{mode}: building")
        r = run_torch_mode(torch, args, mode, cpu_model, x, ref, timed=mode in args.modes)
        if mode == REFERENCE:
            if "error" in r:
                log(f"{mode} failed, no accuracy reference: {r.get('traceback', r['error'])}")
            else:
                ref = r["output"]
                r["rel_l2"] = 0.0
                exported = os.path.join(os.path.dirname(onnx), "output.npy")
                if os.path.exists(exported) and np.load(exported).size == ref.size:
                    err = rel_l2(np.load(exported), ref)
                    meta["reference_check"] = (f"export's CPU output.npy vs {REFERENCE} on the GPU: rel L2 {err:.2e}"
                                               + ("" if err < 1e-3 else " — TOO LARGE: the ONNX model's weights or "
                                                  "input differ from --width/--seed"))
                    log(meta["reference_check"])
            if mode not in args.modes:
                continue
        results[mode] = r
        if "error" in r:
            log(f"{mode}: failed: {r['error']}")
            if os.environ.get("BENCH_DEBUG"):
                print(r.get("traceback", ""), flush=True)
        else:
            log(f"{mode}: GPU {r['gpu_ms']:.3f} ms, e2e {r['e2e_ms']:.3f} ms, peak {r['peak_mib']:.0f} MiB, "
                f"rel L2 {fmt(r['rel_l2'], '.2e')}")
    del cpu_model
    gc.collect()
    torch.cuda.empty_cache()  # leave the GPU's memory to kiln's processes

    kiln_modes = [m for m in args.modes if m in KILN_MODES]
    if kiln_modes:
        if not os.access(args.kiln, os.X_OK):
            for m in kiln_modes:
                results[m] = {"mode": m, "kind": "kiln", "error": f"{args.kiln} not found or not executable"}
        elif ref is None:
            for m in kiln_modes:
                results[m] = {"mode": m, "kind": "kiln", "error": "no reference output"}
        else:
            supported = kiln_supported_flags(args.kiln)
            if supported is not None and set(KILN_FLAGS) - supported:
                log(f"warning: `kiln exec --help` lacks {sorted(set(KILN_FLAGS) - supported)}")
            for mode in kiln_modes:
                r = run_kiln_mode(args, mode, onnx, x_path, args.workdir, ref, supported)
                results[mode] = r
                if "error" in r:
                    log(f"{mode}: failed: {r['error']}")
                else:
                    log(f"{mode}: GPU {fmt(r['gpu_ms'], '.3f')} ms, e2e {fmt(r['e2e_ms'], '.3f')} ms, build "
                        f"{build_cell(r)} s, rel L2 {r['rel_l2']:.2e}")

    write_reports(args, meta, results, render_markdown(meta, results, args.modes))
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
