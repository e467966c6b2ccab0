"""Runs one suite model through kiln (the CLI) and ONNX Runtime on the same seeded random inputs."""
import glob
import os
import re
import subprocess
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS_DIR = os.path.join(ROOT, "out", "models")
KILN = os.environ.get("KILN_BIN", os.path.join(ROOT, "build", "kiln"))


def model_path(m):
    return os.path.join(MODELS_DIR, m["path"])


def inputs_for(m, session):
    """Seeded uniform [-1, 1) inputs: the suite's shapes, else the model's own (dynamic dims as 1)."""
    rng = np.random.default_rng(20261130)
    feeds = {}
    for i in session.get_inputs():
        dims = m["shapes"].get(i.name) or [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        feeds[i.name] = rng.uniform(-1, 1, dims).astype(np.float32)
    return feeds


def rel_l2(got, want):
    got, want = got.astype(np.float64), want.astype(np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def run_case(m, threads=1, iterations=1):
    """Returns {output: rel L2 vs ORT}, kiln's median ms, ORT's median ms; raises on a kiln failure."""
    import time

    import onnxruntime as ort
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    session = ort.InferenceSession(model_path(m), o, providers=["CPUExecutionProvider"])
    feeds = inputs_for(m, session)
    want = dict(zip([x.name for x in session.get_outputs()], session.run(None, feeds)))
    ort_ms = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        session.run(None, feeds)
        ort_ms.append((time.perf_counter() - t0) * 1e3)
    with tempfile.TemporaryDirectory() as tmp:
        args = [KILN, "exec", f"--onnx={model_path(m)}", f"--saveOutputs={tmp}/out", f"--threads={threads}",
                f"--iterations={iterations}", "--duration=0", "--warmUp=0"]
        for k, (name, x) in enumerate(feeds.items()):
            np.save(f"{tmp}/input{k}.npy", x)
            args.append(f"--loadInputs={name}:{tmp}/input{k}.npy")
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
        if proc.returncode:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
        got = {os.path.splitext(os.path.basename(p))[0]: np.load(p) for p in glob.glob(f"{tmp}/out/*.npy")}
        median = re.search(r"^Latency: .*median = ([0-9.]+) ms", proc.stdout, re.M)
    # kiln names each file after its output, with characters other than [A-Za-z0-9._-] as '_'.
    errors = {name: rel_l2(got[stem], w) if (stem := re.sub(r"[^A-Za-z0-9._-]", "_", name)) in got else float("inf")
              for name, w in want.items()}
    return errors, float(median.group(1)) if median else float("nan"), float(np.median(ort_ms))
