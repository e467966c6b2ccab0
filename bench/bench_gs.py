"""kiln.gs against onnx_graphsurgeon on one model, in one run (issue 13 item 4).

Each run of each implementation is its own subprocess, so peak RSS is that workflow's alone:

    onnx.load -> gs.import_onnx -> graph.fold_constants() -> graph.cleanup().toposort() -> gs.export_onnx

Measured in the child: wall time of that sequence, peak RSS (resource.getrusage, ru_maxrss), RSS before the
model is loaded (interpreter + imports), node count at the end, and which folder kiln.gs used.
Implementations: `onnx_graphsurgeon`, `kiln.gs` (kiln's C++ folder through kiln._kiln.fold_onnx when that
extension imports) and `kiln.gs-ort` (kiln.gs with kiln._kiln hidden: its ONNX Runtime fallback); the row
`onnx.load` is the floor: onnx.load alone (it holds the file's bytes and the parsed model at once), against which
the others' peak memory is read.

    .venv/bin/python bench/bench_gs.py --model /tmp/packnet_full/packnet01.onnx --runs 3 --out /tmp/gs.md

Without --model, the full PackNet01 (opset 11) is exported first with examples/packnet/export.py (needs torch:
TORCH_PYTHON, this Python, or /usr/bin/python3).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMPLS = ["onnx_graphsurgeon", "kiln.gs", "kiln.gs-ort", "onnx.load"]


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(impl, model_path):
    """One measured workflow; prints a JSON line."""
    import importlib
    import resource

    if impl == "onnx.load":  # the floor: what loading the model costs before any surgery
        import onnx

        baseline = rss_mib()
        start = time.perf_counter()
        model = onnx.load(model_path)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"impl": impl, "seconds": seconds, "peak_mib": peak, "baseline_mib": baseline,
                          "nodes_before": len(model.graph.node), "nodes": len(model.graph.node), "folder": "-"}))
        return

    sys.path.append(os.path.join(ROOT, "python"))  # the source tree, where kiln is not installed
    gs = importlib.import_module("onnx_graphsurgeon" if impl == "onnx_graphsurgeon" else "kiln.gs")
    import onnx

    folder = "onnx_graphsurgeon"
    if impl != "onnx_graphsurgeon":
        from kiln.gs import fold

        if impl == "kiln.gs-ort":
            fold._native_folder = lambda: None  # the ONNX Runtime fallback, as without the extension
        folder = "kiln._kiln.fold_onnx" if fold._native_folder() is not None else "ONNX Runtime"
    baseline = rss_mib()

    start = time.perf_counter()
    graph = gs.import_onnx(onnx.load(model_path))
    nodes_before = len(graph.nodes)
    graph.fold_constants()
    graph.cleanup().toposort()
    model = gs.export_onnx(graph)
    seconds = time.perf_counter() - start

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"impl": impl, "seconds": seconds, "peak_mib": peak, "baseline_mib": baseline,
                      "nodes_before": nodes_before, "nodes": len(model.graph.node), "folder": folder}))


def measure(impl, model_path):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", impl, model_path],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"impl": impl, "error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def export_full_model(directory):
    for python in (os.environ.get("TORCH_PYTHON"), sys.executable, "/usr/bin/python3"):
        if python and subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0:
            break
    else:
        sys.exit("bench_gs: no --model and no Python with torch to export PackNet01")
    print(f"exporting PackNet01 (opset 11) into {directory} ...", file=sys.stderr)
    subprocess.run([python, os.path.join(ROOT, "examples", "packnet", "export.py"), "--out", directory,
                    "--opset", "11"], check=True, stdout=subprocess.DEVNULL)
    return os.path.join(directory, "packnet01.onnx")


def table(model_path, results, runs):
    size = os.path.getsize(model_path) / 2**20
    lines = [f"`{os.path.basename(model_path)}` ({size:.0f} MiB); load + import_onnx + fold_constants() + "
             f"cleanup().toposort() + export_onnx; median of {runs} run(s), each in its own process.", "",
             "| implementation | folder | time (s) | peak RSS (MiB) | RSS before load (MiB) | nodes |",
             "|---|---|---|---|---|---|"]
    medians = {}
    for impl, rows in results.items():
        ok = [r for r in rows if "error" not in r]
        if not ok:
            lines.append(f"| {impl} | failed: {rows[0]['error']} | | | | |")
            continue
        t = statistics.median(r["seconds"] for r in ok)
        peak = statistics.median(r["peak_mib"] for r in ok)
        base = statistics.median(r["baseline_mib"] for r in ok)
        medians[impl] = t
        lines.append(f"| {impl} | {ok[0]['folder']} | {t:.2f} | {peak:.0f} | {base:.0f} | "
                     f"{ok[0]['nodes_before']} -> {ok[0]['nodes']} |")
    base_t = medians.get("onnx_graphsurgeon")
    if base_t:
        lines.append("")
        for impl, t in medians.items():
            if impl not in ("onnx_graphsurgeon", "onnx.load"):
                lines.append(f"{impl} / onnx_graphsurgeon time: {t / base_t:.2f}x")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="ONNX model (default: export the full PackNet01, opset 11)")
    parser.add_argument("--runs", type=int, default=3, help="runs per implementation (median reported)")
    parser.add_argument("--out", help="also write the markdown table to this file")
    parser.add_argument("--impl", action="append", choices=IMPLS, help="only these (repeatable; default all)")
    parser.add_argument("--child", nargs=2, metavar=("IMPL", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    with tempfile.TemporaryDirectory(prefix="bench_gs_") as tmp:
        model_path = args.model or export_full_model(tmp)
        results = {}
        for run in range(args.runs):  # interleaved, so drift on a shared machine hits every implementation
            for impl in args.impl or IMPLS:
                r = measure(impl, model_path)
                results.setdefault(impl, []).append(r)
                done = f"{r['seconds']:.2f} s, {r['peak_mib']:.0f} MiB, {r['nodes']} nodes" if "error" not in r \
                    else r["error"]
                print(f"run {run + 1}/{args.runs} {impl}: {done}", file=sys.stderr)
        # kiln.gs without the extension is the same as kiln.gs-ort: report it once.
        if all(r.get("folder") == "ONNX Runtime" for r in results.get("kiln.gs", [{}])):
            results.pop("kiln.gs", None)
        text = table(model_path, results, args.runs)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
