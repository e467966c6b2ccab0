#!/usr/bin/env python3
"""The model suite on the CPU, side by side in one run: kiln vs ONNX Runtime, same inputs, same thread count.

Prints model, status, worst rel L2 vs ONNX Runtime, kiln median ms, ORT median ms and the ratio; --record appends
the table to bench/RESULTS.md. Models: tests/models/suite.py (all entries, slow ones included).

  python bench/bench_models_cpu.py [--threads 1] [--runs 10] [--rounds 1] [--only SUBSTRING ...] [--record]

--rounds R runs each model R times (kiln block, ORT block, R times over) and keeps each side's lowest
median: on a machine other processes load, a burst that hits one block does not decide the ratio.
KILN_BIN=path/to/kiln benchmarks another build (e.g. main's, for a before/after table).
"""
import argparse
import datetime
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
import runner  # noqa: E402
import suite  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--only", nargs="*", help="run only the cases whose id contains one of these")
    p.add_argument("--record", action="store_true")
    a = p.parse_args()
    import onnxruntime as ort
    rows = []
    for m in suite.MODELS:
        if a.only and not any(s in suite.case_id(m) for s in a.only):
            continue
        try:
            kiln_ms = ort_ms = float("inf")
            for _ in range(max(a.rounds, 1)):
                errors, k, o = runner.run_case(m, threads=a.threads, iterations=a.runs)
                kiln_ms, ort_ms = min(kiln_ms, k), min(ort_ms, o)
            worst = max(errors.values())
            status = "ok" if worst <= m["tol"] else f"mismatch (> {m['tol']:g})"
        except Exception as e:  # a model kiln refuses: the table says why
            why = str(e).replace(f"kiln: error: {runner.model_path(m)}: ", "")
            worst, kiln_ms, ort_ms, status = float("nan"), float("nan"), float("nan"), f"fails: {why[:120]}"
        rows.append((suite.case_id(m), status, worst, kiln_ms, ort_ms))
        print(f"{rows[-1][0]:32s} {status:10s} rel L2 {worst:.2e}  kiln {kiln_ms:9.2f} ms  ORT {ort_ms:9.2f} ms  "
              f"kiln/ORT x{kiln_ms / ort_ms:.2f}", flush=True)
    if a.record:
        cmd = "python bench/bench_models_cpu.py " + " ".join(sys.argv[1:])
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
            f.write(f"\n### {datetime.date.today().isoformat()} — model suite on CPU, {a.threads} thread(s), "
                    f"onnxruntime {ort.__version__}, {os.uname().nodename}\n`{cmd}`\n\n"
                    "| model | status | worst rel L2 vs ORT | kiln ms | ORT ms | kiln time / ORT time |\n"
                    "|---|---|---|---|---|---|\n")
            for case, status, worst, k, o in rows:
                f.write(f"| {case} | {status} | {worst:.2e} | {k:.2f} | {o:.2f} | {k / o:.2f} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
