"""Runs one suite model through kiln (the CLI) and ONNX Runtime on the same seeded random inputs.

The same runner serves the CPU suite (tests/python/test_models.py, bench/bench_models_cpu.py) and the CUDA one
(bench/bench_models_cuda.py): `device` picks kiln's device, `flags` adds `kiln exec` options (--noTF32, --fp16,
optimization profiles, --allowHostFallback, ...). ONNX Runtime always runs on the CPU in fp32: it is the reference.
MODELS_DIR (env KILN_MODELS_DIR) holds the suite's files; EXPORTS_DIR (env KILN_EXPORTS_DIR), when set, holds the
torch/ exports instead (made there on demand), so a read-only model folder can be used with a writable work folder.
"""
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS_DIR = os.environ.get("KILN_MODELS_DIR", os.path.join(ROOT, "out", "models"))
EXPORTS_DIR = os.environ.get("KILN_EXPORTS_DIR")
KILN = os.environ.get("KILN_BIN", os.path.join(ROOT, "build", "kiln"))


def model_path(m):
    base = EXPORTS_DIR if EXPORTS_DIR and m["path"].startswith("torch/") else MODELS_DIR
    return os.path.join(base, m["path"])


def ensure_model(m):
    """Our own torch exports are made on demand when missing (fetch_models.sh makes only the fast ones)."""
    path = model_path(m)
    if not os.path.exists(path) and m["path"].startswith("torch/"):
        stem = os.path.basename(path)[:-len(".onnx")]
        here = os.path.join(ROOT, "tests", "models")
        script = "export_sequence.py" if stem.startswith("seq_") else "export_torchvision.py"
        args = [os.path.join(here, script), "--out", os.path.dirname(path)]
        if not stem.startswith("seq_"):
            args += ["--only", stem]
        proc = subprocess.run([sys.executable, "-W", "ignore"] + args, capture_output=True, text=True)
        if proc.returncode:  # the exporter's own FAILED line names the exception; else its last words
            lines = (proc.stdout + proc.stderr).strip().splitlines() or [f"exit {proc.returncode}"]
            raise RuntimeError(f"{script} {stem}: " + next((x for x in lines if "FAILED" in x), lines[-1]).strip())
    return path


def inputs_for(m, session):
    """Seeded uniform [-1, 1) inputs in the input's type: the suite's shapes, else the model's own (dynamic dims 1)."""
    rng = np.random.default_rng(20261130)
    feeds = {}
    for i in session.get_inputs():
        dims = m["shapes"].get(i.name) or [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        feeds[i.name] = rng.uniform(-1, 1, dims).astype(np.float16 if i.type == "tensor(float16)" else np.float32)
    return feeds


def rel_l2(got, want):
    got, want = got.astype(np.float64), want.astype(np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def error_line(stderr, returncode):
    """One line for a failed `kiln exec`: its error line, with the first layers an error lists after it."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    if not lines:
        return f"exit {returncode}"
    first = next((k for k, line in enumerate(lines) if "error" in line.lower()), None)
    if first is None:
        return lines[-1]
    listed = lines[first + 1:first + 4]
    return lines[first] + ("" if not listed else " " + "; ".join(listed)) + (" ..." if len(lines) > first + 4 else "")


def exec_kiln(path, feeds, names, threads=1, iterations=1, device="cpu", flags=(), timeout=1800):
    """Runs `kiln exec` on `path` with `feeds`; returns ({output name: array}, median ms, stdout).

    Raises RuntimeError with one line (error_line) on a failure. `names`: the outputs to collect (kiln names each
    file after its output, other characters than [A-Za-z0-9._-] as '_'); a missing one comes back as None.
    """
    with tempfile.TemporaryDirectory() as tmp:
        args = [KILN, "exec", f"--onnx={path}", f"--saveOutputs={tmp}/out", f"--threads={threads}",
                f"--iterations={iterations}", "--duration=0", "--warmUp=0"]
        if device != "cpu":
            args.append(f"--device={device}")
        args += list(flags)
        for k, (name, x) in enumerate(feeds.items()):
            np.save(f"{tmp}/input{k}.npy", x)
            args.append(f"--loadInputs={name}:{tmp}/input{k}.npy")
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"kiln exec timed out after {timeout:g} s") from None
        if proc.returncode:
            raise RuntimeError(error_line(proc.stderr, proc.returncode))
        files = {os.path.splitext(os.path.basename(p))[0]: p for p in glob.glob(f"{tmp}/out/*.npy")}
        got = {n: np.load(files[stem]) if (stem := re.sub(r"[^A-Za-z0-9._-]", "_", n)) in files else None
               for n in names}
        median = re.search(r"^Latency: .*median = ([0-9.]+) ms", proc.stdout, re.M)
    return got, float(median.group(1)) if median else float("nan"), proc.stdout


def run_kiln(path, feeds, names, threads=1, iterations=1, device="cpu", flags=()):
    """exec_kiln without the log: ({output name: array}, median ms)."""
    got, median, _ = exec_kiln(path, feeds, names, threads, iterations, device, flags)
    return got, median


def ort_session(m, threads=1):
    import onnxruntime as ort
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads  # 0: ONNX Runtime's default (every core)
    o.log_severity_level = 3  # not the per-initializer warnings of models that list initializers as inputs
    return ort.InferenceSession(ensure_model(m), o, providers=["CPUExecutionProvider"])


def reference(m, threads=1, session=None):
    """The suite's seeded inputs and ONNX Runtime's outputs on them: (feeds, {output name: array})."""
    session = session or ort_session(m, threads)
    feeds = inputs_for(m, session)
    want = dict(zip([x.name for x in session.get_outputs()], session.run(None, feeds)))
    for name, w in want.items():  # an all-zero reference would pass any all-zero answer: the model is degenerate
        if not np.any(w):
            raise RuntimeError(f"ONNX Runtime's output {name} is all zeros: the case checks nothing")
    return feeds, want


def compare(got, want):
    """{output: rel L2 of kiln's answer vs ONNX Runtime's}; a missing output is inf."""
    return {name: rel_l2(got[name], w) if got.get(name) is not None else float("inf") for name, w in want.items()}


def run_case(m, threads=1, iterations=1, device="cpu", flags=()):
    """Returns {output: rel L2 vs ORT}, kiln's median ms, ORT's median ms; raises on a kiln failure."""
    session = ort_session(m, threads)
    feeds, want = reference(m, threads, session)
    ort_ms = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        session.run(None, feeds)
        ort_ms.append((time.perf_counter() - t0) * 1e3)
    got, kiln_ms = run_kiln(model_path(m), feeds, list(want), threads, iterations, device, flags)
    return compare(got, want), kiln_ms, float(np.median(ort_ms))
