#!/usr/bin/env python3
"""CPU threads under load, side by side in one run: kiln (default: passive OpenMP workers), kiln with libgomp's
old default spinning (GOMP_SPINCOUNT=300000), and ONNX Runtime, each at 1 and 2 threads, with the machine idle
and with one core kept busy by another process. Prints median and worst latency; --record appends to RESULTS.md.

  python bench/bench_threads_cpu.py MODEL.onnx [--runs 30] [--record]
"""
import argparse
import datetime
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def busy(stop):
    while not stop.is_set():
        pass


def kiln_times(model, x_path, name, threads, runs, env_extra, tmp):
    times = os.path.join(tmp, "times.json")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(env_extra)
    subprocess.run([os.path.join(ROOT, "build", "kiln"), "exec", f"--onnx={model}", f"--loadInputs={name}:{x_path}",
                    f"--threads={threads}", f"--iterations={runs}", "--duration=0", "--warmUp=200",
                    f"--exportTimes={times}"], check=True, stdout=subprocess.DEVNULL, env=env)
    return [t["latencyMs"] for t in json.load(open(times))]


def ort_times(model, x, name, threads, runs):
    import onnxruntime as ort
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    s = ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])
    for _ in range(3):
        s.run(None, {name: x})
    lat = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(None, {name: x})
        lat.append((time.perf_counter() - t0) * 1e3)
    return lat


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--record", action="store_true")
    a = p.parse_args()
    import onnxruntime as ort
    inp = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"]).get_inputs()[0]
    x = np.random.default_rng(0).uniform(-1, 1, [d if isinstance(d, int) else 1 for d in inp.shape]).astype(np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        x_path = os.path.join(tmp, "x.npy")
        np.save(x_path, x)
        for load in ("idle", "one core busy"):
            stop = multiprocessing.Event()
            hog = multiprocessing.Process(target=busy, args=(stop,)) if load != "idle" else None
            if hog:
                hog.start()
            try:
                for threads in (1, 2):
                    for label, fn in (
                            ("kiln", lambda: kiln_times(a.model, x_path, inp.name, threads, a.runs, {}, tmp)),
                            ("kiln, spinning workers (GOMP_SPINCOUNT=300000)",
                             lambda: kiln_times(a.model, x_path, inp.name, threads, a.runs,
                                                {"GOMP_SPINCOUNT": "300000"}, tmp)),
                            (f"onnxruntime {ort.__version__}", lambda: ort_times(a.model, x, inp.name, threads, a.runs))):
                        lat = fn()
                        rows.append((load, threads, label, statistics.median(lat), max(lat)))
                        print(f"{load:14s} {threads} thr  {label:48s} median {rows[-1][3]:8.2f} ms  worst {rows[-1][4]:8.2f} ms",
                              flush=True)
            finally:
                if hog:
                    stop.set()
                    hog.join()
    if a.record:
        cmd = "python bench/bench_threads_cpu.py " + " ".join(sys.argv[1:])
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
            f.write(f"\n### {datetime.date.today().isoformat()} — CPU threads under load, {os.path.basename(a.model)}, "
                    f"{os.cpu_count()} cores, {os.uname().nodename}\n`{cmd}`\n\n"
                    "| load | threads | runtime | median ms | worst ms |\n|---|---|---|---|---|\n")
            for load, threads, label, med, worst in rows:
                f.write(f"| {load} | {threads} | {label} | {med:.2f} | {worst:.2f} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
