#!/usr/bin/env python3
"""Run ONNX models in ONNX Runtime on the same input and compare their outputs (relative L2).

usage: ort_compare.py MODEL [MODEL ...] --input input.npy [--reference output.npy] [--tol 1e-5]
The first model is the baseline; every other model's outputs must match it within --tol, and with
--reference every model's first output must match the reference within --ref-tol.
Exits non-zero on a mismatch.
"""
import argparse
import sys

import numpy as np
import onnxruntime as ort


def rel_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def run(path, x):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: x})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="+")
    p.add_argument("--input", required=True)
    p.add_argument("--reference")
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--ref-tol", type=float, default=1e-4)
    a = p.parse_args()
    x = np.load(a.input)
    outs = [run(m, x) for m in a.models]
    ok = True
    for m, o in zip(a.models[1:], outs[1:]):
        for k, (got, want) in enumerate(zip(o, outs[0])):
            err = rel_l2(got, want)
            good = got.shape == want.shape and err <= a.tol
            ok &= good
            print(f"{m} output {k} vs {a.models[0]}: rel L2 {err:.3e} {'ok' if good else 'MISMATCH'}")
    if a.reference:
        ref = np.load(a.reference)
        for m, o in zip(a.models, outs):
            err = rel_l2(o[0], ref)
            good = o[0].shape == ref.shape and err <= a.ref_tol
            ok &= good
            print(f"{m} vs reference {a.reference}: rel L2 {err:.3e} {'ok' if good else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
