"""Runs one suite model through kiln (the CLI) and ONNX Runtime on the same seeded random inputs."""
import glob
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS_DIR = os.path.join(ROOT, "out", "models")
KILN = os.environ.get("KILN_BIN", os.path.join(ROOT, "build", "kiln"))


def model_path(m):
    return os.path.join(MODELS_DIR, m["path"])


def ensure_model(m):
    """Our own torch exports are made on demand when missing (fetch_models.sh makes only the fast ones)."""
    path = model_path(m)
    if not os.path.exists(path) and m["path"].startswith("torch/"):
        stem = os.path.basename(path)[:-len(".onnx")]
        here = os.path.join(ROOT, "tests", "models")
        args = ([os.path.join(here, "export_sequence.py"), "--out", os.path.dirname(path)] if stem.startswith("seq_")
                else [os.path.join(here, "export_torchvision.py"), "--only", stem])
        subprocess.run([sys.executable, "-W", "ignore"] + args, check=True, stdout=subprocess.DEVNULL)
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


def run_kiln(path, feeds, names, threads=1, iterations=1):
    """Runs the kiln CLI on `path` with `feeds`; returns ({output name: array}, median ms). Raises on a failure.

    `names`: the outputs to collect (kiln names each file after its output, other characters than
    [A-Za-z0-9._-] as '_'); a missing one comes back as None.
    """
    with tempfile.TemporaryDirectory() as tmp:
        args = [KILN, "exec", f"--onnx={path}", f"--saveOutputs={tmp}/out", f"--threads={threads}",
                f"--iterations={iterations}", "--duration=0", "--warmUp=0"]
        for k, (name, x) in enumerate(feeds.items()):
            np.save(f"{tmp}/input{k}.npy", x)
            args.append(f"--loadInputs={name}:{tmp}/input{k}.npy")
        proc = subprocess.run(args, capture_output=True, text=True, timeout=1800)
        if proc.returncode:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
        files = {os.path.splitext(os.path.basename(p))[0]: p for p in glob.glob(f"{tmp}/out/*.npy")}
        got = {n: np.load(files[stem]) if (stem := re.sub(r"[^A-Za-z0-9._-]", "_", n)) in files else None
               for n in names}
        median = re.search(r"^Latency: .*median = ([0-9.]+) ms", proc.stdout, re.M)
    return got, float(median.group(1)) if median else float("nan")


def run_case(m, threads=1, iterations=1):
    """Returns {output: rel L2 vs ORT}, kiln's median ms, ORT's median ms; raises on a kiln failure."""
    import time

    import onnxruntime as ort
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.log_severity_level = 3  # not the per-initializer warnings of models that list initializers as inputs
    session = ort.InferenceSession(ensure_model(m), o, providers=["CPUExecutionProvider"])
    feeds = inputs_for(m, session)
    want = dict(zip([x.name for x in session.get_outputs()], session.run(None, feeds)))
    for name, w in want.items():  # an all-zero reference would pass any all-zero answer: the model is degenerate
        if not np.any(w):
            raise RuntimeError(f"ONNX Runtime's output {name} is all zeros: the case checks nothing")
    ort_ms = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        session.run(None, feeds)
        ort_ms.append((time.perf_counter() - t0) * 1e3)
    got, kiln_ms = run_kiln(model_path(m), feeds, list(want), threads, iterations)
    errors = {name: rel_l2(got[name], w) if got[name] is not None else float("inf") for name, w in want.items()}
    return errors, kiln_ms, float(np.median(ort_ms))
